package faults

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/resocket/resocket"
)

// The soak and load runs are benchmarks, not unit tests: they take seconds
// to minutes and measure rather than check a bound. `make soak` runs them:
//
//	go test -run '^$' -bench '^BenchmarkReconnectCycles$' -benchtime 1000x .
//	go test -run '^$' -bench '^BenchmarkRestartStorm2000$' -benchtime 1x .
//
// Each logs its figures (b.Logf) and reports them as benchmark metrics; a
// broken promise (a lost client, a goroutine left behind) fails the run.

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second pass frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// goroutinesBackTo waits (at most 5 s) until no more than n goroutines
// run, and returns how many do.
func goroutinesBackTo(n int) int {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

func kib(b uint64) float64 { return float64(b) / 1024 }

// BenchmarkReconnectCycles runs b.N reconnect cycles (1,000 with
// -benchtime 1000x): the server closes the client's connection with 1012,
// the client reconnects at once (zero backoff). It reports the goroutine
// count before the client and after it has closed (they must match), and
// the live heap after a tenth, half and all of the cycles, the client
// still connected (it must not grow with the cycles).
func BenchmarkReconnectCycles(b *testing.B) {
	srv := newWSServer(b)
	goroutinesBefore := goroutinesBackTo(runtime.NumGoroutine())
	heapBefore := liveHeap()

	c, err := resocket.New(srv.URL(), resocket.Config{
		Backoff:      func() backoff.BackOff { return &backoff.ZeroBackOff{} },
		CloseTimeout: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	connected := make(chan resocket.Connected, 1)
	var closed resocket.Closed
	var disconnects, wrong int
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ev := range c.Events() {
			switch ev := ev.(type) {
			case resocket.Connected:
				connected <- ev
			case resocket.Disconnected:
				disconnects++
				if ev.Disconnect.Code != resocket.StatusServiceRestart && ev.Decision.Action != resocket.Stop ||
					ev.Decision.Action == resocket.GiveUp {
					wrong++
				}
			case resocket.Closed:
				closed = ev
			}
		}
	}()
	awaitConnected := func(i int) {
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			b.Fatalf("cycle %d: not reconnected within 10 s", i)
		}
	}
	awaitConnected(0)

	tenth, half := max(b.N/10, 1), max(b.N/2, 1)
	var heapTenth, heapHalf, heapAll uint64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		// The client may see its Connected before the server has
		// registered the connection.
		for srv.Open() == 0 {
			time.Sleep(50 * time.Microsecond)
		}
		srv.closeAll(1012, "restart")
		awaitConnected(i + 1)
		if i+1 == tenth || i+1 == half {
			b.StopTimer()
			if i+1 == tenth {
				heapTenth = liveHeap()
			}
			if i+1 == half {
				heapHalf = liveHeap()
			}
			b.StartTimer()
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	heapAll = liveHeap()
	goroutinesConnected := runtime.NumGoroutine()

	if err := c.Close(resocket.StatusNormalClosure, "done"); err != nil {
		b.Fatal(err)
	}
	<-readerDone
	goroutinesAfter := goroutinesBackTo(goroutinesBefore)
	heapAfter := liveHeap()

	if closed.Err != nil || len(closed.Unsent) != 0 {
		b.Errorf("Closed = %v", closed)
	}
	if wrong != 0 {
		b.Errorf("%d of %d Disconnected events were not 1012 with a Reconnect", wrong, disconnects)
	}
	if heapAll > heapTenth+heapTenth/2+256<<10 {
		b.Errorf("live heap grew with the cycles: %.0f KiB after %d, %.0f KiB after %d", kib(heapTenth), tenth, kib(heapAll), b.N)
	}
	if goroutinesAfter != goroutinesBefore {
		b.Errorf("goroutines: %d before the client, %d after it closed", goroutinesBefore, goroutinesAfter)
	}
	b.ReportMetric(float64(goroutinesBefore), "goroutines-before")
	b.ReportMetric(float64(goroutinesAfter), "goroutines-after")
	b.ReportMetric(kib(heapTenth), "heap-KiB-at-10%")
	b.ReportMetric(kib(heapHalf), "heap-KiB-at-50%")
	b.ReportMetric(kib(heapAll), "heap-KiB-at-100%")
	b.Logf("%d reconnect cycles (1012 from the server, zero backoff) in %v, %.0f cycles/s; "+
		"goroutines: %d before the client, %d while connected, %d after Close; "+
		"live heap: %.0f KiB before, %.0f KiB after %d cycles, %.0f KiB after %d, %.0f KiB after %d, %.0f KiB after Close",
		b.N, elapsed.Round(time.Millisecond), float64(b.N)/elapsed.Seconds(),
		goroutinesBefore, goroutinesConnected, goroutinesAfter,
		kib(heapBefore), kib(heapTenth), tenth, kib(heapHalf), half, kib(heapAll), b.N, kib(heapAfter))
}

// raiseFileLimit lifts the soft limit on open files to at least n (up to
// the hard limit): every client holds a socket, and so does the server.
func raiseFileLimit(b *testing.B, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		b.Fatalf("need %d open files, the hard limit is %d", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("setrlimit: %v", err)
	}
}

// stormClient follows one client of the storm.
type stormClient struct {
	c *resocket.Client

	mu          sync.Mutex
	connected   []time.Time // when each Connected came
	disconnects []resocket.Disconnected
	dialFailed  int
	closed      bool
}

func (sc *stormClient) read(wg *sync.WaitGroup) {
	defer wg.Done()
	for ev := range sc.c.Events() {
		now := time.Now()
		sc.mu.Lock()
		switch ev := ev.(type) {
		case resocket.Connected:
			sc.connected = append(sc.connected, now)
		case resocket.Disconnected:
			sc.disconnects = append(sc.disconnects, ev)
		case resocket.DialFailed:
			sc.dialFailed++
		case resocket.Closed:
			sc.closed = true
		}
		sc.mu.Unlock()
	}
}

// BenchmarkRestartStorm2000 connects 2,000 clients with the default
// configuration (default backoff: full jitter, first reconnect within 1 s)
// to one local server, then restarts the server: listener closed, 1012 to
// every connection, listener back after the downtime. Every client must
// come back (none lost, none ended); it reports when: the time until all
// are back, the peak number of reconnects in any 10 ms, and the mean rate.
// Run it with -benchtime 1x: one storm per downtime.
func BenchmarkRestartStorm2000(b *testing.B) {
	for _, downtime := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("downtime=%v", downtime), func(b *testing.B) {
			for range b.N {
				restartStorm(b, 2000, downtime)
			}
		})
	}
}

