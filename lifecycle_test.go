package resocket_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// The tests in this file check which goroutines exist at the instant a
// call returns (testkit.NoClientGoroutines), so none of them runs in
// parallel: Go runs every non-parallel test of the package before any
// parallel one starts. Where a test does not look at the events, it reads
// them with testkit.Record all the same, so that the client never waits
// for a reader.

// quickConfig reconnects after a millisecond, bounds Close by one second
// and turns the keepalive off.
func quickConfig() resocket.Config {
	return resocket.Config{
		Backoff:      func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) },
		CloseTimeout: time.Second,
		PingInterval: -1,
	}
}

// writeGate makes the connections it dials hold a write, once armed, as a
// socket whose peer stopped reading would, until the connection is closed;
// writing is closed when a held write starts. Unlike a real full socket it
// needs no guess at buffer sizes and no waiting.
type writeGate struct {
	armed   atomic.Bool   // the next write is held; disarmed by it
	writing chan struct{} // closed when the held write starts
	release chan struct{} // if set, the held write also waits for it after the close
	once    sync.Once
}

func newWriteGate() *writeGate { return &writeGate{writing: make(chan struct{})} }

func (g *writeGate) dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := new(net.Dialer).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &gatedConn{Conn: conn, gate: g, closed: make(chan struct{})}, nil
	}}
}

type gatedConn struct {
	net.Conn
	gate      *writeGate
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if !c.gate.armed.CompareAndSwap(true, false) {
		return c.Conn.Write(p)
	}
	c.gate.once.Do(func() { close(c.gate.writing) })
	<-c.closed
	if c.gate.release != nil {
		<-c.gate.release
	}
	return 0, net.ErrClosed
}

