package resocket_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// The client's side of the resume protocol against scripted servers
// (mocks): negotiation, and every way a server can break the protocol.

func resumeConfig() resocket.Config {
	cfg := fastConfig()
	cfg.Resume = true
	return cfg
}

// answer is a 101's resume headers; empty values are left out.
func answer(session, secret, resumed, received string) http.Header {
	h := http.Header{}
	h.Set("Resocket-Resume", "1")
	for k, v := range map[string]string{"Resocket-Session": session, "Resocket-Secret": secret,
		"Resocket-Resumed": resumed, "Resocket-Received": received} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// scripted is a mocks.Server whose nth handshake (from 1) is answered by
// script(n, r).
func scripted(t *testing.T, script func(n int, r *http.Request) http.Header) *mocks.Server {
	var mu sync.Mutex
	n := 0
	return mocks.NewServer(t, mocks.WithUpgradeHeader(func(r *http.Request) http.Header {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		return script(k, r)
	}))
}

// newSession answers every handshake with a new session S1.
func newSession(int, *http.Request) http.Header { return answer("S1", "K1", "0", "0") }

// thenResumed answers the first handshake with a new session S1, and
// every later one with S1 resumed, the server having received received.
func thenResumed(received string) func(int, *http.Request) http.Header {
	return func(n int, _ *http.Request) http.Header {
		if n == 1 {
			return newSession(n, nil)
		}
		return answer("S1", "", "1", received)
	}
}

// receiveData returns the client's next data frame on conn, skipping its
// acks.
func receiveData(t *testing.T, conn *mocks.Conn) (int, []byte) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		typ, data, err := conn.Receive(waitFor)
		require.NoError(t, err)
		if typ == websocket.BinaryMessage && len(data) == 9 && data[0] == 0x01 {
			continue
		}
		return typ, data
	}
	t.Fatal("only acks")
	return 0, nil
}

func ackFrame(n uint64) []byte { return binary.BigEndian.AppendUint64([]byte{0x01}, n) }

// TestResumeUnsupported: a server that does not confirm the protocol in
// its 101 fails the attempt with ErrResumeUnsupported, and DefaultPolicy
// gives up: no retry loop.
func TestResumeUnsupported(t *testing.T) {
	srv := mocks.NewServer(t)
	_, events := newClient(t, srv.URL(), resumeConfig())
	conn := srv.NextConn(t, waitFor)
	failed := testkit.WaitEvent[resocket.DialFailed](t, events, waitFor)
	assert.ErrorIs(t, failed.Disconnect.Err, resocket.ErrResumeUnsupported)
	assert.Equal(t, resocket.GiveUp, failed.Decision.Action, "no retry against a server that will never speak it")
	closed := events.Closed(t, waitFor)
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	assert.ErrorIs(t, closed.Err, resocket.ErrResumeUnsupported)
	require.Len(t, srv.Requests(), 1, "one attempt")
	assert.Equal(t, "1", srv.Requests()[0].Header.Get("Resocket-Resume"), "the client asked for the protocol")
	assert.Empty(t, srv.Requests()[0].Header.Get("Resocket-Session"), "a new session")
	<-conn.Done()
	if code, _, ok := conn.CloseReceived(); ok {
		assert.Equal(t, int(resocket.StatusMandatoryExtension), code)
	}
}

// TestPlainIsUnchanged: without Resume the handshake carries no resume
// header and messages go on the wire as they are, both ways, even one
// that looks like an ack.
func TestPlainIsUnchanged(t *testing.T) {
	srv := mocks.NewServer(t)
	c, events, _, conn := connect(t, srv, fastConfig())
	for name := range srv.Requests()[0].Header {
		assert.False(t, strings.HasPrefix(strings.ToLower(name), "resocket-"), "plain handshake carries %s", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, c.SendText(ctx, "hello"))
	require.NoError(t, c.Send(ctx, resocket.MessageBinary, []byte{0x00, 1}))
	typ, data, err := conn.Receive(waitFor)
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "hello", string(data), "no kind byte in front")
	_, data, err = conn.Receive(waitFor)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 1}, data)

	require.NoError(t, conn.Send(websocket.BinaryMessage, ackFrame(7)))
	m := testkit.WaitEvent[resocket.Message](t, events, waitFor)
	assert.Equal(t, ackFrame(7), m.Data, "delivered as it is")
	flushCtx, cancel2 := context.WithTimeout(context.Background(), waitFor)
	defer cancel2()
	require.NoError(t, c.Flush(flushCtx), "without Resume, Flush returns once written")
}

// TestFlushWithoutResume: without Resume, Flush returns once the send
// buffer is written, and honours ctx while it cannot be.
func TestFlushWithoutResume(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	c, events := newClient(t, srv.URL(), fastConfig())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, c.SendText(ctx, "a"))
	require.NoError(t, c.SendText(ctx, "b"))
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	assert.ErrorIs(t, c.Flush(short), context.DeadlineExceeded, "buffered, not written: Flush waits until ctx ends")

	srv.StallHandshakes(false)
	require.NoError(t, c.Flush(ctx))
	conn := srv.NextConn(t, waitFor)
	for _, want := range []string{"a", "b"} {
		_, data, err := conn.Receive(waitFor)
		require.NoError(t, err)
		assert.Equal(t, want, string(data))
	}
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
}

