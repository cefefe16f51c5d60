package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/bridge-mq/bridge/bridge"
)

func TestTmpProfile(t *testing.T) {
	if os.Getenv("TMP_PROFILE") == "" {
		t.Skip()
	}
	svc, _ := bridge.LoadConfig()
	b := Config{Transports: []string{"tcp"}, Count: 400000, Size: []int{128}, Window: 1000, Rounds: 1, Format: "table", MaxBytes: 1 << 30}
	b.Headers = os.Getenv("TMP_PROFILE") == "headers"
	if os.Getenv("TMP_PROFILE") == "traced" {
		b.TraceSample = 0.01
	}
	if err := b.Validate(&svc); err != nil {
		t.Fatal(err)
	}
	env := bridge.Env{Stdout: os.Stdout, Stderr: io.Discard, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := Run(context.Background(), svc, b, env); err != nil {
		t.Fatal(err)
	}
}
