# The targets CI and developers run. `make test` is the README's test
# command and what .ci/run runs.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 60s
BENCHTIME   ?= 1s

# The brokers every test run needs; none is skipped for want of one.
TEST_BROKERS ?= BRIDGE_TEST_REQUIRE_BROKERS=1 \
	BRIDGE_TEST_AMQP_URL=$${BRIDGE_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/} \
	BRIDGE_TEST_NATS_URL=$${BRIDGE_TEST_NATS_URL:-nats://127.0.0.1:4222}

.PHONY: test lint brokers bench fuzz chaos demo-kill

## test: static checks, then every test under the race detector, against real brokers
test: lint brokers
	$(TEST_BROKERS) $(GO) test -race -count=1 -timeout 15m ./...

## brokers: make sure RabbitMQ and NATS run here (installs them if missing)
brokers:
	./.ci/brokers

## lint: gofmt, go vet and staticcheck
lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: the benchmarks, each reporting its rate against the raw carrier in the same run
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./...

## fuzz: the frame decoder under the fuzzer for FUZZTIME
fuzz:
	$(GO) test ./delivery -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME)

## chaos: the long fault-injection run over every carrier (100,000 messages, 20 faults each); writes docs/reliability.md
chaos: brokers
	$(TEST_BROKERS) BRIDGE_TEST_CHAOS=long BRIDGE_TEST_CHAOS_REPORT=$(CURDIR)/docs/reliability.md \
		$(GO) test ./cmd/bridge -run '^TestChaos$$' -count=1 -timeout 90m -v

PROFILE ?= amqp
## demo-kill: with Docker, kill the consumer mid-stream on a real broker and count what arrived (PROFILE=amqp|kafka|jetstream|nats|tcp)
demo-kill:
	./compose/demo-kill.sh $(PROFILE)