// protocolBroken waits for the event that ends the connection or attempt
// for a protocol error, and checks the close frame the server got.
func protocolBroken(t *testing.T, events *testkit.Recorder, from int, conn *mocks.Conn) {
	t.Helper()
	_, ev := events.Await(t, from, waitFor, func(ev resocket.Event) bool {
		return testkit.Is[resocket.DialFailed](ev) || testkit.Is[resocket.Disconnected](ev)
	})
	var d resocket.Disconnect
	switch e := ev.Event.(type) {
	case resocket.DialFailed:
		d = e.Disconnect
	case resocket.Disconnected:
		d = e.Disconnect
	}
	assert.ErrorIs(t, d.Err, resocket.ErrResumeProtocol, events.History())
	assert.Equal(t, resocket.StatusProtocolError, d.Code)
	select {
	case <-conn.Done():
	case <-time.After(waitFor):
		t.Fatal("the connection stayed open")
	}
	code, _, ok := conn.CloseReceived()
	assert.True(t, ok, "a close frame")
	assert.Equal(t, int(resocket.StatusProtocolError), code)
}

// TestResumeHandshakeViolations: a 101 that breaks the protocol ends the
// attempt with ErrResumeProtocol and a close frame 1002, never a panic.
func TestResumeHandshakeViolations(t *testing.T) {
	for name, h := range map[string]http.Header{
		"resumes a session never had":        answer("S1", "", "1", "0"),
		"new session with messages":          answer("S1", "K1", "0", "3"),
		"malformed Received":                 answer("S1", "K1", "0", "x"),
		"Resumed neither 0 nor 1":            answer("S1", "K1", "2", "0"),
		"no session":                         answer("", "K1", "0", "0"),
		"new session without a secret":       answer("S1", "", "0", "0"),
		"malformed session":                  answer("S 1", "K1", "0", "0"),
		"Received beyond 2^64":               answer("S1", "K1", "0", "18446744073709551616"),
		"Received with a sign":               answer("S1", "K1", "0", "+0"),
		"Received missing on a new session":  answer("S1", "K1", "0", ""),
		"secret not a token":                 answer("S1", "K 1", "0", "0"),
		"the resume header is a version off": func() http.Header { h := answer("S1", "K1", "0", "0"); h.Set("Resocket-Resume", "2"); return h }(),
		"malformed window":                   func() http.Header { h := answer("S1", "K1", "0", "0"); h.Set("Resocket-Window", "-1"); return h }(),
		"malformed window in bytes":          func() http.Header { h := answer("S1", "K1", "0", "0"); h.Set("Resocket-Window-Bytes", "1k"); return h }(),
	} {
		t.Run(name, func(t *testing.T) {
			srv := scripted(t, func(int, *http.Request) http.Header { return h })
			_, events := newClient(t, srv.URL(), resumeConfig())
			conn := srv.NextConn(t, waitFor)
			if name == "the resume header is a version off" {
				failed := testkit.WaitEvent[resocket.DialFailed](t, events, waitFor)
				assert.ErrorIs(t, failed.Disconnect.Err, resocket.ErrResumeUnsupported)
				return
			}
			protocolBroken(t, events, 0, conn)
		})
	}
}

// TestResumePointInTheFuture: the server resumes and claims more of the
// client's messages than the client ever sent.
func TestResumePointInTheFuture(t *testing.T) {
	srv := scripted(t, thenResumed("5"))
	c, events := newClient(t, srv.URL(), resumeConfig())
	conn := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, c.SendText(ctx, "a"))
	require.NoError(t, c.SendText(ctx, "b"))
	for _, want := range []string{"a", "b"} {
		typ, data, err := conn.Receive(waitFor)
		require.NoError(t, err)
		assert.Equal(t, websocket.TextMessage, typ)
		assert.Equal(t, "\x00"+want, string(data), "a kind byte, then the message")
	}
	from := events.Len()
	conn.Drop()
	testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)

	second := srv.NextConn(t, waitFor)
	req := second.Request()
	assert.Equal(t, "S1", req.Header.Get("Resocket-Session"))
	assert.Equal(t, "K1", req.Header.Get("Resocket-Secret"))
	assert.Equal(t, "0", req.Header.Get("Resocket-Received"))
	protocolBroken(t, events, from+1, second)
	assert.Empty(t, testkit.Only[resocket.SessionLost](events.Events()), "not a lost session: a broken server")
}

