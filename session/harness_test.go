package session_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
)

// swappable serves HTTP with whichever session.Server is current, so that
// a test can restart the server behind one address.
type swappable struct {
	cur atomic.Pointer[session.Server]
}

func (h *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.cur.Load().ServeHTTP(w, r) }

// peer is the server side of a test: what serve received and what it
// sent, across every Server that ran the session.
type peer struct {
	mu       sync.Mutex
	received [][]byte
	runs     []int // the serve call that received each message, counted from 1
	sessions []*session.Session
	started  chan *session.Session
}

func newPeer() *peer { return &peer{started: make(chan *session.Session, 16)} }

// serve receives until the session ends, recording every message.
func (p *peer) serve(s *session.Session) {
	p.mu.Lock()
	p.sessions = append(p.sessions, s)
	p.mu.Unlock()
	p.started <- s
	run := len(p.sessionsSnapshot())
	for {
		_, data, err := s.Receive(context.Background())
		if err != nil {
			return
		}
		p.mu.Lock()
		p.received = append(p.received, data)
		p.runs = append(p.runs, run)
		p.mu.Unlock()
	}
}

func (p *peer) sessionsSnapshot() []*session.Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*session.Session(nil), p.sessions...)
}

// inOrder returns what serve received, each Server's run of Receive in
// its own order, the runs one after the other in the order they began.
// Two Servers that hand a session over run at once for a moment: the one
// left may still be recording the message its last Receive returned while
// the next one records the following ones, so the interleaving of their
// records says nothing; the order of each run, and the runs' succession,
// are what Receive promises.
func (p *peer) inOrder() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	byRun := map[int][][]byte{}
	maxRun := 0
	for i, d := range p.received {
		byRun[p.runs[i]] = append(byRun[p.runs[i]], d)
		maxRun = max(maxRun, p.runs[i])
	}
	var out [][]byte
	for r := 0; r <= maxRun; r++ {
		out = append(out, byRun[r]...)
	}
	return out
}

func (p *peer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.received)
}

func (p *peer) all() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.received...)
}

// testServer is a session.Server behind a loopback address, with a proxy
// in front that a test can cut or blackhole.
type testServer struct {
	t     *testing.T
	store session.Store
	opts  session.Options
	h     *swappable
	http  *httptest.Server
	peer  *peer
	proxy *cutter
}

func newTestServer(t *testing.T, opts session.Options) *testServer {
	t.Helper()
	return newTestServerWith(t, opts, newPeer(), nil)
}

// newTestServerFor is newTestServer with p as its application: several
// servers may share one.
func newTestServerFor(t *testing.T, opts session.Options, p *peer) *testServer {
	t.Helper()
	return newTestServerWith(t, opts, p, nil)
}

// newTestServerServe is newTestServer with serve of the test's own; nil
// means the peer's, which receives and records until the session ends.
func newTestServerServe(t *testing.T, opts session.Options, serve func(*session.Session)) *testServer {
	t.Helper()
	return newTestServerWith(t, opts, newPeer(), serve)
}

func newTestServerWith(t *testing.T, opts session.Options, p *peer, serve func(*session.Session)) *testServer {
	t.Helper()
	if opts.Store == nil {
		opts.Store = session.NewMemoryStore()
	}
	ts := &testServer{t: t, store: opts.Store, opts: opts, h: &swappable{}, peer: p}
	if serve == nil {
		serve = ts.peer.serve
	}
	ts.h.cur.Store(session.NewServer(opts, serve))
	ts.http = httptest.NewServer(ts.h)
	ts.proxy = newCutter(t, ts.http.Listener.Addr().String())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, ts.h.cur.Load().Shutdown(ctx))
		ts.proxy.close()
		ts.http.Close()
	})
	return ts
}

// URL goes through the proxy.
func (ts *testServer) URL() string { return "ws://" + ts.proxy.addr() }

// restart shuts the current Server down and starts a new one on the same
// address with opts (the same Store unless opts says otherwise).
func (ts *testServer) restart(opts session.Options) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := session.NewServer(opts, ts.peer.serve)
	old := ts.h.cur.Swap(next)
	require.NoError(ts.t, old.Shutdown(ctx))
}

// cutter is a loopback TCP proxy whose connections a test can cut (both
// ends closed) or blackhole (kept open, nothing forwarded: a half-open
// link).
type cutter struct {
	ln       net.Listener
	upstream string
	refusing atomic.Bool // new connections are closed at once
	mu       sync.Mutex
	pairs    []*pair
	wg       sync.WaitGroup
}

type pair struct {
	a, b     net.Conn
	stalled  atomic.Bool
	stallNow chan struct{}
	upDone   chan struct{} // closed when the server's side (b) has ended
}

func newCutter(t *testing.T, upstream string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &cutter{ln: ln, upstream: upstream}
	c.wg.Add(1)
	go c.accept()
	return c
}

func (c *cutter) addr() string { return c.ln.Addr().String() }

func (c *cutter) accept() {
	defer c.wg.Done()
	for {
		a, err := c.ln.Accept()
		if err != nil {
			return
		}
		if c.refusing.Load() {
			_ = a.Close()
			continue
		}
		b, err := net.Dial("tcp", c.upstream)
		if err != nil {
			_ = a.Close()
			continue
		}
		p := &pair{a: a, b: b, stallNow: make(chan struct{}), upDone: make(chan struct{})}
		c.mu.Lock()
		c.pairs = append(c.pairs, p)
		c.mu.Unlock()
		c.wg.Add(2)
		go c.pipe(p, a, b)
		go c.pipe(p, b, a)
	}
}

func (c *cutter) pipe(p *pair, dst, src net.Conn) {
	defer c.wg.Done()
	if src == p.b {
		defer close(p.upDone)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !p.stalled.Load() {
				_ = dst.Close()
			}
			return
		}
	}
}

// current returns the connections through the proxy now.
func (c *cutter) current() []*pair {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*pair(nil), c.pairs...)
}

// cut closes every connection through the proxy, both ends.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pairs {
		_ = p.a.Close()
		_ = p.b.Close()
	}
	c.pairs = nil
}

// blackhole stops forwarding on every current connection and keeps it
// open: neither end learns anything until its own timeout.
func (c *cutter) blackhole() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pairs {
		p.stalled.Store(true)
	}
}

func (c *cutter) close() {
	_ = c.ln.Close()
	c.cut()
	c.mu.Lock()
	for _, p := range c.pairs {
		_ = p.a.Close()
		_ = p.b.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// resumeConfig is a client config for fast tests: quick backoff, short
// timeouts so that a blackholed link is found within a second.
func resumeConfig() resocket.Config {
	return resocket.Config{
		Resume:       true,
		Backoff:      func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) },
		PingInterval: 200 * time.Millisecond,
		PongTimeout:  300 * time.Millisecond,
		CloseTimeout: 2 * time.Second,
	}
}
