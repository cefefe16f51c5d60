package backoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery/backoff"
)

func TestDoublesToMaxWithJitter(t *testing.T) {
	b := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: time.Second})
	for round := range 2 {
		want := 100 * time.Millisecond
		for i := range 8 {
			got := b.Next()
			if got > want || got < want*4/5 {
				t.Fatalf("round %d, wait %d: %v; want within 20%% below %v", round, i, got, want)
			}
			want = min(2*want, time.Second)
		}
		b.Reset()
	}
}

func TestBadPolicyIsClamped(t *testing.T) {
	b := backoff.New(backoff.Policy{Min: 0, Max: -1})
	if d := b.Next(); d < 0 || d > time.Nanosecond {
		t.Errorf("a zero policy waits %v; want at most a nanosecond", d)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if backoff.Sleep(ctx, time.Hour) {
		t.Error("Sleep reported the hour passed under a cancelled context")
	}
	if !backoff.Sleep(context.Background(), time.Microsecond) {
		t.Error("Sleep of a microsecond did not pass")
	}
}
