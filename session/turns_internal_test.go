package session

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/resocket/resocket"
)

// An echo through a session stays on the application's goroutine: its
// Receive reads the message from the socket and its Send writes the
// answer, where the reader and the writer would have handed each over
// between goroutines (readturn.go, writeturn.go; what it saves is in
// docs/performance.md). The reader hands the socket over when a Receive
// waits for the message it read, and takes it back when a round trip
// takes longer than readerGrace (a loaded machine running -race), so
// the bound is half of the round trips, not all.
func TestEchoStaysOnTheApplicationsGoroutine(t *testing.T) {
	const rounds = 200
	sessions := make(chan *Session, 1)
	srv := NewServer(Options{}, func(s *Session) {
		sessions <- s
		ctx := context.Background()
		for {
			typ, data, err := s.Receive(ctx)
			if err != nil {
				return
			}
			if s.Send(ctx, typ, data) != nil {
				return
			}
		}
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer func() { _ = srv.Shutdown(context.Background()) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := resocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), resocket.Config{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Terminate()
	for i := range rounds {
		if err := c.SendText(ctx, "ping"); err != nil {
			t.Fatal(err)
		}
		for ev := range c.Events() {
			if _, ok := ev.(resocket.Message); ok {
				break
			}
			if _, ok := ev.(resocket.Disconnected); ok {
				t.Fatalf("round %d: disconnected", i)
			}
		}
	}
	var s *Session
	select {
	case s = <-sessions:
	case <-ctx.Done():
		t.Fatal("no session")
	}
	s.mu.Lock()
	reads, writes := s.conn.turn.inlineReads, s.conn.inlineWrites
	s.mu.Unlock()
	t.Logf("of %d round trips: %d read by Receive, %d written by Send", rounds, reads, writes)
	if reads < rounds/2 || writes < rounds/2 {
		t.Fatalf("of %d round trips, %d read by Receive and %d written by Send: want at least half each", rounds, reads, writes)
	}
}
