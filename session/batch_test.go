package session_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/internal/wire"
	"github.com/resocket/resocket/session"
)

// rawReader reads the server's data messages on a raw connection one at
// a time, whether each came in a frame of its own or in a batch frame
// (docs/protocol.md §2), and counts the frames.
type rawReader struct {
	t       *testing.T
	ws      *websocket.Conn
	entries []byte // what is left of the last batch frame
	batches int    // batch frames read
	largest int    // the largest batch frame, in bytes
}

// next returns the next data message, its kind byte taken off, skipping
// the server's acks.
func (r *rawReader) next() (typ int, data []byte) {
	r.t.Helper()
	if len(r.entries) > 0 {
		t, data, rest, err := wire.NextEntry(r.entries)
		require.NoError(r.t, err)
		r.entries = rest
		return int(t), data
	}
	require.NoError(r.t, r.ws.SetReadDeadline(time.Now().Add(waitFor)))
	for range 1000 {
		typ, frame, err := r.ws.ReadMessage()
		require.NoError(r.t, err)
		require.NotEmpty(r.t, frame, "a frame has a kind")
		switch frame[0] {
		case wire.KindData:
			return typ, frame[1:]
		case wire.KindBatch:
			require.Equal(r.t, websocket.BinaryMessage, typ, "a batch frame is binary")
			require.Greater(r.t, len(frame), 1, "a batch frame holds a message")
			r.batches++
			r.largest = max(r.largest, len(frame))
			r.entries = frame[1:]
			return r.next()
		}
	}
	r.t.Fatal("only acks")
	return 0, nil
}

// TestBatchFrames: messages waiting for a client that takes batch frames
// reach it several to a WebSocket message, each batch within the size the
// client said (Resocket-Batch), in order and of their own types; a client
// that said nothing gets a frame per message.
func TestBatchFrames(t *testing.T) {
	const n, size = 20, 40
	payload := func(i int) []byte { return fmt.Appendf(nil, "m%02d%s", i, make([]byte, size-3)) }
	typeOf := func(i int) resocket.MessageType { return resocket.MessageType(1 + i%2) } // text and binary
	for _, tc := range []struct {
		name  string
		batch string // Resocket-Batch, or none
	}{{"client takes batches of 200 bytes", "200"}, {"client takes none", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			more, release := make(chan struct{}), make(chan struct{})
			sent := make(chan error, 1)
			ts := newTestServerServe(t, session.Options{}, func(s *session.Session) {
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				defer cancel()
				if err := s.Send(ctx, typeOf(0), payload(0)); err != nil {
					sent <- err
					return
				}
				select {
				case <-more:
				case <-ctx.Done():
				}
				for i := 1; i <= n; i++ {
					if err := s.Send(ctx, typeOf(i), payload(i)); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
				<-release // the session lives while its serve function runs
			})
			t.Cleanup(func() { close(release) })
			withBatch := func(h http.Header) http.Header {
				if tc.batch != "" {
					h.Set("Resocket-Batch", tc.batch)
				}
				return h
			}
			first, resp := rawDial(t, ts, withBatch(resumeHeader("", "", "")))
			require.NotNil(t, first)
			r := &rawReader{t: t, ws: first}
			_, data := r.next()
			require.Equal(t, payload(0), data)
			// The link dies; the server queues the rest for the client's return.
			require.NoError(t, first.NetConn().Close())
			close(more)
			require.NoError(t, testkit.Receive(t, sent, waitFor, "Session.Send"))

			second, _ := rawDial(t, ts, withBatch(resumeHeader(resp.Header.Get("Resocket-Session"),
				resp.Header.Get("Resocket-Secret"), "1")))
			require.NotNil(t, second)
			r = &rawReader{t: t, ws: second}
			for i := 1; i <= n; i++ {
				typ, data := r.next()
				require.Equal(t, string(payload(i)), string(data), "message %d", i)
				assert.Equal(t, int(typeOf(i)), typ, "message %d keeps its type", i)
			}
			if tc.batch == "" {
				assert.Zero(t, r.batches, "no batch frame to a client that did not say it takes them")
				return
			}
			assert.GreaterOrEqual(t, r.batches, n/((200-1)/wire.EntryLen(size)), "the waiting messages went in batches")
			assert.LessOrEqual(t, r.largest, 200, "no batch frame larger than the client takes")
		})
	}
}
