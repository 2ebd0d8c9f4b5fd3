# chatd: build, run and test.  `make help` lists the targets.
#
#   make run    build the web client (when its sources changed) and the
#               server, start it (embedded SQLite store in ./data, offline
#               demo model unless OPENAI_API_KEY is set, with OPENAI_MODELS
#               or OPENAI_MODELS_FROM_UPSTREAM=true: a key alone stops the
#               start); it checks first (scripts/prereqs.sh --build) that
#               Go and Node.js are installed
#   make test   every test suite: formatting, vet and staticcheck, Go tests
#               with the race detector (including the nginx deployment tests
#               in deploy/e2e), the web client's type check and unit tests,
#               and its browser end-to-end tests, directly and through nginx.
#               It checks first (scripts/prereqs.sh) that the programs the
#               suites need are installed, installing them as root with apt.
#
# Each suite is its own target; add new ones to TEST_SUITES.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# nginx and logrotate live in /usr/sbin on Debian, which a user's PATH may
# lack; Go's own archive installs into /usr/local/go/bin.
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin

GO        ?= go
NPM       ?= npm
BIN       := bin
CHATD     := $(BIN)/chatd
# STAMP gives the binary the commit it is built from (chatd -version,
# chatd_build_info) where go build records none: in a linked git worktree,
# or with -buildvcs=false in GOFLAGS. Empty outside a git clone.
STAMP = -X main.stampedVersion=$(shell git describe --always --dirty 2>/dev/null) -X main.stampedRevision=$(shell git rev-parse HEAD 2>/dev/null)

# embedui puts frontend/dist into the binary (see package frontend).
BUILD_TAGS ?= embedui
GO_TEST_FLAGS ?= -race -count=1 -timeout 45m
BENCH_FLAGS   ?= -run '^$$' -bench . -benchmem -timeout 30m
# staticcheck runs from the Go module proxy at this version (not a
# dependency of the module: its own dependencies stay out of go.mod).
STATICCHECK   ?= v0.8.2

# The suites `make test` runs, in order.
TEST_SUITES := lint test-go test-frontend test-embedded test-browser test-bench-smoke

# Every Go file of the module, including files behind build tags.
GO_FILES = $(shell $(GO) list -f '{{$$d := .Dir}}{{range .GoFiles}}{{$$d}}/{{.}} {{end}}{{range .TestGoFiles}}{{$$d}}/{{.}} {{end}}{{range .XTestGoFiles}}{{$$d}}/{{.}} {{end}}{{range .IgnoredGoFiles}}{{$$d}}/{{.}} {{end}}' ./...)

.PHONY: help run build build-go frontend prereqs prereqs-build test $(TEST_SUITES) test-e2e test-e2e-nginx fmt vet bench bench-growth bench-smoke clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' \
		'{ n[NR] = $$1; d[NR] = $$2; if (length($$1) > w) w = length($$1) } \
		END { for (i = 1; i <= NR; i++) printf("  %-" w "s  %s\n", n[i], d[i]) }'

run: build ## build everything and start the server on :8080 (CHATD_* variables apply)
	./$(CHATD)

# The check runs before anything is built, also under make -j.
build: prereqs-build ## build the web client and the server binary (bin/chatd), after checking for Go and Node.js
	@$(MAKE) --no-print-directory frontend build-go

build-go: ## build bin/chatd with the web client built into it
	$(GO) build -tags '$(BUILD_TAGS)' -ldflags '$(STAMP)' -o $(CHATD) ./cmd/chatd

frontend: frontend/dist/index.html ## build the web client into frontend/dist (when its sources changed since the last build)

