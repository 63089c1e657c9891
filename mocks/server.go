package mocks

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// acceptedBuffer is the capacity of the channel returned by Server.Accepted.
	acceptedBuffer = 1024
	// writeTimeout bounds every write the server makes to a connection.
	writeTimeout = 5 * time.Second
	// closeReplyTimeout bounds the wait for the client's close frame after the
	// server sent one.
	closeReplyTimeout = 2 * time.Second
	// shutdownTimeout bounds the wait for goroutines to end on Close and for
	// a connection to end after its TCP connection was closed.
	shutdownTimeout = 10 * time.Second
)

// serverOptions holds what the Options of NewServer set.
type serverOptions struct {
	echo          bool
	tls           bool
	subprotocols  []string
	socketBuffer  int // > 0: SO_RCVBUF and SO_SNDBUF of every connection
	ignorePings   bool
	upgradeHeader func(*http.Request) http.Header
}

// Option configures a Server made by NewServer.
type Option func(*serverOptions)

// WithEcho makes every connection send each data message it receives back to
// the client, with the same message type, after recording it. Without it
// (the default) received messages are only recorded. The echo is written by
// the connection's reader, so a client that stops reading also stops the
// reader until the write fails (5s write timeout).
func WithEcho() Option { return func(o *serverOptions) { o.echo = true } }

// WithTLS makes the server speak TLS (httptest.NewTLSServer's certificate);
// its URL is then wss://. Clients must trust the certificate: use
// Server.TLSConfig or Server.Client.
func WithTLS() Option { return func(o *serverOptions) { o.tls = true } }

// WithSocketBuffers sets the kernel's receive and send buffers (SO_RCVBUF,
// SO_SNDBUF) of every accepted connection to n bytes, which also stops
// the kernel from growing them. A test that checks how much a client
// buffers when it stops reading then knows how much the server's side of
// the link can hold: about twice n each way on Linux, which doubles the
// value for its bookkeeping. n <= 0 keeps the system's defaults.
func WithSocketBuffers(n int) Option { return func(o *serverOptions) { o.socketBuffer = n } }

// WithPingsUnanswered makes every connection count the client's pings
// but never answer them with a pong, as some proxies and CDNs that drop
// pings do; data messages still flow (with WithEcho, a client's
// application-level heartbeat is answered).
func WithPingsUnanswered() Option { return func(o *serverOptions) { o.ignorePings = true } }

// WithUpgradeHeader makes the server answer every handshake it accepts
// with the headers f returns for its request, added to the 101 response
// (nil: none). A scripted server speaks a protocol negotiated in the
// handshake this way, such as the resume protocol of docs/protocol.md.
// f runs on the request's goroutine; it must be safe for concurrent use.
func WithUpgradeHeader(f func(r *http.Request) http.Header) Option {
	return func(o *serverOptions) { o.upgradeHeader = f }
}

// WithSubprotocols sets the subprotocols the server supports, in order of
// preference; the first one the client also offers is selected during the
// handshake.
func WithSubprotocols(p ...string) Option {
	return func(o *serverOptions) { o.subprotocols = append([]string(nil), p...) }
}

// Server is a WebSocket server on 127.0.0.1 for tests, built on
// net/http/httptest and gorilla's Upgrader. Every method is safe for
// concurrent use. Close (also run by t.Cleanup) ends every connection and
// waits for every goroutine the server started.
type Server struct {
	t        testing.TB
	opts     serverOptions
	ts       *httptest.Server
	upgrader websocket.Upgrader
	accepted chan *Conn
	closing  chan struct{} // closed when Close starts
	wg       sync.WaitGroup

	closeOnce sync.Once

	mu               sync.Mutex
	closed           bool
	nextID           int
	open             map[int]*Conn
	all              []*Conn
	requests         []*http.Request
	requestTimes     []time.Time   // when each of requests arrived
	requestSeen      chan struct{} // closed and replaced on every request
	refuseStatus     int
	refuseRetryAfter string
	refuseN          int           // >0: that many more; <0: until cleared
	stall            chan struct{} // non-nil while handshakes stall; closed when stalling ends
}

