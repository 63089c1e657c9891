package faults

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resocket/resocket"
)

// The keepalive the fault tests run with: a silent link must be found
// within one ping cycle after the last sign of life, here
// max(pingInterval, pongTimeout)+pongTimeout = 600 ms (see silentWindow),
// so detection from the fault is checked against detectBound, loose enough
// for a loaded 2-core machine under -race; the nil-write windows are
// checked against tighter bounds (account_test.go).
const (
	pingInterval = 200 * time.Millisecond
	pongTimeout  = 300 * time.Millisecond
	detectBound  = 3 * (pingInterval + pongTimeout)
	// retryDelay is the constant backoff: short, so reconnects are quick,
	// but not zero, so a failing link cannot spin a core.
	retryDelay = 50 * time.Millisecond
	// waitFor bounds every wait for something that should happen promptly.
	waitFor = 5 * time.Second
)

// faultConfig is the client configuration every fault test uses.
func faultConfig() resocket.Config {
	return resocket.Config{
		PingInterval: pingInterval,
		PongTimeout:  pongTimeout,
		CloseTimeout: time.Second,
		Backoff:      func() backoff.BackOff { return backoff.NewConstantBackOff(retryDelay) },
		// An attempt through a black-holed link fails after this, not
		// after gorilla's default 45 s.
		Dialer: &websocket.Dialer{HandshakeTimeout: time.Second},
		// The server learns which client connection it talks to.
		OnConnect: sendHello,
	}
}

// toxiproxyLeaks are the goroutines Toxiproxy itself leaks, and only
// those: when a link's writer stops because its destination went away (the
// client dropped the connection) while a toxic still holds data, the toxics
// before it block forever sending on their unbuffered output channels, and
// the link's reader blocks sending into the first of them. Stopping the
// proxy closes the sockets but cannot reach a goroutine blocked on a
// channel. It happens when a connection ends while the bandwidth toxic is
// pacing data (TestSlowLinkLargeMessage). And a slow_close toxic that has
// taken its link's end-of-stream waits out its delay even after the link
// is gone (a link whose write failed leaves the proxy's books before its
// toxics end), where neither RemoveToxic nor Stop can reach it
// (TestSlowClose: seen as that goroutine alone, every other goroutine of
// its link ended). Each is matched by the function on top of its stack,
// all of them Toxiproxy's: no goroutine of the client or of the test
// servers is ignored.
var toxiproxyLeaks = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/stream.(*ChanWriter).Write"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*BandwidthToxic).Pipe"),
	goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*SlowCloseToxic).Pipe"),
}

// checkLeaks fails t if a goroutine started during the test outlives it.
// Call it first: cleanups run last-in first-out, so this check runs after
// the client, the proxy and the server have been shut down.
func checkLeaks(t *testing.T, opts ...goleak.Option) {
	t.Helper()
	opts = append([]goleak.Option{goleak.IgnoreCurrent()}, opts...)
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// link is one embedded Toxiproxy proxy between a client and an upstream
// server, both on 127.0.0.1.
type link struct {
	proxy *toxiproxy.Proxy

	mu   sync.Mutex
	held []string // toxics that hold a closed link open: removed first at cleanup
}

// newLink starts a proxy to upstream ("127.0.0.1:port") on a free port;
// t.Cleanup stops it, which closes every connection through it.
func newLink(t *testing.T, upstream string) *link {
	t.Helper()
	logger := zerolog.Nop()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), logger)
	p := toxiproxy.NewProxy(server, t.Name(), "127.0.0.1:0", upstream)
	require.NoError(t, p.Start())
	l := &link{proxy: p}
	t.Cleanup(func() {
		// Removing slow_close and timeout first ends the goroutines that
		// hold a closed link open on purpose, instead of leaving them to
		// run out their delay after the test. (Removing the others is not
		// needed, and slow for a bandwidth toxic with data in flight.)
		l.mu.Lock()
		held := l.held
		l.mu.Unlock()
		for _, name := range held {
			_ = p.Toxics.RemoveToxic(context.Background(), name) // already removed by the test: fine
		}
		p.Stop()
	})
	return l
}

// URL is the ws:// URL of the proxy.
func (l *link) URL() string { return "ws://" + l.proxy.Listen }

// add adds a toxic; stream is "upstream" (client to server) or
// "downstream" (server to client); attrs is the JSON of its attributes.
func (l *link) add(t *testing.T, name, typ, stream string, toxicity float64, attrs string) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":%s,"attributes":%s}`,
		name, typ, stream, strconv.FormatFloat(toxicity, 'f', -1, 64), attrs)
	_, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(body))
	require.NoError(t, err, "adding toxic %s", body)
	if typ == "slow_close" || typ == "timeout" {
		l.mu.Lock()
		l.held = append(l.held, name)
		l.mu.Unlock()
	}
}

// update changes a toxic's toxicity and attributes.
func (l *link) update(t *testing.T, name string, toxicity float64, attrs string) {
	t.Helper()
	body := fmt.Sprintf(`{"toxicity":%s,"attributes":%s}`, strconv.FormatFloat(toxicity, 'f', -1, 64), attrs)
	_, err := l.proxy.Toxics.UpdateToxicJson(name, strings.NewReader(body))
	require.NoError(t, err, "updating toxic %s", name)
}

// remove removes a toxic: the link heals for new and existing connections.
func (l *link) remove(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, l.proxy.Toxics.RemoveToxic(context.Background(), name))
}

