package main

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resocket/resocket/bench/internal/harness"
)

// TestLimitedStorm: 2,000 clients sharing one rate.Limiter as their
// DialLimiter go through a restart storm (1012 to all at once, no
// downtime). Every client comes back, each with one dial, and the dials
// that start in any 100 ms or 1 s do not exceed what the limiter allows:
// its burst plus its rate over the window.
//
// One allowance: rate.Limiter's Wait reserves a slot and sleeps until it,
// so when this process is held up (on a shared machine, by other work),
// the waits that fell due meanwhile all end together, and their dials
// start together. The limiter cannot undo a stall of the process it runs
// in: 2,000 close frames arriving at once keep the 2 cores of our test
// machine busy, and other work on a shared machine does the same. So the
// window is widened by the longest stall the test measured while the
// storm ran (a 1 ms ticker's lateness), and the test logs both.
//
// Everything runs on 127.0.0.1 (the bench server is a child process) and
// every wait is bounded (stormOnce gives up after a minute). It takes
// about 10 s, so -short skips it.
func TestLimitedStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 clients through a limited storm: about 10 s")
	}
	defer goleak.VerifyNone(t)
	if _, err := harness.RaiseFileLimit(); err != nil {
		t.Fatal(err)
	}
	srv, err := harness.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close() }()

	const clients = 2000
	var limited stormPolicy
	for _, p := range stormPolicies {
		if p.name == "limited" {
			limited = p
		}
	}
	if limited.limit == 0 {
		t.Fatal("no limited storm policy")
	}
	stall, stop := watchStalls()
	res, err := stormOnce(srv, limited, clients, 0, "")
	stop()
	if err != nil {
		t.Fatal(err) // among others: a client not back within a minute
	}
	if len(res.back) != clients {
		t.Fatalf("%d of %d clients back", len(res.back), clients)
	}
	if len(res.dials) < clients {
		t.Fatalf("%d dials after the storm for %d clients", len(res.dials), clients)
	}
	worst := stall()
	for _, w := range []time.Duration{100 * time.Millisecond, time.Second} {
		if most, allowed := res.maxInWindow(w), res.allowed(w+worst); most > allowed {
			t.Errorf("%d dials started within %v, the limiter allows %d in that window widened by the longest stall (%v)",
				most, w, allowed, worst)
		}
	}
	t.Logf("longest stall of the process during the storm: %v", worst.Round(time.Millisecond))
	t.Logf("%d clients back after %v; %d dials: most in any 10 ms %d (allowed %d), 100 ms %d (allowed %d), 1 s %d (allowed %d)",
		clients, res.allBack().Round(time.Millisecond), len(res.dials),
		res.maxInWindow(10*time.Millisecond), res.allowed(10*time.Millisecond),
		res.maxInWindow(100*time.Millisecond), res.allowed(100*time.Millisecond),
		res.maxInWindow(time.Second), res.allowed(time.Second))
}

// watchStalls measures how late a 1 ms ticker runs, until stop: the
// longest time this process was held up. stall returns it.
func watchStalls() (stall func() time.Duration, stop func()) {
	var mu sync.Mutex
	var worst time.Duration
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case now := <-tick.C:
				mu.Lock()
				worst = max(worst, now.Sub(last)-time.Millisecond)
				mu.Unlock()
				last = now
			case <-done:
				return
			}
		}
	}()
	return func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return worst
		}, func() {
			close(done)
			<-ended
		}
}
