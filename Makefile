# The targets CI and developers run. `make test` is the README's test
# command and what .ci/run runs.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 60s
BENCHTIME   ?= 1s

# The brokers every test run needs; none is skipped for want of one. Kafka is
# the one .ci/kafka runs, which the tests stop and restart through it.
TEST_BROKERS ?= BRIDGE_TEST_REQUIRE_BROKERS=1 \
	BRIDGE_TEST_AMQP_URL=$${BRIDGE_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/} \
	BRIDGE_TEST_NATS_URL=$${BRIDGE_TEST_NATS_URL:-nats://127.0.0.1:4222} \
	BRIDGE_TEST_KAFKA_BROKERS=$${BRIDGE_TEST_KAFKA_BROKERS:-127.0.0.1:9092} \
	BRIDGE_TEST_KAFKACTL=$${BRIDGE_TEST_KAFKACTL:-$(CURDIR)/.ci/kafka}

.PHONY: test test-kafka-compat lint brokers bench bench-work bench-chart fuzz chaos demo-kill demo-test images

## test: static checks, then every test under the race detector, against real brokers,
## then each fuzz target that reads network input for a few seconds, then every
## docker-compose profile run for real on Podman (demo-test)
test: lint brokers
	@# The local images build while the tests run, at the lowest priority:
	@# demo-test's own .ci/images waits for this one, and builds what it did not.
	./.ci/podman install
	@mkdir -p .cache && (nice -n 19 ./.ci/images >.cache/images-during-test.log 2>&1 &)
	$(TEST_BROKERS) $(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=$(TEST_FUZZTIME)
	$(MAKE) demo-test

# make test fuzzes each target for a number of runs, not a time: with a
# duration, Go 1.26's fuzzing coordinator can fail a target with a bare
# "context deadline exceeded" as the time runs out on a loaded machine
# (golang/go#75804, fixed in Go 1.27), with no failing input found. 20000
# runs take about 4 s a target here.
TEST_FUZZTIME ?= 20000x
# The decoders that read what a peer sends: the wire format, sealed frames,
# the tcp handshake (both sides).
FUZZ_TARGETS = ./delivery:FuzzDecodeFrame ./delivery:FuzzDecodeWorkFrame ./delivery:FuzzOpenSealed \
	./adapters/tcp:FuzzListenHandshake ./adapters/tcp:FuzzDialHandshake

## brokers: make sure RabbitMQ, NATS and Kafka run here (installs them if missing)
brokers:
	./.ci/brokers

# The Kafka tests: the carrier's, and the Kafka parts of the binary's.
KAFKA_COMPAT_VERSION ?= 3.9
KAFKA_BINARY_TESTS   ?= ^(TestStdinToStdout|TestConsumerKilled|TestChaos)$$/^kafka$$

## test-kafka-compat: the Kafka tests against Kafka KAFKA_COMPAT_VERSION (3.9), then the
## version `make brokers` runs (4.4) started again, whatever the tests said
test-kafka-compat: brokers
	./.ci/kafka start $(KAFKA_COMPAT_VERSION)
	status=0; \
	$(TEST_BROKERS) $(GO) test -race -count=1 -timeout 15m ./adapters/kafka || status=$$?; \
	$(TEST_BROKERS) $(GO) test -race -count=1 -timeout 15m ./cmd/bridge -run '$(KAFKA_BINARY_TESTS)' -v || status=$$?; \
	./.ci/kafka start || status=$$?; \
	exit $$status

## lint: gofmt, go vet and staticcheck, and the library and binary build for macOS and Windows
lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	GOOS=darwin $(GO) build ./...
	GOOS=windows $(GO) build ./...

BENCH_SIZES  ?= 128,65536
BENCH_REPORT ?= bench.html
# What `bridge bench` is told of the brokers of `make brokers`, Kafka labelled
# with its version.
BENCH_BROKERS = BRIDGE_NATS_URL=$${BRIDGE_NATS_URL:-nats://127.0.0.1:4222} \
	BRIDGE_AMQP_URL=$${BRIDGE_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/} \
	BRIDGE_KAFKA_BROKERS=$${BRIDGE_KAFKA_BROKERS:-127.0.0.1:9092} \
	BRIDGE_BENCH_KAFKA_LABEL="$${BRIDGE_BENCH_KAFKA_LABEL:-Apache Kafka $$(./.ci/kafka version 2>/dev/null), one node}" \
	BRIDGE_LOG_LEVEL=$${BRIDGE_LOG_LEVEL:-warn}

## bench: the Go benchmarks (the protocol, the durable queue, the tcp carrier, the HTTP
## edges: ingest single and NDJSON, webhooks single and batched), then
## `bridge bench`: tcp, NATS core and JetStream, RabbitMQ and Apache Kafka (those of
## `make brokers`, Kafka labelled with its version), each raw against reliable, in one
## run, with an HTML report in BENCH_REPORT
bench: brokers
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./delivery/... ./adapters/tcp ./bridge
	$(GO) build -o bin/bridge ./cmd/bridge
	BRIDGE_BENCH_TRANSPORTS=tcp,nats,jetstream,amqp,kafka \
	BRIDGE_BENCH_SIZE=$(BENCH_SIZES) BRIDGE_BENCH_REPORT=$(BENCH_REPORT) \
	$(BENCH_BROKERS) \
	bin/bridge bench

## bench-work: `bridge bench`'s work-pulling scenario over every carrier against each
## broker's competing consumers (1, 2, 4 workers, 1 ms of work a message), its report in
## BENCH_WORK_REPORT and its chart in docs/work-pulling.png
BENCH_WORK_REPORT ?= bench-work.html
bench-work: brokers
	$(GO) build -o bin/bridge ./cmd/bridge
	BRIDGE_BENCH_SCENARIO=work-pulling BRIDGE_BENCH_TRANSPORTS=tcp,nats,jetstream,amqp,kafka \
	BRIDGE_BENCH_COUNT=$${BRIDGE_BENCH_COUNT:-3000} BRIDGE_BENCH_REPORT=$(BENCH_WORK_REPORT) \
	$(BENCH_BROKERS) \
	bin/bridge bench
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,465 \
		--screenshot=docs/work-pulling.png "file://$(CURDIR)/$(BENCH_WORK_REPORT)"

## bench-chart: docs/bench.png, the README's picture, from the report of `make bench`
bench-chart:
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,828 \
		--screenshot=docs/bench.png "file://$(CURDIR)/$(BENCH_REPORT)"

## fuzz: every decoder of network input under the fuzzer, FUZZTIME each
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME); \
	done

## chaos: the long fault-injection run over every carrier (100,000 messages, 20 faults each); writes docs/reliability.md
chaos: brokers
	$(TEST_BROKERS) BRIDGE_TEST_CHAOS=long BRIDGE_TEST_CHAOS_REPORT=$(CURDIR)/docs/reliability.md \
		$(GO) test ./cmd/bridge -run '^TestChaos$$' -count=1 -timeout 90m -v

PROFILE ?= amqp
## demo-kill: with Docker, kill the consumer mid-stream on a real broker and count what arrived (PROFILE=amqp|kafka|jetstream|nats|tcp)
demo-kill:
	./compose/demo-kill.sh $(PROFILE)

## demo-test: every carrier profile of docker-compose.yml up on Podman with the local
## images (docker-compose.local.yml), the demo-kill scenario on each, then down, nothing left
demo-test:
	./.ci/demo-test $(DEMO_PROFILES)

## images: build the local images docker-compose.local.yml names, those missing
images:
	./.ci/images
