package delivery

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// A sealed frame is a frame of the wire format, encrypted and authenticated
// with AES-256-GCM under a key of its stream and direction:
//
//	sealed = magic(1 byte, 0xBE) version(1 byte, 1) keyHint(1 byte) nonce(12 bytes)
//	         ciphertext(as long as the frame) tag(16 bytes)
//
// The key is HKDF-SHA256 of the stretched secret (see Secret) with the info
// "seal/v1/" + direction + "/" + stream, direction "data" for producer ->
// consumer and "control" for the reverse, so a frame sealed for one stream
// or direction does not open on another. The first four header bytes
// (magic, version, hint) and the nonce are the AEAD's additional data. The
// key hint is the first byte of the key's SHA-256, so that an end holding a
// previous secret too knows which to try first; it says nothing useful of
// the key. The nonce is 8 random bytes drawn per sealing link (again every
// 2^32 frames) and a 4-byte counter, so no two frames under one key share
// one.
const (
	sealMagic    byte = 0xBE
	sealVersion  byte = 1
	sealNonceLen      = 12
	sealHeader        = 3 + sealNonceLen
	sealOverhead      = sealHeader + 16 // the header and the GCM tag
)

// ErrSealMismatch is what a SealedLink reports (in Status) while the
// frames it receives do not open and none has for a while: the peer has
// another secret, no secret, or it is not the peer. Worth retrying once
// both ends have the same secret.
var ErrSealMismatch = errors.New("delivery: the peer's frames do not open: give both ends of the stream the same secret")

// SealConfig configures Seal.
type SealConfig struct {
	// Secret seals every frame sent and opens those received. Required.
	Secret *Secret

	// Previous, when set, is also tried on the frames received, and sealed
	// with while the peer's frames open only with it: so a secret rotates
	// without stopping the stream. Give one end the new secret with the old
	// as Previous, then the other the same, then drop Previous from both.
	// An end seals with Secret until the peer's frames show it has only the
	// old one, and goes back to Secret once they show it has the new.
	Previous *Secret

	// Logger receives the warnings about frames that do not open, at most
	// one every 10 seconds. Default: none.
	Logger *slog.Logger
}

// Why a received frame was rejected, as SealStats counts them.
const (
	RejectUnsealed = "unsealed"  // a frame not sealed at all (the peer has no secret, or a stranger)
	RejectVersion  = "version"   // sealed by an unknown version of the seal
	RejectShort    = "truncated" // shorter than a sealed frame can be
	RejectForged   = "forged"    // does not open: another secret, stream or direction, or tampered with
)

// SealStats counts what a SealedLink did.
type SealStats struct {
	Sealed   uint64            // frames sealed and sent
	Opened   uint64            // frames received that opened
	Rejected map[string]uint64 // frames received and dropped, by reason (Reject*)
}

// SealedLink is a Link whose frames are sealed end to end: every frame sent
// is sealed before the carrier takes it, and every frame received is
// opened before anything reads it. A frame that does not open is dropped
// (released, so a broker does not deliver it again), counted, and never
// reaches the protocol: with a secret, no frame from a stranger is acted
// on. Replays of frames the peer sealed do open; the protocol makes them
// harmless (sequence numbers drop repeated messages, confirmations are
// cumulative, registrations are rate-limited).
//
// It forwards the link's frame limit, less the seal's overhead, and its
// status; while the frames it receives do not open and none has for
// mismatchAfter, Status says the link is not connected, with
// ErrSealMismatch. It starts no goroutines. Send and Receive may be called
// from different goroutines, as on any Link.
type SealedLink struct {
	inner Link
	log   *slog.Logger

	sendMu  sync.Mutex
	seals   []opener     // Secret's, then Previous's, for the direction sent
	sealing atomic.Int32 // which of seals: the one the peer's frames last opened with
	prefix  [8]byte
	counter uint32
	buf     []byte

	opens []opener // Secret's, then Previous's, for the direction received

	sealed, opened atomic.Uint64
	rejected       [4]atomic.Uint64 // by rejectReasons' index

	mu            sync.Mutex
	started       time.Time
	lastOpened    time.Time
	rejectedSince int // frames rejected since one last opened
	lastWarned    time.Time
	warnedSince   int
}

