package nats_test

import (
	"testing"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/nats"
)

// TestConformance runs the carrier conformance suite in both modes on an
// embedded server. It never needs a broker of the machine's.
func TestConformance(t *testing.T) {
	srv := startServer(t, nats.ServerConfig{})
	for _, mode := range []nats.Mode{nats.ModeCore, nats.ModeJetStream} {
		t.Run(string(mode), func(t *testing.T) {
			c := newCarrier(t, testConfig(srv.URL(), mode))
			adaptertest.Run(t, conformanceSpec(t, "nats "+string(mode)+" (embedded)", c, srv.URL()))
		})
	}
}

// TestConformanceMachineNATS runs the suite in both modes on the machine's
// NATS server named by BRIDGE_TEST_NATS_URL.
func TestConformanceMachineNATS(t *testing.T) {
	url := machineNATS(t)
	for _, mode := range []nats.Mode{nats.ModeCore, nats.ModeJetStream} {
		t.Run(string(mode), func(t *testing.T) {
			c := newCarrier(t, testConfig(url, mode))
			adaptertest.Run(t, conformanceSpec(t, "nats "+string(mode)+" ("+url+")", c, url))
		})
	}
}