func restartStorm(b *testing.B, n int, downtime time.Duration) {
	raiseFileLimit(b, uint64(3*n+1024))
	goroutinesBefore := runtime.NumGoroutine()
	srv := newWSServer(b)

	ready := time.Now()
	clients := make([]*stormClient, n)
	var readers sync.WaitGroup
	for i := range clients {
		c, err := resocket.New(srv.URL(), resocket.Config{})
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = &stormClient{c: c}
		readers.Add(1)
		go clients[i].read(&readers)
	}
	defer func() {
		// Terminate them all, a few at a time, then check nothing is left.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for _, sc := range clients {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				sc.c.Terminate()
				<-sem
			}()
		}
		wg.Wait()
		readers.Wait()
		srv.close()
		if after := goroutinesBackTo(goroutinesBefore); after > goroutinesBefore {
			b.Errorf("goroutines: %d before the clients, %d after they ended", goroutinesBefore, after)
		}
	}()

	waitUntil(b, 60*time.Second, func() bool { return srv.Open() == n }, "all clients connected")
	connectAll := time.Since(ready)
	heap := liveHeap()
	b.Logf("%d clients connected in %v; live heap %.0f KiB (%.1f KiB per client, server side included); %d goroutines",
		n, connectAll.Round(time.Millisecond), kib(heap), kib(heap)/float64(n), runtime.NumGoroutine())

	restart := time.Now()
	srv.restart(1012, "restart", downtime)
	closedAll := time.Since(restart) - downtime
	waitUntil(b, 120*time.Second, func() bool {
		for _, sc := range clients {
			sc.mu.Lock()
			back := len(sc.connected) >= 2
			sc.mu.Unlock()
			if !back {
				return false
			}
		}
		return true
	}, "every client reconnected")

	// Reconnect times, measured from the start of the restart.
	var times []time.Duration
	lost, wrong, refused := 0, 0, 0
	for _, sc := range clients {
		sc.mu.Lock()
		if sc.closed || len(sc.connected) != 2 {
			lost++
		}
		times = append(times, sc.connected[1].Sub(restart))
		for _, d := range sc.disconnects {
			if d.Disconnect.Code != resocket.StatusServiceRestart || d.Decision.Action != resocket.Reconnect {
				wrong++
			}
		}
		if len(sc.disconnects) != 1 {
			wrong++
		}
		refused += sc.dialFailed
		sc.mu.Unlock()
	}
	slices.Sort(times)
	first, last := times[0], times[len(times)-1]
	peak, peakAt := 0, time.Duration(0)
	for i, j := 0, 0; i < len(times); i++ {
		for times[i]-times[j] >= 10*time.Millisecond {
			j++
		}
		if i-j+1 > peak {
			peak, peakAt = i-j+1, times[j]
		}
	}
	open := srv.Open()
	if lost != 0 || wrong != 0 || open != n {
		b.Errorf("%d clients lost, %d with unexpected Disconnected events, %d connections open at the server (want %d)",
			lost, wrong, open, n)
	}
	rate := float64(n) / (last - first).Seconds()
	b.ReportMetric(last.Seconds(), "s-until-all-back")
	b.ReportMetric(float64(peak), "peak-reconnects/10ms")
	b.ReportMetric(rate, "mean-reconnects/s")
	b.ReportMetric(float64(refused), "refused-attempts")
	b.ReportMetric(float64(lost), "lost-clients")
	b.Logf("restart: 1012 to %d clients (all closed after %v), listener down %v; every client back after %v "+
		"(first %v, median %v, p99 %v); peak %d reconnects in 10 ms (at +%v); mean %.0f reconnects/s between first and last; "+
		"%d attempts refused while down; %d lost; %d connections open at the server",
		n, closedAll.Round(time.Millisecond), downtime, last.Round(time.Millisecond),
		first.Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond), times[len(times)*99/100].Round(time.Millisecond),
		peak, peakAt.Round(time.Millisecond), rate, refused, lost, open)
}

// waitUntil polls cond every 20 ms until it holds, failing b after timeout.
func waitUntil(b *testing.B, timeout time.Duration, cond func() bool, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			b.Fatalf("timed out after %v waiting for: %s", timeout, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
