package bridge

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/bridge-mq/bridge/bridge/internal/workload"
)

// generateSource sends numbered messages (workload.Message) of a given
// size, count and rate, for trials: a reader can tell what is missing,
// what came twice and how long it took.
type generateSource struct {
	size  int
	count int     // 0: until stopped
	rate  float64 // messages per second; 0: as fast as the window allows
}

func (g generateSource) run(ctx context.Context, snd *sender) error {
	var limiter *rate.Limiter
	if g.rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(g.rate), 1)
	}
	for i := 1; g.count == 0 || i <= g.count; i++ {
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		if err := snd.send(ctx, workload.Message(i, g.size, time.Now())); err != nil {
			return err
		}
	}
	return nil
}
