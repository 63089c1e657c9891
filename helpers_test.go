package resocket

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket/mocks"
)

// waitFor bounds every wait for something that should happen promptly.
const waitFor = 5 * time.Second

// fastConfig reconnects at once and bounds Close by one second; the
// keepalive keeps its (long) default so that it never interferes.
func fastConfig() Config {
	return Config{
		Backoff:      func() backoff.BackOff { return &backoff.ZeroBackOff{} },
		CloseTimeout: time.Second,
	}
}

// constantBackoff returns a Config.Backoff that always waits d.
func constantBackoff(d time.Duration) func() backoff.BackOff {
	return func() backoff.BackOff { return backoff.NewConstantBackOff(d) }
}

// newClient is New that must succeed; the client is terminated when the
// test ends, so that goleak stays clean whatever the test did.
func newClient(t testing.TB, url string, cfg Config) *Client {
	t.Helper()
	c, err := New(url, cfg)
	require.NoError(t, err)
	require.NotNil(t, c)
	t.Cleanup(c.Terminate)
	return c
}

// connect starts a client against srv and waits until it is connected and
// the server holds its connection.
func connect(t testing.TB, srv *mocks.Server, cfg Config) (*Client, Connected, *mocks.Conn) {
	t.Helper()
	c := newClient(t, srv.URL(), cfg)
	conn := srv.NextConn(t, waitFor)
	ev := waitEvent[Connected](t, c, waitFor)
	return c, ev, conn
}

// nextEvent returns the next event, failing the test if none comes within
// timeout or the channel closes.
func nextEvent(t testing.TB, c *Client, timeout time.Duration) Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("Events closed, want another event")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no event within %v", timeout)
	}
	return nil
}

// waitEvent skips events until one of type T and returns it. It fails the
// test, listing what it skipped, on timeout or when the channel closes.
func waitEvent[T Event](t testing.TB, c *Client, timeout time.Duration) T {
	t.Helper()
	var zero T
	evs := collect(t, c, func(ev Event) bool { _, ok := ev.(T); return ok }, timeout)
	if len(evs) > 0 {
		if ev, ok := evs[len(evs)-1].(T); ok {
			return ev
		}
	}
	t.Fatalf("Events closed before a %T; saw %s", zero, fmtEvents(evs))
	return zero
}

// collect reads events until until returns true for one (it is included),
// or until the channel closes when until is nil or never true. It fails the
// test on timeout, listing what it read.
func collect(t testing.TB, c *Client, until func(Event) bool, timeout time.Duration) []Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var evs []Event
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
			if until != nil && until(ev) {
				return evs
			}
		case <-timer.C:
			t.Fatalf("timed out after %v; saw %s", timeout, fmtEvents(evs))
			return nil
		}
	}
}

// drain reads every event until the channel closes and checks that Closed
// is the last one, and comes only once; it returns the events and the
// Closed.
func drain(t testing.TB, c *Client, timeout time.Duration) ([]Event, Closed) {
	t.Helper()
	evs := collect(t, c, nil, timeout)
	require.NotEmpty(t, evs, "Events closed without any event")
	closed, ok := evs[len(evs)-1].(Closed)
	require.True(t, ok, "last event is not Closed: %s", fmtEvents(evs))
	for _, ev := range evs[:len(evs)-1] {
		_, dup := ev.(Closed)
		require.False(t, dup, "Closed before the last event: %s", fmtEvents(evs))
	}
	return evs, closed
}

// onlyOf returns the events of type T, in order.
func onlyOf[T Event](evs []Event) []T {
	var out []T
	for _, ev := range evs {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// typeNames gives the sequence of event types, for comparing orders.
func typeNames(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = strings.TrimPrefix(fmt.Sprintf("%T", ev), "resocket.")
	}
	return out
}

// fmtEvents describes events for a failure message, briefly.
func fmtEvents(evs []Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		parts[i] = fmtEvent(ev)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func fmtEvent(ev Event) string {
	switch e := ev.(type) {
	case Message:
		d := string(e.Data)
		if len(d) > 24 {
			d = d[:24] + "..."
		}
		return fmt.Sprintf("Message{conn %d %v %q}", e.ConnID, e.Type, d)
	case Connected:
		return fmt.Sprintf("Connected{conn %d attempt %d}", e.ConnID, e.Attempt)
	case Disconnected:
		return fmt.Sprintf("Disconnected{conn %d %s}", e.ConnID, fmtDisconnect(e.Disconnect, e.Decision))
	case DialFailed:
		return fmt.Sprintf("DialFailed{%s}", fmtDisconnect(e.Disconnect, e.Decision))
	case Closed:
		return fmt.Sprintf("Closed{err %v, %d unsent}", e.Err, len(e.Unsent))
	}
	return fmt.Sprintf("%T%+v", ev, ev)
}

func fmtDisconnect(d Disconnect, dec Decision) string {
	return fmt.Sprintf("code %d reason %q err %v http %d retry-after %v attempt %d -> %v min %v",
		int(d.Code), d.Reason, d.Err, d.HTTPStatus, d.RetryAfter, d.Attempt, dec.Action, dec.MinDelay)
}

// returnsWithin runs f and fails the test unless it returns within d; it
// returns how long f took.
func returnsWithin(t testing.TB, d time.Duration, what string, f func()) time.Duration {
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
		t.Fatalf("%s did not return within %v", what, d)
		return 0
	}
}

// waitClosed waits for ch to be closed, failing the test after timeout.
func waitClosed[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) {
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
			t.Fatalf("%s not closed within %v", what, timeout)
			return
		}
	}
}

// clientRef hands a client to its own callbacks. New may already run them
// on the client's goroutine before it returns, so a plain variable set
// after New would race; a channel orders the two.
type clientRef struct {
	ch   chan *Client
	once sync.Once
	c    *Client
}

func newClientRef() *clientRef { return &clientRef{ch: make(chan *Client, 1)} }

func (r *clientRef) set(c *Client) { r.ch <- c }

// get waits (bounded) for set; it returns nil if set never came.
func (r *clientRef) get() *Client {
	r.once.Do(func() {
		timer := time.NewTimer(waitFor)
		defer timer.Stop()
		select {
		case r.c = <-r.ch:
		case <-timer.C:
		}
	})
	return r.c
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// receiveText receives one message on the server side and returns it as a
// string, failing the test if none comes.
func receiveText(t testing.TB, conn *mocks.Conn) string {
	t.Helper()
	_, data, err := conn.Receive(waitFor)
	require.NoError(t, err)
	return string(data)
}

// assertConnecting checks that ev is a Connecting for attempt number attempt.
func assertConnecting(t testing.TB, ev Event, attempt int) {
	t.Helper()
	c, ok := ev.(Connecting)
	if assert.True(t, ok, "want Connecting, got %s", fmtEvent(ev)) {
		assert.Equal(t, attempt, c.Attempt)
	}
}
