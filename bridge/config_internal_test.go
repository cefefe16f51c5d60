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