func (c *gatedConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Bug: a Send waiting behind a blocked write ignored its ctx (the write
// lock was a sync.Mutex). Now it returns with ctx's error, and the
// connection is untouched.
func TestSendCtxHonouredBehindBlockedWrite(t *testing.T) {
	for _, via := range []string{"Client.Send", "Conn.Send in OnConnect"} {
		t.Run(via, func(t *testing.T) {
			srv := mocks.NewServer(t)
			gate := newWriteGate()
			cfg := quickConfig()
			cfg.Dialer = gate.dialer()
			second := make(chan error, 1)
			firstDone := make(chan error, 1)
			// sendBehind starts a write that blocks, then sends a small
			// message with a 300 ms deadline behind it.
			sendBehind := func(send func(context.Context, []byte) error) {
				gate.armed.Store(true)
				go func() { firstDone <- send(context.Background(), []byte("blocked")) }()
				select {
				case <-gate.writing:
				case <-time.After(waitFor):
					second <- errors.New("the first write never reached the socket")
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				second <- send(ctx, []byte("small"))
			}
			onConnectReturned := make(chan struct{})
			if via == "Conn.Send in OnConnect" {
				cfg.OnConnect = func(_ context.Context, conn *resocket.Conn) error {
					defer close(onConnectReturned)
					sendBehind(func(ctx context.Context, b []byte) error { return conn.Send(ctx, resocket.MessageBinary, b) })
					return nil
				}
			} else {
				close(onConnectReturned)
			}
			c := testkit.NewClient(t, srv.URL(), cfg)
			testkit.Record(t, c)
			if via == "Client.Send" {
				waitConnected(t, c)
				go sendBehind(func(ctx context.Context, b []byte) error { return c.Send(ctx, resocket.MessageBinary, b) })
			}
			select {
			case err := <-second:
				assert.ErrorIs(t, err, context.DeadlineExceeded, "the second Send returns with its ctx's error")
			case <-time.After(waitFor):
				t.Error("the second Send ignored its 300 ms deadline")
			}
			assert.Equal(t, 1, srv.OpenConns(), "waiting for the lock does not cut the connection")
			testkit.WaitClosed(t, onConnectReturned, waitFor, "OnConnect returning")
			testkit.ReturnsWithin(t, waitFor, "Terminate", c.Terminate)
			// OnConnect signals from inside itself, so Terminate may still
			// find it running and return before it ends (see Close's doc).
			testkit.WaitClosed(t, c.Done(), waitFor, "Done after Terminate")
			select {
			case <-firstDone: // cut by Terminate
			case <-time.After(waitFor):
				t.Error("the blocked Send did not return after Terminate")
			}
			testkit.NoClientGoroutines(t, "after Done")
		})
	}
}

// Bug: the close frame written when OnConnect fails was bounded by a hard
// one second, not CloseTimeout. With a write holding the connection, the
// frame waits for it for CloseTimeout, then the connection is cut.
func TestFailedOnConnectClosesWithinCloseTimeout(t *testing.T) {
	srv := mocks.NewServer(t)
	gate := newWriteGate()
	cfg := quickConfig()
	cfg.Dialer = gate.dialer()
	cfg.CloseTimeout = 2500 * time.Millisecond
	cfg.Policy = func(resocket.Disconnect) resocket.Decision { return resocket.Decision{Action: resocket.Stop} }
	returned := make(chan time.Time, 1)
	sendReturned := make(chan struct{})
	cfg.OnConnect = func(_ context.Context, conn *resocket.Conn) error {
		gate.armed.Store(true)
		go func() { // the test's goroutine, not the client's: awaited below
			defer close(sendReturned)
			_ = conn.Send(context.Background(), resocket.MessageBinary, []byte("held"))
		}()
		<-gate.writing
		returned <- time.Now()
		return errors.New("auth refused")
	}
	c := testkit.NewClient(t, srv.URL(), cfg)
	testkit.Record(t, c)
	testkit.WaitClosed(t, c.Done(), waitFor, "Done after OnConnect failed")
	took := time.Since(<-returned)
	assert.GreaterOrEqual(t, took, 2*time.Second, "the close frame waited CloseTimeout, not a fixed second")
	// The blocked Send is the application's own goroutine: it returns once
	// the connection is cut, which the client did before Done.
	testkit.WaitClosed(t, sendReturned, waitFor, "the held Send returning")
	testkit.NoClientGoroutines(t, "after Done")
}

// Close and Terminate return only once every goroutine of the client has
// ended, wherever the client is.
func TestCloseAndTerminateLeaveNothingRunning(t *testing.T) {
	type scenario func(t *testing.T) *resocket.Client
	scenarios := []struct {
		name  string
		start scenario
	}{
		{"connected", func(t *testing.T) *resocket.Client {
			srv := mocks.NewServer(t, mocks.WithEcho())
			cfg := quickConfig()
			cfg.PingInterval = 20 * time.Millisecond // a keepalive timer is armed
			c, err := resocket.Dial(context.Background(), srv.URL(), cfg)
			require.NoError(t, err)
			testkit.Record(t, c)
			require.NoError(t, c.SendText(context.Background(), "hi"))
			return c
		}},
		{"backoff", func(t *testing.T) *resocket.Client {
			srv := mocks.NewServer(t)
			srv.Refuse(http.StatusServiceUnavailable, "", -1)
			cfg := quickConfig()
			cfg.Backoff = func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }
			c := testkit.NewClient(t, srv.URL(), cfg)
			testkit.WaitEvent[resocket.Reconnecting](t, testkit.Record(t, c), waitFor)
			return c
		}},
		{"stalled handshake", func(t *testing.T) *resocket.Client {
			srv := mocks.NewStallServer(t)
			c := testkit.NewClient(t, srv.URL(), quickConfig())
			testkit.Record(t, c)
			require.True(t, srv.WaitAccepted(1, waitFor))
			return c
		}},
		{"blocked DialLimiter.Wait", func(t *testing.T) *resocket.Client {
			srv := mocks.NewServer(t)
			entered := make(chan struct{})
			var once sync.Once
			cfg := quickConfig()
			cfg.DialLimiter = limiterFunc(func(ctx context.Context) error {
				once.Do(func() { close(entered) })
				<-ctx.Done() // a limiter that never lets the attempt go
				return ctx.Err()
			})
			c, err := resocket.New(srv.URL(), cfg)
			require.NoError(t, err)
			testkit.Record(t, c)
			select {
			case <-entered:
			case <-time.After(waitFor):
				t.Fatal("Wait was not called")
			}
			return c
		}},
		{"full Events and a running pump", func(t *testing.T) *resocket.Client {
			srv := mocks.NewServer(t)
			srv.Refuse(http.StatusServiceUnavailable, "", -1)
			cfg := quickConfig()
			cfg.EventBuffer = 1
			cfg.CloseTimeout = 200 * time.Millisecond
			c := testkit.NewClient(t, srv.URL(), cfg)
			require.True(t, srv.WaitRequests(5, waitFor), "the loop keeps dialing while nobody reads")
			require.Contains(t, strings.Join(testkit.ClientGoroutines(), "\n"), ").pump(", "a pump is running")
			return c
		}},
	}
	for _, sc := range scenarios {
		for _, how := range []string{"Close", "Terminate"} {
			t.Run(sc.name+"/"+how, func(t *testing.T) {
				c := sc.start(t)
				var left []string
				testkit.ReturnsWithin(t, waitFor, how, func() {
					if how == "Close" {
						assert.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
					} else {
						c.Terminate()
					}
					left = testkit.ClientGoroutinesLeft() // at the instant it returned
				})
				testkit.NoGoroutinesLeft(t, how+" returned", left)
				select {
				case <-c.Done():
				default:
					t.Fatalf("%s returned before Done closed", how)
				}
			})
		}
	}
}

// A callback of the client's, set up by arm to call call once, and what
// starts it.
type callbackCase struct {
	name string
	// arm configures cfg (and srv) so that the callback runs soon after
	// New, calling call the first time.
	arm func(t *testing.T, cfg *resocket.Config, srv *mocks.Server, call func())
	tls bool
}

func callbackCases() []callbackCase {
	dialer := func(cfg *resocket.Config) *websocket.Dialer {
		if cfg.Dialer == nil {
			cfg.Dialer = &websocket.Dialer{}
		}
		return cfg.Dialer
	}
	return []callbackCase{
		{name: "DialLimiter", arm: func(_ *testing.T, cfg *resocket.Config, _ *mocks.Server, call func()) {
			cfg.DialLimiter = limiterFunc(func(context.Context) error { call(); return nil })
		}},
		{name: "HeaderFunc", arm: func(_ *testing.T, cfg *resocket.Config, _ *mocks.Server, call func()) {
			cfg.HeaderFunc = func(context.Context) (http.Header, error) { call(); return nil, nil }
		}},
		{name: "OnConnect", arm: func(_ *testing.T, cfg *resocket.Config, _ *mocks.Server, call func()) {
			cfg.OnConnect = func(context.Context, *resocket.Conn) error { call(); return nil }
		}},
		{name: "Policy after a refusal", arm: func(_ *testing.T, cfg *resocket.Config, srv *mocks.Server, call func()) {
			srv.Refuse(http.StatusServiceUnavailable, "", 1)
			cfg.Policy = func(d resocket.Disconnect) resocket.Decision { call(); return resocket.DefaultPolicy(d) }
		}},
		{name: "Policy after a disconnect", arm: func(_ *testing.T, cfg *resocket.Config, srv *mocks.Server, call func()) {
			cfg.Policy = func(d resocket.Disconnect) resocket.Decision { call(); return resocket.DefaultPolicy(d) }
			dropFirstConn(srv)
		}},
		{name: "OnEvent", arm: func(_ *testing.T, cfg *resocket.Config, _ *mocks.Server, call func()) {
			cfg.OnEvent = func(resocket.Event) { call() }
		}},
		{name: "Backoff.NextBackOff", arm: func(_ *testing.T, cfg *resocket.Config, srv *mocks.Server, call func()) {
			srv.Refuse(http.StatusServiceUnavailable, "", 1)
			cfg.Backoff = func() backoff.BackOff { return &hookBackoff{next: call} }
		}},
		{name: "Backoff.Reset", arm: func(t *testing.T, cfg *resocket.Config, srv *mocks.Server, call func()) {
			cfg.StableAfter = time.Nanosecond // every connection that ends resets the backoff
			cfg.Backoff = func() backoff.BackOff { return &hookBackoff{reset: call} }
			dropFirstConn(srv)
		}},
		{name: "Heartbeat.IsAnswer", arm: func(_ *testing.T, cfg *resocket.Config, srv *mocks.Server, call func()) {
			cfg.PingInterval = time.Hour // the heartbeat needs the keepalive; no heartbeat needs to go out
			cfg.Heartbeat = &resocket.Heartbeat{Type: resocket.MessageText, Data: []byte("hb"),
				IsAnswer: func(resocket.Message) bool { call(); return false }}
			go func() { // the first connection gets a message to recognise
				select {
				case conn := <-srv.Accepted():
					_ = conn.SendText("hello")
				case <-time.After(waitFor):
				}
			}()
		}},
		{name: "Dialer.NetDialContext", arm: func(_ *testing.T, cfg *resocket.Config, _ *mocks.Server, call func()) {
			dialer(cfg).NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				call()
				return new(net.Dialer).DialContext(ctx, network, addr)
			}
		}},
		{name: "Dialer.Proxy", arm: func(_ *testing.T, cfg *resocket.Config, _ *mocks.Server, call func()) {
			dialer(cfg).Proxy = func(*http.Request) (*url.URL, error) { call(); return nil, nil }
		}},
		{name: "Dialer.NetDialTLSContext", tls: true, arm: func(_ *testing.T, cfg *resocket.Config, srv *mocks.Server, call func()) {
			tlsDialer := &tls.Dialer{Config: srv.TLSConfig()}
			dialer(cfg).NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				call()
				return tlsDialer.DialContext(ctx, network, addr)
			}
		}},
	}
}

