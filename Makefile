# CI runs `make lint test` (from .ci/run); `make check` is what a reviewer runs before merging.
# `make help` lists the targets: every target documented by a `## name: …` line.
GO ?= go
PKGS := ./...
BIN := $(CURDIR)/bin

# The version both binaries print (`--version`); without make they say (devel).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/realmhook/realmhook.version=$(VERSION)

# staticcheck is pinned: a new release may add checks, and CI must not change under us.
# 2026.2.x is the first release line that knows Go 1.26.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)

.PHONY: help run run-regional build test soak vet fmt lint clean reset check bench bench-tools bench-copy bench-copy-pg bench-copy-regional bench-routed bench-ace bench-status bench-window bench-scale bench-gateway qsh-vectors refjs node-example fuzz generate checkgenerate

## help: list the targets
help:
	@awk 'sub(/^## /, "") { split($$0, p, ": "); n = p[1]; sub(/^[^:]*: /, ""); printf "  %-14s %s\n", n, $$0 }' $(MAKEFILE_LIST)

## run: serve the embedded shape (realms global, US, EU on SQLite under ./data) at http://localhost:8080 (INSTALL_KEYS=URL trusts another signed-install key server, e.g. `realmctl host keys`)
run:
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/realmhook serve $(if $(INSTALL_KEYS),--install-keys $(INSTALL_KEYS))

## run-regional: the regional shape on one machine, no PostgreSQL needed: global, US and EU each its own process (config/examples/regional-*.yaml; SQLite under ./data/regional; public at http://localhost:8080, :8081, :8082; internal API on 127.0.0.1:9080-9082; INSTALL_KEYS=URL as for run); Ctrl-C stops all three
run-regional: build
	@mkdir -p data/regional
	@secret=$${REALMHOOK_INTERNAL_SECRET:-$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}; \
	pids=; trap 'kill $$pids 2>/dev/null; wait' INT TERM EXIT; \
	for realm in global us eu; do \
		REALMHOOK_INTERNAL_SECRET=$$secret bin/realmhook serve --config config/examples/regional-$$realm.yaml $(if $(INSTALL_KEYS),--install-keys $(INSTALL_KEYS)) & pids="$$pids $$!"; \
	done; \
	wait

## build: build realmhook and realmctl into ./bin, stamped with VERSION
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# Files tests keep for people to look at (the admin page's screenshots), by
# package and test under $(ARTIFACTS)/_artifacts; not committed.
ARTIFACTS ?= $(CURDIR)/test-artifacts

## test: vet, gofmt, and every test (unit, store conformance on SQLite and PostgreSQL, end-to-end) with the race detector
test: vet fmt
	@$(GO) test -count=1 -v -run '^TestSource$$' ./integration/pgtest | grep -E 'pgtest:|comes from' || true
	@mkdir -p $(ARTIFACTS); summary=$$(mktemp); \
	REALMHOOK_SUITE_SUMMARY=$$summary $(GO) test -race -count=1 -timeout 20m -artifacts -outputdir $(ARTIFACTS) $(PKGS); rc=$$?; \
	if [ -s $$summary ]; then echo "== suite summary =="; sort $$summary; fi; rm -f $$summary; exit $$rc

## vet: go vet
vet:
	$(GO) vet $(PKGS)

## fmt: fail if a file needs gofmt
fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') | grep -v '^gen/' || true); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## lint: go vet, gofmt, staticcheck (installed into ./bin from the Go module proxy at a pinned version) and checkgenerate
lint: vet fmt checkgenerate $(STATICCHECK)
	$(STATICCHECK) $(PKGS)