// NewServer starts a Server listening on 127.0.0.1 on a free port. t.Cleanup
// closes it. NewServer calls t.Fatalf if the listener cannot be created.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		t:           t,
		accepted:    make(chan *Conn, acceptedBuffer),
		closing:     make(chan struct{}),
		open:        make(map[int]*Conn),
		requestSeen: make(chan struct{}),
	}
	for _, o := range opts {
		o(&s.opts)
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: writeTimeout,
		Subprotocols:     s.opts.subprotocols,
		CheckOrigin:      func(*http.Request) bool { return true },
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mocks: listen on 127.0.0.1: %v", err)
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	// Replace httptest's own listener so that we are sure of 127.0.0.1.
	_ = s.ts.Listener.Close()
	s.ts.Listener = ln
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if s.opts.tls {
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// URL returns the server's address as ws://127.0.0.1:port (wss:// with
// WithTLS). Any path may be appended: every path is a WebSocket endpoint.
func (s *Server) URL() string {
	if s.opts.tls {
		return "wss://" + s.Addr()
	}
	return "ws://" + s.Addr()
}

// Addr returns the listening address, 127.0.0.1:port.
func (s *Server) Addr() string { return s.ts.Listener.Addr().String() }

// Client returns httptest's HTTP client for this server; with WithTLS it
// trusts the server's certificate. It is closed with the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// TLSConfig returns a new TLS client configuration that trusts the server's
// certificate, for websocket.Dialer.TLSClientConfig. It returns nil when the
// server does not use TLS.
func (s *Server) TLSConfig() *tls.Config {
	if !s.opts.tls {
		return nil
	}
	tr, ok := s.ts.Client().Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil {
		return nil
	}
	return tr.TLSClientConfig.Clone()
}

// Accepted returns a channel that receives each accepted (upgraded)
// connection, in accept order (ascending ID). It is buffered (1024) and the
// server never blocks on it: if it is full, later connections are not sent
// on it (they are still listed by Conns). It is never closed.
func (s *Server) Accepted() <-chan *Conn { return s.accepted }

// NextConn waits up to timeout for the next connection on Accepted and
// returns it; on timeout it calls t.Fatalf, so call it from the test's
// goroutine.
func (s *Server) NextConn(t testing.TB, timeout time.Duration) *Conn {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case c := <-s.accepted:
		return c
	case <-timer.C:
		t.Fatalf("mocks: no connection accepted within %v", timeout)
		return nil
	}
}

// Conns returns every connection accepted so far, open or ended, in accept
// order.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Conn(nil), s.all...)
}

// Requests returns copies (method, URL, header, host, remote address) of
// every HTTP request (handshake attempt) the server has seen, in arrival
// order, refused, stalled and failed ones included.
func (s *Server) Requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*http.Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = copyRequest(r)
	}
	return out
}

// RequestTimes returns when each handshake request that Requests lists
// arrived, in the same order, on the server's clock (monotonic). A test
// can bound from it how long a client waited between two attempts: the
// server saw the first request before the client could see the answer,
// and the second after the client dialed again.
func (s *Server) RequestTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.requestTimes...)
}

