# CI runs `make test` (from .ci/run); `make check` is what a reviewer runs before merging.
GO ?= go
PKGS := ./...

.PHONY: run build test vet fmt check bench-copy bench-copy-pg

## run: serve the embedded shape (realms global, US, EU on SQLite under ./data) at http://localhost:8080
run:
	$(GO) run ./cmd/realmhook serve

## build: build realmhook and realmctl into ./bin
build:
	$(GO) build -o bin/ ./cmd/...

## test: vet, gofmt, and every test (unit, store conformance on SQLite and PostgreSQL, end-to-end) with the race detector
test: vet fmt
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') | grep -v '^gen/' || true); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

check: test
