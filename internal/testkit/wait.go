package testkit

import (
	"net"
	"testing"
	"time"

	"github.com/resocket/resocket"
)

// WaitFor is a bound for waiting on something that should happen
// promptly: long enough for a loaded 2-core machine running -race, short
// enough that a hang fails quickly. It is a deadline, never a delay.
const WaitFor = 5 * time.Second

// NewClient is resocket.New that must succeed; t.Cleanup terminates the
// client (failing t if Terminate hangs), so that a test that fails half
// way leaves no goroutine behind.
func NewClient(t testing.TB, url string, cfg resocket.Config) *resocket.Client {
	t.Helper()
	c, err := resocket.New(url, cfg)
	if err != nil {
		t.Fatalf("testkit: New(%q): %v", url, err)
	}
	if c == nil {
		t.Fatalf("testkit: New(%q) returned no client and no error", url)
	}
	TerminateOnCleanup(t, c)
	return c
}

// TerminateOnCleanup makes t.Cleanup terminate c, failing t if Terminate
// hangs: for a client made by resocket.Dial, or by New in a test that
// checks New's own results.
func TerminateOnCleanup(t testing.TB, c *resocket.Client) {
	t.Helper()
	t.Cleanup(func() { terminate(t, c) })
}

// ReturnsWithin runs f on a goroutine of its own and fails t unless f
// returns within d; it returns how long f took. When it fails, f is left
// running: a goroutine-leak check then points at it.
func ReturnsWithin(t testing.TB, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return time.Since(start)
	case <-timer.C:
		t.Fatalf("testkit: %s did not return within %v", what, d)
		return d
	}
}

// WaitClosed waits up to timeout for ch to be closed, discarding what
// is sent on it meanwhile, and fails t if it is not.
func WaitClosed[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("testkit: %s not closed within %v", what, timeout)
			return
		}
	}
}

// ClosedPort returns a 127.0.0.1 address that nothing listens on: a dial
// to it is refused at once. (Another process could take the port later;
// on loopback, within a test, that does not happen in practice.)
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: listen on 127.0.0.1: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("testkit: close listener: %v", err)
	}
	return addr
}

// Receive returns the next value sent on ch, failing t if none comes
// within timeout or ch is closed first.
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("testkit: %s: closed without a value", what)
		}
		return v
	case <-timer.C:
		t.Fatalf("testkit: %s: nothing within %v", what, timeout)
	}
	var zero T
	return zero
}

// SendAll calls send(1) to send(n) in order on a goroutine of its own, so
// that the test can read the other end meanwhile, and returns a channel
// that receives the first error, or nil once all n have gone.
func SendAll(n int, send func(i int) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			if err := send(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}
