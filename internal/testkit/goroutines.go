package testkit

import (
	"runtime"
	"strings"
	"testing"
)

// pkgPrefix starts every frame of package resocket in a stack; the frames
// of its sub-packages (mocks, this kit, the suites) start with
// "github.com/resocket/resocket/" and do not match.
const pkgPrefix = "github.com/resocket/resocket."

// ClientGoroutines returns, at once, the stacks of the goroutines that run
// code of package resocket or were started by it (frames of tests named
// Test* in package resocket aside): the goroutines of every client alive
// in the process. It takes one runtime.Stack snapshot and does not retry,
// unlike goleak, so it sees the instant it is called. A test that uses it
// must not run in parallel with tests that have clients of their own.
func ClientGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			line = strings.TrimPrefix(line, "created by ")
			if strings.HasPrefix(line, pkgPrefix) && !strings.HasPrefix(line, pkgPrefix+"Test") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// ClientGoroutinesLeft returns the stacks of the goroutines of package
// resocket (see ClientGoroutines) still alive when it is called, or none.
// One exception, which no API can close: the loop's own goroutine between
// closing Done (its last act) and returning. Only that one is given a few
// scheduler yields, not time. It never fails a test, so it may run on any
// goroutine, such as the one ReturnsWithin runs a Close on, right after
// Close returns.
func ClientGoroutinesLeft() []string {
	for range 100 {
		left := ClientGoroutines()
		if len(left) == 0 {
			return nil
		}
		for _, g := range left {
			if !exitingLoop(g) && !exitingHelper(g) {
				return left
			}
		}
		runtime.Gosched()
	}
	return ClientGoroutines() // the loop did not return after closing Done
}

// NoClientGoroutines fails t unless no goroutine of any client is left
// (see ClientGoroutinesLeft) at the instant it is called: for checking
// that Close and Terminate return only after every goroutine of the
// client has ended.
func NoClientGoroutines(t testing.TB, what string) {
	t.Helper()
	NoGoroutinesLeft(t, what, ClientGoroutinesLeft())
}

// NoGoroutinesLeft fails t if left, what ClientGoroutinesLeft returned
// after what, holds any goroutine.
func NoGoroutinesLeft(t testing.TB, what string, left []string) {
	t.Helper()
	if len(left) > 0 {
		t.Fatalf("testkit: %s: %d goroutines of the client are still running:\n%s",
			what, len(left), strings.Join(left, "\n\n"))
	}
}

// helpersSignalLast are the client's short-lived goroutines whose last act
// tells their waiter that they are done (a WaitGroup's Done, a channel
// send or close): the waiter may return a moment before the goroutine
// does.
var helpersSignalLast = []string{
	"(*Client).flush(", "(*Client).flushResumable(", "(*emitter).pump(",
	"(*Client).handshake.func", "(*Client).startReader.func", "(*keepalive).fire(", "(*acker).fire(",
}

// exitingHelper reports whether a stack is one of helpersSignalLast with
// no frame of package resocket below its own: past every wait, returning.
// A helper that is stuck shows a deeper frame (a lock, a write, a select)
// and is reported.
func exitingHelper(stack string) bool {
	frames := 0
	known := false
	for _, line := range strings.Split(stack, "\n") {
		if !strings.HasPrefix(line, pkgPrefix) {
			continue
		}
		frames++
		for _, h := range helpersSignalLast {
			if strings.HasPrefix(line, pkgPrefix+h) {
				known = true
			}
		}
	}
	return frames == 1 && known
}

// exitingLoop reports whether a stack is the loop goroutine inside
// (*Client).finish, its last function, and nothing else of package
// resocket.
func exitingLoop(stack string) bool {
	for _, line := range strings.Split(stack, "\n") {
		if strings.HasPrefix(line, pkgPrefix) &&
			!strings.HasPrefix(line, pkgPrefix+"(*Client).finish(") &&
			!strings.HasPrefix(line, pkgPrefix+"(*Client).run(") {
			return false
		}
	}
	return true
}
