# Signet — the two commands: `go run ./cmd/signet-server` and `make test`.
SHELL := /bin/bash
GO ?= go
export SIGNET_TEST_REQUIRE ?= all
# The local PostgreSQL that scripts/test-deps.sh starts (trust auth on loopback).
export SIGNET_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
# The real cosign scripts/test-deps.sh builds into its per-machine tool cache
# (the interop tests of internal/oci run it).
export SIGNET_COSIGN_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/signet/tools/cosign@v3.1.3/cosign
# The real kube-apiserver scripts/test-deps.sh builds there too (internal/e2e/admission).
export SIGNET_KUBE_APISERVER_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/signet/tools/kube-apiserver@v1.37.2/kube-apiserver
STATICCHECK ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/signet/tools/staticcheck@v0.8.2/staticcheck

.PHONY: test deps vet unit fuzz bench soak build bench-admission

## test: install what the tests need, start it, and run every test.
test: deps vet unit fuzz

## deps: install missing Debian packages and Go tools; start PostgreSQL.
deps:
	scripts/test-deps.sh

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags pkcs11 ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags pkcs11 ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go mod tidy would change go.mod/go.sum:"; $(GO) mod tidy -diff; exit 1; }

# The end-to-end tests build ./cmd/... once per source tree into a shared cache
# (internal/e2e/e2etest; docs/testing.md lists every SIGNET_* variable).
unit:
	$(GO) test -race -shuffle=on -timeout 40m ./...
	$(GO) test -race -shuffle=on -timeout 20m -tags pkcs11 ./internal/keys/pkcs11/... ./internal/e2e/hsm/... ./internal/custody/hsm/... ./internal/signercmd/...
	$(GO) test -race -timeout 10m -tags pkcs11 -run '^TestProjectKeyInHSM$$' ./internal/e2e/service/
	$(GO) test -race -shuffle=on -timeout 10m -tags pkcs11 -run 'PKCS11' ./internal/cli/

## fuzz: run every fuzz target briefly.
fuzz:
	scripts/fuzz-all.sh 5s

## build: every binary of cmd/ into bin/ (signet --version names the commit); with the
## settings of go run and go test, so it reuses their build cache. Static: CGO_ENABLED=0 make build.
build:
	$(GO) build -buildvcs=auto -o bin/ ./cmd/...

## bench: side-by-side benchmark against the reference notary-server, the
## signing service's approval-to-signed latency, the audit log (appends/s,
## append to checkpoint, tile GETs, verify of 1,000,000 entries), the web
## dashboard's render times, then the soak.
bench: deps
	bench/run.sh
	SIGNET_SERVICE_BENCH=1 SIGNET_SERVICE_BENCH_REPORT=$(CURDIR)/docs/benchmarks.md $(GO) test -count=1 -run '^TestServiceBenchmark$$' -timeout 15m -v ./internal/service/
	SIGNET_AUDIT_BENCH=1 SIGNET_AUDIT_BENCH_REPORT=$(CURDIR)/docs/benchmarks.md $(GO) test -count=1 -run '^TestAuditBenchmark$$' -timeout 30m -v ./internal/audit/
	SIGNET_UI_BENCH=1 SIGNET_UI_BENCH_REPORT=$(CURDIR)/docs/benchmarks.md $(GO) test -count=1 -run '^TestRenderBenchmark$$' -timeout 20m -v ./internal/ui/
	$(MAKE) soak

## soak: 3 minutes of concurrent publishers and readers against signet-server
## (SQLite, loopback): zero errors and flat memory; writes docs/soak.md.
soak:
	SIGNET_SOAK=1 SIGNET_SOAK_REPORT=$(CURDIR)/docs/soak.md $(GO) test -count=1 -run '^TestSoak$$' -timeout 15m -v ./internal/e2e/soak

## bench-admission: signet-admission's decision latency (cold, warm at 1 and 32
## connections) and memory with 10,000 cached repositories; writes
## docs/benchmarks-admission.md.
bench-admission:
	SIGNET_ADMISSION_BENCH=1 SIGNET_ADMISSION_BENCH_REPORT=$(CURDIR)/docs/benchmarks-admission.md $(GO) test -count=1 -run '^TestAdmissionBench$$' -timeout 30m -v ./internal/e2e/admission