type opener struct {
	aead cipher.AEAD
	hint byte
}

var rejectReasons = [4]string{RejectUnsealed, RejectVersion, RejectShort, RejectForged}

// mismatchAfter is how long frames must fail to open, with none opening,
// before Status reports ErrSealMismatch: long enough that a stranger's
// frame among the peer's does not, short enough that a wrong secret shows
// within seconds (a peer repeats its first message or its registration
// every second).
var mismatchAfter = 3 * time.Second

var _ interface {
	Link
	FrameSizeLimiter
	StatusReporter
} = (*SealedLink)(nil)

// Seal wraps link, the end of stream named by end, so that its frames are
// sealed with cfg.Secret (see SealedLink). Both ends of a stream seal with
// the same secret; Seal takes link over, and closing the SealedLink closes
// it. A missing Secret is a *SettingError (and link is closed).
func Seal(link Link, stream string, end End, cfg SealConfig) (*SealedLink, error) {
	if cfg.Secret == nil || link == nil || (end != ProducerEnd && end != ConsumerEnd) {
		if link != nil {
			link.Close()
		}
		return nil, &SettingError{Setting: "SealConfig.Secret", Value: nil, Reason: "a secret, a link and an end are required"}
	}
	sendDir, recvDir := "data", "control"
	if end == ConsumerEnd {
		sendDir, recvDir = recvDir, sendDir
	}
	l := &SealedLink{inner: link, log: cfg.Logger, started: time.Now()}
	if l.log == nil {
		l.log = discardLogger
	}
	for _, s := range []*Secret{cfg.Secret, cfg.Previous} {
		if s != nil {
			l.seals = append(l.seals, sealKey(s, sendDir, stream))
			l.opens = append(l.opens, sealKey(s, recvDir, stream))
		}
	}
	l.newPrefix()
	return l, nil
}

func sealKey(s *Secret, direction, stream string) opener {
	key := s.Derive("seal/v1/"+direction+"/"+stream, 32)
	block, _ := aes.NewCipher(key) // 32 bytes: never fails
	aead, _ := cipher.NewGCM(block)
	sum := sha256.Sum256(key)
	return opener{aead: aead, hint: sum[0]}
}

func (l *SealedLink) newPrefix() {
	rand.Read(l.prefix[:])
	l.counter = 0
}

// Send seals frame and hands it to the link.
func (l *SealedLink) Send(ctx context.Context, frame []byte) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if l.counter == ^uint32(0) {
		l.newPrefix()
	}
	l.counter++
	k := l.seals[l.sealing.Load()]
	b := append(l.buf[:0], sealMagic, sealVersion, k.hint)
	b = append(b, l.prefix[:]...)
	b = binary.BigEndian.AppendUint32(b, l.counter)
	b = k.aead.Seal(b, b[3:sealHeader], frame, b[:sealHeader])
	l.buf = b // the link does not keep it past Send
	err := l.inner.Send(ctx, b)
	if err == nil {
		l.sealed.Add(1)
	}
	return err
}

// Receive returns the next frame from the peer that opens, opened.
func (l *SealedLink) Receive(ctx context.Context) (Frame, error) {
	for {
		f, err := l.inner.Receive(ctx)
		if err != nil {
			return f, err
		}
		data, key, reason := l.open(f.Data)
		if reason < 0 {
			l.opened.Add(1)
			l.follow(key)
			l.mu.Lock()
			l.lastOpened, l.rejectedSince = time.Now(), 0
			l.mu.Unlock()
			return Frame{Data: data, Release: f.Release}, nil
		}
		if f.Release != nil {
			f.Release() // poison: a broker must not deliver it again
		}
		l.reject(reason, len(f.Data))
	}
}

