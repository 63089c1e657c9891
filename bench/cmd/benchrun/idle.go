package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/resocket/resocket/bench/internal/clients"
	"github.com/resocket/resocket/bench/internal/harness"
)

// idleImpls are measured for idle memory: gorilla with its one reader
// goroutine; resocket as a user runs it (one goroutine reading Events);
// resocket alone, nobody reading Events; resocket with gorilla's default
// dialer (a write buffer per connection instead of a pooled one); coder
// with one goroutine calling Read; gws with its ReadLoop goroutine.
var idleImpls = []string{"gorilla", "resocket", "resocket-onevent", "resocket-bare", "resocket-nopool", "coder", "gws"}

// idleResult is what a child process reports after opening N idle
// connections: the growth of its RSS, heap, stacks and goroutine count.
type idleResult struct {
	Impl        string
	N           int
	Round       int
	Before      sample
	After       sample
	DialSeconds float64
}

type sample struct {
	RSS        uint64 // VmRSS, bytes
	HeapInuse  uint64
	StackInuse uint64
	Goroutines int
}

func (x idleResult) per(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(x.N) }

func (x idleResult) RSSPerClient() float64   { return x.per(x.Before.RSS, x.After.RSS) }
func (x idleResult) HeapPerClient() float64  { return x.per(x.Before.HeapInuse, x.After.HeapInuse) }
func (x idleResult) StackPerClient() float64 { return x.per(x.Before.StackInuse, x.After.StackInuse) }
func (x idleResult) GoroutinesPerClient() float64 {
	return float64(x.After.Goroutines-x.Before.Goroutines) / float64(x.N)
}

// take collects garbage, returns freed memory to the OS, and samples.
func take() sample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{RSS: harness.VMRSS(), HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
}

// runIdleChild is the child process: it opens n idle connections with
// one library, measures, prints JSON and exits without closing them (the
// kernel does).
func runIdleChild(name, url string, n int, memprofile string) error {
	if memprofile != "" {
		runtime.MemProfileRate = 1 // every allocation, for an exact breakdown
	}
	if _, err := harness.RaiseFileLimit(); err != nil {
		return err
	}
	ims, err := clients.ByName(name)
	if err != nil {
		return err
	}
	im := ims[0]
	// One connection opened and closed first, so that what is set up once
	// per process (pools, the dialer's state) is in the baseline.
	c, err := im.Idle(url, nil)
	if err != nil {
		return err
	}
	c.Close()
	time.Sleep(200 * time.Millisecond)
	before := take()

	start := time.Now()
	conns, err := openIdle(im, url, n)
	dial := time.Since(start)
	if err != nil {
		return err
	}
	// Let what runs once per connection (handshake leftovers, the first
	// events) settle; no keepalive ping fires this soon (25 s).
	time.Sleep(time.Second)
	after := take()
	if memprofile != "" {
		f, err := os.Create(filepath.Clean(memprofile))
		if err != nil {
			return err
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	runtime.KeepAlive(conns)
	return json.NewEncoder(os.Stdout).Encode(idleResult{Impl: name, N: n, Before: before, After: after, DialSeconds: dial.Seconds()})
}

func runIdle(o options, srv *harness.Server, rep *report) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// Each child holds n sockets, and so does the server: both need the
	// file limit, which the hard limit caps.
	n := o.idleClients
	if lim, err := harness.RaiseFileLimit(); err == nil && lim < 1<<20 && int(lim) < n+256 { //nolint:gosec // lim < 2^20
		n = int(lim) - 256 //nolint:gosec // lim < 2^20
		log.Printf("idle: RLIMIT_NOFILE is %d: %d clients instead of %d", lim, n, o.idleClients)
	}
	rep.idleN = n
	for r := range o.idleRounds {
		load := loadavg()
		rep.idleRounds = append(rep.idleRounds, roundInfo{round: r, load: load, at: time.Now()})
		log.Printf("idle round %d/%d (%d clients each), load %s", r+1, o.idleRounds, n, load)
		for _, name := range rotate(idleImpls, r) {
			cmd := exec.Command(exe, "-idle-child", name, "-idle-url", srv.URL("/hold", false), //nolint:gosec // ourselves
				"-idle-clients", strconv.Itoa(n))
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("idle %s: %w", name, err)
			}
			var x idleResult
			if err := json.NewDecoder(bytes.NewReader(out)).Decode(&x); err != nil {
				return fmt.Errorf("idle %s: %w in %q", name, err, out)
			}
			x.Round = r
			rep.idle = append(rep.idle, x)
			// The next child starts once the server has let go of these.
			if err := srv.WaitHeld(0, time.Minute); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *report) idleRatio(impl string, f func(idleResult) float64) stats {
	return summarize(pairedRatios(r.idle, impl, "gorilla",
		func(x idleResult) string { return x.Impl }, func(x idleResult) int { return x.Round }, f))
}

func (r *report) idleFigure(impl string, f func(idleResult) float64) stats {
	return figureOf(r.idle, func(x idleResult) bool { return x.Impl == impl }, f)
}

// figureOf summarizes f over the results that keep selects.
func figureOf[T any](results []T, keep func(T) bool, f func(T) float64) stats {
	var xs []float64
	for _, x := range results {
		if keep(x) {
			xs = append(xs, f(x))
		}
	}
	return summarize(xs)
}

func (r *report) idleSummary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Idle** (%d idle connected clients per library, each in a child process of its own; "+
		"growth of the process after GC and FreeOSMemory ÷ clients), %d rounds; 1-minute load at each round's start: %s\n\n",
		r.idleN, len(r.idleRounds), loads(r.idleRounds))
	b.WriteString("| client | RSS B/client | heap B/client | stack B/client | goroutines/client | RSS ÷ gorilla's, paired: median [range] |\n|---|---:|---:|---:|---:|---:|\n")
	for _, impl := range idleImpls {
		rss := r.idleFigure(impl, idleResult.RSSPerClient)
		if rss.n == 0 {
			continue
		}
		ratio := "1 (the floor)"
		if impl != "gorilla" {
			ratio = r.idleRatio(impl, idleResult.RSSPerClient).ratio()
		}
		fmt.Fprintf(&b, "| %s | %.0f [%.0f, %.0f] | %.0f | %.0f | %.2f | %s |\n", impl, rss.median, rss.min, rss.max,
			r.idleFigure(impl, idleResult.HeapPerClient).median, r.idleFigure(impl, idleResult.StackPerClient).median,
			r.idleFigure(impl, idleResult.GoroutinesPerClient).median, ratio)
	}
	b.WriteString("\n")
	return b.String()
}
