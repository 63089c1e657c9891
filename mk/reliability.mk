# Reliability targets: fault injection, fuzzing, soak and load.
# Included by the Makefile (`include mk/reliability.mk`), which defines GO.
# docs/reliability.md states what each target shows and the figures.
#
#   make faults   Toxiproxy fault-injection tests (faults/, its own module),
#                 with 200 reconnect cycles and 1,000 clients through a restart
#   make fuzz     every fuzz target for FUZZTIME each (the seeds run in `make test`)
#   make soak     1,000 reconnect cycles, then 2,000 clients through a 1012 restart

GO ?= go

# FUZZTIME bounds each fuzz target; FUZZPARALLEL is its number of workers
# (one: fuzzing shares the machine).
FUZZTIME ?= 30s
FUZZPARALLEL ?= 1
FUZZ_TARGETS := FuzzCloseFrame FuzzParseRetryAfter FuzzDefaultPolicy FuzzDefaultPolicyFreshCredentials

# SOAK_CYCLES is the number of reconnect cycles of BenchmarkReconnectCycles.
SOAK_CYCLES ?= 1000

.PHONY: faults fuzz soak

# faults: vet, then the fault tests under the race detector, with the
# short soak (TestReconnectCycles) and storm (TestRestartStorm). Those two
# run under -race as well: the soak counts goroutines and weighs the heap,
# and the storm checks the reconnect delays the clients drew, not when their
# connections came, so neither times anything the race detector slows. The
# suite takes ~30 s; FAULTS_TIMEOUT stops a hung run long before that
# becomes a hung `make test`. go.sum is committed, so Toxiproxy comes from
# the module proxy on first use.
FAULTS_TIMEOUT ?= 5m

faults:
	cd faults && $(GO) vet ./... && $(GO) test -race -count=1 -timeout $(FAULTS_TIMEOUT) ./...

# fuzz: -fuzz takes one target at a time, so each runs in turn; a failure
# (its input is saved under testdata/fuzz/<target>/) does not stop the others.
fuzz:
	@failed=""; for target in $(FUZZ_TARGETS); do \
		echo "fuzz: $$target for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) . || failed="$$failed $$target"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

# soak: the soak and load benchmarks, one run each, figures printed (-v
# shows their logs). Not under -race: they measure.
soak:
	cd faults && $(GO) test -run '^$$' -bench '^BenchmarkReconnectCycles$$' -benchtime $(SOAK_CYCLES)x -count=1 -v .
	cd faults && $(GO) test -run '^$$' -bench '^BenchmarkRestartStorm2000$$' -benchtime 1x -count=1 -timeout 15m -v .