// open opens b in place; reason is -1 when it opened, with the key it
// opened with (0: Secret, 1: Previous), else the index of why not.
func (l *SealedLink) open(b []byte) (data []byte, key, reason int) {
	switch {
	case len(b) > 0 && b[0] == wireMagic:
		return nil, 0, 0
	case len(b) >= 2 && b[0] == sealMagic && b[1] != sealVersion:
		return nil, 0, 1
	case len(b) < sealOverhead || b[0] != sealMagic:
		return nil, 0, 2
	}
	nonce, ad, ct := b[3:sealHeader], b[:sealHeader], b[sealHeader:]
	// The key whose hint matches first; the others too, as a hint may
	// match by chance.
	for pass := range 2 {
		for i, o := range l.opens {
			if (o.hint == b[2]) != (pass == 0) {
				continue
			}
			if pt, err := o.aead.Open(ct[:0], nonce, ct, ad); err == nil {
				return pt, i, -1
			}
		}
	}
	return nil, 0, 3
}

// follow seals with the secret the peer's frames open with: while a secret
// rotates, an end given the new one (and the old as Previous) seals with
// the new, until the peer's frames show it still has only the old; then
// with the old, until the peer's show it has the new. So the two ends
// always open each other's frames, but for the round trip it takes to see.
func (l *SealedLink) follow(key int) {
	if old := l.sealing.Swap(int32(key)); old != int32(key) {
		which := "the new secret"
		if key == 1 {
			which = "the previous secret (SealConfig.Previous): the peer does not have the new one yet"
		}
		l.log.Info("the peer's frames open with " + which + "; sealing with it too")
	}
}

func (l *SealedLink) reject(reason, size int) {
	l.rejected[reason].Add(1)
	now := time.Now()
	l.mu.Lock()
	l.rejectedSince++
	l.warnedSince++
	warn := now.Sub(l.lastWarned) >= 10*time.Second
	since := l.warnedSince
	if warn {
		l.lastWarned, l.warnedSince = now, 0
	}
	l.mu.Unlock()
	if !warn {
		return
	}
	what := "a frame that does not open (another secret, stream or direction, or forged)"
	switch rejectReasons[reason] {
	case RejectUnsealed:
		what = "an unsealed frame: the peer has no secret, or it is not the peer"
	case RejectVersion:
		what = "a frame sealed by an unknown version of the seal"
	case RejectShort:
		what = "a frame too short to be sealed"
	}
	l.log.Warn("dropped "+what+"; check that both ends have the same secret (BRIDGE_SECRET)",
		"bytes", size, "rejected_since_last_warning", since)
}

// MaxFrameSize is the link's limit less the seal's overhead, or 0 if the
// link has none.
func (l *SealedLink) MaxFrameSize() int {
	if fl, ok := l.inner.(FrameSizeLimiter); ok {
		if max := fl.MaxFrameSize(); max > 0 {
			return max - sealOverhead
		}
	}
	return 0
}

// Status is the link's status, except while frames received do not open
// and none has opened for mismatchAfter: then it is not connected, with an
// error wrapping ErrSealMismatch.
func (l *SealedLink) Status() LinkStatus {
	st := LinkStatus{Connected: true}
	if r, ok := l.inner.(StatusReporter); ok {
		st = r.Status()
	}
	l.mu.Lock()
	since := l.lastOpened
	if since.IsZero() {
		since = l.started
	}
	mismatch := l.rejectedSince >= 2 && time.Since(since) >= mismatchAfter
	n := l.rejectedSince
	l.mu.Unlock()
	if mismatch && st.Connected {
		st.Connected = false
		st.Err = fmt.Errorf("%w (%d frames dropped since the last that opened)", ErrSealMismatch, n)
	}
	return st
}

// Stats returns the link's counters. Safe from any goroutine.
func (l *SealedLink) Stats() SealStats {
	st := SealStats{Sealed: l.sealed.Load(), Opened: l.opened.Load(), Rejected: map[string]uint64{}}
	for i, r := range rejectReasons {
		st.Rejected[r] = l.rejected[i].Load()
	}
	return st
}

// Close closes the link.
func (l *SealedLink) Close() error { return l.inner.Close() }