// dropFirstConn ends, without a close frame, the first connection srv
// accepts, if one comes within waitFor.
func dropFirstConn(srv *mocks.Server) {
	go func() {
		timer := time.NewTimer(waitFor)
		defer timer.Stop()
		select {
		case conn := <-srv.Accepted():
			conn.Drop()
		case <-timer.C:
		}
	}()
}

// limiterFunc is a resocket.Limiter made of a function.
type limiterFunc func(ctx context.Context) error

func (f limiterFunc) Wait(ctx context.Context) error { return f(ctx) }

// hookBackoff is a zero backoff that calls next or reset first.
type hookBackoff struct{ next, reset func() }

func (b *hookBackoff) NextBackOff() time.Duration {
	if b.next != nil {
		b.next()
	}
	return time.Millisecond
}

func (b *hookBackoff) Reset() {
	if b.reset != nil {
		b.reset()
	}
}

// Every callback may call every method of the client without deadlock:
// Close and Terminate end the client (Done closes, and then nothing of it
// runs), the others return and the client goes on to connect.
func TestEveryCallbackMayCallEveryMethod(t *testing.T) {
	methods := map[string]func(c *resocket.Client) error{
		"Close":          func(c *resocket.Client) error { return c.Close(resocket.StatusNormalClosure, "from a callback") },
		"Terminate":      func(c *resocket.Client) error { c.Terminate(); return nil },
		"ForceReconnect": func(c *resocket.Client) error { c.ForceReconnect(); return nil },
		"Send":           func(c *resocket.Client) error { return c.SendText(context.Background(), "from a callback") },
		"Stats":          func(c *resocket.Client) error { _ = c.Stats(); return nil },
		"State":          func(c *resocket.Client) error { _ = c.State(); return nil },
	}
	for _, cb := range callbackCases() {
		for name, method := range methods {
			t.Run(cb.name+"/"+name, func(t *testing.T) {
				var srv *mocks.Server
				if cb.tls {
					srv = mocks.NewServer(t, mocks.WithTLS())
				} else {
					srv = mocks.NewServer(t)
				}
				late := newClientRef()
				var once sync.Once
				returned := make(chan error, 1)
				call := func() {
					once.Do(func() { returned <- method(late.get()) })
				}
				cfg := quickConfig()
				cb.arm(t, &cfg, srv, call)
				if cb.tls && cfg.Dialer.NetDialTLSContext == nil {
					cfg.Dialer.TLSClientConfig = srv.TLSConfig()
				}
				c := testkit.NewClient(t, srv.URL(), cfg)
				late.set(c)
				rec := testkit.Record(t, c) // its cleanup's Terminate undoes a deadlock
				err := testkit.Receive(t, returned, waitFor, name+" called from "+cb.name+" returning (a deadlock if it never does)")
				assert.NoError(t, err, "%s from %s", name, cb.name)
				if name == "Close" || name == "Terminate" {
					testkit.WaitClosed(t, c.Done(), waitFor, "Done after "+name+" from "+cb.name)
					if cfg.OnEvent == nil {
						_, closed := rec.Drain(t, waitFor) // Events closes, after one Closed
						assert.NoError(t, closed.Err)
					} else { // the events went to OnEvent: Events only closes
						testkit.WaitClosed(t, rec.Ended(), waitFor, "Events")
					}
					assert.NoError(t, c.Err())
					assert.Equal(t, resocket.StateClosed, c.State())
				} else {
					waitConnected(t, c) // the client goes on
					testkit.ReturnsWithin(t, waitFor, "Close", func() { assert.NoError(t, c.Close(resocket.StatusNormalClosure, "")) })
					// A callback that runs on a live connection (IsAnswer)
					// may still be returning when Close is called, and
					// Close then returns before Done: wait for it.
					testkit.WaitClosed(t, c.Done(), waitFor, "Done after Close after "+name+" from "+cb.name)
				}
				testkit.NoClientGoroutines(t, "the client ended")
			})
		}
	}
}
