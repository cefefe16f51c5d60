package delivery

import (
	"context"
	"errors"
)

// Consume is the consumer's receive loop, for applications that handle
// messages in batches: it takes every message waiting, up to limit (at
// least one, waiting for it), hands the batch to handle, and once handle returns
// nil confirms the batch (its last delivery, which confirms them all).
// handle is called from Consume's goroutine, one batch at a time, in order;
// it must not keep the slice, which is reused.
//
// Consume returns nil once the controller has stopped and every message it
// buffered was handled (after Shutdown: deliver-then-stop), ctx's error if
// ctx ends first, and handle's error, or an *UnmarshalError, as soon as
// there is one: that batch, or that message, stays unconfirmed and a broker
// or a restarted consumer gets it again.
func (c *ConsumerController[T]) Consume(ctx context.Context, limit int, handle func(ctx context.Context, batch []Delivery[T]) error) error {
	limit = max(limit, 1)
	var batch []Delivery[T]
	for {
		var err error
		batch, err = c.ReceiveBatch(ctx, batch[:0], limit)
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := handle(ctx, batch); err != nil {
			return err
		}
		batch[len(batch)-1].Confirm()
	}
}
