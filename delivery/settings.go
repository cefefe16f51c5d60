package delivery

import (
	"errors"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"
)

// Defaults of the settings. A zero field in ProducerSettings or
// ConsumerSettings takes the default named here.
const (
	// DefaultWindow is how many sequence numbers a consumer grants a
	// producer beyond what it has confirmed. Akka's is 50; ours is larger
	// because a window must cover a round trip at full rate, and since
	// DefaultWindowBytes bounds the bytes in flight, it need not be small
	// for large messages' sake: at 128 B, 16384 is 2 MiB.
	//
	// Chosen from `bridge bench` on a 2-core machine (2026-12-03, quiet),
	// 128 B, each figure against the raw client in the same run: over tcp
	// a window of 1000 gave 1.03M to 1.2M msgs/s, 4000 1.45M, 8192 1.59M,
	// 16384 1.93M (790 CPU ns/msg against 1,115 at 1000: more messages a
	// frame), 32768 1.84M; over the brokers, 16384 against 1000 gave NATS
	// core 937,000 msgs/s against 589,000, JetStream 628,000 against
	// 352,000, RabbitMQ 511,000 against 284,000 and Kafka 707,000 against
	// 326,000. What it costs is latency at full speed, which is queueing:
	// over tcp p50 4.2 ms against 0.5 (at a fixed rate the window does not
	// bind and latency is the same). At 64 KiB the bytes bind first and
	// nothing changes. Measured again on 2026-12-04 (a faster 2-core
	// machine), 65536 against 16384 gave nothing over tcp or any broker
	// (tcp 3.19M and 2.27M msgs/s against 2.98M and 2.67M, alternating;
	// the brokers within 10% either way, p99 at full speed higher). Only
	// over the memory pipe, where a window's round trip is a few
	// milliseconds at 4M msgs/s, does 16384 bind: 65536 (the window in
	// bytes then binding at 32768) gave BenchmarkDelivery128B 4.7M to 4.9M
	// msgs/s against 3.1M to 4.2M. A work-pulling worker's demand has its
	// own default, DefaultWorkerWindow.
	DefaultWindow = 16384

	// DefaultResendMin is the consumer's first retry interval: after this
	// long without a message while it waits for one, it repeats its last
	// request (register, request or resend). Each retry grows the interval
	// 1.5 times up to DefaultResendMax; a message resets it.
	DefaultResendMin = time.Second
	// DefaultResendMax caps the consumer's retry interval.
	DefaultResendMax = 30 * time.Second

	// DefaultAckDelay is the longest a consumer keeps a confirmation to
	// itself when no window request carries it.
	DefaultAckDelay = 10 * time.Millisecond

	// DefaultFirstResendInterval is how often a producer repeats the first
	// message of a numbering, sent before the consumer asked, until the
	// consumer answers.
	DefaultFirstResendInterval = time.Second

	// DefaultChunkSize is the largest payload one sequenced message carries;
	// larger messages are split into chunks of this size.
	DefaultChunkSize = 256 << 10
	// DefaultMaxFrameSize bounds the frames a producer writes. A carrier
	// with a lower limit (FrameSizeLimiter) lowers it.
	DefaultMaxFrameSize = 1 << 20
	// DefaultMaxMessageSize bounds one message, chunked or not, on both
	// sides.
	DefaultMaxMessageSize = 16 << 20
	// DefaultMaxUnconfirmedBytes bounds the payload bytes a producer holds.
	DefaultMaxUnconfirmedBytes = 256 << 20
	// DefaultMaxUnconfirmed bounds what a producer buffers (sent and not
	// confirmed, plus accepted and not sent), whatever window its consumer
	// grants.
	DefaultMaxUnconfirmed = 1 << 16

	// DefaultWindowBytes is how many payload bytes a consumer lets a
	// producer have in flight (sent, not confirmed), beside the window in
	// sequence numbers: large messages fill the bytes first, small ones the
	// sequence numbers. It keeps a window of large messages from queueing
	// tens of megabytes, and their latency with them.
	//
	// 4 MiB is chosen from `bridge bench` on a 2-core machine (2026-12-02,
	// loaded, each figure against the raw client in the same run), 128 B
	// and 64 KiB, at 256 KiB, 512 KiB, 1 MiB, 4 MiB and 16 MiB:
	//   - at 128 B none binds: the default Window of 1000 is about 130 KB;
	//   - over a broker the window must cover the broker's round trip: at
	//     64 KiB, 1 MiB gave 0.54 of raw on RabbitMQ and 0.69 on Kafka,
	//     4 MiB 1.07 and 1.11, 16 MiB 1.03 and 1.23 with p99 five times
	//     higher (680 and 465 ms against 130 and 83); NATS core needs more
	//     than 512 KiB (0.77 of raw at 256 KiB, 0.89 at 512 KiB);
	//   - over tcp a smaller window only cuts latency: at 64 KiB, p99 at
	//     full speed was 7 ms at 1 MiB and 36 to 57 ms at 4 MiB, raw's 61
	//     to 107 ms, at the same throughput.
	//   - against no bound in bytes (64 MiB: what 1000 x 64 KiB came to
	//     before), 4 MiB gave NATS core 1.06 of raw against 1.47, but p99
	//     130 ms against 517 and no resends against 346 (nats-server drops
	//     what overruns a slow consumer), Kafka 0.98 against 1.03 and p99
	//     172 ms against 854.
	// So 4 MiB, the smallest that kept every broker's pipeline full; over
	// tcp, where latency at full speed matters, 1 MiB does as well.
	DefaultWindowBytes = 4 << 20

	// MaxWindow is the largest window a consumer may grant.
	MaxWindow = 1 << 20
	// MaxWindowBytes is the largest window in bytes a consumer may grant.
	MaxWindowBytes = 1 << 30
	// minFrameSize is the smallest MaxFrameSize accepted: room for a header
	// and a useful chunk.
	minFrameSize = 1 << 10
	// retryBackoff is the factor by which the consumer's retry interval grows.
	retryBackoff = 1.5
)

