package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
	"golang.org/x/time/rate"

	"github.com/resocket/resocket/bench/internal/harness"
)

const bucket = 10 * time.Millisecond

type stormPolicy struct {
	name, desc string
	code       int // what the server closes with
	cfg        func() resocket.Config
	// context rows are reported but not drawn, and carry no target.
	context bool
	// limit > 0: every client of the storm shares one
	// rate.NewLimiter(limit, burst) as its Config.DialLimiter, and the
	// storm records when each client dials.
	limit rate.Limit
	burst int
}

// The limited storm's limiter: 1,000 dials a second, bursts of 20. A
// fleet of 2,000 then takes at least two seconds to come back, but never
// sends a server more than 30 handshakes in 10 ms.
const (
	stormLimit = 1000
	stormBurst = 20
)

var stormPolicies = []stormPolicy{
	{name: "default", desc: "default Config (DefaultBackoff: 100 ms + full jitter, first delay uniform in [100 ms, 1 s))",
		code: 1012, cfg: func() resocket.Config { return resocket.Config{} }},
	{name: "fixed-100ms", desc: "Backoff: a constant 100 ms (backoff.NewConstantBackOff)", code: 1012,
		cfg: func() resocket.Config {
			return resocket.Config{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(100 * time.Millisecond) }}
		}},
	{name: "limited", desc: fmt.Sprintf("default Config, DialLimiter: one rate.NewLimiter(%d/s, burst %d) shared by every client", stormLimit, stormBurst),
		code: 1012, limit: stormLimit, burst: stormBurst, cfg: func() resocket.Config { return resocket.Config{} }},
	{name: "1013-default", desc: "default Config, server sends 1013 (DefaultPolicy: MinDelay 5 s)", code: 1013,
		context: true, cfg: func() resocket.Config { return resocket.Config{} }},
}

func stormPolicyNames() []string {
	var names []string
	for _, p := range stormPolicies {
		names = append(names, p.name)
	}
	return names
}

// stormResult is one restart storm: when each client was back, counted
// from the moment the storm was requested.
type stormResult struct {
	policy  string
	round   int
	clients int
	back    []time.Duration // sorted
	write   time.Duration   // how long the server took to send every 1012
	// Where the time went, each sorted: when the client saw the 1012, the
	// backoff delay it drew, and the rest (back - down - delay: emitting
	// events, dialing, the handshake, OnConnect).
	down, delays, late []time.Duration
	// With a limiter: when each dial of the storm started (TCP connect,
	// in the Dialer's NetDialContext), sorted; the limiter's rate and burst.
	dials []time.Duration
	limit rate.Limit
	burst int
}

// dialHistogram counts the dials per 10 ms.
func (s stormResult) dialHistogram() []int {
	h := make([]int, int(s.dials[len(s.dials)-1]/bucket)+1)
	for _, t := range s.dials {
		h[int(t/bucket)]++
	}
	return h
}

