package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

type roundInfo struct {
	round int
	load  string
	at    time.Time
}

type report struct {
	machine machineInfo
	benches []throughputBench
	meas    map[string][]measurement
	rounds  []roundInfo // of the throughput benchmarks

	idle       []idleResult
	idleRounds []roundInfo
	idleN      int

	serverIdle       []serverIdleResult
	serverIdleRounds []roundInfo
	serverIdleN      int

	storm       []stormResult
	stormRounds []roundInfo
	stormN      int
}

func newReport(m machineInfo) *report {
	return &report{machine: m, meas: make(map[string][]measurement)}
}

func (r *report) add(b throughputBench, m measurement) {
	if _, ok := r.meas[b.name]; !ok {
		r.benches = append(r.benches, b)
	}
	r.meas[b.name] = append(r.meas[b.name], m)
}

// stats is the median and range of a sample.
type stats struct {
	median, min, max float64
	n                int
}

func summarize(xs []float64) stats {
	if len(xs) == 0 {
		return stats{median: math.NaN(), min: math.NaN(), max: math.NaN()}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{median: med, min: s[0], max: s[len(s)-1], n: len(s)}
}

func (s stats) ratio() string {
	if s.n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx [%.2f, %.2f]", s.median, s.min, s.max)
}

// pairedRatios returns, round by round, impl's figure over the floor's
// (value picks the figure).
func pairedRatios[T any](rows []T, impl, floor string, name func(T) string, round func(T) int, value func(T) float64) []float64 {
	byRound := map[int]map[string]float64{}
	for _, m := range rows {
		if byRound[round(m)] == nil {
			byRound[round(m)] = map[string]float64{}
		}
		byRound[round(m)][name(m)] = value(m)
	}
	var out []float64
	for _, v := range byRound {
		f, ok1 := v[floor]
		x, ok2 := v[impl]
		if ok1 && ok2 && f > 0 {
			out = append(out, x/f)
		}
	}
	return out
}

// rateRatio is impl's rate over gorilla's, per round (> 1: faster).
func (r *report) rateRatio(bench, impl string) stats { return r.rateRatioTo(bench, impl, "gorilla") }

// rateRatioTo is impl's rate over floor's, per round (> 1: faster).
func (r *report) rateRatioTo(bench, impl, floor string) stats {
	return summarize(pairedRatios(r.meas[bench], impl, floor,
		func(m measurement) string { return m.impl }, func(m measurement) int { return m.round },
		func(m measurement) float64 { return 1 / m.nsPerOp }))
}

// costRatio is impl's time per op over gorilla's, per round (< 1: cheaper).
func (r *report) costRatio(bench, impl string) stats {
	return summarize(pairedRatios(r.meas[bench], impl, "gorilla",
		func(m measurement) string { return m.impl }, func(m measurement) int { return m.round },
		func(m measurement) float64 { return m.nsPerOp }))
}

func (r *report) figure(bench, impl string, f func(measurement) float64) stats {
	var xs []float64
	for _, m := range r.meas[bench] {
		if m.impl == impl {
			xs = append(xs, f(m))
		}
	}
	return summarize(xs)
}

// benchfmt writes every measurement in Go's benchmark format.
func (r *report) benchfmt() string {
	var b strings.Builder
	fmt.Fprintf(&b, "goos: linux\ngoarch: amd64\npkg: github.com/resocket/resocket/bench\ncpu: %s\n", r.machine.CPU)
	for _, bench := range r.benches {
		for _, m := range r.meas[bench.name] {
			fmt.Fprintf(&b, "Benchmark%s/impl=%s \t%d\t%.1f ns/op\t%.1f B/op\t%.2f allocs/op\n",
				m.bench, m.impl, m.n, m.nsPerOp, m.bytesPerOp, m.allocsPerOp)
		}
	}
	for _, x := range r.idle {
		fmt.Fprintf(&b, "BenchmarkIdle/impl=%s \t%d\t%.0f rss-B/client\t%.0f heap-B/client\t%.0f stack-B/client\t%.2f goroutines/client\n",
			x.Impl, x.N, x.RSSPerClient(), x.HeapPerClient(), x.StackPerClient(), x.GoroutinesPerClient())
	}
	for _, x := range r.serverIdle {
		fmt.Fprintf(&b, "BenchmarkServerIdle/impl=%s \t%d\t%.0f rss-B/conn\t%.0f heap-B/conn\t%.0f stack-B/conn\t%.2f goroutines/conn\n",
			x.Kind, x.N, x.RSS(), x.Heap(), x.Stack(), x.Goroutines())
	}
	for _, s := range r.storm {
		fmt.Fprintf(&b, "BenchmarkStorm/impl=%s \t%d\t%d peak/10ms\t%.1f mean/10ms\t%.2f peak/mean\t%.0f ms-all-back\t%.0f ms-fan-out\t%.2f peak-after-burst/mean\n",
			s.policy, s.clients, s.peak(), s.mean(), float64(s.peak())/s.mean(), ms(s.allBack()),
			ms(s.fanOut()), float64(s.peakAfterBurst())/s.mean())
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func loads(rounds []roundInfo) string {
	if len(rounds) == 0 {
		return ""
	}
	var l []string
	for _, r := range rounds {
		l = append(l, strings.Fields(r.load)[0])
	}
	return strings.Join(l, " ")
}

// summary is the markdown report: per benchmark, each client's figures
// and its paired ratio to gorilla, then the targets.
func (r *report) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s, %d cores, %s, %s; resocket %s. Started %s; load average (1/5/15 min) at start: %s; at end: %s.\n\n",
		r.machine.CPU, r.machine.NumCPU, r.machine.Kernel, r.machine.Go, r.machine.SDK,
		r.machine.Start.UTC().Format(time.RFC3339), r.machine.LoadStart, r.machine.LoadEnd)
	if len(r.benches) > 0 {
		fmt.Fprintf(&b, "Throughput and reconnect: %d rounds; 1-minute load at each round's start: %s.\n\n",
			len(r.rounds), loads(r.rounds))
		for _, bench := range r.benches {
			unit, ratioName := "msg/s", "rate ÷ gorilla's"
			if bench.cost {
				unit, ratioName = "cycles/s", "time per cycle ÷ gorilla's"
			}
			fmt.Fprintf(&b, "**%s** (%s), %d ops per measurement\n\n", bench.name, bench.desc, r.meas[bench.name][0].n)
			fmt.Fprintf(&b, "| client | %s (median) | ns/op (median [min, max]) | allocs/op | B/op | %s, paired: median [range] |\n|---|---:|---:|---:|---:|---:|\n", unit, ratioName)
			for _, impl := range bench.impls {
				ns := r.figure(bench.name, impl, func(m measurement) float64 { return m.nsPerOp })
				if ns.n == 0 {
					continue
				}
				al := r.figure(bench.name, impl, func(m measurement) float64 { return m.allocsPerOp })
				by := r.figure(bench.name, impl, func(m measurement) float64 { return m.bytesPerOp })
				ratio := "1 (the floor)"
				if impl != "gorilla" {
					if bench.cost {
						ratio = r.costRatio(bench.name, impl).ratio()
					} else {
						ratio = r.rateRatio(bench.name, impl).ratio()
					}
				}
				fmt.Fprintf(&b, "| %s | %s | %.0f [%.0f, %.0f] | %.2f | %.0f | %s |\n",
					impl, si(1e9/ns.median), ns.median, ns.min, ns.max, al.median, by.median, ratio)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString(r.resumeSummary())
	if len(r.idle) > 0 {
		b.WriteString(r.idleSummary())
	}
	if len(r.serverIdle) > 0 {
		b.WriteString(r.serverIdleSummary())
	}
	if len(r.storm) > 0 {
		b.WriteString(r.stormSummary())
	}
	b.WriteString(r.targets())
	return b.String()
}

// si formats a rate with a k or M suffix.
func si(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

type target struct {
	what, goal, got string
	met             string
}

func verdict(ok bool, rangeOK bool) string {
	switch {
	case ok && rangeOK:
		return "met"
	case ok:
		return "met (median; not every round)"
	}
	return "**missed**"
}

func (r *report) targets() string {
	var ts []target
	rate := func(bench string, goal float64) {
		s := r.rateRatio(bench, "resocket")
		if s.n == 0 {
			return
		}
		ts = append(ts, target{what: bench + " rate, resocket ÷ gorilla", goal: fmt.Sprintf("≥ %.1fx", goal),
			got: s.ratio(), met: verdict(s.median >= goal, s.min >= goal)})
	}
	rate("Echo64", 0.9)
	rate("Recv64", 0.9)
	rate("Send64", 0.9)
	rate("Recv4K", 1.1)
	for _, bench := range []string{"Echo64", "Recv64", "Send64"} {
		for _, impl := range resumeImpls {
			s := r.rateRatioTo(bench, impl, plainOf(impl))
			if s.n == 0 {
				continue
			}
			ts = append(ts, target{what: fmt.Sprintf("%s rate, %s ÷ %s", bench, impl, plainOf(impl)), goal: "≥ 0.9x",
				got: s.ratio(), met: verdict(s.median >= 0.9, s.min >= 0.9)})
		}
	}
	if al := r.figure("Recv4K", "resocket", func(m measurement) float64 { return m.allocsPerOp }); al.n > 0 {
		ts = append(ts, target{what: "Recv4K allocs per message, resocket", goal: "≤ 3",
			got: fmt.Sprintf("%.2f [%.2f, %.2f] (gorilla %.2f)", al.median, al.min, al.max,
				r.figure("Recv4K", "gorilla", func(m measurement) float64 { return m.allocsPerOp }).median),
			met: verdict(al.median <= 3.05, al.max <= 3.05)})
	}
	// Send's goal is no allocation beyond gorilla's own on a connection
	// dialed the same way: resocket-nopool has gorilla's DefaultDialer.
	// (resocket's default dialer pools the write buffer, which costs
	// gorilla one allocation per message; TestResocketSendAllocs compares
	// that case with gorilla given a pool.)
	if al := r.figure("Send64", "resocket-nopool", func(m measurement) float64 { return m.allocsPerOp }); al.n > 0 {
		g := r.figure("Send64", "gorilla", func(m measurement) float64 { return m.allocsPerOp })
		ts = append(ts, target{what: "Send64 allocs per message, resocket with gorilla's dialer (resocket-nopool)",
			goal: fmt.Sprintf("≤ gorilla's (%.2f)", g.median),
			got:  fmt.Sprintf("%.2f [%.2f, %.2f]", al.median, al.min, al.max),
			met:  verdict(al.median <= g.median+0.05, al.max <= g.median+0.05)})
	}
	for _, bench := range []string{"ReconnectWS", "ReconnectWSS"} {
		s := r.costRatio(bench, "resocket")
		if s.n == 0 {
			continue
		}
		ts = append(ts, target{what: bench + " cycle time, resocket ÷ gorilla", goal: "≤ 1.2x",
			got: s.ratio(), met: verdict(s.median <= 1.2, s.max <= 1.2)})
	}
	if s := r.idleRatio("resocket", func(x idleResult) float64 { return x.RSSPerClient() }); s.n > 0 {
		ts = append(ts, target{what: fmt.Sprintf("Idle RSS per client at %d clients, resocket ÷ gorilla", r.idleN),
			goal: "≤ 1.2x", got: s.ratio(), met: verdict(s.median <= 1.2, s.max <= 1.2)})
	}
	if st := r.stormStats("default"); st.rounds > 0 {
		ts = append(ts, target{what: fmt.Sprintf("Storm (%d clients, default config): peak per 10 ms ÷ mean rate", r.stormN),
			goal: "≤ 3x", got: st.ratio.ratio(), met: verdict(st.ratio.median <= 3, st.ratio.max <= 3)})
		ts = append(ts, target{what: "Storm, default config: all clients back", goal: "within the first backoff window (1 s)",
			got: fmt.Sprintf("%.0f ms [%.0f, %.0f]", st.allBack.median, st.allBack.min, st.allBack.max),
			met: verdict(st.allBack.median <= 1000, st.allBack.max <= 1000)})
	}
	if len(ts) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("**Targets** (ratios paired within each round: median [min, max])\n\n| target | goal | measured | |\n|---|---|---|---|\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.what, t.goal, t.got, t.met)
	}
	b.WriteString("\n")
	return b.String()
}

// resumeImpls are the clients with Config.Resume, each paired with the
// plain client used the same way (plainOf).
var resumeImpls = []string{"resocket-resume", "resocket-resume-onevent", "resocket-resume-raw"}

func plainOf(impl string) string {
	return strings.Replace(strings.Replace(impl, "-resume", "", 1), "-raw", "", 1)
}

// resumeSummary is the resume clients' rates over plain resocket's, paired
// within each round: what resumable delivery costs the client, with the
// server's session machinery behind it.
func (r *report) resumeSummary() string {
	var b strings.Builder
	rows := 0
	for _, bench := range r.benches {
		for _, impl := range resumeImpls {
			s := r.rateRatioTo(bench.name, impl, "resocket")
			if s.n == 0 {
				continue
			}
			if rows == 0 {
				b.WriteString("**Resumable sessions ÷ plain resocket** (Config.Resume against the server's session.Server " +
					"endpoints, plain against its gorilla endpoints; rates paired within each round: median [min, max])\n\n" +
					"| benchmark | client | rate ÷ resocket's | rate ÷ the same use without Resume |\n|---|---|---:|---:|\n")
			}
			rows++
			fmt.Fprintf(&b, "| %s | %s | %s | %s ÷ %s: %s |\n", bench.name, impl, s.ratio(),
				impl, plainOf(impl), r.rateRatioTo(bench.name, impl, plainOf(impl)).ratio())
		}
	}
	if rows > 0 {
		b.WriteString("\n")
	}
	return b.String()
}
