# CI runs `make test` (from .ci/run); `make check` is what a reviewer runs before merging.
GO ?= go
PKGS := ./...

.PHONY: run build test vet fmt check bench-copy bench-copy-pg

## run: serve the embedded shape (realms global, US, EU on SQLite under ./data) at http://localhost:8080
## (INSTALL_KEYS=URL trusts another signed-install key server, e.g. `realmctl host keys`)
run:
	$(GO) run ./cmd/realmhook serve $(if $(INSTALL_KEYS),--install-keys $(INSTALL_KEYS))

## build: build realmhook and realmctl into ./bin
build:
	$(GO) build -o bin/ ./cmd/...

## test: vet, gofmt, and every test (unit, store conformance on SQLite and PostgreSQL, end-to-end) with the race detector
test: vet fmt
	@$(GO) test -count=1 -v -run '^TestSource$$' ./integration/pgtest | grep -E 'pgtest:|comes from' || true
	@summary=$$(mktemp); \
	REALMHOOK_SUITE_SUMMARY=$$summary $(GO) test -race -count=1 -timeout 20m $(PKGS); rc=$$?; \
	if [ -s $$summary ]; then echo "== suite summary =="; sort $$summary; fi; rm -f $$summary; exit $$rc

vet:
	$(GO) vet $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') | grep -v '^gen/' || true); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

check: test

## bench-copy: copy a 100k- and a 1M-row tenant SQLite→SQLite with the migration engine; prints rows/s, verification share, peak RSS and the ratio to the sqlite3 shell (BENCHFLAGS=-rows 100000 … to change)
bench-copy:
	@command -v sqlite3 >/dev/null || (apt-get update && apt-get install -y sqlite3)
	$(GO) build -o bin/copybench ./bench/copybench
	./bin/copybench -backend sqlite $(BENCHFLAGS)

## bench-copy-pg: the same PostgreSQL→PostgreSQL (fsync on) against psql's binary COPY; uses REALMHOOK_BENCH_POSTGRES or starts a throwaway cluster
bench-copy-pg:
	@command -v psql >/dev/null && { [ -n "$$REALMHOOK_BENCH_POSTGRES" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || \
		(apt-get update && apt-get install -y postgresql)
	$(GO) build -o bin/copybench ./bench/copybench
	./bin/copybench -backend postgres $(BENCHFLAGS)
