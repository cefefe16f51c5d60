package kafka

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/bridge-mq/bridge/delivery/backoff"
	kafkago "github.com/segmentio/kafka-go"
)

// releaseTracker turns releases, which come in any order, into the offset a
// consumer end may commit: one past the last frame of the longest run of
// received frames that were all released. Kafka keeps one offset per
// partition, so a frame released early waits for the frames before it.
//
// Frames are counted by their place in the order they were received rather
// than by offset arithmetic, since a partition's offsets may have holes.
type releaseTracker struct {
	mu      sync.Mutex
	gen     uint64         // bumped when the reader starts over elsewhere; releases of older frames are ignored
	head    uint64         // running number of pending[0]
	pending []pendingFrame // received, from the oldest not yet released
	commit  int64          // offset to commit in this generation; -1: none yet
	signal  chan struct{}  // cap 1: commit advanced
}

type pendingFrame struct {
	offset   int64
	released bool
}

func newReleaseTracker() *releaseTracker {
	return &releaseTracker{commit: -1, signal: make(chan struct{}, 1)}
}

// add records a received frame and returns its release. The release may be
// called from any goroutine; calls after the first do nothing.
func (t *releaseTracker) add(offset int64) func() {
	t.mu.Lock()
	gen, n := t.gen, t.head+uint64(len(t.pending))
	t.pending = append(t.pending, pendingFrame{offset: offset})
	t.mu.Unlock()
	return func() { t.release(gen, n) }
}

func (t *releaseTracker) release(gen, n uint64) {
	t.mu.Lock()
	if gen != t.gen || n < t.head {
		t.mu.Unlock()
		return
	}
	t.pending[n-t.head].released = true
	advanced := false
	for len(t.pending) > 0 && t.pending[0].released {
		t.commit = t.pending[0].offset + 1
		t.pending[0] = pendingFrame{}
		t.pending = t.pending[1:]
		t.head++
		advanced = true
	}
	t.mu.Unlock()
	if advanced {
		select {
		case t.signal <- struct{}{}:
		default:
		}
	}
}

// reset forgets the frames received so far: the reader starts over from
// another offset and those frames are gone from the log.
func (t *releaseTracker) reset() {
	t.mu.Lock()
	t.gen++
	t.head = 0
	t.pending = nil
	t.commit = -1
	t.mu.Unlock()
}

// committable returns the offset to commit (-1: none) and its generation.
func (t *releaseTracker) committable() (int64, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.commit, t.gen
}

// committer commits a consumer end's offset in the data topic as frames are
// released: at most one commit in flight and one per CommitInterval, each
// carrying everything released before it. Commits are a simple consumer's
// (generation -1, no member): see the package documentation.
type committer struct {
	client  *kafkago.Client
	group   string
	topic   string
	tracker *releaseTracker
	cfg     *Config
	log     *slog.Logger

	// What the group holds, as far as this committer knows.
	lastOffset int64
	lastGen    uint64
}

// run commits until closing is closed, then commits what was released last
// and returns; ctx ending stops it at once (Close bounds the final commit
// that way).
func (c *committer) run(ctx context.Context, closing <-chan struct{}) {
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	defer pace.Stop()
	for {
		select {
		case <-c.tracker.signal:
		case <-closing:
			c.commitLatest(ctx)
			return
		case <-ctx.Done():
			return
		}
		c.commitLatest(ctx)
		if c.cfg.CommitInterval > 0 {
			pace.Reset(c.cfg.CommitInterval)
			select {
			case <-pace.C:
			case <-closing:
				c.commitLatest(ctx)
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

// commitLatest commits the latest committable offset, retrying until it
// succeeds or ctx ends.
func (c *committer) commitLatest(ctx context.Context) {
	failures := 0
	wait := c.cfg.retryWaits()
	for {
		offset, gen := c.tracker.committable()
		if offset < 0 || offset == c.lastOffset && gen == c.lastGen {
			return
		}
		err := c.commit(ctx, offset)
		if err == nil {
			if failures > 0 {
				c.log.Info("kafka: offset commits resumed", "topic", c.topic, "group", c.group, "failed_attempts", failures)
			}
			c.lastOffset, c.lastGen = offset, gen
			return
		}
		if ctx.Err() != nil {
			c.log.Warn("kafka: link closed before its released frames were committed; they come again to the next consumer end",
				"topic", c.topic, "group", c.group, "offset", offset, "committed", c.lastOffset)
			return
		}
		failures++
		if failures%30 == 1 {
			c.log.Warn("kafka: offset commit failed; retrying", "topic", c.topic, "group", c.group, "offset", offset, "attempt", failures, "err", err)
		}
		if !backoff.Sleep(ctx, wait.Next()) {
			return
		}
	}
}

func (c *committer) commit(ctx context.Context, offset int64) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	res, err := c.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{
		GroupID:      c.group,
		GenerationID: -1, // a simple consumer's commit: the group has no members
		Topics:       map[string][]kafkago.OffsetCommit{c.topic: {{Partition: 0, Offset: offset}}},
	})
	if err != nil {
		return err
	}
	for _, p := range res.Topics[c.topic] {
		if p.Error != nil {
			return p.Error
		}
	}
	return nil
}