// ProducerSettings configure a ProducerController. The zero value of every
// field but ProducerID means its default.
type ProducerSettings struct {
	// ProducerID names the producer; it is in every frame. Required: 1 to
	// 255 bytes of UTF-8. Keep it stable across restarts.
	ProducerID string

	// Epoch tells this lifetime of the producer from earlier ones; a
	// consumer accepts a new numbering only from a larger epoch of the same
	// producer and drops late frames of older ones. Default: the wall
	// clock in nanoseconds at construction, so it grows across restarts as
	// long as the clock (on whichever host the producer restarts) does not
	// go back by more than the restart took.
	Epoch uint64

	// ChunkSize is the largest payload of one sequenced message. Larger
	// messages are split into chunks, each with its own sequence number.
	// Default DefaultChunkSize; lowered to fit MaxFrameSize.
	ChunkSize int

	// MaxFrameSize bounds each frame written to the link. Default
	// DefaultMaxFrameSize; at least 1 KiB; lowered to the link's limit if it
	// reports one.
	MaxFrameSize int

	// MaxMessageSize bounds a serialized message; Send refuses larger ones
	// with a *MessageTooLargeError. Default DefaultMaxMessageSize.
	MaxMessageSize int

	// MaxUnconfirmed bounds the sequence numbers the producer holds, sent or
	// not, whatever window the consumer grants. Default
	// DefaultMaxUnconfirmed.
	MaxUnconfirmed int

	// MaxUnconfirmedBytes bounds the payload bytes the producer holds (and,
	// with a DurableQueue, what the queue holds): past it the producer
	// takes no more messages until confirmations free room. Default
	// DefaultMaxUnconfirmedBytes.
	MaxUnconfirmedBytes int

	// FirstResendInterval is how often the first message of a numbering is
	// sent again until the consumer answers. Default
	// DefaultFirstResendInterval.
	FirstResendInterval time.Duration

	// DurableQueue, when set, keeps every message on disk until it is
	// confirmed, so a producer killed and restarted on the same queue loses
	// nothing: Run loads it first, resends what it holds, and numbers on
	// from there. The controller owns the queue and closes it when it stops.
	// Default: none; unconfirmed messages die with the process.
	DurableQueue DurableQueue

	// Logger receives the controller's logs. Default: none.
	Logger *slog.Logger
}