# The web client's sources: the build runs again only when one of them
# (the package files included) is newer than the last build's index.html,
# so make run starts at once when nothing changed. A failed build leaves no
# index.html, so the next make builds again.
FRONTEND_SRC = $(shell find frontend/src -type f 2>/dev/null) \
	$(wildcard frontend/index.html frontend/package.json frontend/package-lock.json \
		frontend/tsconfig.json frontend/vite.config.ts frontend/public/*)

frontend/dist/index.html: $(FRONTEND_SRC) | frontend/node_modules
	cd frontend && { $(NPM) run build || { rm -f dist/index.html; exit 1; }; }

frontend/node_modules: frontend/package-lock.json
	cd frontend && $(NPM) ci --no-audit --no-fund
	@touch $@

deploy/node_modules: deploy/package-lock.json
	cd deploy && $(NPM) ci --no-audit --no-fund
	@touch $@

prereqs-build: ## check that make, Go and Node.js with npm are installed (as root with apt: install make, and Node.js if apt's fits), else name them with where to get them
	@$(SHELL) scripts/prereqs.sh --build

prereqs: ## check that the programs the test suites need are installed; as root with apt, install what is missing (one apt-get install), else list it all with the command that installs it
	@$(SHELL) scripts/prereqs.sh

# The check runs before any suite, also under make -j.
test: prereqs ## run every test suite (after make prereqs)
	@$(MAKE) --no-print-directory $(TEST_SUITES)

lint: ## gofmt check, go vet and staticcheck
	@bad="$$(gofmt -l $(GO_FILES))"; if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

test-go: deploy/node_modules frontend/node_modules ## Go tests with the race detector (SQLite, FerretDB, fake OpenAI, nginx)
	$(GO) test $(GO_TEST_FLAGS) ./...

test-frontend: frontend/node_modules ## the web client's type check and unit tests (Vitest)
	cd frontend && $(NPM) run typecheck
	cd frontend && $(NPM) test

# The binary make build ships embeds the web client (tag embedui), which
# test-go, lint and vet build without: this compiles and tests it as shipped.
test-embedded: frontend ## vet the embedui build of the binary and test the web client it embeds
	$(GO) vet -tags '$(BUILD_TAGS)' ./frontend ./cmd/chatd
	$(GO) test -tags '$(BUILD_TAGS)' -count=1 ./frontend

# The two browser suites mostly wait on streamed answers, so they run side by
# side (each keeps its logs in a directory of its own); each one's output is
# printed whole when it ends.
test-browser: frontend ## both browser end-to-end suites at once: test-e2e and test-e2e-nginx
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-e2e test-e2e-nginx

test-e2e: frontend ## browser end-to-end tests: Chromium against the real chatd and fakeai
	cd frontend && CI=true $(NPM) run e2e

test-e2e-nginx: frontend ## the browser end-to-end tests again, through nginx.conf over HTTPS (deploy/nginx-local.sh; needs nginx), failing on any CSP violation
	cd frontend && CI=true $(NPM) run e2e:nginx

fmt: ## format the Go code
	gofmt -w $(GO_FILES)

vet: ## go vet
	$(GO) vet ./...

# The scenarios and settings of docs/benchmarks.md's results; growth has a target of its own.
BENCH_FULL := -scenarios latency,capacity,cpu,burst,memory,writes,fanout,bus -rounds 3 -latency-levels 1,10,50,200,800

bench: ## the benchmark suite as docs/benchmarks.md's results ran it, chatd against baselines in the same run (every scenario but growth, 3 rounds, up to 800 streams; about 10 min; flags in BENCH_ARGS override, e.g. BENCH_ARGS="-scenarios latency"). Go micro-benchmarks: go test -run '^$' -bench . -benchmem ./...
	$(GO) run ./bench $(BENCH_FULL) $(BENCH_ARGS)

bench-growth: ## the benchmark's data growth scenario: fills a store with 1,000,000 messages (15-30 min) and times it (BENCH_ARGS="-growth-dir growth-data" keeps it for the next run)
	$(GO) run ./bench -scenarios growth $(BENCH_ARGS)

bench-smoke: ## every benchmark scenario with a few connections for a few seconds: checks the harness, measures nothing
	$(GO) run ./bench -smoke $(BENCH_ARGS)

test-bench-smoke: bench-smoke ## the benchmark harness's smoke run (no timing assertions; fails when the harness breaks)

clean: ## remove build output
	rm -rf $(BIN) frontend/dist
