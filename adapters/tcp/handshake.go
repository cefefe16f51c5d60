package tcp

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/bridge-mq/bridge/delivery"
)

// The handshake, before any frame. The dialing side D opens, the listening
// side L answers; each proves it knows the secret without sending it:
//
//	D -> L  hello     "BRTC" version(1) end(1) nonceD(16) len(1) stream
//	L -> D  challenge status(1)=0 nonceL(16) macL(32)
//	        or        status(1)=1 len(1) reason          (a wrong version)
//	D -> L  response  macD(32)
//	L -> D  verdict   status(1)=0
//	        or        status(1)=1 len(1) reason          (a wrong secret, an unknown stream)
//
// macL = HMAC-SHA256(secret, "listener" nonceD nonceL end stream) and macD
// the same with "dialer". The listener checks the secret before it says
// anything about streams, so an unauthenticated peer learns nothing.
const (
	handshakeMagic   = "BRTC"
	handshakeVersion = 1
	nonceLen         = 16
	macLen           = sha256.Size
	statusOK         = 0
	statusRefused    = 1
	maxStreamLen     = 255
)

type hello struct {
	version byte
	end     delivery.End // the dialing side's end
	nonce   [nonceLen]byte
	stream  string
}

func newNonce() [nonceLen]byte {
	var n [nonceLen]byte
	rand.Read(n[:])
	return n
}

func mac(secret, role string, nonceD, nonceL [nonceLen]byte, end delivery.End, stream string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(role))
	h.Write(nonceD[:])
	h.Write(nonceL[:])
	h.Write([]byte{byte(end)})
	h.Write([]byte(stream))
	return h.Sum(nil)
}

func writeHello(w io.Writer, h hello) error {
	b := append([]byte(handshakeMagic), h.version, byte(h.end))
	b = append(b, h.nonce[:]...)
	b = append(b, byte(len(h.stream)))
	b = append(b, h.stream...)
	_, err := w.Write(b)
	return err
}

// errGarbage marks a peer that did not open with a hello: not a bridge, or
// not speaking first. Its connection is closed without an answer.
var errGarbage = errors.New("tcp: peer did not open with a handshake")

func readHello(r *bufio.Reader) (hello, error) {
	var h hello
	head := make([]byte, len(handshakeMagic)+2+nonceLen+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return h, err
	}
	if string(head[:len(handshakeMagic)]) != handshakeMagic {
		return h, errGarbage
	}
	h.version = head[len(handshakeMagic)]
	h.end = delivery.End(head[len(handshakeMagic)+1])
	copy(h.nonce[:], head[len(handshakeMagic)+2:])
	stream := make([]byte, head[len(head)-1])
	if _, err := io.ReadFull(r, stream); err != nil {
		return h, err
	}
	h.stream = string(stream)
	return h, nil
}

func writeRefusal(w io.Writer, reason string) error {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	_, err := w.Write(append([]byte{statusRefused, byte(len(reason))}, reason...))
	return err
}

// readStatus reads a status byte and, for a refusal, its reason.
func readStatus(r *bufio.Reader, stream string) error {
	status, err := r.ReadByte()
	if err != nil {
		return err
	}
	switch status {
	case statusOK:
		return nil
	case statusRefused:
		n, err := r.ReadByte()
		if err != nil {
			return err
		}
		reason := make([]byte, n)
		if _, err := io.ReadFull(r, reason); err != nil {
			return err
		}
		return &RefusedError{Stream: stream, Reason: string(reason)}
	}
	return fmt.Errorf("tcp: stream %q: handshake: unexpected status %d", stream, status)
}

// dialHandshake runs the dialing side of the handshake.
func dialHandshake(rw *bufio.ReadWriter, secret, stream string, end delivery.End) error {
	h := hello{version: handshakeVersion, end: end, nonce: newNonce(), stream: stream}
	if err := writeHello(rw, h); err != nil {
		return err
	}
	if err := rw.Flush(); err != nil {
		return err
	}
	if err := readStatus(rw.Reader, stream); err != nil {
		return err
	}
	var nonceL [nonceLen]byte
	macL := make([]byte, macLen)
	if _, err := io.ReadFull(rw, nonceL[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(rw, macL); err != nil {
		return err
	}
	if !hmac.Equal(macL, mac(secret, "listener", h.nonce, nonceL, end, stream)) {
		return &RefusedError{Stream: stream, Reason: "the listener does not know the secret"}
	}
	if _, err := rw.Write(mac(secret, "dialer", h.nonce, nonceL, end, stream)); err != nil {
		return err
	}
	if err := rw.Flush(); err != nil {
		return err
	}
	return readStatus(rw.Reader, stream)
}

// listenHandshake runs the listening side of the handshake up to the
// verdict: it returns the authenticated hello, or an error after refusing.
// accept decides, once the peer is authenticated, whether its stream and end
// are served here (a reason to refuse, or "").
func listenHandshake(rw *bufio.ReadWriter, secret string, accept func(hello) string) (hello, error) {
	h, err := readHello(rw.Reader)
	if err != nil {
		return h, err
	}
	refuse := func(reason string) (hello, error) {
		writeRefusal(rw, reason)
		rw.Flush()
		return h, &RefusedError{Stream: h.stream, Reason: reason}
	}
	if h.version != handshakeVersion {
		return refuse(fmt.Sprintf("handshake version %d; this listener speaks %d", h.version, handshakeVersion))
	}
	nonceL := newNonce()
	rw.WriteByte(statusOK)
	rw.Write(nonceL[:])
	rw.Write(mac(secret, "listener", h.nonce, nonceL, h.end, h.stream))
	if err := rw.Flush(); err != nil {
		return h, err
	}
	macD := make([]byte, macLen)
	if _, err := io.ReadFull(rw, macD); err != nil {
		return h, err
	}
	if !hmac.Equal(macD, mac(secret, "dialer", h.nonce, nonceL, h.end, h.stream)) {
		return refuse("wrong secret")
	}
	if reason := accept(h); reason != "" {
		return refuse(reason)
	}
	if err := rw.WriteByte(statusOK); err != nil {
		return h, err
	}
	return h, rw.Flush()
}
