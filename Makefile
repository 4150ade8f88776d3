# Signet — the two commands: `go run ./cmd/signet-server` and `make test`.
SHELL := /bin/bash
GO ?= go
export SIGNET_TEST_REQUIRE ?= all
# The local PostgreSQL that scripts/test-deps.sh starts (trust auth on loopback).
export SIGNET_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: test deps vet unit fuzz bench build

## test: install what the tests need, start it, and run every test.
test: deps vet unit fuzz

## deps: install missing Debian packages and Go tools; start PostgreSQL.
deps:
	scripts/test-deps.sh

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -shuffle=on -timeout 40m ./...

## fuzz: run every fuzz target briefly.
fuzz:
	scripts/fuzz-all.sh 5s

build:
	$(GO) build ./...

## bench: side-by-side benchmark against the reference notary-server.
bench: deps
	bench/run.sh
