# Buurtsignaal: see README.md. `make run` and `make test` are all a newcomer needs.
GO      ?= go
DATA    ?= ./data
ADDR    ?= 127.0.0.1:8080
# staticcheck 2026.1, pinned. Left out: the ST checks of doc-comment and
# naming forms this code base words its own way, and S1016: the domain builds
# each event from its command field by field on purpose (a field added to a
# command must not slip into an event unseen).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.7.0
STATICCHECK_CHECKS ?= all,-ST1000,-ST1003,-ST1016,-ST1020,-ST1021,-ST1022,-S1016

.PHONY: run build test test-api screenshots vet bench bench-store bench-postgres bench-projections bench-audit bench-flags bench-scale crashtest crashtest-server powerloss soak lint fuzz

run:
	$(GO) run ./cmd/buurtsignaal serve --demo --addr $(ADDR) --data-dir $(DATA)

build:
	$(GO) build -o bin/buurtsignaal ./cmd/buurtsignaal

vet:
	$(GO) vet ./...

# Installs what the suite needs where it is missing (Debian's Chromium), runs
# go vet and the suite, then the client-facing tests with their injected
# clocks a year away (scripts/test.sh says more).
test:
	GO=$(GO) bash scripts/test.sh

# PNGs of every console page per role, language and width (1280 and 375
# pixels) on the demo network, into .screenshots/ (not committed): review
# material without signing in by hand. Needs Chromium, as make test does.
SHOTS ?= $(CURDIR)/.screenshots
screenshots:
	rm -rf $(SHOTS) && BUURTSIGNAAL_SCREENSHOTS=$(SHOTS) $(GO) test -count=1 -timeout 10m -run '^TestConsoleScreenshots$$' ./cmd/buurtsignaal
	@echo "screenshots in $(SHOTS)"

# The API against its OpenAPI document (scripts/test-api.sh): Redocly CLI's
# lint, the end-to-end tests and the property run over every operation
# (TestAPIProperties, API_CHECKS checks per operation; go test ./... runs it
# with 8) through Prism's validating proxy, and a client that oapi-codegen
# generates from the document. .ci/run calls it after make test.
API_CHECKS ?= 100
test-api:
	GO=$(GO) API_CHECKS=$(API_CHECKS) bash scripts/test-api.sh

bench:
	bash scripts/bench.sh

bench-store:
	bash scripts/bench-store.sh

bench-postgres:
	bash scripts/bench-postgres.sh

bench-projections:
	bash scripts/bench-projections.sh

# Memory, start-up and throughput as the log grows to 2,000,000 events
# (scripts/benchscale; about 15 minutes). BENCH_SCALE_FLAGS passes flags,
# such as -events, -small or -duration.
bench-scale: build
	$(GO) build -o bin/buurtsignaal-load ./cmd/buurtsignaal-load
	$(GO) run ./scripts/benchscale -bin bin/buurtsignaal -load bin/buurtsignaal-load $(BENCH_SCALE_FLAGS)

# GET /v1/audit/flags's read over the read models of ACCESS_RECORDS access
# records (default 10,000,000; about 15 minutes, the read models built twice,
# and a few GB of disk).
ACCESS_RECORDS ?= 10000000
bench-flags:
	BUURTSIGNAAL_BENCH_ACCESS_RECORDS=$(ACCESS_RECORDS) $(GO) test -run '^$$' -bench '^BenchmarkAccessFlags$$' -benchtime 600x -timeout 60m ./projections

bench-audit:
	BUURTSIGNAAL_BENCH_AUDIT=1 $(GO) test -count=1 -v -run '^TestBenchAudit$$' ./cmd/buurtsignaal | grep -E '^(noop|audited_caseload|ratio|p99_ms):'

# Every fuzz target, FUZZTIME each; their seed corpora run in make test.
FUZZTIME ?= 10s
FUZZ_TARGETS = ./cmd/buurtsignaal:FuzzCommandBodies ./domain:FuzzRegistryDecode ./adapters/notify:FuzzVerify \
	./domain/app:FuzzDecodeSubjectData ./adapters/auth:FuzzParseTokens ./projections:FuzzDecodeReviewItem
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

lint:
	$(GO) run $(STATICCHECK) -checks '$(STATICCHECK_CHECKS)' ./...

crashtest:
	$(GO) run ./scripts/crashtest -rounds 20

# The whole server on a file system in memory whose power is cut at random
# moments (TestPowerLoss; 50 rounds in make test, 1,000 in make soak). It
# prints the summary line, and everything when it fails.
POWERLOSS_ROUNDS ?= 200
powerloss:
	@log=$$(mktemp); $(GO) test -count=1 -v -timeout 60m -run '^TestPowerLoss$$' ./cmd/buurtsignaal -powerloss.rounds=$(POWERLOSS_ROUNDS) >$$log 2>&1; \
	status=$$?; [ $$status = 0 ] || grep -v '^=== RUN' $$log; \
	sed -n 's/^ *powerloss_test\.go:[0-9]*: \(seed .*\|cuts: .*\|power-loss rounds: .*\)$$/\1/p' $$log; rm -f $$log; exit $$status

# The real server under 64 clients, SIGKILLed 20 times (short form in make test).
crashtest-server: build
	$(GO) run ./cmd/buurtsignaal-load -bin bin/buurtsignaal -crash-rounds $(or $(ROUNDS),20)

# The long forms of the reliability tests (about 25 minutes).
soak: build
	@$(MAKE) --no-print-directory powerloss POWERLOSS_ROUNDS=1000
	$(GO) run ./cmd/buurtsignaal-load -bin bin/buurtsignaal -crash-rounds 100
	$(GO) run ./scripts/crashtest -rounds 100
	BUURTSIGNAAL_SOAK=1 $(GO) test -count=1 -v -run '^TestLinearizableAppends$$' ./adapters/pebblestore
	$(GO) test -count=1 -run '^TestKilledProjectorWithDuplicatesEqualsRebuild$$' ./projections -rapid.checks=1000
	$(GO) test -count=1 -run '^TestNotifierRestartsLoseNothing$$' ./adapters/notify -rapid.checks=1000
	$(GO) test -count=1 -run '^TestNotifierTakeoversLoseNothing$$' ./adapters/notify -rapid.checks=1000
	$(MAKE) fuzz FUZZTIME=60s