// maxInWindow is the most dials that started within any window of
// length w (sliding, closed at both ends).
func (s stormResult) maxInWindow(w time.Duration) int {
	most, j := 0, 0
	for i := range s.dials {
		for s.dials[i]-s.dials[j] > w {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// allowed is the most dials the limiter lets start within any window of
// length w: the burst, plus the rate over the window.
func (s stormResult) allowed(w time.Duration) int {
	return s.burst + int(float64(s.limit)*w.Seconds())
}

// dialLog records when dials start, for the limited storm.
type dialLog struct {
	mu    sync.Mutex
	times []time.Time
}

// dialer is a Dialer (as websocket.DefaultDialer, without a proxy: the
// server is on loopback) that records each dial.
func (l *dialLog) dialer() *websocket.Dialer {
	var nd net.Dialer
	return &websocket.Dialer{
		HandshakeTimeout: 45 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			l.mu.Lock()
			l.times = append(l.times, time.Now())
			l.mu.Unlock()
			return nd.DialContext(ctx, network, addr)
		},
	}
}

// since returns the dials from start on, as offsets from it, sorted.
func (l *dialLog) since(start time.Time) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, t := range l.times {
		if !t.Before(start) {
			out = append(out, t.Sub(start))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// stormClient is what one client's event reader saw.
type stormClient struct {
	down, back time.Time
	delay      time.Duration
}

func pct(l []time.Duration, p float64) time.Duration { return l[int(p*float64(len(l)-1))] }

func (s stormResult) allBack() time.Duration { return s.back[len(s.back)-1] }

func (s stormResult) histogram() []int {
	h := make([]int, int(s.allBack()/bucket)+1)
	for _, t := range s.back {
		h[int(t/bucket)]++
	}
	return h
}

func (s stormResult) peakBucket() int {
	h := s.histogram()
	k := 0
	for i, c := range h {
		if c > h[k] {
			k = i
		}
	}
	return k
}

// fanOut is when the last client saw its close frame: until then the
// machine is busy delivering and answering them.
func (s stormResult) fanOut() time.Duration { return s.down[len(s.down)-1] }

// peakAfterBurst is the peak over the buckets from 20 ms after the
// fan-out on: the buckets just after it take in the clients that drew a
// delay shorter than the fan-out, held up until it ends.
func (s stormResult) peakAfterBurst() int {
	from := s.fanOut() + 20*time.Millisecond
	p := 0
	for k, c := range s.histogram() {
		if time.Duration(k)*bucket >= from {
			p = max(p, c)
		}
	}
	return p
}

func (s stormResult) peak() int {
	p := 0
	for _, c := range s.histogram() {
		p = max(p, c)
	}
	return p
}

// mean is the mean number of reconnects per 10 ms over the recovery, from
// the storm until the last client is back.
func (s stormResult) mean() float64 {
	return float64(s.clients) / (float64(s.allBack()) / float64(bucket))
}

// stormOnce connects n clients to /hold, has the server send all of them
// 1012, and records when each is connected again.
func stormOnce(srv *harness.Server, p stormPolicy, n, round int, profile string) (stormResult, error) {
	url := srv.URL("/hold", false)
	cs := make([]*resocket.Client, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() { defer wg.Done(); c.Terminate() }()
		}
		wg.Wait()
		_ = srv.WaitHeld(0, time.Minute)
	}()
	var up sync.WaitGroup
	backAt := make(chan stormClient, n)
	var dials *dialLog
	var limiter *rate.Limiter
	if p.limit > 0 {
		dials = new(dialLog)
		limiter = rate.NewLimiter(p.limit, p.burst)
	}
	for range n {
		cfg := p.cfg()
		if limiter != nil {
			cfg.DialLimiter = limiter
			cfg.Dialer = dials.dialer()
		}
		c, err := resocket.New(url, cfg)
		if err != nil {
			return stormResult{}, err
		}
		cs = append(cs, c)
		up.Add(1)
		go func() {
			conns := 0
			var sc stormClient
			for ev := range c.Events() {
				switch ev := ev.(type) {
				case resocket.Connected:
					now := time.Now()
					switch conns++; conns {
					case 1:
						up.Done()
					case 2:
						sc.back = now
						backAt <- sc
					}
				case resocket.Disconnected:
					if conns == 1 {
						sc.down = time.Now()
					}
				case resocket.Reconnecting:
					if conns == 1 {
						sc.delay = ev.Delay
					}
				}
			}
		}()
		if limiter == nil && len(cs)%200 == 0 { // do not flood the listen backlog (the limiter paces its own)
			time.Sleep(20 * time.Millisecond)
		}
	}
	waited := make(chan struct{})
	go func() { up.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(time.Minute):
		return stormResult{}, fmt.Errorf("storm: clients did not all connect")
	}
	if err := srv.WaitHeld(n, time.Minute); err != nil {
		return stormResult{}, err
	}
	runtime.GC()
	time.Sleep(300 * time.Millisecond)

	if profile != "" {
		f, err := os.Create(filepath.Clean(profile))
		if err != nil {
			return stormResult{}, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return stormResult{}, err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	start := time.Now()
	got, write, err := srv.Storm(p.code)
	if err != nil {
		return stormResult{}, err
	}
	if got != n {
		return stormResult{}, fmt.Errorf("storm: server held %d connections, want %d", got, n)
	}
	res := stormResult{policy: p.name, round: round, clients: n, write: write}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range n {
		select {
		case sc := <-backAt:
			res.back = append(res.back, sc.back.Sub(start))
			res.down = append(res.down, sc.down.Sub(start))
			res.delays = append(res.delays, sc.delay)
			res.late = append(res.late, sc.back.Sub(sc.down)-sc.delay)
		case <-ctx.Done():
			return stormResult{}, fmt.Errorf("storm: %d of %d clients back after a minute", len(res.back), n)
		}
	}
	for _, l := range [][]time.Duration{res.back, res.down, res.delays, res.late} {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	}
	if dials != nil {
		res.dials, res.limit, res.burst = dials.since(start), p.limit, p.burst
	}
	return res, nil
}

func runStorm(o options, srv *harness.Server, rep *report) error {
	rep.stormN = o.stormClients
	for r := range o.stormRounds {
		load := loadavg()
		rep.stormRounds = append(rep.stormRounds, roundInfo{round: r, load: load, at: time.Now()})
		for _, p := range rotate(stormPolicies, r) {
			if len(o.stormPolicies) > 0 && !o.stormPolicies[p.name] {
				continue
			}
			profile := ""
			if o.stormProfile != "" && r == 0 {
				profile = strings.Replace(o.stormProfile, "%", p.name, 1)
			}
			res, err := stormOnce(srv, p, o.stormClients, r, profile)
			if err != nil {
				return fmt.Errorf("storm %s: %w", p.name, err)
			}
			h := res.histogram()
			log.Printf("storm round %d/%d %s: peak %d per 10 ms, mean %.1f, all back at %.0f ms (1012s written in %.1f ms; "+
				"fan-out: last seen at %.1f ms; largest delay drawn %.1f ms; dial and handshake median %.1f ms, p99 %.1f ms, max %.1f ms), load %s\n\tpeak at %d ms; peak after the fan-out + 20 ms %d; first 200 ms per 10 ms: %v",
				r+1, o.stormRounds, p.name, res.peak(), res.mean(), ms(res.allBack()), ms(res.write),
				ms(pct(res.down, 1)), ms(pct(res.delays, 1)), ms(pct(res.late, 0.5)), ms(pct(res.late, 0.99)), ms(pct(res.late, 1)),
				load, 10*res.peakBucket(), res.peakAfterBurst(), h[:min(len(h), 20)])
			if res.limit > 0 {
				log.Printf("storm round %d/%d %s: %d dials; most in any 10 ms %d (allowed %d), 100 ms %d (allowed %d), 1 s %d (allowed %d)",
					r+1, o.stormRounds, p.name, len(res.dials), res.maxInWindow(10*time.Millisecond), res.allowed(10*time.Millisecond),
					res.maxInWindow(100*time.Millisecond), res.allowed(100*time.Millisecond), res.maxInWindow(time.Second), res.allowed(time.Second))
			}
			rep.storm = append(rep.storm, res)
		}
	}
	if o.svg != "" {
		svg := rep.stormSVG()
		if err := os.WriteFile(o.svg, []byte(svg), 0o600); err != nil {
			return err
		}
	}
	return nil
}

type stormStats struct {
	rounds            int
	peak, mean, ratio stats
	allBack, fanOut   stats // ms
	afterRatio        stats // the peak from 20 ms after the fan-out on ÷ the mean
}

func (r *report) stormStats(policy string) stormStats {
	var peak, mean, ratio, back, after, fan []float64
	for _, s := range r.storm {
		if s.policy == policy {
			after = append(after, float64(s.peakAfterBurst())/s.mean())
			fan = append(fan, ms(s.fanOut()))
			peak = append(peak, float64(s.peak()))
			mean = append(mean, s.mean())
			ratio = append(ratio, float64(s.peak())/s.mean())
			back = append(back, ms(s.allBack()))
		}
	}
	return stormStats{rounds: len(peak), peak: summarize(peak), mean: summarize(mean), ratio: summarize(ratio),
		allBack: summarize(back), afterRatio: summarize(after), fanOut: summarize(fan)}
}

func (r *report) stormSummary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Storm** (%d resocket clients in this process; the server sends 1012 (the context row: 1013) to all at t = 0; "+
		"a client is back at its next Connected event), %d rounds per policy; 1-minute load at each round's start: %s\n\n",
		r.stormN, len(r.stormRounds), loads(r.stormRounds))
	b.WriteString("| policy | peak reconnects per 10 ms | mean per 10 ms over the recovery | peak ÷ mean | all back (ms) | fan-out: last close seen (ms) | peak after the fan-out + 20 ms ÷ mean |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range stormPolicies {
		st := r.stormStats(p.name)
		if st.rounds == 0 {
			continue
		}
		f := func(s stats, format string) string {
			return fmt.Sprintf(format+" ["+format+", "+format+"]", s.median, s.min, s.max)
		}
		fmt.Fprintf(&b, "| %s: %s | %s | %s | %s | %s | %s | %s |\n", p.name, p.desc,
			f(st.peak, "%.0f"), f(st.mean, "%.1f"), f(st.ratio, "%.2f"), f(st.allBack, "%.0f"),
			f(st.fanOut, "%.0f"), f(st.afterRatio, "%.2f"))
	}
	b.WriteString("\n")
	for _, s := range r.storm {
		if s.limit > 0 {
			fmt.Fprintf(&b, "- limited, round %d: %d dials after the 1012; most in any 10 ms %d (the limiter allows %d), in any 100 ms %d (allows %d), in any 1 s %d (allows %d); %d of %d clients back\n",
				s.round+1, len(s.dials), s.maxInWindow(10*time.Millisecond), s.allowed(10*time.Millisecond),
				s.maxInWindow(100*time.Millisecond), s.allowed(100*time.Millisecond),
				s.maxInWindow(time.Second), s.allowed(time.Second), len(s.back), s.clients)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// representative returns the round of policy whose peak is the median.
func (r *report) representative(policy string) (stormResult, bool) {
	var rs []stormResult
	for _, s := range r.storm {
		if s.policy == policy {
			rs = append(rs, s)
		}
	}
	if len(rs) == 0 {
		return stormResult{}, false
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].peak() < rs[j].peak() })
	return rs[(len(rs)-1)/2], true
}

// stormSVG draws the reconnects-over-time histogram of each policy, one
// panel each on a shared time axis, as plain SVG.
func (r *report) stormSVG() string {
	var panels []stormResult
	for _, p := range stormPolicies {
		if p.context {
			continue
		}
		if s, ok := r.representative(p.name); ok {
			panels = append(panels, s)
		}
	}
	const (
		width, left, right = 860, 70, 20
		top, panelH, gap   = 76, 170, 86
	)
	plotW := float64(width - left - right)
	height := top + len(panels)*(panelH+gap) + 10
	span := 0.0
	for _, s := range panels {
		span = max(span, ms(s.allBack()))
		if len(s.dials) > 0 {
			span = max(span, ms(s.dials[len(s.dials)-1]))
		}
	}
	span = math.Ceil((span+1)/100) * 100
	x := func(msec float64) float64 { return float64(left) + msec/span*plotW }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">Restart storm: %d resocket clients, the server sends 1012 to all at t = 0</text>`+"\n", left, r.stormN)
	fmt.Fprintf(&b, `<text x="%d" y="42" fill="#555">Reconnects per 10 ms (client's Connected event), the median-peak round of %d per policy</text>`+"\n", left, len(r.stormRounds))
	colors := []string{"#2b6cb0", "#c05621", "#2f855a"}
	for i, s := range panels {
		y0 := float64(top + i*(panelH+gap) + 20) // top of the plot area
		base := y0 + panelH
		h := s.histogram()
		if s.limit > 0 {
			// What the limiter governs: when the dials start.
			h = s.dialHistogram()
		}
		ymax := niceCeil(float64(slices.Max(h)))
		y := func(v float64) float64 { return base - v/ymax*panelH }
		desc := s.policy
		for _, p := range stormPolicies {
			if p.name == s.policy {
				desc = p.desc
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-26, escape(desc))
		// Axes and gridlines.
		for _, v := range []float64{0, ymax / 2, ymax} {
			fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, x(span), y(v), y(v))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y(v)+4, trimFloat(v))
		}
		for t := 0.0; t <= span; t += 100 {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x(t), x(t), base, base+4)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%.0f</text>`+"\n", x(t), base+17, t)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">ms after the 1012</text>`+"\n", x(span), base+32)
		// The fan-out: until the last client has seen its close frame.
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="#f1f1f1"/>`+"\n", left, y0, x(ms(s.fanOut()))-float64(left), panelH)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#777" font-size="11">fan-out of the close frames</text>`+"\n", left+4, y0+12)
		// Bars.
		bw := x(10) - x(0)
		for k, c := range h {
			if c == 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>`+"\n",
				x(float64(k*10)), y(float64(c)), math.Max(bw-0.6, 0.6), base-y(float64(c)), colors[i%len(colors)])
		}
		// Mean rate over the recovery, and the moment the last was back.
		if s.limit == 0 {
			fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222" stroke-dasharray="5,4"/>`+"\n",
				left, x(ms(s.allBack())), y(s.mean()), y(s.mean()))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#c53030" stroke-dasharray="3,3"/>`+"\n",
			x(ms(s.allBack())), x(ms(s.allBack())), y0, base)
		if s.limit > 0 {
			// What the limiter lets through per 10 ms, the burst aside.
			per := float64(s.limit) * bucket.Seconds()
			fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#2f855a" stroke-width="2"/>`+"\n",
				left, x(span), y(per), y(per))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#2f855a">the limit: %s per 10 ms (most dials in any 10 ms: %d; in any 1 s: %d of %d allowed)</text>`+"\n",
				x(span), y(per)-4, trimFloat(per), s.maxInWindow(bucket), s.maxInWindow(time.Second), s.allowed(time.Second))
		}
		if s.limit > 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#333">dials started per 10 ms (not Connected events) · all %d clients back at %.0f ms (red)</text>`+"\n",
				left, y0-9, s.clients, ms(s.allBack()))
		} else {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#333">peak %d per 10 ms, %d after the fan-out + 20 ms · mean over the recovery %.1f (dashed) · all back at %.0f ms (red)</text>`+"\n",
				left, y0-9, s.peak(), s.peakAfterBurst(), s.mean(), ms(s.allBack()))
		}
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, left, y0, base)
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, x(span), base, base)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