// WaitRequests waits up to timeout until the server has seen at least n
// handshake requests (refused and stalled ones included) and reports whether
// it has.
func (s *Server) WaitRequests(n int, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		seen, ch := len(s.requests), s.requestSeen
		s.mu.Unlock()
		if seen >= n {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// Refuse makes the next n handshakes fail with the HTTP status, a
// Retry-After header of retryAfter unless it is "", and a short body.
// n < 0 refuses every handshake until further notice; Refuse(0, "", 0) (or
// any n == 0) stops refusing. A later call replaces an earlier one. Unless
// n == 0, status must be a final HTTP status (200 to 999): Refuse panics
// otherwise.
func (s *Server) Refuse(status int, retryAfter string, n int) {
	if n != 0 && (status < 200 || status > 999) {
		panic("mocks: Refuse: status " + strconv.Itoa(status) + " is not a final HTTP status")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 {
		status, retryAfter = 0, ""
	}
	s.refuseStatus, s.refuseRetryAfter, s.refuseN = status, retryAfter, n
}

// StallHandshakes makes the server, while on, hold every arriving handshake request open
// without answering it, until StallHandshakes(false) (the held requests are
// then answered normally, refused or upgraded), until the client goes away,
// or until Close (the connection is then closed unanswered).
func (s *Server) StallHandshakes(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.stall == nil:
		s.stall = make(chan struct{})
	case !on && s.stall != nil:
		close(s.stall)
		s.stall = nil
	}
}

// CloseAll sends every open connection a close frame with exactly this code
// and reason (any code, even one RFC 6455 forbids; see Conn.CloseWith), waits
// up to 2s for each client's reply, all in parallel, then closes their TCP
// connections. When it returns, those connections have ended.
func (s *Server) CloseAll(code int, reason string) {
	conns := s.openConns()
	var wg sync.WaitGroup
	wg.Add(len(conns))
	for _, c := range conns {
		go func() {
			defer wg.Done()
			_ = c.CloseWith(code, reason)
		}()
	}
	wg.Wait()
}

// DropAll closes the TCP connection of every open connection without a close
// frame (FIN; for TLS, after a close_notify alert). When it returns, those
// connections have ended.
func (s *Server) DropAll() {
	conns := s.openConns()
	for _, c := range conns {
		c.kill()
	}
	for _, c := range conns {
		c.waitDone()
	}
}

// Restart is CloseAll(code, reason) while the listener keeps accepting: from
// a client's view, a graceful server restart (e.g. code 1012).
func (s *Server) Restart(code int, reason string) { s.CloseAll(code, reason) }

// OpenConns returns the number of accepted connections that have not ended.
// A silent connection (Conn.GoSilent) counts as open until it is dropped.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Close ends the server: it releases stalled handshakes (closing them
// unanswered), closes every connection's TCP connection without a close
// frame (silent ones included), closes the listener, and waits for every
// goroutine the server started (bounded; a timeout is reported with
// t.Errorf). It is idempotent and safe to call concurrently.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.closing)
		conns := s.openConnsLocked()
		s.mu.Unlock()

		for _, c := range conns {
			c.kill()
		}
		s.ts.Close()
		if !waitTimeout(&s.wg, shutdownTimeout) {
			s.t.Errorf("mocks: Server.Close: connections still running after %v", shutdownTimeout)
		}
	})
}

func (s *Server) openConns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openConnsLocked()
}

func (s *Server) openConnsLocked() []*Conn {
	out := make([]*Conn, 0, len(s.open))
	for _, c := range s.all {
		if _, ok := s.open[c.id]; ok {
			out = append(out, c)
		}
	}
	return out
}

// serveHTTP handles every request: record, maybe stall, maybe refuse, else
// upgrade.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	s.mu.Lock()
	s.requests = append(s.requests, copyRequest(r))
	s.requestTimes = append(s.requestTimes, arrived)
	close(s.requestSeen)
	s.requestSeen = make(chan struct{})
	stall := s.stall
	s.mu.Unlock()

	if stall != nil {
		select {
		case <-stall:
		case <-r.Context().Done():
			return
		case <-s.closing:
			closeUnanswered(w)
			return
		}
	}

	s.mu.Lock()
	status, retryAfter, refuse := s.refuseStatus, s.refuseRetryAfter, s.refuseN != 0
	if s.refuseN > 0 {
		s.refuseN--
	}
	closed := s.closed
	s.mu.Unlock()

	if closed {
		closeUnanswered(w)
		return
	}
	if refuse {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "mocks: handshake refused with status "+strconv.Itoa(status)+"\n")
		return
	}

	var header http.Header
	if f := s.opts.upgradeHeader; f != nil {
		header = f(r)
	}
	ws, err := s.upgrader.Upgrade(w, r, header)
	if err != nil {
		return // gorilla has answered with an HTTP error
	}
	s.register(ws, r)
}

// register adds an upgraded connection and starts its reader, unless the
// server is closing.
func (s *Server) register(ws *websocket.Conn, r *http.Request) {
	c := newConn(s, ws, copyRequest(r))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.nextID++
	c.id = s.nextID
	s.open[c.id] = c
	s.all = append(s.all, c)
	s.wg.Add(1)
	select {
	case s.accepted <- c:
	default:
	}
	s.mu.Unlock()
	go c.readLoop()
}

// remove forgets an ended connection.
func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.open, c.id)
	s.mu.Unlock()
}

// closeUnanswered closes a request's connection without writing a response.
func closeUnanswered(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	}
}

// copyRequest copies what tests look at in a handshake request.
func copyRequest(r *http.Request) *http.Request {
	u := *r.URL
	return &http.Request{
		Method:     r.Method,
		URL:        &u,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     r.Header.Clone(),
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		RequestURI: r.RequestURI,
	}
}

// waitTimeout waits for wg up to d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}
