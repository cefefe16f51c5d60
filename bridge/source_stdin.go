package bridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// stdinSource sends each line of its input as a message, without the line
// end.
type stdinSource struct {
	r       io.Reader
	maxSize int
}

func (s stdinSource) run(ctx context.Context, snd *sender) error {
	sc := bufio.NewScanner(s.r)
	sc.Buffer(make([]byte, 64<<10), s.maxSize+2) // room for the line end
	lines := 0
	for sc.Scan() {
		if len(sc.Bytes()) > s.maxSize {
			return lineTooLong(lines, s.maxSize)
		}
		if err := snd.send(ctx, bytes.Clone(sc.Bytes())); err != nil {
			return err
		}
		lines++
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return lineTooLong(lines, s.maxSize)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading stdin after %d lines: %w", lines, err)
	}
	return nil
}

func lineTooLong(sent, max int) error {
	return fmt.Errorf("stdin: line %d is longer than BRIDGE_MAX_MESSAGE_SIZE (%d bytes); the %d lines before it were sent", sent+1, max, sent)
}
