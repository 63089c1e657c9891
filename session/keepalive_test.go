package session_test

import (
	"bytes"
	"context"
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

// A client that pings the server is alive, even when the server's own
// pings cannot reach it (they wait behind a large message on a slow
// link, the fault of faults.TestResumeSlowLinkLargeMessage): Options
// promises that only a connection that sends nothing for two
// PingIntervals is dead. The server once counted only data messages and
// pongs, and cut such a client after two intervals.
func TestClientPingsKeepTheConnection(t *testing.T) {
	const interval = 100 * time.Millisecond
	ts := newTestServer(t, session.Options{PingInterval: interval})
	h := http.Header{}
	h.Set(wire.HeaderResume, wire.Version)
	ws, resp, err := websocket.DefaultDialer.Dial(ts.URL(), h)
	require.NoError(t, err)
	_ = resp.Body.Close()
	defer func() { _ = ws.Close() }()
	ws.SetPingHandler(func(string) error { return nil }) // the server's pings never get an answer

	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	// Ping every half interval for three times the server's limit.
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for range 12 {
		select {
		case err := <-readErr:
			t.Fatalf("the server cut a client that pinged it every %v: %v", interval/2, err)
		case <-tick.C:
			require.NoError(t, ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)))
		}
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	select {
	case <-readErr: // the server answered the close
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not answer the close")
	}
}

// A large message that arrives slowly keeps the connection: every read
// that brings data is a sign of life. The server once counted only whole
// messages and cut the connection in the middle of one that took longer
// than two PingIntervals to arrive (faults.TestResumeSlowLinkLargeMessage).
func TestSlowMessageKeepsTheConnection(t *testing.T) {
	const interval = 100 * time.Millisecond
	ts := newTestServer(t, session.Options{PingInterval: interval})
	h := http.Header{}
	h.Set(wire.HeaderResume, wire.Version)
	dialer := websocket.Dialer{WriteBufferSize: 1024} // a frame per Write below
	ws, resp, err := dialer.Dial(ts.URL(), h)
	require.NoError(t, err)
	_ = resp.Body.Close()
	defer func() { _ = ws.Close() }()
	// The server's pings are not answered: on a slow link their pongs
	// would wait behind the message.
	ws.SetPingHandler(func(string) error { return nil })
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()

	// Ten 1 KiB frames of one message, one every half interval: it takes
	// 2.5 times as long as the server allows a silent connection.
	w, err := ws.NextWriter(websocket.BinaryMessage)
	require.NoError(t, err)
	piece := bytes.Repeat([]byte{'x'}, 1000)
	_, err = w.Write([]byte{wire.KindData})
	require.NoError(t, err)
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for range 10 {
		select {
		case err := <-readErr:
			t.Fatalf("the server cut a connection in the middle of a message: %v", err)
		case <-tick.C:
			_, err = w.Write(piece)
			require.NoError(t, err)
		}
	}
	require.NoError(t, w.Close())
	require.Eventually(t, func() bool { return ts.peer.count() == 1 }, 5*time.Second, time.Millisecond,
		"the server received the message")
	assert.Len(t, ts.peer.all()[0], 10*len(piece))
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	testkit.Receive(t, readErr, 5*time.Second, "the server answers the close")
}

// The server's pong to a client's ping waits behind its own data frame
// when the link to the client is slow (here: the client reads nothing, so
// the socket's buffers fill), up to the pong's one-second deadline. That
// wait is the server's, not the client's silence: a client that goes on
// pinging keeps the connection. The server once let the read deadline run
// during the wait and cut the connection after it
// (faults.TestResumeSlowLinkLargeMessage, server to client).
func TestBlockedPongKeepsTheConnection(t *testing.T) {
	const interval = 100 * time.Millisecond
	ts := newTestServer(t, session.Options{PingInterval: interval})
	h := http.Header{}
	h.Set(wire.HeaderResume, wire.Version)
	// Straight to the server: the test's proxy would hide the cut.
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+ts.http.Listener.Addr().String(), h)
	require.NoError(t, err)
	_ = resp.Body.Close()
	defer func() { _ = ws.Close() }()

	// The application sends more than the sockets hold; the client never
	// reads.
	sess := testkit.Receive(t, ts.peer.started, 5*time.Second, "the session")
	ctx, cancel := context.WithCancel(context.Background())
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		big := bytes.Repeat([]byte{'x'}, 1<<20)
		for range 15 {
			if sess.Send(ctx, resocket.MessageBinary, big) != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-sending
	}()

	// Ping every half interval for 2.5 s: the pongs wait a second each.
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for i := range 50 {
		<-tick.C
		err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		require.NoError(t, err, "ping %d: the server cut a client that pings it", i)
	}
}
