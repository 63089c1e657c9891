// Command benchrun measures resocket side by side with raw gorilla/websocket
// (the floor), coder/websocket and lxzan/gws, all against the same gorilla
// server running in a child process (cmd/benchserver).
//
// Machines drift, up to 3x within minutes when shared, so a ratio holds
// only between figures taken in one run, close together. benchrun runs
// round after round; in each round every benchmark opens every client and
// times them taking turns, slice by slice, in an order rotated from slice
// to slice and from round to round, and each ratio to gorilla is computed
// within the round. It prints the median and the range of those per-round
// ratios, and writes every measurement in Go's benchmark format for
// benchstat. Idle memory is measured in a child process per library
// (benchrun -idle-child), the restart storm in this process.
//
//	go run ./cmd/benchrun -rounds 8 -out out/bench.txt -svg out/storm.svg
//
// Run it from the bench module (it builds cmd/benchserver with go build).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/resocket/resocket/bench/internal/harness"
)

type options struct {
	rounds       int
	benchtime    time.Duration
	only         map[string]bool
	out          string
	summary      string
	idleClients  int
	idleRounds   int
	stormClients int
	stormRounds  int
	svg          string
	stormProfile string
	// stormPolicies: the storm policies to run, by name; empty: all.
	stormPolicies map[string]bool
}

func main() {
	var o options
	var only string
	flag.IntVar(&o.rounds, "rounds", 8, "rounds of the throughput and reconnect benchmarks")
	flag.DurationVar(&o.benchtime, "benchtime", 300*time.Millisecond, "target duration of one measurement")
	flag.StringVar(&only, "only", "", "comma-separated benchmarks to run (default all): "+strings.Join(allBenchNames(), ","))
	flag.StringVar(&o.out, "out", "", "write measurements in Go benchmark format here (for benchstat)")
	flag.StringVar(&o.summary, "summary", "", "write the ratio tables (markdown) here")
	flag.IntVar(&o.idleClients, "idle-clients", 10000, "idle connections per client library")
	flag.IntVar(&o.idleRounds, "idle-rounds", 0, "rounds of the idle benchmark (0: -rounds)")
	flag.IntVar(&o.stormClients, "storm-clients", 2000, "clients in the restart storm")
	flag.IntVar(&o.stormRounds, "storm-rounds", 0, "rounds of the storm, per policy (0: -rounds)")
	flag.StringVar(&o.svg, "svg", "", "write the storm's reconnects-over-time histogram here (SVG)")
	flag.StringVar(&o.stormProfile, "storm-cpuprofile", "", "profile the first storm of each policy, from the 1012 until all are back, into this file (% is replaced by the policy)")
	stormOnly := flag.String("storm-policies", "", "comma-separated storm policies to run (default all): "+strings.Join(stormPolicyNames(), ","))
	idleChild := flag.String("idle-child", "", "internal: open idle connections with this library and report")
	idleURL := flag.String("idle-url", "", "internal: the /hold URL for -idle-child")
	idleProfile := flag.String("idle-memprofile", "", "with -idle-child: write a heap profile here after measuring")
	flag.Parse()
	log.SetFlags(log.Ltime)

	if *idleChild != "" {
		if err := runIdleChild(*idleChild, *idleURL, o.idleClients, *idleProfile); err != nil {
			log.Fatal(err)
		}
		return
	}
	if o.idleRounds == 0 {
		o.idleRounds = o.rounds
	}
	if o.stormRounds == 0 {
		o.stormRounds = o.rounds
	}
	o.only = map[string]bool{}
	for _, name := range strings.Split(only, ",") {
		if name = strings.TrimSpace(name); name != "" {
			o.only[name] = true
		}
	}
	o.stormPolicies = map[string]bool{}
	for _, name := range strings.Split(*stormOnly, ",") {
		if name = strings.TrimSpace(name); name != "" {
			if !contains(stormPolicyNames(), name) {
				log.Fatalf("unknown storm policy %q; have %s", name, strings.Join(stormPolicyNames(), ","))
			}
			o.stormPolicies[name] = true
		}
	}
	for name := range o.only {
		if !contains(allBenchNames(), name) {
			log.Fatalf("unknown benchmark %q; have %s", name, strings.Join(allBenchNames(), ","))
		}
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func allBenchNames() []string {
	names := []string{}
	for _, b := range throughputBenches() {
		names = append(names, b.name)
	}
	return append(names, "Idle", "ServerIdle", "Storm")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o options) wants(name string) bool { return len(o.only) == 0 || o.only[name] }

func run(o options) error {
	if _, err := harness.RaiseFileLimit(); err != nil {
		return err
	}
	srv, err := harness.Start()
	if err != nil {
		return err
	}
	defer srv.Close()

	rep := newReport(machine())
	fmt.Print(rep.machine.String())

	var tbs []throughputBench
	for _, b := range throughputBenches() {
		if o.wants(b.name) {
			tbs = append(tbs, b)
		}
	}
	if len(tbs) > 0 {
		if err := runThroughput(o, srv, tbs, rep); err != nil {
			return err
		}
	}
	if o.wants("Idle") {
		if err := runIdle(o, srv, rep); err != nil {
			return err
		}
	}
	if o.wants("ServerIdle") {
		if err := runServerIdle(o, rep); err != nil {
			return err
		}
	}
	if o.wants("Storm") {
		if err := runStorm(o, srv, rep); err != nil {
			return err
		}
	}
	rep.machine.LoadEnd = loadavg()
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep.benchfmt()), 0o600); err != nil {
			return err
		}
	}
	sum := rep.summary()
	fmt.Print("\n" + sum)
	if o.summary != "" {
		if err := os.WriteFile(o.summary, []byte(sum), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// machineInfo is what the figures were measured on.
type machineInfo struct {
	CPU, Go, Kernel    string
	SDK                string // the commit of the resocket working tree
	NumCPU, GOMAXPROCS int
	LoadStart, LoadEnd string
	Start              time.Time
}

func machine() machineInfo {
	m := machineInfo{Go: runtime.Version(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadStart: loadavg(), Start: time.Now()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	// The SDK is built from the working tree (bench/go.mod replaces it
	// with ../): say which commit, and whether its Go files had changes.
	if out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.SDK = strings.TrimSpace(string(out))
		// The packages' own files, tests aside: what the benchmarks link
		// (the bench server links session/).
		if st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--",
			":(glob)*.go", ":(glob)session/*.go", ":(glob)internal/**/*.go",
			":(exclude,glob)**/*_test.go").Output(); err == nil && len(st) > 0 {
			m.SDK += " with uncommitted changes to " + strings.Join(strings.Fields(string(st)), " ")
		} else if err == nil {
			m.SDK += " (no uncommitted changes to the package's files)"
		}
	}
	return m
}

func (m machineInfo) String() string {
	return fmt.Sprintf("machine: %s, %d cores (GOMAXPROCS %d), %s, %s\nresocket: %s\nstarted: %s, load average (1/5/15 min): %s\n",
		m.CPU, m.NumCPU, m.GOMAXPROCS, m.Kernel, m.Go, m.SDK, m.Start.UTC().Format(time.RFC3339), m.LoadStart)
}

// loadavg returns the 1, 5 and 15 minute load averages, as uptime shows.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
