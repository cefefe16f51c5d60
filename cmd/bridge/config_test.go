package main_test

import (
	"strings"
	"testing"
)

// TestBadConfiguration: a bad or missing setting exits with status 2 and a
// message naming the variable and what is wrong.
func TestBadConfiguration(t *testing.T) {
	cases := []struct {
		name string
		vars []string
		want []string
	}{
		{"unknown transport", []string{"BRIDGE_ROLE=producer", "BRIDGE_TRANSPORT=pigeon"}, []string{"BRIDGE_TRANSPORT", "pigeon", "tcp, nats, amqp, kafka"}},
		{"bad duration", []string{"BRIDGE_ROLE=consumer", "BRIDGE_RESEND_MIN=soon"}, []string{"BRIDGE_RESEND_MIN", "duration"}},
		{"bad integer", []string{"BRIDGE_ROLE=consumer", "BRIDGE_WINDOW=lots"}, []string{"BRIDGE_WINDOW", "integer"}},
		{"missing amqp url", []string{"BRIDGE_ROLE=producer", "BRIDGE_TRANSPORT=amqp"}, []string{"BRIDGE_AMQP_URL", "required"}},
		{"missing kafka brokers", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TRANSPORT=kafka"}, []string{"BRIDGE_KAFKA_BROKERS", "required"}},
		{"unknown variable", []string{"BRIDGE_ROLE=consumer", "BRIDGE_WINDOWS=10"}, []string{"BRIDGE_WINDOWS", "did you mean BRIDGE_WINDOW"}},
		{"missing role", nil, []string{"BRIDGE_ROLE", "producer or consumer"}},
		{"webhook without url", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK=http"}, []string{"BRIDGE_SINK_URL"}},
		{"http source without address", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http"}, []string{"BRIDGE_HTTP_ADDR"}},
		{"window out of range", []string{"BRIDGE_ROLE=consumer", "BRIDGE_WINDOW=0"}, []string{"BRIDGE_WINDOW", "from 1"}},
		{"sink timeout zero", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK_TIMEOUT=0s"}, []string{"BRIDGE_SINK_TIMEOUT", "must be positive"}},
		{"sink retry negative", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK_RETRY_MAX=-1s"}, []string{"BRIDGE_SINK_RETRY_MAX", "must be positive"}},
		{"http timeout zero", []string{"BRIDGE_ROLE=consumer", "BRIDGE_HTTP_TIMEOUT=0s"}, []string{"BRIDGE_HTTP_TIMEOUT", "must be positive"}},
		{"http connections zero", []string{"BRIDGE_ROLE=consumer", "BRIDGE_HTTP_MAX_CONNS=0"}, []string{"BRIDGE_HTTP_MAX_CONNS", "from 1"}},
		{"webhook url unparsable", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK=http", "BRIDGE_SINK_URL=http://hook:pa55word@[::1"}, []string{"BRIDGE_SINK_URL", "(a URL that does not parse)"}},
		{"dlq not a url", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK=http", "BRIDGE_SINK_URL=http://hook/", "BRIDGE_DLQ=/tmp/dlq"}, []string{"BRIDGE_DLQ", "file:///dir"}},
		{"dlq without the http sink", []string{"BRIDGE_ROLE=consumer", "BRIDGE_DLQ=file:///tmp/dlq"}, []string{"BRIDGE_DLQ", "only BRIDGE_SINK=http"}},
		{"dlq on tcp's carrier", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK=http", "BRIDGE_SINK_URL=http://hook/", "BRIDGE_DLQ=carrier"}, []string{"BRIDGE_DLQ", "nats, amqp or kafka"}},
		{"dlq carrier name", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TRANSPORT=kafka", "BRIDGE_KAFKA_BROKERS=k:9092", "BRIDGE_SINK=http", "BRIDGE_SINK_URL=http://hook/", "BRIDGE_DLQ=carrier:a b"}, []string{"BRIDGE_DLQ", "carrier:NAME"}},
		{"dlq on a producer", []string{"BRIDGE_ROLE=producer", "BRIDGE_DLQ=file:///tmp/dlq"}, []string{"BRIDGE_DLQ", "only a consumer"}},
		{"sink batch zero", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK_BATCH=0"}, []string{"BRIDGE_SINK_BATCH", "from 1 to 10000"}},
		{"sink attempts zero", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK_MAX_ATTEMPTS=0"}, []string{"BRIDGE_SINK_MAX_ATTEMPTS", "from 1"}},
		{"http batch zero", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR=127.0.0.1:0", "BRIDGE_HTTP_BATCH_MAX=0"}, []string{"BRIDGE_HTTP_BATCH_MAX", "from 1"}},
		{"webhook url not http", []string{"BRIDGE_ROLE=consumer", "BRIDGE_SINK=http", "BRIDGE_SINK_URL=ftp://hook:pa55word@host/?token=t0ken"}, []string{"BRIDGE_SINK_URL", "ftp://redacted@host/?redacted"}},
	}
	for _, c := range cases {
		for _, cmd := range []string{"run", "check"} {
			code, _, stderr := output(t, []string{cmd}, c.vars...)
			if code != 2 {
				t.Errorf("%s (%s): exit status %d; want 2\n%s", c.name, cmd, code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("%s (%s): the message does not say %q:\n%s", c.name, cmd, w, stderr)
				}
			}
			if strings.Contains(stderr, "pa55word") || strings.Contains(stderr, "t0ken") {
				t.Errorf("%s (%s): the message shows a URL's credentials:\n%s", c.name, cmd, stderr)
			}
		}
	}
	// Every problem at once, not the first only.
	_, _, stderr := output(t, []string{"check"}, "BRIDGE_ROLE=consumer", "BRIDGE_WINDOW=lots", "BRIDGE_SINKK=http")
	if !strings.Contains(stderr, "BRIDGE_WINDOW") || !strings.Contains(stderr, "BRIDGE_SINKK") {
		t.Errorf("not every problem reported:\n%s", stderr)
	}
	// The tests' own variables are not the service's business.
	if code, _, stderr := output(t, []string{"check"}, "BRIDGE_ROLE=consumer", "BRIDGE_TEST_AMQP_URL=amqp://x"); code != 0 {
		t.Errorf("BRIDGE_TEST_ variables refused: %s", stderr)
	}
}

func TestEnvAndCheck(t *testing.T) {
	code, stdout, _ := output(t, []string{"env"})
	if code != 0 {
		t.Fatalf("bridge env: %d", code)
	}
	for _, v := range []string{"BRIDGE_ROLE", "BRIDGE_TRANSPORT", "BRIDGE_WINDOW", "BRIDGE_RESEND_MIN", "BRIDGE_DURABLE_DIR", "BRIDGE_SINK_URL", "BRIDGE_HTTP_TOKEN", "BRIDGE_BENCH_COUNT",
		"BRIDGE_DLQ", "BRIDGE_DLQ_REPLAY_URL", "BRIDGE_SINK_BATCH", "BRIDGE_SINK_MAX_ATTEMPTS", "BRIDGE_HTTP_BATCH_MAX"} {
		if !strings.Contains(stdout, v) {
			t.Errorf("bridge env does not list %s", v)
		}
	}
	if !strings.Contains(stdout, "1000") {
		t.Error("bridge env shows no defaults")
	}
	code, stdout, stderr := output(t, []string{"check"}, "BRIDGE_ROLE=producer", "BRIDGE_TRANSPORT=amqp", "BRIDGE_AMQP_URL=amqp://guest:guest@localhost:5672/")
	if code != 0 || !strings.Contains(stdout, "configuration OK") {
		t.Errorf("bridge check: %d %s %s", code, stdout, stderr)
	}
	if code, _, _ := output(t, []string{"launch"}); code != 2 {
		t.Errorf("an unknown command exits %d; want 2", code)
	}
	if code, _, stderr := output(t, []string{"dlq", "purge"}); code != 2 || !strings.Contains(stderr, "list, replay") {
		t.Errorf("bridge dlq purge: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := output(t, []string{"dlq", "list"}); code != 2 || !strings.Contains(stderr, "BRIDGE_DLQ") {
		t.Errorf("bridge dlq list without BRIDGE_DLQ: exit %d\n%s", code, stderr)
	}
}
