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
	"github.com/resocket/resocket/internal/testkit"
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
	waitFor = testkit.WaitFor
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
// The recorder reads the client's events as they come (testkit.Record), so
// that the client never waits on the test; t.Cleanup terminates the
// client.
func setup(t *testing.T, cfg resocket.Config) (*echoServer, *link, *resocket.Client, *testkit.Recorder) {
	t.Helper()
	srv := newEchoServer(t)
	l := newLink(t, srv.Addr())
	c := testkit.NewClient(t, l.URL(), cfg)
	rec := testkit.Record(t, c)
	_, ev := rec.Await(t, 0, waitFor, testkit.Is[resocket.Connected])
	if cfg.OnConnect != nil {
		awaitMessage(t, rec, hello(ev.Event.(resocket.Connected).ConnID))
	}
	return srv, l, c, rec
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
func connectedID(t *testing.T, rec *testkit.Recorder) uint64 {
	t.Helper()
	connected := testkit.Only[resocket.Connected](rec.Events())
	if len(connected) == 0 {
		t.Fatalf("no Connected event yet; recorded:\n%s", rec.History())
	}
	return connected[len(connected)-1].ConnID
}
