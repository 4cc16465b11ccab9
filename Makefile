# Buurtsignaal: see README.md. `make run` and `make test` are all a newcomer needs.
GO      ?= go
DATA    ?= ./data
ADDR    ?= 127.0.0.1:8080

.PHONY: run build test vet bench bench-store bench-postgres bench-projections bench-audit crashtest lint

run:
	$(GO) run ./cmd/buurtsignaal serve --demo --addr $(ADDR) --data-dir $(DATA)

build:
	$(GO) build -o bin/buurtsignaal ./cmd/buurtsignaal

vet:
	$(GO) vet ./...

test: vet
	$(GO) test -race -count=1 -timeout 12m ./...

bench:
	bash scripts/bench.sh

bench-store:
	bash scripts/bench-store.sh

bench-postgres:
	bash scripts/bench-postgres.sh

bench-projections:
	bash scripts/bench-projections.sh

bench-audit:
	BUURTSIGNAAL_BENCH_AUDIT=1 $(GO) test -count=1 -v -run '^TestBenchAudit$$' ./cmd/buurtsignaal | grep -E '^(noop|audited_caseload|ratio|p99_ms):'

crashtest:
	$(GO) run ./scripts/crashtest -rounds 20
