package delivery

import "time"

// Frames as a peer writes them, for tests that play a forged or broken
// peer.

// ForgedRegisters is a control frame of n registrations from the consumer
// lifetime consumerEpoch.
func ForgedRegisters(consumerEpoch uint64, n, maxMsg int) []byte {
	b := appendFrameHeader(nil, frameHeader{kind: controlFrame, consumerEpoch: consumerEpoch})
	for range n {
		b = appendRegister(b, maxMsg, 0, 0)
	}
	return b
}

// ForgedRequest is a control frame that confirms up to confirmed and grants
// up to upTo, as the consumer lifetime consumerEpoch, to the producer
// lifetime of producerID and producerEpoch; without resend, it says the
// consumer wants no resends.
func ForgedRequest(producerID string, producerEpoch, consumerEpoch uint64, confirmed, upTo SeqNr, resend bool) []byte {
	var flags byte
	if resend {
		flags = reqSupportResend
	}
	b := appendFrameHeader(nil, frameHeader{kind: controlFrame, producerEpoch: producerEpoch, consumerEpoch: consumerEpoch, producerID: producerID})
	return appendRequest(b, confirmed, upTo, flags, DefaultMaxMessageSize, 0)
}

// ForgedData is a data frame of producerID's lifetime epoch holding one
// message per seqNr, payload p each; the first is marked first when first
// is true.
func ForgedData(producerID string, epoch uint64, first bool, p []byte, seqNrs ...SeqNr) []byte {
	b := appendFrameHeader(nil, frameHeader{kind: dataFrame, producerEpoch: epoch, producerID: producerID})
	for i, s := range seqNrs {
		flags := flagFirstChunk | flagLastChunk
		if i == 0 && first {
			flags |= flagFirst
		}
		b = appendSequenced(b, flags, s, 0, headerBlock{}, p)
	}
	return b
}

// SetMismatchAfter sets how long a SealedLink waits before it reports a
// mismatch, and returns a function that puts it back.
func SetMismatchAfter(d time.Duration) func() {
	old := mismatchAfter
	mismatchAfter = d
	return func() { mismatchAfter = old }
}

// OpenSealed opens b as l would, for the fuzzer.
func (l *SealedLink) OpenSealed(b []byte) ([]byte, bool) {
	data, _, reason := l.open(b)
	return data, reason < 0
}

// EncodeHelloForTest is a worker's hello, for tests that play a stranger.
func EncodeHelloForTest(workerID string) []byte { return encodeHello(workerID) }

// WorkerDefaults is s with its defaults filled in, as a worker takes it.
func WorkerDefaults(s WorkerSettings) (WorkerSettings, error) { return s.withDefaults() }