$(STATICCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $@

# Code generation (proto/ into gen/) with pinned tools, installed from the Go
# module proxy into a directory named by their versions, so a version bump
# installs afresh. Generation stays out of CI's critical path: gen/ is
# committed, and gen/GENERATED records a hash of the inputs (proto/, the buf
# configs, the tool versions) and of the generated files, which
# `checkgenerate` recomputes with sha256sum alone.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_CONNECT_GO_VERSION := v1.21.1
GEN_TOOLS := $(BIN)/protogen-buf$(BUF_VERSION)-go$(PROTOC_GEN_GO_VERSION)-connect$(PROTOC_GEN_CONNECT_GO_VERSION)
GEN_INPUTS_HASH = { echo "buf $(BUF_VERSION) protoc-gen-go $(PROTOC_GEN_GO_VERSION) protoc-gen-connect-go $(PROTOC_GEN_CONNECT_GO_VERSION)"; \
	find proto buf.yaml buf.gen.yaml -type f | LC_ALL=C sort | xargs sha256sum; } | sha256sum | cut -d' ' -f1
GEN_OUTPUTS_HASH = find $(1) -type f ! -name GENERATED | LC_ALL=C sort | sed 's|^$(1)/||' | \
	(cd $(1) && xargs sha256sum) | sha256sum | cut -d' ' -f1

$(GEN_TOOLS):
	@mkdir -p $@
	GOBIN=$@ $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$@ $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$@ $(GO) install connectrpc.com/connect/cmd/protoc-gen-connect-go@$(PROTOC_GEN_CONNECT_GO_VERSION)

## generate: regenerate gen/ from proto/ (buf, protoc-gen-go, protoc-gen-connect-go at pinned versions, installed into ./bin when missing) and stamp gen/GENERATED
generate: $(GEN_TOOLS)
	PATH=$(GEN_TOOLS):$$PATH $(GEN_TOOLS)/buf lint
	PATH=$(GEN_TOOLS):$$PATH $(GEN_TOOLS)/buf generate
	@{ echo "# Written by make generate; make checkgenerate fails when it does not match."; \
	  echo "inputs $$($(GEN_INPUTS_HASH))"; echo "outputs $$($(call GEN_OUTPUTS_HASH,gen))"; } > gen/GENERATED

## checkgenerate: fail when gen/ is stale (proto/ or the tool versions changed since make generate) or edited by hand; with the pinned tools in ./bin it also regenerates into a temporary directory and compares
checkgenerate:
	@want_in=$$(sed -n 's/^inputs //p' gen/GENERATED); want_out=$$(sed -n 's/^outputs //p' gen/GENERATED); \
	got_in=$$($(GEN_INPUTS_HASH)); got_out=$$($(call GEN_OUTPUTS_HASH,gen)); \
	if [ "$$got_in" != "$$want_in" ]; then echo "checkgenerate: proto/, buf.yaml, buf.gen.yaml or a tool version changed since gen/ was generated: run make generate"; exit 1; fi; \
	if [ "$$got_out" != "$$want_out" ]; then echo "checkgenerate: gen/ differs from what make generate wrote (edited by hand?): run make generate"; exit 1; fi
	@if [ -x $(GEN_TOOLS)/buf ]; then \
		tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
		PATH=$(GEN_TOOLS):$$PATH $(GEN_TOOLS)/buf generate --output $$tmp || exit 1; \
		if ! diff -r -x GENERATED $$tmp/gen gen; then echo "checkgenerate: gen/ is not what the pinned tools generate from proto/: run make generate"; exit 1; fi; \
		echo "checkgenerate: gen/ matches proto/ (stamp and a fresh generation)"; \
	else echo "checkgenerate: gen/ matches proto/ (stamp; the pinned tools are not in ./bin, so no fresh generation)"; fi

# fuzz targets as package:Name; each seed corpus is committed under the
# package's testdata/fuzz/<Name>/ and also runs as a plain test in `make test`.
FUZZ_TARGETS := connectjwt:FuzzCanonicalRequest connectjwt:FuzzVerify descriptor:FuzzLint \
	config:FuzzParse hooks:FuzzHookBodies hooks:FuzzOneCanonicalOneKey
# A count, not a duration: go1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" when a duration-based -fuzztime ends while a
# worker is mid-call on a loaded machine (go.dev/issue/75804, fixed in go1.27).
FUZZTIME ?= 20000x

## fuzz: run every go test -fuzz target for FUZZTIME (default 20000x, executions) each; a failing input is written to testdata/fuzz and fails the run
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done; \
	seeds=$$(for t in $(FUZZ_TARGETS); do ls $${t%%:*}/testdata/fuzz/$${t##*:} 2>/dev/null; done | wc -l); \
	echo "== suite summary =="; \
	echo "fuzz: $(words $(FUZZ_TARGETS)) targets, $(FUZZTIME) each, $$seeds committed seed inputs, 0 failures"

REFJS := connectjwt/testdata/refjs

## refjs: install the reference atlassian-jwt (pinned by package-lock.json) that the qsh differential test runs
refjs:
	cd $(REFJS) && npm ci --no-audit --no-fund

NODE_EXAMPLE := examples/node-app

## node-example: install the example Node app's packages (pinned by its package-lock.json), which the gateway's end-to-end test runs
node-example:
	cd $(NODE_EXAMPLE) && npm ci --no-audit --no-fund

## qsh-vectors: regenerate connectjwt/testdata/qsh_vectors.json from the reference atlassian-jwt 2.0.3
qsh-vectors: refjs
	cd $(REFJS) && node refjs.js generate > ../qsh_vectors.json

## clean: remove ./bin and test leftovers
clean:
	rm -rf bin *.prof *.test test-artifacts

## reset: forget the quickstart's tenants: delete the embedded shape's ./data and realmctl host's realmctl-host.json
reset:
	rm -rf data realmctl-host.json

## check: lint and test, what a reviewer runs before merging
check: lint test

## soak: the fault and isolation families with 30x the rows (REALMHOOK_SOAK=1), too long for CI; prints their summary lines
soak:
	@summary=$$(mktemp); \
	REALMHOOK_SOAK=1 REALMHOOK_SUITE_SUMMARY=$$summary $(GO) test -count=1 -timeout 60m -run '^(TestFaults_|TestIsolation_)' ./integration; rc=$$?; \
	if [ -s $$summary ]; then echo "== suite summary =="; sort $$summary; fi; rm -f $$summary; exit $$rc

# Sizes of `make bench`, each a variable so a slow machine can run it smaller
# (e.g. `make bench STATUS_ROWS=200000 SCALE_TENANTS=1000,10000`).
STATUS_ROWS ?= 1000000
WINDOW_ROWS ?= 10000,100000,1000000
SCALE_TENANTS ?= 1000,10000,100000
COPY_ROWS ?= 100000,1000000
ACE_DIR := bench/ace

## bench: every comparison in one command: routed GET/PUT, ACE 11.5.3 (one process and a cluster), /status under load during a copy, the migration window table, 1k-100k tenants, the gateway against its upstream called directly, and both copy benches (two tables, and spread over three of different shapes); each prints both figures and the ratio (sizes: STATUS_ROWS, WINDOW_ROWS, SCALE_TENANTS, COPY_ROWS)
bench: bench-routed bench-ace bench-status bench-window bench-scale bench-gateway
	$(MAKE) bench-copy BENCHFLAGS='-rows $(COPY_ROWS)'
	$(MAKE) bench-copy-pg BENCHFLAGS='-rows $(COPY_ROWS)'
	$(MAKE) bench-copy BENCHFLAGS='-rows $(COPY_ROWS) -shape spread'
	$(MAKE) bench-copy-pg BENCHFLAGS='-rows $(COPY_ROWS) -shape spread'

# What the benches need from the registries (the ACE app's node_modules) the
# targets install themselves; the system tools are named here.
## bench-tools: check that node, npm, psql, sqlite3 and initdb are on PATH and build realmhook and routedbench
bench-tools:
	@for t in node npm psql sqlite3; do command -v $$t >/dev/null || { echo "make bench needs $$t on PATH (Debian: apt-get install nodejs npm postgresql sqlite3)"; exit 1; }; done
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ echo "make bench needs the PostgreSQL server binaries initdb/postgres (Debian: apt-get install postgresql)"; exit 1; }
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/realmhook ./bench/routedbench

# npm ci when the lock file changed since the last install.
$(ACE_DIR)/node_modules/.package-lock.json: $(ACE_DIR)/package-lock.json
	cd $(ACE_DIR) && npm ci --no-audit --no-fund --omit=optional

## bench-ace: the routed GET through realmhook (realms on PostgreSQL) against an atlassian-connect-express 11.5.3 app (addon.authenticate(), sequelize store on the same PostgreSQL) as one process and as a cluster of one worker per core; same tenants, same tokens, concurrency 64
bench-ace: bench-tools $(ACE_DIR)/node_modules/.package-lock.json
	./bin/routedbench -suite ace -ace $(ACE_DIR) $(BENCHFLAGS)

## bench-status: 500 pollers of /status every 100 ms during a STATUS_ROWS-row copy, SQLite and PostgreSQL: /status p50/p99 and the copy's time with and without the pollers, interleaved
bench-status: bench-tools
	./bin/routedbench -suite status -status-rows $(STATUS_ROWS) $(BENCHFLAGS)

## bench-window: /start to ready-to-commit PostgreSQL→PostgreSQL for WINDOW_ROWS-row tenants, and the largest tenant that fits 1.5 hours and 30 minutes
bench-window: bench-tools
	./bin/routedbench -suite window -window-rows $(WINDOW_ROWS) $(BENCHFLAGS)

## bench-scale: SCALE_TENANTS tenants installed with signed installs: install rate and p99, routed GET over random tenants and memory per tenant at each size
bench-scale: bench-tools
	./bin/routedbench -suite scale -scale-tenants $(SCALE_TENANTS) $(BENCHFLAGS)

## bench-gateway: a GET of an app route through realmhook's gateway (embedded, SQLite, 1k tenants) to an upstream answering from memory, against that upstream called directly, concurrency 64; prints requests/s, p50, p99 and the ratio (BENCHFLAGS=-duration 10s … to change)
bench-gateway:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/realmhook ./bench/routedbench
	./bin/routedbench -suite gateway -tenants 1000,1000 $(BENCHFLAGS)

## bench-copy: copy a 100k- and a 1M-row tenant SQLite→SQLite with the migration engine; prints rows/s, verification share, peak RSS and the ratio to the sqlite3 shell (BENCHFLAGS=-rows 100000 … to change). Needs the sqlite3 shell (Debian: apt-get install sqlite3)
bench-copy:
	@command -v sqlite3 >/dev/null || { echo "bench-copy needs the sqlite3 shell on PATH (Debian: apt-get install sqlite3)"; exit 1; }
	$(GO) build -o bin/copybench ./bench/copybench
	./bin/copybench -backend sqlite $(BENCHFLAGS)

## bench-copy-pg: the same PostgreSQL→PostgreSQL (fsync on) against psql's binary COPY; uses REALMHOOK_BENCH_POSTGRES or starts a throwaway cluster. Needs psql, and initdb/pg_ctl unless REALMHOOK_BENCH_POSTGRES is set (Debian: apt-get install postgresql)
bench-copy-pg:
	@command -v psql >/dev/null || { echo "bench-copy-pg needs psql on PATH (Debian: apt-get install postgresql)"; exit 1; }
	@[ -n "$$REALMHOOK_BENCH_POSTGRES" ] || command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ echo "bench-copy-pg needs REALMHOOK_BENCH_POSTGRES (a server URL) or the initdb/pg_ctl binaries (Debian: apt-get install postgresql)"; exit 1; }
	$(GO) build -o bin/copybench ./bench/copybench
	./bin/copybench -backend postgres $(BENCHFLAGS)

## bench-copy-regional: the 1M-row PostgreSQL→PostgreSQL copy through two processes (the copy holds the source, a second process the target, the transfer API between them over loopback HTTP) against the same psql COPY … (FORMAT binary) pipe; goal ≥ 0.7 (BENCHFLAGS=-rows 100000 … to change). Needs what bench-copy-pg needs
bench-copy-regional:
	@command -v psql >/dev/null || { echo "bench-copy-regional needs psql on PATH (Debian: apt-get install postgresql)"; exit 1; }
	@[ -n "$$REALMHOOK_BENCH_POSTGRES" ] || command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ echo "bench-copy-regional needs REALMHOOK_BENCH_POSTGRES (a server URL) or the initdb/pg_ctl binaries (Debian: apt-get install postgresql)"; exit 1; }
	$(GO) build -o bin/copybench ./bench/copybench
	./bin/copybench -backend postgres -transfer -rows 1000000 $(BENCHFLAGS)

## bench-routed: a routed tenant GET and PUT through realmhook (embedded, SQLite; 1k and 100k tenants) against a bare net/http handler and a careful Go handler, concurrency 64; prints requests/s, p50, p99, ratios and memory per tenant (BENCHFLAGS=-duration 10s … to change)
bench-routed:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ ./cmd/realmhook ./bench/routedbench
	./bin/routedbench -realmhook bin/realmhook $(BENCHFLAGS)