// setup starts an echo server, a proxy in front of it and a client
// through the proxy, and waits until the client is connected and the echo
// of its hello is back: the link is quiet when the test injects its fault.
// (A frame still in flight when a toxic is added is delayed with what
// follows; a late echo would count as a sign of life to the keepalive.)
func setup(t *testing.T, cfg resocket.Config) (*echoServer, *link, *resocket.Client, *recorder) {
	t.Helper()
	srv := newEchoServer(t)
	l := newLink(t, srv.Addr())
	c, err := resocket.New(l.URL(), cfg)
	require.NoError(t, err)
	rec := record(t, c)
	_, ev := rec.await(t, 0, waitFor, is[resocket.Connected])
	if cfg.OnConnect != nil {
		rec.awaitMessage(t, hello(ev.ev.(resocket.Connected).ConnID))
	}
	return srv, l, c, rec
}

// stamped is an event and when the test saw it.
type stamped struct {
	at time.Time
	ev resocket.Event
}

// recorder reads a client's events as they come, so that the client never
// waits on the test, and lets the test wait for the one it expects.
type recorder struct {
	mu   sync.Mutex
	evs  []stamped
	wake chan struct{} // closed and replaced on every new event
	done chan struct{} // closed once Events has closed
}

// record starts reading c's events. t.Cleanup terminates c and waits until
// its Events channel has closed.
func record(t *testing.T, c *resocket.Client) *recorder {
	r := &recorder{wake: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range c.Events() {
			r.mu.Lock()
			r.evs = append(r.evs, stamped{at: time.Now(), ev: ev})
			close(r.wake)
			r.wake = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.Terminate()
		<-r.done
	})
	return r
}

// is matches events of type T.
func is[T resocket.Event](ev resocket.Event) bool { _, ok := ev.(T); return ok }

// len returns how many events have been recorded so far.
func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// events returns a copy of the events recorded so far.
func (r *recorder) events() []stamped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stamped(nil), r.evs...)
}

// await waits for the first event at index from or later that match
// accepts, and returns its index and the event. It fails t on timeout or
// when the channel closes first, listing the events seen.
func (r *recorder) await(t *testing.T, from int, timeout time.Duration, match func(resocket.Event) bool) (int, stamped) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.evs); i++ {
			if match(r.evs[i].ev) {
				ev := r.evs[i]
				r.mu.Unlock()
				return i, ev
			}
		}
		from = len(r.evs)
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-r.done:
			r.mu.Lock()
			n := len(r.evs)
			r.mu.Unlock()
			if from == n {
				t.Fatalf("Events closed before the awaited event; saw:\n%s", r.describe())
			}
		case <-deadline.C:
			t.Fatalf("no awaited event within %v; saw:\n%s", timeout, r.describe())
		}
	}
}

// closed waits for the Closed event and returns it.
func (r *recorder) closed(t *testing.T) resocket.Closed {
	t.Helper()
	_, ev := r.await(t, 0, waitFor, is[resocket.Closed])
	return ev.ev.(resocket.Closed)
}

// describe lists the recorded events other than messages, one a line.
func (r *recorder) describe() string {
	var b strings.Builder
	msgs := 0
	for _, s := range r.events() {
		if _, ok := s.ev.(resocket.Message); ok {
			msgs++
			continue
		}
		fmt.Fprintf(&b, "  %s %s\n", s.at.Format("15:04:05.000"), describe(s.ev))
	}
	fmt.Fprintf(&b, "  (and %d messages)", msgs)
	return b.String()
}

func describe(ev resocket.Event) string {
	switch ev := ev.(type) {
	case resocket.Disconnected:
		return fmt.Sprintf("Disconnected conn=%d code=%d reason=%q err=%v decision=%v",
			ev.ConnID, ev.Disconnect.Code, ev.Disconnect.Reason, ev.Disconnect.Err, ev.Decision.Action)
	case resocket.DialFailed:
		return fmt.Sprintf("DialFailed code=%d status=%d err=%v decision=%v",
			ev.Disconnect.Code, ev.Disconnect.HTTPStatus, ev.Disconnect.Err, ev.Decision.Action)
	case resocket.Connected:
		return fmt.Sprintf("Connected conn=%d attempt=%d", ev.ConnID, ev.Attempt)
	case resocket.Closed:
		return fmt.Sprintf("Closed err=%v unsent=%d", ev.Err, len(ev.Unsent))
	}
	return fmt.Sprintf("%T%+v", ev, ev)
}

// disconnects returns the Disconnected events recorded, with when they
// were seen.
func disconnects(evs []stamped) []stamped {
	var out []stamped
	for _, s := range evs {
		if _, ok := s.ev.(resocket.Disconnected); ok {
			out = append(out, s)
		}
	}
	return out
}

// ms formats a measured duration in milliseconds, to a tenth.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// requireEventually polls cond every 10 ms until it holds or timeout
// passes.
func requireEventually(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, timeout, 10*time.Millisecond, append([]any{msg}, args...)...)
}

// isDisconnectedFrom matches the Disconnected of connection id.
func isDisconnectedFrom(id uint64) func(resocket.Event) bool {
	return func(ev resocket.Event) bool {
		d, ok := ev.(resocket.Disconnected)
		return ok && d.ConnID == id
	}
}

// isConnectedOtherThan matches a Connected of a connection other than id.
func isConnectedOtherThan(id uint64) func(resocket.Event) bool {
	return func(ev resocket.Event) bool {
		c, ok := ev.(resocket.Connected)
		return ok && c.ConnID != id
	}
}

// connectedID returns the ConnID of the latest Connected event.
func (r *recorder) connectedID(t *testing.T) uint64 {
	t.Helper()
	evs := r.events()
	for i := len(evs) - 1; i >= 0; i-- {
		if c, ok := evs[i].ev.(resocket.Connected); ok {
			return c.ConnID
		}
	}
	t.Fatal("no Connected event yet")
	return 0
}
