package amqp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != DefaultURL || c.Name != DefaultName || c.QueuePrefix != DefaultQueuePrefix ||
		c.Prefetch != DefaultPrefetch || c.MaxPendingConfirms != DefaultMaxPendingConfirms ||
		c.MaxFrameSize != DefaultMaxFrameSize || c.DialTimeout != DefaultDialTimeout ||
		c.Heartbeat != DefaultHeartbeat || c.ReconnectMin != DefaultReconnectMin ||
		c.ReconnectMax != DefaultReconnectMax || c.Logger == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		field string
		cfg   Config
	}{
		{"URL", Config{URL: "http://example.com/"}},
		{"URL", Config{URL: "amqp://guest:pw@host:notaport/"}},
		{"QueuePrefix", Config{QueuePrefix: "amq.mine."}},
		{"QueuePrefix", Config{QueuePrefix: strings.Repeat("q", 256)}},
		{"Name", Config{Name: "\xff"}},
		{"Exchange", Config{Exchange: strings.Repeat("e", 256)}},
		{"QueueType", Config{QueueType: "stream"}},
		{"Prefetch", Config{Prefetch: -1}},
		{"Prefetch", Config{Prefetch: 70000}},
		{"MaxPendingConfirms", Config{MaxPendingConfirms: -5}},
		{"MaxFrameSize", Config{MaxFrameSize: 1 << 30}},
		{"DialTimeout", Config{DialTimeout: -time.Second}},
		{"Heartbeat", Config{Heartbeat: 500 * time.Millisecond}},
		{"ReconnectMin", Config{ReconnectMin: -1}},
		{"ReconnectMax", Config{ReconnectMin: time.Second, ReconnectMax: time.Millisecond}},
	}
	for _, tc := range cases {
		_, err := tc.cfg.withDefaults()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: got %v; want a *ConfigError for %s", tc.cfg, err, tc.field)
			continue
		}
		if !strings.Contains(err.Error(), "Config."+tc.field) {
			t.Errorf("error %q does not name the field", err)
		}
	}
}

func TestConfigErrorHidesPassword(t *testing.T) {
	_, err := Config{URL: "amqp://guest:s3cret@host:notaport/"}.withDefaults()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v shows the password", err)
	}
}

func TestQueueNames(t *testing.T) {
	cfg := &Config{QueuePrefix: "p."}
	data, control, err := queueNames(cfg, "orders")
	if err != nil || data != "p.orders.data" || control != "p.orders.control" {
		t.Errorf("queueNames = %q, %q, %v", data, control, err)
	}
	for _, bad := range []string{"", "\xfe", strings.Repeat("x", 250)} {
		var se *StreamNameError
		if _, _, err := queueNames(cfg, bad); !errors.As(err, &se) {
			t.Errorf("queueNames(%q) = %v; want a *StreamNameError", bad, err)
		}
	}
}
