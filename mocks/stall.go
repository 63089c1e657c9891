package mocks

import (
	"net"
	"sync"
	"testing"
	"time"
)

// StallServer accepts TCP connections on 127.0.0.1 and never answers: it
// neither reads nor writes, so a WebSocket (or TLS) handshake against it
// hangs until the client gives up. All methods are safe for concurrent use.
type StallServer struct {
	t  testing.TB
	ln net.Listener
	wg sync.WaitGroup

	closeOnce sync.Once

	mu       sync.Mutex
	closed   bool
	conns    []net.Conn
	accepted int
	changed  chan struct{} // closed and replaced on every accept
}

// NewStallServer starts a StallServer on a free 127.0.0.1 port; t.Cleanup
// closes it. It calls t.Fatalf if the listener cannot be created.
func NewStallServer(t testing.TB) *StallServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mocks: listen on 127.0.0.1: %v", err)
	}
	s := &StallServer{t: t, ln: ln, changed: make(chan struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.Close)
	return s
}

// URL returns ws://127.0.0.1:port.
func (s *StallServer) URL() string { return "ws://" + s.Addr() }

// Addr returns the listening address, 127.0.0.1:port.
func (s *StallServer) Addr() string { return s.ln.Addr().String() }

// Accepted returns the number of TCP connections accepted so far.
func (s *StallServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// WaitAccepted waits up to timeout until at least n TCP connections have been
// accepted and reports whether they have.
func (s *StallServer) WaitAccepted(n int, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, ch := s.accepted, s.changed
		s.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// Close closes the listener and every accepted connection and waits for the
// accept goroutine (bounded; a timeout is reported with t.Errorf). It is
// idempotent and safe to call concurrently.
func (s *StallServer) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := s.conns
		s.conns = nil
		s.mu.Unlock()
		_ = s.ln.Close()
		for _, c := range conns {
			_ = c.Close()
		}
		if !waitTimeout(&s.wg, shutdownTimeout) {
			s.t.Errorf("mocks: StallServer.Close: accept loop still running after %v", shutdownTimeout)
		}
	})
}

func (s *StallServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // the listener was closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.accepted++
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}