// Validate checks the settings as NewProducerController does, without a
// link: each invalid one is a *SettingError naming its field, all of them
// joined.
func (s ProducerSettings) Validate() error {
	_, err := s.withDefaults()
	return err
}

func (s ProducerSettings) withDefaults() (ProducerSettings, error) {
	var errs settingErrors
	if s.ProducerID == "" || len(s.ProducerID) > maxProducerIDLen || !utf8.ValidString(s.ProducerID) {
		errs.add(&SettingError{Setting: "ProducerID", Value: s.ProducerID, Reason: "required: 1 to 255 bytes of UTF-8"})
	}
	if s.Epoch == 0 {
		s.Epoch = uint64(time.Now().UnixNano())
	}
	errs.size(&s.MaxFrameSize, "MaxFrameSize", DefaultMaxFrameSize, minFrameSize)
	errs.size(&s.ChunkSize, "ChunkSize", DefaultChunkSize, 1)
	errs.size(&s.MaxMessageSize, "MaxMessageSize", DefaultMaxMessageSize, 1)
	errs.size(&s.MaxUnconfirmed, "MaxUnconfirmed", DefaultMaxUnconfirmed, 1)
	errs.size(&s.MaxUnconfirmedBytes, "MaxUnconfirmedBytes", DefaultMaxUnconfirmedBytes, 1)
	errs.duration(&s.FirstResendInterval, "FirstResendInterval", DefaultFirstResendInterval)
	if s.Logger == nil {
		s.Logger = discardLogger
	}
	return s, errs.err()
}

// fitChunk lowers the chunk size so that a frame holding one chunk fits in
// maxFrame.
func fitChunk(chunkSize, maxFrame int) int {
	if room := maxFrame - frameHeaderMax - seqMessageOverhead; chunkSize > room {
		return room
	}
	return chunkSize
}

// ConsumerSettings configure a ConsumerController. The zero value of every
// field means its default.
type ConsumerSettings struct {
	// ProducerID, when set, makes the consumer accept only that producer and
	// address its registrations to it. Default: any producer on the link.
	ProducerID string

	// Epoch tells this lifetime of the consumer from others: a producer
	// that hears from a new one treats it as a new consumer. Default: the
	// wall clock in nanoseconds at construction.
	Epoch uint64

	// Window is how many sequence numbers the consumer lets the producer
	// send beyond what the application confirmed. It asks for the next half
	// window each time half of it has been confirmed. 1 to MaxWindow;
	// default DefaultWindow.
	Window int

	// WindowBytes is how many payload bytes the consumer lets the producer
	// have sent and not had confirmed, whatever Window allows; chunks count
	// by their bytes. It is checked where a message starts: a message
	// larger than it goes alone, all its chunks (the consumer confirms a
	// message only once whole). 1 to
	// MaxWindowBytes; default DefaultWindowBytes.
	WindowBytes int

	// ResendMin is the first retry interval: how long the consumer waits for
	// a message it asked for before asking again. Default DefaultResendMin.
	ResendMin time.Duration
	// ResendMax caps the retry interval, which grows 1.5 times per retry.
	// Default DefaultResendMax; not below ResendMin.
	ResendMax time.Duration

	// AckDelay is the longest the consumer waits before telling the
	// producer what the application confirmed, when no window request
	// (sent each half window) tells it sooner. It bounds how long a
	// producer's confirmation replies and Shutdown wait on a quiet stream,
	// at the cost of at most one small frame per AckDelay. Default
	// DefaultAckDelay.
	AckDelay time.Duration

	// OnlyFlowControl turns resending off: lost messages are skipped, so
	// delivery is at most once, in order. The producer then keeps nothing
	// for resend.
	OnlyFlowControl bool

	// MaxMessageSize bounds a reassembled chunked message. A producer that
	// sends a larger one stops the consumer with a *MessageTooLargeError.
	// Default DefaultMaxMessageSize.
	MaxMessageSize int

	// Logger receives the controller's logs. Default: none.
	Logger *slog.Logger
}

