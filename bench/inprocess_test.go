package bench

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/wire"
	"github.com/resocket/resocket/session"
)

// The in-process benchmarks run the server side in the benchmark's own
// process, so that one Go runtime schedules both sides: what Resume
// costs per message, without the second process's threads competing
// for the same two cores as in the cross-process figures of benchrun
// (docs/performance.md, "Resumable sessions"). 64 B messages.
//
//	cd bench && go test -run '^$' -bench InProcess -benchtime 1000000x -count 8 .

// BenchmarkInProcessRecv64: a client receiving a stream. plain and
// resume-raw are served by handlers that write pre-encoded frames 64 KiB
// at a time and cost nothing per message (the bench server's /stream and
// /resume-raw-stream); resume-session by a session.Server whose serve
// function calls Session.Send in a loop.
func BenchmarkInProcessRecv64(b *testing.B) {
	b.Run("plain", func(b *testing.B) { receiveFrom(b, rawStream(false), false) })
	b.Run("resume-raw", func(b *testing.B) { receiveFrom(b, rawStream(true), true) })
	b.Run("resume-session", func(b *testing.B) {
		srv := streamingSessions()
		defer shutdown(srv)
		receiveFrom(b, srv, true)
	})
}

// BenchmarkInProcessSessionStream: the session server alone: its Send
// loop streams to a raw gorilla client that discards each message and
// acks every 256, as ours does.
func BenchmarkInProcessSessionStream(b *testing.B) {
	srv := streamingSessions()
	defer shutdown(srv)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	h := http.Header{}
	h.Set("Resocket-Resume", "1")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http"), h)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	b.ResetTimer()
	for n := 1; n <= b.N; n++ {
		_, r, err := ws.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		if n%256 == 0 {
			if err := ws.WriteMessage(websocket.BinaryMessage, binary.BigEndian.AppendUint64([]byte{1}, uint64(n))); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// streamingSessions is a session.Server whose sessions send 64 B
// messages until they end.
func streamingSessions() *session.Server {
	msg := make([]byte, 64)
	return session.NewServer(session.Options{}, func(sess *session.Session) {
		for sess.Send(context.Background(), resocket.MessageBinary, msg) == nil {
		}
	})
}

func shutdown(srv *session.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// receiveFrom measures a resocket client (Events) receiving b.N messages
// from h.
func receiveFrom(b *testing.B, h http.Handler, resume bool) {
	ts := httptest.NewServer(h)
	defer ts.Close()
	c, err := resocket.New("ws"+strings.TrimPrefix(ts.URL, "http"), resocket.Config{Resume: resume})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for ev := range c.Events() {
		if _, ok := ev.(resocket.Message); ok {
			if n++; n == b.N {
				break
			}
		}
	}
	b.StopTimer()
	c.Terminate()
	for range c.Events() { //nolint:revive // drained until closed
	}
}

// rawStream writes pre-encoded 64 B binary messages, as the bench
// server's /stream (plain) or /resume-raw-stream (resume: a new session,
// a kind byte in front of each message, or 256 to a batch frame for a
// client that takes them; the client's acks are read and dropped) do.
func rawStream(resume bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := http.Header{}
		payload := make([]byte, 64)
		if resume {
			h.Set("Resocket-Resume", "1")
			h.Set("Resocket-Session", "benchSession0000000000")
			h.Set("Resocket-Secret", "benchSecret00000000000000000000000000000000")
			h.Set("Resocket-Resumed", "0")
			h.Set("Resocket-Received", "0")
			h.Set("Resocket-Window", "4096") // session.Server's default: the client acks as often
			payload = append([]byte{wire.KindData}, payload...)
		}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, h)
		if err != nil {
			return
		}
		defer ws.Close()
		frame := append([]byte{0x82, byte(len(payload))}, payload...)
		if resume && r.Header.Get(wire.HeaderBatch) != "" {
			// 256 to a batch frame, the most session.Server puts in one
			entries := []byte{wire.KindBatch}
			for range 256 {
				entries = wire.AppendEntry(entries, byte(websocket.BinaryMessage), payload[1:])
			}
			frame = binary.BigEndian.AppendUint16([]byte{0x82, 126}, uint16(len(entries))) //nolint:gosec // 16,897 bytes
			frame = append(frame, entries...)
		}
		batch := make([]byte, 0, 64<<10+len(frame))
		for len(batch) < 64<<10 {
			batch = append(batch, frame...)
		}
		stop := make(chan struct{})
		go func() {
			defer close(stop)
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		}()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ws.NetConn().Write(batch); err != nil {
				return
			}
		}
	}
}
