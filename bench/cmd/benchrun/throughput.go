package main

import (
	"fmt"
	"log"
	"runtime"
	"time"

	"github.com/resocket/resocket/bench/internal/clients"
	"github.com/resocket/resocket/bench/internal/harness"
)

// throughputBench is one benchmark measured by op count and time: a
// message rate or a reconnect cycle.
type throughputBench struct {
	name  string
	desc  string
	impls []string // gorilla first: the floor
	// cost: the op is a cost (a reconnect cycle), ratios are impl/gorilla
	// time; otherwise a rate, ratios are impl/gorilla rate.
	cost bool
	open func(im clients.Impl, srv *harness.Server) (runner, error)
}

// runner runs n ops on one open client; close is not timed.
type runner struct {
	run   func(n int) error
	close func()
}

var msg64 = make([]byte, 64)

func throughputBenches() []throughputBench {
	all := []string{"gorilla", "resocket", "resocket-onevent", "coder", "gws"}
	withNoPool := []string{"gorilla", "resocket", "resocket-onevent", "resocket-nopool", "coder", "gws"}
	// The 64 B benchmarks also run the resume clients, against the
	// server's resumable endpoints (the raw one against endpoints that
	// keep nothing), paired with plain resocket.
	resume := []string{"resocket-resume", "resocket-resume-onevent", "resocket-resume-raw"}
	all64 := append(append([]string(nil), all...), resume...)
	withNoPool64 := append(append([]string(nil), withNoPool...), resume...)
	dial := func(path string, f func(c clients.Client, n int) error) func(clients.Impl, *harness.Server) (runner, error) {
		return func(im clients.Impl, srv *harness.Server) (runner, error) {
			c, err := im.Dial(srv.URL(im.Path(path), false), nil)
			if err != nil {
				return runner{}, err
			}
			return runner{run: func(n int) error { return f(c, n) }, close: c.Close}, nil
		}
	}
	cycle := func(tls bool) func(clients.Impl, *harness.Server) (runner, error) {
		return func(im clients.Impl, srv *harness.Server) (runner, error) {
			c, err := im.Cycler(srv.URL("/close1012", tls), srv.TLSConfig(tls))
			if err != nil {
				return runner{}, err
			}
			return runner{run: c.Cycle, close: c.Close}, nil
		}
	}
	return []throughputBench{
		{name: "Echo64", desc: "echo round trip, 64 B, one in flight", impls: withNoPool64,
			open: dial("/echo", func(c clients.Client, n int) error { return c.Echo(n, msg64) })},
		{name: "Recv64", desc: "receive stream, 64 B messages", impls: all64,
			open: dial("/stream?size=64", clients.Client.Recv)},
		{name: "Recv4K", desc: "receive stream, 4 KiB messages", impls: all,
			open: dial("/stream?size=4096", clients.Client.Recv)},
		{name: "Send64", desc: "send stream, 64 B messages", impls: withNoPool64,
			open: dial("/sink", func(c clients.Client, n int) error { return c.Send(n, msg64) })},
		{name: "ReconnectWS", desc: "reconnect cycle, ws: server closes with 1012, client back (zero backoff)",
			impls: []string{"gorilla", "resocket", "coder", "gws"}, cost: true, open: cycle(false)},
		{name: "ReconnectWSS", desc: "reconnect cycle, wss", cost: true, open: cycle(true),
			impls: []string{"gorilla", "resocket", "gorilla-resume", "coder", "gws"}},
	}
}

// measurement is one client's figures in one round.
type measurement struct {
	bench, impl string
	round       int
	n           int // ops timed
	nsPerOp     float64
	bytesPerOp  float64
	allocsPerOp float64
}

// nSlices is how many pieces a round's timed ops are cut into: the clients
// take turns piece by piece, so that a burst of load from elsewhere lands
// on all of them alike instead of on whichever ran at that moment.
const nSlices = 10