// Validate checks the settings as NewConsumerController does, without a
// link: each invalid one is a *SettingError naming its field, all of them
// joined.
func (s ConsumerSettings) Validate() error {
	_, err := s.withDefaults()
	return err
}

func (s ConsumerSettings) withDefaults() (ConsumerSettings, error) {
	var errs settingErrors
	if len(s.ProducerID) > maxProducerIDLen || !utf8.ValidString(s.ProducerID) {
		errs.add(&SettingError{Setting: "ProducerID", Value: s.ProducerID, Reason: "at most 255 bytes of UTF-8"})
	}
	if s.Epoch == 0 {
		s.Epoch = uint64(time.Now().UnixNano())
	}
	errs.size(&s.Window, "Window", DefaultWindow, 1)
	if s.Window > MaxWindow {
		errs.add(&SettingError{Setting: "Window", Value: s.Window, Reason: "must be from 1 to " + strconv.Itoa(MaxWindow)})
	}
	errs.size(&s.WindowBytes, "WindowBytes", DefaultWindowBytes, 1)
	if s.WindowBytes > MaxWindowBytes {
		errs.add(&SettingError{Setting: "WindowBytes", Value: s.WindowBytes, Reason: "must be from 1 to " + strconv.Itoa(MaxWindowBytes)})
	}
	minOK := errs.duration(&s.ResendMin, "ResendMin", DefaultResendMin)
	if errs.duration(&s.ResendMax, "ResendMax", DefaultResendMax) && minOK && s.ResendMax < s.ResendMin {
		errs.add(&SettingError{Setting: "ResendMax", Value: s.ResendMax, Reason: "must not be below ResendMin (" + s.ResendMin.String() + ")"})
	}
	errs.size(&s.MaxMessageSize, "MaxMessageSize", DefaultMaxMessageSize, 1)
	errs.duration(&s.AckDelay, "AckDelay", DefaultAckDelay)
	if s.Logger == nil {
		s.Logger = discardLogger
	}
	return s, errs.err()
}

// settingErrors gathers every invalid setting, so that a caller learns of
// all of them at once.
type settingErrors []error

func (e *settingErrors) add(err *SettingError) { *e = append(*e, err) }

// size sets *v to def when it is 0 and reports whether it is valid: at
// least min.
func (e *settingErrors) size(v *int, name string, def, min int) bool {
	switch {
	case *v == 0:
		*v = def
	case *v < min:
		e.add(&SettingError{Setting: name, Value: *v, Reason: "must be at least " + strconv.Itoa(min)})
		return false
	}
	return true
}

// duration sets *v to def when it is 0 and reports whether it is valid:
// positive.
func (e *settingErrors) duration(v *time.Duration, name string, def time.Duration) bool {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		e.add(&SettingError{Setting: name, Value: *v, Reason: "must be positive"})
		return false
	}
	return true
}

// err is nil, the one *SettingError, or all of them joined (errors.As finds
// the first).
func (e settingErrors) err() error {
	if len(e) == 1 {
		return e[0]
	}
	return errors.Join(e...)
}

var discardLogger = slog.New(slog.DiscardHandler)
