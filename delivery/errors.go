package delivery

import (
	"errors"
	"fmt"
)

// Sentinel errors: states, compared with errors.Is.
var (
	// ErrClosed is returned by calls on a controller that has stopped, or is
	// stopping and takes no more work. Not worth retrying on the same
	// controller.
	ErrClosed = errors.New("delivery: controller closed")

	// ErrNoDemand is returned by TrySend when the consumer has not granted
	// room for another message: the producer's buffer (the window) is full.
	// Worth retrying later; Send waits for demand instead.
	ErrNoDemand = errors.New("delivery: no demand: the consumer's window is full")

	// ErrAlreadyRunning is returned by Run when the controller runs already or
	// has run before. A controller runs once.
	ErrAlreadyRunning = errors.New("delivery: Run called twice")

	// ErrLinkClosed is what a Link returns from Send and Receive once it has
	// been closed. Carriers wrap or return it; controllers stop on it.
	ErrLinkClosed = errors.New("delivery: link closed")

	// ErrUnsupportedVersion marks a frame written by an incompatible version
	// of the wire format. It comes wrapped in a *FrameError.
	ErrUnsupportedVersion = errors.New("delivery: unsupported wire version")

	// ErrInvalidSettings marks a setting rejected by a constructor. It comes
	// wrapped in a *SettingError.
	ErrInvalidSettings = errors.New("delivery: invalid settings")

	// ErrMalformedFrame marks bytes that are not a valid frame. Every
	// *FrameError matches it.
	ErrMalformedFrame = errors.New("delivery: malformed frame")
)

// FrameError describes bytes that could not be decoded as a frame. Such a
// frame is dropped whole; nothing in it is acted on. Not worth retrying: the
// same bytes fail the same way.
type FrameError struct {
	Offset int    // byte offset in the frame where decoding failed
	Reason string // what was wrong
	Err    error  // a more specific sentinel, such as ErrUnsupportedVersion, or nil
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("delivery: malformed frame at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap lets errors.Is match ErrMalformedFrame and the specific sentinel.
func (e *FrameError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformedFrame, e.Err}
	}
	return []error{ErrMalformedFrame}
}

// MessageTooLargeError is returned by Send for a message whose serialized
// size exceeds the producer's MaxMessageSize, or the consumer's, which the
// consumer tells the producer: the message was not taken, nothing was
// sent. A Confirmation fails with one when the message was taken before
// the consumer said it takes none that large: the producer then sent a
// tombstone in its place, so the stream goes on. Not worth retrying with the
// same message.
type MessageTooLargeError struct {
	Size  int // serialized size in bytes
	Limit int // the MaxMessageSize in force: the producer's, or its consumer's if smaller
}

func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("delivery: message of %d bytes exceeds the limit of %d bytes (MaxMessageSize, the producer's or its consumer's)", e.Size, e.Limit)
}

// SettingError names a setting a constructor rejected and why.
type SettingError struct {
	Setting string // the field name, such as "Window"
	Value   any    // the rejected value
	Reason  string // what a valid value looks like
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("delivery: invalid setting %s=%v: %s", e.Setting, e.Value, e.Reason)
}

// Unwrap lets errors.Is match ErrInvalidSettings.
func (e *SettingError) Unwrap() error { return ErrInvalidSettings }

// MarshalError is returned by Send when the serializer fails on a message.
// Nothing was sent. Not worth retrying with the same message.
type MarshalError struct {
	Err error
}

func (e *MarshalError) Error() string { return "delivery: marshal message: " + e.Err.Error() }
func (e *MarshalError) Unwrap() error { return e.Err }

// UnmarshalError is returned by Receive when the serializer fails on a
// delivered payload. The Delivery returned with it is valid: confirm it to
// skip the message, or stop to keep it unconfirmed.
type UnmarshalError struct {
	SeqNr   SeqNr
	Payload []byte // the bytes that did not unmarshal
	Err     error
}

func (e *UnmarshalError) Error() string {
	return fmt.Sprintf("delivery: unmarshal message %d: %v", e.SeqNr, e.Err)
}
func (e *UnmarshalError) Unwrap() error { return e.Err }
