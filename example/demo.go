package main

import (
	"context"
	"errors"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
)

// demoTiming is how the demo server disturbs its connections; tests
// shorten it. The lifetime is longer than the 5 s a connection must stay
// up for resocket to reset its backoff, so every outage starts again from
// a short delay. It is not a whole number of seconds so that the first
// restart does not cross a tick: a message the server receives after
// sending its close frame is never echoed (RFC 6455 forbids data after
// Close).
var demoTiming = struct {
	lifetime time.Duration // each connection is restarted or dropped after this long
	refuse   time.Duration // after a restart, handshakes are refused with 503 for this long
}{lifetime: 6500 * time.Millisecond, refuse: time.Second}

// demoServer is a WebSocket echo server on 127.0.0.1 that ends every
// connection after a while, alternately like a graceful restart (close
// 1012, then 503 with Retry-After for a moment) and like a lost link (TCP
// closed without a close frame, which the client sees as 1006).
type demoServer struct {
	ln       net.Listener
	srv      *http.Server
	lifetime time.Duration
	refuse   time.Duration

	mu          sync.Mutex
	closed      bool
	conns       map[*websocket.Conn]struct{}
	ended       int       // connections ended so far: odd ones restart, even ones drop
	refuseUntil time.Time // handshakes before this get 503
	wg          sync.WaitGroup
}

// startDemo starts a demo server on a random port of 127.0.0.1.
func startDemo(lifetime, refuse time.Duration) (*demoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &demoServer{
		ln:       ln,
		lifetime: lifetime,
		refuse:   refuse,
		conns:    make(map[*websocket.Conn]struct{}),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln) // returns at Close
	}()
	return s, nil
}

// URL is the address to dial.
func (s *demoServer) URL() string { return "ws://" + s.ln.Addr().String() + "/" }

// Close stops accepting, cuts every connection and waits for every
// goroutine of the server to end.
func (s *demoServer) Close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*websocket.Conn, 0, len(s.conns))
	for ws := range s.conns {
		conns = append(conns, ws)
	}
	s.mu.Unlock()
	_ = s.srv.Close()
	for _, ws := range conns {
		_ = ws.NetConn().Close()
	}
	s.wg.Wait()
}

func (s *demoServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if wait := time.Until(s.refuseUntil); wait > 0 {
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1) // under mu and before closed: never after Close's Wait began
	s.mu.Unlock()
	defer s.wg.Done()

	up := websocket.Upgrader{
		CheckOrigin: func(*http.Request) bool { return true }, // a local demo
	}
	if offered := websocket.Subprotocols(r); len(offered) > 0 {
		up.Subprotocols = offered[:1] // accept whatever the client prefers
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered with an HTTP error
	}
	defer ws.Close()
	if !s.track(ws) {
		return
	}
	defer s.untrack(ws)

	disturbed := make(chan struct{})
	t := time.AfterFunc(s.lifetime, func() {
		defer close(disturbed)
		s.disturb(ws)
	})
	defer func() {
		if !t.Stop() {
			<-disturbed
		}
	}()
	echo(ws)
}

func (s *demoServer) track(ws *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[ws] = struct{}{}
	return true
}

func (s *demoServer) untrack(ws *websocket.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, ws)
}

// disturb ends a connection: a graceful restart or a lost link, in turn.
func (s *demoServer) disturb(ws *websocket.Conn) {
	s.mu.Lock()
	s.ended++
	restart := s.ended%2 == 1
	if restart {
		s.refuseUntil = time.Now().Add(s.refuse)
	}
	s.mu.Unlock()
	if !restart {
		_ = ws.NetConn().Close() // no close frame: the client sees 1006
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseServiceRestart, "service restart")
	_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	// echo ends when the client's close frame comes back; bound that wait.
	_ = ws.NetConn().SetReadDeadline(time.Now().Add(2 * time.Second))
}

// echo sends every message back until the connection ends.
func echo(ws *websocket.Conn) {
	ws.SetReadLimit(1 << 20)
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(typ, data); err != nil {
			return
		}
	}
}

// sendTicks sends "tick 1", "tick 2", ... every interval until stop is
// closed or the client ends. While the client is disconnected SendText
// holds the ticks, and they go out in order on the next connection.
func sendTicks(ctx context.Context, client *resocket.Client, every time.Duration, stop <-chan struct{}, pr *printer) {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-t.C:
		case <-stop:
			return
		case <-client.Done():
			return
		}
		err := client.SendText(ctx, "tick "+strconv.Itoa(n))
		switch {
		case err == nil:
		case errors.Is(err, resocket.ErrClosed) || ctx.Err() != nil:
			return
		default:
			pr.warn("tick %d not sent: %v", n, err)
		}
	}
}
