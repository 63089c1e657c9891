# make bench: resocket side by side with raw gorilla/websocket v1.5.3 (the
# floor), coder/websocket and lxzan/gws, all against one gorilla server in
# a child process, interleaved round by round (bench/cmd/benchrun); then
# benchstat over the same figures, then the allocation tests. The 64 B
# benchmarks also run resocket with Config.Resume against the server's
# session endpoints, paired with plain resocket; ServerIdle measures the
# server's memory per idle connection, plain and session (about 4 minutes
# more). bench/ is a module of its own, so its dependencies never enter
# the SDK's go.mod.
# docs/performance.md says what each figure means and what it measured.
#
#   make bench                          the full run (about 15 minutes)
#   make bench BENCH_ROUNDS=2 BENCH_TIME=100ms BENCH_ONLY=Echo64,Recv4K
#   make bench BENCH_SVG=$(CURDIR)/docs/storm.svg   to publish the histogram
BENCH_ROUNDS ?= 8
BENCH_TIME ?= 300ms
BENCH_ONLY ?=
BENCH_IDLE_CLIENTS ?= 10000
BENCH_STORM_CLIENTS ?= 2000
BENCH_OUT ?= $(CURDIR)/bench/out
BENCH_SVG ?= $(BENCH_OUT)/storm.svg
BENCHSTAT ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

.PHONY: bench bench-allocs bench-redis

# The allocation tests run last, and their failure fails the target, after
# every figure has been printed.
bench:
	@mkdir -p $(BENCH_OUT)
	@uptime
	cd bench && $(GO) run ./cmd/benchrun -rounds $(BENCH_ROUNDS) -benchtime $(BENCH_TIME) \
		-only '$(BENCH_ONLY)' -idle-clients $(BENCH_IDLE_CLIENTS) -storm-clients $(BENCH_STORM_CLIENTS) \
		-out $(BENCH_OUT)/bench.txt -summary $(BENCH_OUT)/summary.md -svg $(BENCH_SVG)
	cd bench && $(GO) run $(BENCHSTAT) -col /impl $(BENCH_OUT)/bench.txt | tee $(BENCH_OUT)/benchstat.txt
	$(BENCH_TESTS)

# bench-allocs: the exact allocation counts (totals of
# runtime.MemStats.Mallocs, not testing.AllocsPerRun's rounded-down mean:
# bench/allocs_test.go says why) and the TLS resumption the wss figures
# rely on, against the same child server, and the limited restart storm
# (bench/cmd/benchrun/storm_test.go: 2,000 clients behind one
# rate.Limiter, about 7 s). make test runs it too.
bench-allocs:
	$(BENCH_TESTS)

BENCH_TESTS = cd bench && $(GO) test -count=1 -timeout 2m -v -run 'Allocs|Resumes' . && \
	$(GO) test -count=1 -timeout 2m -v -run '^TestLimitedStorm$$' ./cmd/benchrun

# bench-redis: the Redis session Store's throughput (session/redisstore's
# BenchmarkStore) against a redis-server the benchmark starts on
# 127.0.0.1: Append then Ack of 64 B messages one at a time, from 16
# sessions at once, and pipelined 64 appends and an ack a round trip.
# Not under -race: it measures.
BENCH_REDIS_TIME ?= 2s

bench-redis: deps
	cd session/redisstore && $(GO) test -run '^$$' -bench '^BenchmarkStore$$' -benchtime $(BENCH_REDIS_TIME) -count=1 -timeout 5m .
