package session_test

import (
	"context"
	"fmt"
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

// echoRounds is how many messages the servers of these tests echo before
// they do what the test is about: a Receive waiting when a message comes
// takes the socket over, and the client writes each only once the echo
// of the one before came back, when the server waits in Receive again.
const echoRounds = 5

// echoFirst echoes echoRounds messages with a ctx that never ends, as an
// application's serve function does.
func echoFirst(s *session.Session) error {
	ctx := context.Background()
	for range echoRounds {
		typ, data, err := s.Receive(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(ctx, typ, data); err != nil {
			return err
		}
	}
	return nil
}

// A Receive whose ctx can never end reads the socket itself (readturn.go).
// Once the application stops calling Receive, the connection's reader
// must take the socket back: a client's pings are answered and its close
// frame is, though the application never calls Receive again.
func TestReaderTakesOverWhenReceiveStops(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServerServe(t, session.Options{}, func(s *session.Session) {
		if echoFirst(s) == nil {
			<-release // busy elsewhere: nothing calls Receive
		}
	})
	defer close(release)
	ws, _ := rawDial(t, ts, resumeHeader("", "", ""))
	require.NotNil(t, ws, "the handshake")

	for i := range echoRounds {
		msg := append([]byte{wire.KindData}, fmt.Sprintf("hello %d", i)...)
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, msg))
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
		_, echo, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, msg, echo, "the echo")
	}
	require.NoError(t, ws.SetReadDeadline(time.Time{}))

	pongs := make(chan string, 1)
	ws.SetPongHandler(func(data string) error { pongs <- data; return nil })
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	for i := range 5 {
		payload := fmt.Sprintf("ping %d", i)
		require.NoError(t, ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(waitFor)))
		assert.Equal(t, payload, testkit.Receive(t, pongs, waitFor, "the server answers a ping"))
	}
	require.NoError(t, ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(waitFor)))
	err := testkit.Receive(t, readErr, waitFor, "the server answers the close")
	assert.True(t, websocket.IsCloseError(err, websocket.CloseNormalClosure), "%v", err)
}

// A Send that waits for room needs the client's acks, which only a read
// of the socket brings in. After a Receive that read the socket itself,
// the application streams many windows with no Receive to read them:
// the reader must, or the stream stalls with a full window.
func TestStreamAfterReceiveGetsItsAcks(t *testing.T) {
	const window, n = 8, 400
	sent := make(chan error, 1)
	ts := newTestServerServe(t, session.Options{SendBuffer: window}, func(s *session.Session) {
		ctx := context.Background()
		if err := echoFirst(s); err != nil {
			sent <- err
			return
		}
		for i := 1; i <= n; i++ {
			if err := s.Send(ctx, resocket.MessageText, []byte(testkit.Payload(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
		_, _, _ = s.Receive(ctx) // until the session ends
	})
	c, err := resocket.New(ts.URL(), quietConfig()) // its keepalive would reconnect a stalled stream
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	for i := range echoRounds {
		text := fmt.Sprintf("hello %d", i)
		require.NoError(t, c.SendText(context.Background(), text))
		evs := rec.Collect(t, waitFor, testkit.Is[resocket.Message])
		require.Equal(t, text, string(evs[len(evs)-1].(resocket.Message).Data), "the echo")
	}

	var got []resocket.Message
	rec.Collect(t, 10*time.Second, func(ev resocket.Event) bool {
		if m, ok := ev.(resocket.Message); ok {
			got = append(got, m)
		}
		return len(got) == n
	})
	require.NoError(t, testkit.Receive(t, sent, waitFor, "every Send returns"))
	assert.Empty(t, testkit.Only[resocket.Disconnected](rec.Events()), "one connection carried it all")
	seqs := testkit.MessageSeqs(t, got)
	for i, seq := range seqs {
		require.Equal(t, i+1, seq, "the messages arrive once each, in order")
	}
}
