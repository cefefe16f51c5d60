# The targets CI and developers run. `make test` is the README's test
# command and what .ci/run runs.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 60s
BENCHTIME   ?= 1s

.PHONY: test lint bench fuzz

## test: static checks, then every test under the race detector
test: lint
	$(GO) test -race -count=1 -timeout 15m ./...

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
