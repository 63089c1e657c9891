package faults

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsServer is a lean WebSocket server for the soak and load benchmarks: it
// keeps nothing about a connection once it has ended (mocks.Server records
// every connection, which would read as heap growth over thousands of
// cycles), answers pings and close frames, and restarts like a real server:
// listener closed, every connection sent a close frame, listener reopened
// on the same port.
type wsServer struct {
	tb       testing.TB
	upgrader websocket.Upgrader

	mu       sync.Mutex
	addr     string
	ln       net.Listener
	hs       *http.Server
	serving  sync.WaitGroup // Serve goroutines
	conns    map[*websocket.Conn]chan struct{}
	handlers sync.WaitGroup // connection handlers; Add only under mu while !closed
	closed   bool
	accepted int
}

func newWSServer(tb testing.TB) *wsServer {
	s := &wsServer{tb: tb, conns: map[*websocket.Conn]chan struct{}{}}
	s.listen("127.0.0.1:0")
	tb.Cleanup(s.close)
	return s
}

// URL is the server's ws:// URL; it stays the same across restarts.
func (s *wsServer) URL() string { return "ws://" + s.addr }

// Accepted returns how many connections the server has upgraded.
func (s *wsServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Open returns how many connections are open.
func (s *wsServer) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *wsServer) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.tb.Fatalf("listen on %s: %v", addr, err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.ln, s.hs, s.addr = ln, hs, ln.Addr().String()
	s.mu.Unlock()
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		_ = hs.Serve(ln)
	}()
}

func (s *wsServer) handle(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	done := make(chan struct{})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns[ws] = done
	s.accepted++
	s.handlers.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, ws)
		s.mu.Unlock()
		_ = ws.Close()
		close(done)
		s.handlers.Done()
	}()
	// gorilla answers pings and the client's close frame while reading.
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

// closeAll sends every open connection a close frame and waits (at most
// 5 s) until each has ended: the client's answer ends the handler's read.
func (s *wsServer) closeAll(code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	s.mu.Lock()
	conns := make(map[*websocket.Conn]chan struct{}, len(s.conns))
	for ws, done := range s.conns {
		conns[ws] = done
	}
	s.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for ws := range conns {
		if err := ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			_ = ws.Close()
		}
	}
	for ws, done := range conns {
		select {
		case <-done:
		case <-time.After(time.Until(deadline)):
			_ = ws.Close() // the client never answered: cut it
			<-done
		}
	}
}

// restart closes the listener, closes every connection with code, waits
// downtime, and listens again on the same address.
func (s *wsServer) restart(code int, reason string, downtime time.Duration) {
	s.stopListening()
	s.closeAll(code, reason)
	time.Sleep(downtime)
	s.listen(s.addr)
}

func (s *wsServer) stopListening() {
	s.mu.Lock()
	hs := s.hs
	s.mu.Unlock()
	_ = hs.Close() // closes the listener; upgraded connections are not the http.Server's
	s.serving.Wait()
}

// close stops the server and ends every connection.
func (s *wsServer) close() {
	s.stopListening()
	s.mu.Lock()
	s.closed = true
	for ws := range s.conns {
		_ = ws.Close()
	}
	s.mu.Unlock()
	s.handlers.Wait()
}
