package tcp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/bridge-mq/bridge/delivery"
)

// The handshake, before any frame. The dialing side D opens and proves
// first that it knows the secret; the listening side L answers with a
// challenge that owes nothing to the secret, and proves its own knowledge
// only once D's proof has checked out:
//
//	D -> L  hello      "BRTC" version(1)=2 end(1) nonceD(16) len(1)=1..255 stream(len)
//	L -> D  challenge  status(1)=0 nonceL(16)
//	        or refusal status(1)=1 len(1) reason(len)     a version L does not speak
//	D -> L  proof      macD(32)
//	L -> D  verdict    status(1)=0 macL(32)
//	        or refusal status(1)=1 len(1) reason(len)     a wrong proof, an unknown stream, the same end
//
//	macD = HMAC-SHA256(secret, "bridge-tcp/2 dialer"   nonceD nonceL end len(stream) stream)
//	macL = HMAC-SHA256(secret, "bridge-tcp/2 listener" nonceD nonceL end len(stream) stream)
//
// Every field has a fixed size or a one-byte length, so each side reads
// exact lengths into small buffers: a whole handshake is at most 310 bytes
// from D and 274 from L. The hello has the same layout in every version,
// so a listener reads any version's hello and refuses it naming both
// versions; version 1 had the listener prove first.
//
// What each side learns, and when:
//
//   - From the hello L learns what D claims (end, stream), and nothing is
//     taken on trust until the proof. The challenge tells D a fresh random
//     nonce and nothing else: a dialer without the secret gets nothing it
//     could test a guess against.
//   - L checks macD in constant time. A wrong proof is refused ("wrong
//     secret") before L has computed or sent anything from the secret; the
//     dialer learns one bit, that its guess was wrong, per connection.
//   - Only after a right proof does L say anything about its streams: an
//     unknown stream or a dialer of the same end is refused with the reason,
//     and otherwise L answers OK with macL.
//   - D checks macL in constant time; a listener that cannot make it does
//     not know the secret, and D hangs up ("the listener does not know the
//     secret") before it sends any frame.
//
// Both MACs bind both nonces (fresh per connection: a proof recorded on one
// connection is worthless on the next), the version, the direction (D's
// proof cannot be reflected as L's), the end and the stream (a proof for
// one stream does not open another).
const (
	handshakeMagic   = "BRTC"
	handshakeVersion = 2
	nonceLen         = 16
	macLen           = sha256.Size
	statusOK         = 0
	statusRefused    = 1
	maxStreamLen     = 255
	maxReasonLen     = 255

	// helloHeadLen is the hello up to the stream's length byte included.
	helloHeadLen = len(handshakeMagic) + 1 + 1 + nonceLen + 1

	labelDialer   = "bridge-tcp/2 dialer"
	labelListener = "bridge-tcp/2 listener"
)

type nonce = [nonceLen]byte

type hello struct {
	version byte
	end     delivery.End // the dialing side's end
	nonce   nonce
	stream  string
}

func newNonce() nonce {
	var n nonce
	rand.Read(n[:]) // never fails (crypto/rand since Go 1.24)
	return n
}

// mac is the proof of the side named by label over one connection's
// handshake.
func mac(secret, label string, nonceD, nonceL nonce, end delivery.End, stream string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(label))
	h.Write(nonceD[:])
	h.Write(nonceL[:])
	h.Write([]byte{byte(end), byte(len(stream))})
	h.Write([]byte(stream))
	return h.Sum(nil)
}

// errGarbage marks a peer that did not open with a hello, or broke its
// layout: not a bridge, or not speaking first. Its connection is closed
// without an answer.
var errGarbage = errors.New("tcp: peer did not open with a handshake")

func writeHello(w io.Writer, h hello) error {
	b := make([]byte, 0, helloHeadLen+len(h.stream))
	b = append(b, handshakeMagic...)
	b = append(b, h.version, byte(h.end))
	b = append(b, h.nonce[:]...)
	b = append(b, byte(len(h.stream)))
	b = append(b, h.stream...)
	_, err := w.Write(b)
	return err
}

