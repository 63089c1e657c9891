# The two commands a new user types are `go run ./example` and `make test`.
GO ?= go

.PHONY: test deps fmt-check vet lint race interop interop-deps redis

# The fault-injection, interop and Redis suites run after the root
# module's checks, one after the other even under make -j: they measure
# detection and recovery times and should not share two cores with the
# race run. bench-allocs (mk/bench.mk) asserts exact allocation counts,
# which load does not change.
test: fmt-check vet lint race bench-allocs
	@$(MAKE) --no-print-directory faults
	@$(MAKE) --no-print-directory interop
	@$(MAKE) --no-print-directory redis

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# lint: golangci-lint v2 at a pinned version, installed into .bin/ on first
# use; .golangci.yml says which linters run.
GOLANGCI_VERSION := v2.15.0
GOLANGCI := $(CURDIR)/.bin/golangci-lint-$(GOLANGCI_VERSION)

$(GOLANGCI):
	GOBIN=$(CURDIR)/.bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv $(CURDIR)/.bin/golangci-lint $@

lint: $(GOLANGCI)
	$(GOLANGCI) run ./...
	cd interop && $(GOLANGCI) run --config ../.golangci.yml ./...
	cd faults && $(GOLANGCI) run --config ../.golangci.yml ./...
	cd bench && $(GOLANGCI) run --config ../.golangci.yml ./...
	cd session/redisstore && $(GOLANGCI) run --config ../../.golangci.yml ./...

# deps installs what the tests need from Debian, only what is missing
# (interop/install-deps.sh, with apt-get: CI runs as root): gcc and
# libc6-dev, since -race needs cgo; nodejs and npm; nginx;
# python3-websockets; redis-server. Every target that runs -race depends
# on it (faults is defined in mk/reliability.mk; the dependency is added
# here).
deps:
	@sh interop/install-deps.sh

faults: deps

# -timeout: a hung test fails with every goroutine's stack instead of
# holding CI until its own limit (10 min). The root suite takes about
# 10 s and interop about 10 s on 2 cores.
race: deps
	$(GO) test -race -count=1 -timeout 5m ./...

# interop: the same scenarios against real servers (Node ws, Python
# websockets, nginx as a reverse proxy), started by the tests on 127.0.0.1.
# It is its own module (interop/go.mod) so the SDK's go.mod stays lean.
interop: interop-deps
	cd interop && $(GO) test -race -count=1 -timeout 3m ./...

# redis: the Redis session Store (session/redisstore, its own module so
# that go-redis stays out of the SDK's go.mod): the Store contract against
# a redis-server the tests start on 127.0.0.1 (no persistence, killed at
# the end), and the fleet proof, two server processes sharing it, one
# SIGKILLed mid-stream. About 10 s.
redis: deps
	cd session/redisstore && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 3m ./...

# interop-deps installs what the interop suite needs, only when missing:
# the Debian packages of `deps` (nodejs, npm, nginx, python3-websockets)
# and the pinned Node ws (npm ci from the lockfile, again whenever the
# lockfile changes).
INTEROP_NODE := interop/node

interop-deps: deps $(INTEROP_NODE)/node_modules/.package-lock.json

# deps is order-only: npm must be there, but a phony prerequisite would
# rerun npm ci every time.
$(INTEROP_NODE)/node_modules/.package-lock.json: $(INTEROP_NODE)/package.json $(INTEROP_NODE)/package-lock.json | deps
	cd $(INTEROP_NODE) && npm ci --no-audit --no-fund
	@touch $@

# Targets of the reliability suite (faults, fuzz, soak) and the benchmarks
# (bench) live in mk/; included last so that `test` stays the default goal.
-include mk/*.mk