// TestResumeFrameViolations: on a live connection, an ack beyond what was
// sent or a malformed frame ends the connection with ErrResumeProtocol
// and a close frame 1002.
func TestResumeFrameViolations(t *testing.T) {
	for name, frame := range map[string]struct {
		typ  int
		data []byte
	}{
		"ack beyond what was sent": {websocket.BinaryMessage, ackFrame(2)},
		"ack of 2^64-1":            {websocket.BinaryMessage, ackFrame(^uint64(0))},
		"unknown frame kind":       {websocket.BinaryMessage, []byte{0x07, 1, 2}},
		"short ack":                {websocket.BinaryMessage, []byte{0x01, 0, 0}},
		"long ack":                 {websocket.BinaryMessage, append(ackFrame(1), 0)},
		"ack as text":              {websocket.TextMessage, ackFrame(1)},
		"empty message":            {websocket.BinaryMessage, nil},
		"empty text message":       {websocket.TextMessage, nil},
		"batch as text":            {websocket.TextMessage, []byte{0x03, 1, 1, 'x'}},
		"empty batch":              {websocket.BinaryMessage, []byte{0x03}},
		"batch entry of type 0":    {websocket.BinaryMessage, []byte{0x03, 0, 1, 'x'}},
		"batch entry cut short":    {websocket.BinaryMessage, []byte{0x03, 2, 9, 'x'}},
		"batch entry padded":       {websocket.BinaryMessage, []byte{0x03, 2, 0x81, 0x00, 'x'}},
	} {
		t.Run(name, func(t *testing.T) {
			srv := scripted(t, newSession)
			c, events := newClient(t, srv.URL(), resumeConfig())
			conn := srv.NextConn(t, waitFor)
			testkit.WaitEvent[resocket.Connected](t, events, waitFor)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			require.NoError(t, c.SendText(ctx, "a"))
			receiveData(t, conn)
			require.NoError(t, conn.Send(frame.typ, frame.data))
			protocolBroken(t, events, 0, conn)
		})
	}
}

// TestResumeAckWithinWhatWasSent: the counterpart: an ack of exactly what
// was sent is taken, and Flush returns on it.
func TestResumeAckWithinWhatWasSent(t *testing.T) {
	c, events, conn, ctx := twoWritten(t)
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	assert.ErrorIs(t, c.Flush(short), context.DeadlineExceeded, "not acknowledged yet")
	require.NoError(t, conn.Send(websocket.BinaryMessage, ackFrame(1)))
	require.NoError(t, conn.Send(websocket.BinaryMessage, ackFrame(2)))
	require.NoError(t, c.Flush(ctx))
	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
	closed := events.Closed(t, waitFor)
	assert.Empty(t, closed.Unsent, "both acknowledged")
	for _, d := range testkit.Only[resocket.Disconnected](events.Events()) {
		assert.NoError(t, d.Disconnect.Err, "only the close")
	}
}

// TestFlushWhenTheClientEnds: a Flush waiting for acknowledgements when
// the client ends returns ErrClosed, never nil: the messages it waited for
// were not acknowledged, they are in Closed.Unsent. A Flush after the end
// says so too.
func TestFlushWhenTheClientEnds(t *testing.T) {
	c, events, _, ctx := twoWritten(t) // written, never acknowledged

	flushed := make(chan error, 1)
	go func() { flushed <- c.Flush(ctx) }()
	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
	assert.ErrorIs(t, testkit.Receive(t, flushed, waitFor, "Flush"), resocket.ErrClosed, "the server acknowledged nothing")
	closed := events.Closed(t, waitFor)
	var unsent []string
	for _, m := range closed.Unsent {
		unsent = append(unsent, string(m.Data))
	}
	assert.Equal(t, []string{"a", "b"}, unsent)
	assert.ErrorIs(t, c.Flush(ctx), resocket.ErrClosed, "Flush once the client has ended")
}

// TestResumeOffersTheWindow: the upgrade request tells the server the
// client's outbox limits (SendBuffer, ResumeBufferBytes), so that it
// acknowledges at least every half of them, and the largest batch frame
// the client takes: 64 KiB, or ReadLimit when smaller (docs/protocol.md).
func TestResumeOffersTheWindow(t *testing.T) {
	srv := scripted(t, newSession)
	cfg := resumeConfig()
	cfg.SendBuffer = 10
	cfg.ResumeBufferBytes = 4096
	newClient(t, srv.URL(), cfg)
	req := srv.NextConn(t, waitFor).Request()
	assert.Equal(t, "10", req.Header.Get("Resocket-Window"))
	assert.Equal(t, "4096", req.Header.Get("Resocket-Window-Bytes"))
	assert.Equal(t, "65536", req.Header.Get("Resocket-Batch"))

	cfg.ReadLimit = 1000
	newClient(t, srv.URL(), cfg)
	assert.Equal(t, "1000", srv.NextConn(t, waitFor).Request().Header.Get("Resocket-Batch"),
		"a batch frame is one WebSocket message: within ReadLimit")
}

// twoWritten connects a client to a scripted new session and has it send
// "a" and "b", which the server has read and not acknowledged. ctx bounds
// the test.
func twoWritten(t *testing.T) (*resocket.Client, *testkit.Recorder, *mocks.Conn, context.Context) {
	t.Helper()
	srv := scripted(t, newSession)
	c, events := newClient(t, srv.URL(), resumeConfig())
	conn := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	require.NoError(t, c.SendText(ctx, "a"))
	require.NoError(t, c.SendText(ctx, "b"))
	receiveData(t, conn)
	receiveData(t, conn)
	return c, events, conn, ctx
}