// readHello reads a hello of any version, exactly: a fixed head, then at
// most maxStreamLen bytes of stream name.
func readHello(r io.Reader) (hello, error) {
	var h hello
	var head [helloHeadLen]byte
	if _, err := io.ReadFull(r, head[:len(handshakeMagic)]); err != nil {
		return h, err
	}
	if string(head[:len(handshakeMagic)]) != handshakeMagic {
		return h, errGarbage
	}
	if _, err := io.ReadFull(r, head[len(handshakeMagic):]); err != nil {
		return h, err
	}
	rest := head[len(handshakeMagic):]
	h.version, h.end = rest[0], delivery.End(rest[1])
	copy(h.nonce[:], rest[2:])
	n := int(rest[2+nonceLen])
	if n == 0 {
		return h, errGarbage
	}
	var stream [maxStreamLen]byte // n <= maxStreamLen: it is one byte
	if _, err := io.ReadFull(r, stream[:n]); err != nil {
		return h, err
	}
	h.stream = string(stream[:n])
	return h, nil
}

func writeRefusal(w io.Writer, reason string) error {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	_, err := w.Write(append([]byte{statusRefused, byte(len(reason))}, reason...))
	return err
}

// readStatus reads a status byte and, for a refusal, its reason, as a
// *RefusedError.
func readStatus(r io.Reader, stream string) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	switch b[0] {
	case statusOK:
		return nil
	case statusRefused:
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return err
		}
		var reason [maxReasonLen]byte // b[0] <= maxReasonLen: it is one byte
		if _, err := io.ReadFull(r, reason[:b[0]]); err != nil {
			return err
		}
		return &RefusedError{Stream: stream, Reason: string(reason[:b[0]])}
	}
	return fmt.Errorf("tcp: stream %q: handshake: unexpected status %d", stream, b[0])
}

// dialHandshake runs the dialing side of the handshake on a connection,
// with nonceD as its nonce (newNonce, but for tests).
func dialHandshake(rw io.ReadWriter, secret, stream string, end delivery.End, nonceD nonce) error {
	if err := writeHello(rw, hello{version: handshakeVersion, end: end, nonce: nonceD, stream: stream}); err != nil {
		return err
	}
	if err := readStatus(rw, stream); err != nil {
		return err
	}
	var nonceL nonce
	if _, err := io.ReadFull(rw, nonceL[:]); err != nil {
		return err
	}
	if _, err := rw.Write(mac(secret, labelDialer, nonceD, nonceL, end, stream)); err != nil {
		return err
	}
	if err := readStatus(rw, stream); err != nil {
		return err
	}
	var macL [macLen]byte
	if _, err := io.ReadFull(rw, macL[:]); err != nil {
		return err
	}
	if !hmac.Equal(macL[:], mac(secret, labelListener, nonceD, nonceL, end, stream)) {
		return &RefusedError{Stream: stream, Reason: "the listener does not know the secret"}
	}
	return nil
}

// reasonWrongSecret is the listener's refusal of a wrong proof.
const reasonWrongSecret = "wrong secret: the two ends do not hold the same Config.Secret"

// listenHandshake runs the listening side of the handshake on a
// connection, with nonceL as its challenge (newNonce, but for tests), up to
// the verdict: it returns the authenticated hello, or an error (a
// *RefusedError once it has told the peer why). accept decides, once the
// peer is authenticated, whether its stream and end are served here (a
// reason to refuse, or "").
func listenHandshake(rw io.ReadWriter, secret string, nonceL nonce, accept func(hello) string) (hello, error) {
	h, err := readHello(rw)
	if err != nil {
		return h, err
	}
	refuse := func(reason string) (hello, error) {
		writeRefusal(rw, reason)
		return h, &RefusedError{Stream: h.stream, Reason: reason}
	}
	if h.version != handshakeVersion {
		return refuse(fmt.Sprintf("handshake version %d; this listener speaks version %d (upgrade the older side)", h.version, handshakeVersion))
	}
	if _, err := rw.Write(append([]byte{statusOK}, nonceL[:]...)); err != nil {
		return h, err
	}
	var macD [macLen]byte
	if _, err := io.ReadFull(rw, macD[:]); err != nil {
		return h, err
	}
	if !hmac.Equal(macD[:], mac(secret, labelDialer, h.nonce, nonceL, h.end, h.stream)) {
		return refuse(reasonWrongSecret)
	}
	if reason := accept(h); reason != "" {
		return refuse(reason)
	}
	_, err = rw.Write(append([]byte{statusOK}, mac(secret, labelListener, h.nonce, nonceL, h.end, h.stream)...))
	return h, err
}
