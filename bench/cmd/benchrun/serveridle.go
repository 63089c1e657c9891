package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resocket/resocket/bench/internal/clients"
	"github.com/resocket/resocket/bench/internal/harness"
)

// ServerIdle measures the server's memory per idle connection: the plain
// gorilla endpoint (/hold, gorilla clients) against resumable sessions on
// a session.Server (/resume-hold, resocket clients with Config.Resume),
// each on a fresh bench server process, its growth after GC and
// FreeOSMemory ÷ connections. The clients run in this process: only the
// server is measured. For sessions it also measures them detached: the
// clients gone without a close frame (Terminate), the sessions kept for
// their ResumeTimeout.
type serverIdleResult struct {
	Kind   string // "plain", "session", "session-detached"
	N      int
	Round  int
	Before harness.Mem
	After  harness.Mem
}

func (x serverIdleResult) per(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(x.N) }

func (x serverIdleResult) RSS() float64   { return x.per(x.Before.RSS, x.After.RSS) }
func (x serverIdleResult) Heap() float64  { return x.per(x.Before.HeapInuse, x.After.HeapInuse) }
func (x serverIdleResult) Stack() float64 { return x.per(x.Before.StackInuse, x.After.StackInuse) }
func (x serverIdleResult) Goroutines() float64 {
	return float64(x.After.Goroutines-x.Before.Goroutines) / float64(x.N)
}

var serverIdleKinds = []string{"plain", "session", "session-detached"}

func runServerIdle(o options, rep *report) error {
	dir, err := os.MkdirTemp("", "resocket-serveridle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := harness.BuildServer(dir)
	if err != nil {
		return err
	}
	n := o.idleClients
	if lim, err := harness.RaiseFileLimit(); err == nil && lim < 1<<20 && int(lim) < n+256 { //nolint:gosec // lim < 2^20
		n = int(lim) - 256 //nolint:gosec // lim < 2^20
	}
	rep.serverIdleN = n
	for r := range o.idleRounds {
		load := loadavg()
		rep.serverIdleRounds = append(rep.serverIdleRounds, roundInfo{round: r, load: load, at: time.Now()})
		log.Printf("server idle round %d/%d (%d connections), load %s", r+1, o.idleRounds, n, load)
		for _, plain := range rotate([]bool{true, false}, r) {
			xs, err := serverIdleOnce(bin, filepath.Join(dir, fmt.Sprint(r, plain)), plain, n)
			if err != nil {
				return err
			}
			for _, x := range xs {
				x.Round = r
				rep.serverIdle = append(rep.serverIdle, x)
			}
		}
	}
	return nil
}

// serverIdleOnce starts a server, opens n idle clients and measures it.
func serverIdleOnce(bin, dir string, plain bool, n int) ([]serverIdleResult, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	srv, err := harness.StartBinary(bin, dir)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	im, path := clients.Gorilla(), "/hold"
	wait := srv.WaitHeld
	if !plain {
		im, path = clients.ResocketResume(), "/resume-hold"
		wait = srv.WaitSessions
	}
	url := srv.URL(path, false)
	// One connection first, so that what the server sets up once (pools,
	// the session.Server's first use) is in the baseline.
	c, err := im.Idle(url, nil)
	if err != nil {
		return nil, err
	}
	c.Close()
	// Gone (for a session: its ResumeTimeout over) before the baseline.
	if err := wait(0, time.Minute); err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond)
	before, err := srv.Mem()
	if err != nil {
		return nil, err
	}
	conns, err := openIdle(im, url, n)
	defer func() { closeAll(conns) }()
	if err != nil {
		return nil, err
	}
	if err := wait(n, time.Minute); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // first acks, handshake leftovers
	after, err := srv.Mem()
	if err != nil {
		return nil, err
	}
	kind := "plain"
	if !plain {
		kind = "session"
	}
	out := []serverIdleResult{{Kind: kind, N: n, Before: before, After: after}}
	if plain {
		return out, nil
	}
	// Terminate cuts each connection without a close frame: the sessions
	// stay, detached, for the server's ResumeTimeout (10 s).
	closeAll(conns)
	conns = nil
	time.Sleep(2 * time.Second)
	if err := srv.WaitSessions(n, time.Second); err != nil {
		return nil, fmt.Errorf("detached sessions: %w", err)
	}
	detached, err := srv.Mem()
	if err != nil {
		return nil, err
	}
	return append(out, serverIdleResult{Kind: "session-detached", N: n, Before: before, After: detached}), nil
}

// openIdle opens n idle clients, 8 at a time.
func openIdle(im clients.Impl, url string, n int) ([]clients.Closer, error) {
	conns := make([]clients.Closer, n)
	err := eightAtATime(n, func(i int) error {
		c, err := im.Idle(url, nil)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i] = c
		return nil
	})
	return conns, err
}

func closeAll(conns []clients.Closer) {
	_ = eightAtATime(len(conns), func(i int) error {
		if conns[i] != nil {
			conns[i].Close()
		}
		return nil
	})
}

// eightAtATime runs f for 0 to n-1 on 8 goroutines. A worker stops at its
// first error; the first error of all is returned.
func eightAtATime(n int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (r *report) serverIdleFigure(kind string, f func(serverIdleResult) float64) stats {
	return figureOf(r.serverIdle, func(x serverIdleResult) bool { return x.Kind == kind }, f)
}

func (r *report) serverIdleSummary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**ServerIdle** (the bench server's memory per idle connection: %d connections on a fresh server "+
		"process each time; growth after GC and FreeOSMemory ÷ connections; plain: gorilla's /hold, gorilla clients; "+
		"session: a session.Server's /resume-hold with the in-memory Store, resocket clients with Resume; "+
		"session-detached: the same sessions once their clients went without a close frame, kept for ResumeTimeout), "+
		"%d rounds; 1-minute load at each round's start: %s\n\n", r.serverIdleN, len(r.serverIdleRounds), loads(r.serverIdleRounds))
	b.WriteString("| server | RSS B/conn | heap B/conn | stack B/conn | goroutines/conn | RSS ÷ plain's, paired: median [range] |\n|---|---:|---:|---:|---:|---:|\n")
	for _, kind := range serverIdleKinds {
		rss := r.serverIdleFigure(kind, serverIdleResult.RSS)
		if rss.n == 0 {
			continue
		}
		ratio := "1 (the floor)"
		if kind != "plain" {
			ratio = summarize(pairedRatios(r.serverIdle, kind, "plain",
				func(x serverIdleResult) string { return x.Kind }, func(x serverIdleResult) int { return x.Round },
				serverIdleResult.RSS)).ratio()
		}
		fmt.Fprintf(&b, "| %s | %.0f [%.0f, %.0f] | %.0f | %.0f | %.2f | %s |\n", kind, rss.median, rss.min, rss.max,
			r.serverIdleFigure(kind, serverIdleResult.Heap).median, r.serverIdleFigure(kind, serverIdleResult.Stack).median,
			r.serverIdleFigure(kind, serverIdleResult.Goroutines).median, ratio)
	}
	b.WriteString("\n")
	return b.String()
}