// measureRound opens every client, then times n ops of each, interleaved
// slice by slice in an order rotated from slice to slice. Before that,
// each client runs a warm-up and then n/5 ops alone, whose allocations
// are recorded: counted over the whole process (the server runs in
// another), so they are the client's own, on whatever goroutines it uses.
func measureRound(b throughputBench, ims []clients.Impl, srv *harness.Server, n, round int) ([]measurement, error) {
	runners := make([]runner, len(ims))
	for i, im := range ims {
		r, err := b.open(im, srv)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: open: %w", b.name, im.Name, err)
		}
		defer r.close()
		runners[i] = r
	}
	ms := make([]measurement, len(ims))
	for i, r := range runners {
		if err := r.run(max(n/10, 5)); err != nil {
			return nil, fmt.Errorf("%s/%s: warm-up: %w", b.name, ims[i].Name, err)
		}
		na := max(n/5, 5)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		err := r.run(na)
		runtime.ReadMemStats(&m1)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", b.name, ims[i].Name, err)
		}
		ms[i] = measurement{bench: b.name, impl: ims[i].Name, round: round,
			bytesPerOp:  float64(m1.TotalAlloc-m0.TotalAlloc) / float64(na),
			allocsPerOp: float64(m1.Mallocs-m0.Mallocs) / float64(na)}
	}
	per := max(n/nSlices, 1)
	elapsed := make([]time.Duration, len(ims))
	order := make([]int, len(ims))
	for i := range order {
		order[i] = i
	}
	for s := range nSlices {
		for _, i := range rotate(order, s) {
			runtime.GC() // each client pays for its own garbage
			start := time.Now()
			err := runners[i].run(per)
			elapsed[i] += time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", b.name, ims[i].Name, err)
			}
		}
	}
	for i := range ms {
		ms[i].n = per * nSlices
		ms[i].nsPerOp = float64(elapsed[i].Nanoseconds()) / float64(per*nSlices)
	}
	return ms, nil
}

// measure times n ops of one client alone (for calibration).
func measure(b throughputBench, im clients.Impl, srv *harness.Server, n int) (time.Duration, error) {
	r, err := b.open(im, srv)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: open: %w", b.name, im.Name, err)
	}
	defer r.close()
	if err := r.run(max(n/10, 5)); err != nil {
		return 0, fmt.Errorf("%s/%s: warm-up: %w", b.name, im.Name, err)
	}
	start := time.Now()
	if err := r.run(n); err != nil {
		return 0, fmt.Errorf("%s/%s: %w", b.name, im.Name, err)
	}
	return time.Since(start), nil
}

// calibrate picks the op count that makes gorilla's run last about
// benchtime; every client then runs that many, in every round.
func calibrate(b throughputBench, srv *harness.Server, benchtime time.Duration) (int, error) {
	floor, err := clients.ByName(b.impls[0])
	if err != nil {
		return 0, err
	}
	n := 20
	for {
		took, err := measure(b, floor[0], srv, n)
		if err != nil {
			return 0, err
		}
		if took >= benchtime/5 || n >= 1e8 {
			perOp := float64(took) / float64(n)
			return max(int(float64(benchtime)/perOp), 10*nSlices), nil
		}
		n *= 10
	}
}

// rotate returns list starting at element r mod len(list).
func rotate[T any](list []T, r int) []T {
	k := r % len(list)
	return append(append([]T(nil), list[k:]...), list[:k]...)
}

func runThroughput(o options, srv *harness.Server, benches []throughputBench, rep *report) error {
	ops := make(map[string]int)
	impls := make(map[string][]clients.Impl)
	for _, b := range benches {
		ims, err := clients.ByName(b.impls...)
		if err != nil {
			return err
		}
		impls[b.name] = ims
		n, err := calibrate(b, srv, o.benchtime)
		if err != nil {
			return err
		}
		ops[b.name] = n
		// A warm-up round of every client, not recorded.
		if _, err := measureRound(b, ims, srv, max(n/4, 10*nSlices), -1); err != nil {
			return err
		}
		log.Printf("%s: %d ops per client per round", b.name, n)
	}
	for r := range o.rounds {
		load := loadavg()
		rep.rounds = append(rep.rounds, roundInfo{round: r, load: load, at: time.Now()})
		log.Printf("round %d/%d, load %s", r+1, o.rounds, load)
		for _, b := range benches {
			ms, err := measureRound(b, rotate(impls[b.name], r), srv, ops[b.name], r)
			if err != nil {
				return err
			}
			for _, m := range ms {
				rep.add(b, m)
			}
		}
	}
	return nil
}
