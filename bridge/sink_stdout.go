package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// stdoutSink writes each message and a newline, and flushes before it
// confirms: a confirmed message has been written out. It takes the
// messages waiting in batches, one flush per batch.
type stdoutSink struct{ w io.Writer }

func (s stdoutSink) run(ctx context.Context, c *delivery.ConsumerController[[]byte], m *metrics) error {
	w := bufio.NewWriterSize(s.w, 64<<10)
	var batch []delivery.Delivery[[]byte]
	for {
		var err error
		batch, err = c.ReceiveBatch(ctx, batch[:0], 4096)
		if errors.Is(err, delivery.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		start := time.Now()
		for _, d := range batch {
			w.Write(d.Message)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("writing to stdout: %w", err) // unconfirmed: a restart gets them again
		}
		batch[len(batch)-1].Confirm()
		m.observe(time.Since(start))
	}
}
