package bridge

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/bridge-mq/bridge/delivery"
)

// stdoutSink writes each message and a newline, and flushes before the
// batch is confirmed: a confirmed message has been written out. It takes
// the messages waiting in batches, one flush per batch.
type stdoutSink struct{ w *bufio.Writer }

func newStdoutSink(w io.Writer) stdoutSink { return stdoutSink{w: bufio.NewWriterSize(w, 64<<10)} }

func (stdoutSink) batchSize() int { return 4096 }

func (s stdoutSink) handle(_ context.Context, batch []delivery.Delivery[[]byte]) error {
	for _, d := range batch {
		s.w.Write(d.Message)
		s.w.WriteByte('\n')
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing to stdout: %w", err) // unconfirmed: a restart gets them again
	}
	return nil
}
