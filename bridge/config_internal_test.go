package bridge

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

// TestEnvDefaultsAreTheProtocols: every BRIDGE_ variable that sets a
// protocol setting defaults to the protocol's own default, so that `bridge
// env` and the library document one value.
func TestEnvDefaultsAreTheProtocols(t *testing.T) {
	for field, want := range map[string]any{
		"Window":          delivery.DefaultWindow,
		"WindowBytes":     delivery.DefaultWindowBytes,
		"ResendMin":       delivery.DefaultResendMin,
		"ResendMax":       delivery.DefaultResendMax,
		"ChunkSize":       delivery.DefaultChunkSize,
		"MaxMessageSize":  delivery.DefaultMaxMessageSize,
		"DurableMaxBytes": delivery.DefaultMaxUnconfirmedBytes,
		"WorkerTimeout":   delivery.DefaultWorkerTimeout,
		"MaxWorkers":      delivery.DefaultMaxWorkers,
	} {
		checkEnvDefault(t, reflect.TypeFor[Config](), field, want)
	}
}

// checkEnvDefault fails t unless field of the struct typ has the envconfig
// default want.
func checkEnvDefault(t *testing.T, typ reflect.Type, field string, want any) {
	t.Helper()
	f, ok := typ.FieldByName(field)
	if !ok {
		t.Fatalf("%s has no field %s", typ, field)
	}
	tag := f.Tag.Get("default")
	var got any
	var err error
	switch want.(type) {
	case int:
		got, err = strconv.Atoi(tag)
	case time.Duration:
		got, err = time.ParseDuration(tag)
	default:
		t.Fatalf("%s: a default of type %T", field, want)
	}
	if err != nil || got != want {
		t.Errorf("BRIDGE_%s defaults to %q; the library's default is %v", f.Tag.Get("envconfig"), tag, want)
	}
}

// TestWorkerWindowDefault: a work-pulling process left without BRIDGE_WINDOW
// takes a worker's demand, the library's DefaultWorkerWindow, not a
// point-to-point consumer's window; one set is kept.
func TestWorkerWindowDefault(t *testing.T) {
	for _, c := range []struct {
		mode, window string
		want         int
	}{
		{"point-to-point", "", delivery.DefaultWindow},
		{"work-pulling", "", delivery.DefaultWorkerWindow},
		{"work-pulling", "50", 50},
		{"work-pulling", "16384", 16384},
	} {
		t.Setenv("BRIDGE_MODE", c.mode)
		if c.window != "" {
			t.Setenv("BRIDGE_WINDOW", c.window)
		}
		cfg, err := LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Window != c.want {
			t.Errorf("BRIDGE_MODE=%s BRIDGE_WINDOW=%q: window %d, want %d", c.mode, c.window, cfg.Window, c.want)
		}
	}
}
