package session_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// The promises of API.md's "Resumable sessions" and of issue 9, one test
// each, black-box: a real client, a real Server, a loopback proxy.

const waitFor = testkit.WaitFor

// quietConfig reconnects quickly but keeps the keepalive's long default,
// so that only the test decides when a connection ends.
func quietConfig() resocket.Config {
	return resocket.Config{
		Resume:       true,
		Backoff:      func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) },
		CloseTimeout: 2 * time.Second,
	}
}

// connectClient starts a client on ts and waits for its first connection
// and the session the server runs for it.
func connectClient(t *testing.T, ts *testServer, cfg resocket.Config) (*resocket.Client, *testkit.Recorder, resocket.Connected, *session.Session) {
	t.Helper()
	c, err := resocket.New(ts.URL(), cfg)
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	ev := testkit.WaitEvent[resocket.Connected](t, rec, waitFor)
	sess := testkit.Receive(t, ts.peer.started, waitFor, "the session starts")
	return c, rec, ev, sess
}

// credentials are the session ID and secret the 101 gave the client.
func credentials(t *testing.T, ev resocket.Connected) (id, secret string) {
	t.Helper()
	id, secret = ev.Header.Get("Resocket-Session"), ev.Header.Get("Resocket-Secret")
	require.NotEmpty(t, id, "the 101 names the session")
	require.NotEmpty(t, secret, "the 101 of a new session carries its secret")
	return id, secret
}

// resumeHeader is a handshake that asks for the resume protocol; id ""
// asks for a new session. Empty values are left out.
func resumeHeader(id, secret, received string) http.Header {
	h := http.Header{}
	h.Set("Resocket-Resume", "1")
	for k, v := range map[string]string{"Resocket-Session": id, "Resocket-Secret": secret, "Resocket-Received": received} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// rawDial is a plain gorilla handshake straight to the server, no proxy.
func rawDial(t *testing.T, ts *testServer, h http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	ws, resp, err := d.Dial("ws://"+ts.http.Listener.Addr().String(), h)
	if err != nil {
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		require.NotNil(t, resp)
		return nil, resp
	}
	t.Cleanup(func() { closeRaw(ws) })
	return ws, resp
}

// closeRaw ends a raw connection with a close frame, so that the server
// ends the session at once instead of waiting out its read deadline.
func closeRaw(ws *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i := 0; i < 1000; i++ { // until the server's close frame
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	_ = ws.Close()
}

func texts(msgs []resocket.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, string(m.Data))
	}
	return out
}

func strs(datas [][]byte) []string {
	out := make([]string, 0, len(datas))
	for _, d := range datas {
		out = append(out, string(d))
	}
	return out
}

// seq returns prefix+"%03d" for from..to.
func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%03d", prefix, i))
	}
	return out
}

func sendAll(t *testing.T, c *resocket.Client, msgs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, m := range msgs {
		require.NoError(t, c.SendText(ctx, m))
	}
}

func flush(t *testing.T, c *resocket.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, c.Flush(ctx))
}

func sessionSendAll(t *testing.T, s *session.Session, msgs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, m := range msgs {
		require.NoError(t, s.Send(ctx, resocket.MessageText, []byte(m)))
	}
}

// messagesUntil collects the client's messages until one with data last.
func messagesUntil(t *testing.T, rec *testkit.Recorder, last string) []string {
	t.Helper()
	got := rec.Collect(t, waitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == last
	})
	return texts(testkit.Only[resocket.Message](got))
}

// TestSessionLostWhenTheStoreGoesAway: the Server is replaced by one with
// a new MemoryStore mid-stream (a restart of a process that kept its
// sessions in memory). The client learns it at the handshake and reports
// exactly the messages written and never acknowledged, in order, then a
// new session; those never written go first in it. Every message is
// accounted for, none silently dropped, none sent twice.
func TestSessionLostWhenTheStoreGoesAway(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	c, rec, first, _ := connectClient(t, ts, quietConfig())
	require.False(t, first.Resumed)
	oldID, _ := credentials(t, first)

	sendAll(t, c, seq("c", 1, 10))
	flush(t, c) // acknowledged: not in doubt

	// Written on a link that no longer forwards: written, never
	// acknowledged, never received.
	ts.proxy.blackhole()
	sendAll(t, c, seq("c", 11, 15))

	// The process goes away with its memory: its Server refuses (503)
	// until the next one, with an empty Store, takes its place.
	old := ts.h.cur.Load()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, old.Shutdown(ctx))
	ts.proxy.cut()
	testkit.WaitEvent[resocket.Disconnected](t, rec, waitFor)
	sendAll(t, c, seq("c", 16, 18)) // never written in the old session

	// A Flush that spans the loss returns once the new session has
	// acknowledged what it got: the doubt is told by SessionLost, and
	// never acknowledged.
	flushed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		flushed <- c.Flush(ctx)
	}()

	next := newPeer()
	srv2 := session.NewServer(session.Options{Store: session.NewMemoryStore()}, next.serve)
	ts.h.cur.Store(srv2)
	require.NoError(t, testkit.Receive(t, flushed, 2*waitFor, "Flush across the loss"))
	assert.Equal(t, seq("c", 16, 18), strs(next.all()), "Flush returned: the new session has what was never written before")

	_, lostEv := rec.Await(t, 0, waitFor, testkit.Is[resocket.SessionLost])
	lost := lostEv.Event.(resocket.SessionLost)
	assert.Equal(t, seq("c", 11, 15), texts(lost.InDoubt), "in doubt: exactly the written, unacknowledged messages, in order")
	for _, m := range lost.InDoubt {
		assert.Equal(t, resocket.MessageText, m.Type)
	}

	// The next Connected after SessionLost is a new session.
	evs := rec.Events()
	var after []resocket.Event
	for i, ev := range evs {
		if _, ok := ev.(resocket.SessionLost); ok {
			after = evs[i+1:]
			break
		}
	}
	_, connEv := rec.Await(t, len(evs)-len(after), waitFor, testkit.Is[resocket.Connected])
	conn := connEv.Event.(resocket.Connected)
	assert.False(t, conn.Resumed, "a new session follows SessionLost")
	newID, _ := credentials(t, conn)
	assert.NotEqual(t, oldID, newID)
	for _, ev := range after {
		if _, ok := ev.(resocket.Connected); ok {
			break
		}
		_, isMsg := ev.(resocket.Message)
		assert.True(t, isMsg || testkit.Is[resocket.DialFailed](ev) || testkit.Is[resocket.Reconnecting](ev) || testkit.Is[resocket.Connecting](ev),
			"between SessionLost and its Connected: %s", testkit.Describe(ev))
	}

	sendAll(t, c, seq("c", 19, 20))
	flush(t, c)

	// The accounting, exactly: the old server received 1-10, 11-15 are in
	// doubt, the new session received 16-20 (never written before) and
	// nothing of the doubt.
	assert.Equal(t, seq("c", 1, 10), strs(ts.peer.all()), "the old server")
	assert.Equal(t, seq("c", 16, 20), strs(next.all()), "the new session")
	assert.Empty(t, testkit.Only[resocket.SessionLost](rec.Events())[1:], "one SessionLost")

	require.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
	closed := rec.Closed(t, waitFor)
	assert.Empty(t, closed.Unsent)
}

// TestSessionLostMidStream: the same, with messages flowing while the
// Server is replaced (no blackhole, no control of who wrote what): every
// message of the client is received by the old server, in doubt, or
// received by the new session, and the three fit together exactly.
func TestSessionLostMidStream(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	cfg := quietConfig()
	c, rec, _, _ := connectClient(t, ts, cfg)
	next := newPeer()
	const n = 600
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs := seq("c", 1, n)
	for i, m := range msgs {
		require.NoError(t, c.SendText(ctx, m))
		if i == n/2 { // the process restarts, its memory gone
			old := ts.h.cur.Swap(session.NewServer(session.Options{Store: session.NewMemoryStore()}, next.serve))
			require.NoError(t, old.Shutdown(ctx))
		}
	}
	require.NoError(t, c.Flush(ctx), "old %d, new %d\n%s", ts.peer.count(), next.count(), rec.History())
	lost := testkit.Only[resocket.SessionLost](rec.Events())
	require.Len(t, lost, 1, rec.History())
	old, doubt, fresh := strs(ts.peer.all()), texts(lost[0].InDoubt), strs(next.all())

	// old is a prefix; doubt a run that starts within or right after it;
	// fresh everything after the doubt.
	require.Equal(t, msgs[:len(old)], old, "the old server: a prefix, once each")
	end := len(old)
	if len(doubt) > 0 {
		start := -1
		for i, m := range msgs {
			if m == doubt[0] {
				start = i
				break
			}
		}
		require.GreaterOrEqual(t, start, 0)
		require.LessOrEqual(t, start, len(old), "nothing between the acknowledged and the doubt was dropped")
		require.Equal(t, msgs[start:start+len(doubt)], doubt, "in doubt: a run, in order")
		require.GreaterOrEqual(t, start+len(doubt), len(old), "what the old server received was acknowledged or is in doubt")
		end = start + len(doubt)
	}
	assert.Equal(t, msgs[end:], fresh, "the new session: everything else, once, in order (%d old, %d in doubt)", len(old), len(doubt))
}

// TestWrongSecretIsRefused: a resume with the session's real ID and a
// wrong secret is refused with 403, and an ID without a secret with 400;
// neither touches the session, which the client still resumes.
func TestWrongSecretIsRefused(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	c, rec, first, sess := connectClient(t, ts, quietConfig())
	id, secret := credentials(t, first)

	wrong := []byte(secret) // one character off, still a well-formed token
	if wrong[0] == 'a' {
		wrong[0] = 'b'
	} else {
		wrong[0] = 'a'
	}
	require.NotEqual(t, secret, string(wrong))
	ws, resp := rawDial(t, ts, resumeHeader(id, string(wrong), "0"))
	require.Nil(t, ws, "a wrong secret resumes nothing")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	ws, resp = rawDial(t, ts, resumeHeader(id, "", "0"))
	require.Nil(t, ws, "an ID alone resumes nothing")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	select {
	case <-sess.Done():
		t.Fatal("a refused resume ended the session")
	default:
	}
	sendAll(t, c, []string{"a"})
	ts.proxy.cut()
	_, ev := rec.Await(t, 0, waitFor, func(ev resocket.Event) bool {
		cn, ok := ev.(resocket.Connected)
		return ok && cn.ConnID != first.ConnID
	})
	assert.True(t, ev.Event.(resocket.Connected).Resumed, "the client resumes after the refusals: %s", rec.History())
	sendAll(t, c, []string{"b"})
	flush(t, c)
	assert.Equal(t, []string{"a", "b"}, strs(ts.peer.all()))
	assert.Empty(t, ts.peer.started, "no other session was started")
}

// TestUnknownSessionStartsANewOne: a resume naming a session the Store
// does not have, with any secret, starts a new session with an ID and a
// secret of its own.
func TestUnknownSessionStartsANewOne(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	const asked = "AAAAAAAAAAAAAAAAAAAAAA"
	ws, resp := rawDial(t, ts, resumeHeader(asked, "anything", "7"))
	require.NotNil(t, ws, "status %d", resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Resocket-Resume"))
	assert.Equal(t, "0", resp.Header.Get("Resocket-Resumed"))
	assert.Equal(t, "0", resp.Header.Get("Resocket-Received"))
	got := resp.Header.Get("Resocket-Session")
	assert.NotEqual(t, asked, got, "never a new session with the asked ID")
	assert.NotEmpty(t, resp.Header.Get("Resocket-Secret"))
	assert.NotEqual(t, "anything", resp.Header.Get("Resocket-Secret"))
	sess := testkit.Receive(t, ts.peer.started, waitFor, "the new session starts")
	assert.Equal(t, got, sess.ID())
}

// TestResumePointOutsideWhatWasSent: a resume whose Received is beyond
// what the server sent (or below what the client acknowledged) is a
// protocol error, 400; the session goes on.
func TestResumePointOutsideWhatWasSent(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	c, rec, first, sess := connectClient(t, ts, quietConfig())
	id, secret := credentials(t, first)
	sessionSendAll(t, sess, seq("s", 1, 3))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, sess.Flush(ctx)) // the client has acknowledged 3

	for _, received := range []string{"4", "18446744073709551615", "2"} {
		ws, resp := rawDial(t, ts, resumeHeader(id, secret, received))
		require.Nil(t, ws, "Received %s", received)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "Received %s", received)
	}
	for _, received := range []string{"", "-1", "01", "1e3", "18446744073709551616"} {
		ws, resp := rawDial(t, ts, resumeHeader(id, secret, received))
		require.Nil(t, ws, "Received %q", received)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "malformed Received %q", received)
	}

	ts.proxy.cut()
	_, ev := rec.Await(t, 0, waitFor, func(ev resocket.Event) bool {
		cn, ok := ev.(resocket.Connected)
		return ok && cn.ConnID != first.ConnID
	})
	assert.True(t, ev.Event.(resocket.Connected).Resumed, rec.History())
	sessionSendAll(t, sess, []string{"s004"})
	assert.Equal(t, seq("s", 1, 4), messagesUntil(t, rec, "s004"))
	_ = c
}

// TestTakeover: the client resumes on a new connection while the server
// still holds the old, half-open one (its keepalive would take 50 s to
// notice). The old connection is closed at once, and nothing sent around
// it, either way, arrives twice or goes missing.
func TestTakeover(t *testing.T) {
	ts := newTestServer(t, session.Options{}) // the server's keepalive: 25 s
	cfg := resumeConfig()                     // the client's: about half a second
	c, rec, first, sess := connectClient(t, ts, cfg)
	sendAll(t, c, seq("c", 1, 5))
	sessionSendAll(t, sess, seq("s", 1, 5))
	flush(t, c)
	require.Equal(t, seq("s", 1, 5), messagesUntil(t, rec, "s005"))

	old := ts.proxy.current()
	require.Len(t, old, 1)
	ts.proxy.blackhole()
	sendAll(t, c, seq("c", 6, 10))           // written into the void
	sessionSendAll(t, sess, seq("s", 6, 10)) // likewise

	_, ev := rec.Await(t, 0, waitFor, func(ev resocket.Event) bool {
		cn, ok := ev.(resocket.Connected)
		return ok && cn.ConnID != first.ConnID
	})
	require.True(t, ev.Event.(resocket.Connected).Resumed, rec.History())
	select {
	case <-old[0].upDone:
	case <-time.After(waitFor):
		t.Fatal("the server kept the old connection after the takeover")
	}

	sendAll(t, c, seq("c", 11, 15))
	sessionSendAll(t, sess, seq("s", 11, 15))
	flush(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, sess.Flush(ctx))
	assert.Equal(t, seq("c", 1, 15), strs(ts.peer.all()), "client to server: once each, in order")
	all := texts(testkit.Only[resocket.Message](rec.Events()))
	assert.Equal(t, seq("s", 1, 15), all, "server to client: once each, in order")
	assert.Empty(t, ts.peer.started, "the same session throughout")
}

// TestResumeTimeout: a session whose client is gone ends ResumeTimeout
// later and leaves the Store: a resume then starts a new session.
func TestResumeTimeout(t *testing.T) {
	store := session.NewMemoryStore()
	const timeout = 300 * time.Millisecond
	ts := newTestServer(t, session.Options{Store: store, ResumeTimeout: timeout})
	c, _, first, sess := connectClient(t, ts, quietConfig())
	id, secret := credentials(t, first)
	gone := time.Now()
	c.Terminate() // no close frame: the server cannot tell it from a cut

	select {
	case <-sess.Done():
	case <-time.After(timeout + waitFor):
		t.Fatal("the session outlived ResumeTimeout")
	}
	// Done has closed: the session is gone, from the Store and from the
	// Server, at once.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := store.Load(ctx, id)
	assert.ErrorIs(t, err, session.ErrNotFound, "the Store no longer has it")
	ws, resp := rawDial(t, ts, resumeHeader(id, secret, "0"))
	assert.GreaterOrEqual(t, time.Since(gone), timeout, "kept ResumeTimeout for the client")
	_, _, err = sess.Receive(ctx)
	assert.ErrorIs(t, err, session.ErrClosed)

	require.NotNil(t, ws, "status %d", resp.StatusCode)
	assert.Equal(t, "0", resp.Header.Get("Resocket-Resumed"), "a new session")
	assert.NotEqual(t, id, resp.Header.Get("Resocket-Session"))
}

// gated is a serve function that receives the first `first` messages,
// then waits for open before receiving the rest.
type gated struct {
	first    int
	open     chan struct{}
	mu       sync.Mutex
	received []string
	err      error
	returned chan struct{}
	started  chan *session.Session
}

func newGated(first int) *gated {
	return &gated{first: first, open: make(chan struct{}), returned: make(chan struct{}),
		started: make(chan *session.Session, 4)}
}

func (g *gated) serve(s *session.Session) {
	defer close(g.returned)
	g.started <- s
	for i := 0; ; i++ {
		if i == g.first {
			<-g.open
		}
		_, data, err := s.Receive(context.Background())
		g.mu.Lock()
		if err != nil {
			g.err = err
			g.mu.Unlock()
			return
		}
		g.received = append(g.received, string(data))
		g.mu.Unlock()
	}
}

func (g *gated) got() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.received...)
}

// TestCloseEndsTheSession: Close ends the session for good: Done closes,
// Receive returns an error, the Store forgets it; Closed.Unsent holds
// exactly what the server's application never received, in order, and
// nothing that Receive returned.
func TestCloseEndsTheSession(t *testing.T) {
	store := session.NewMemoryStore()
	g := newGated(3)
	ts := newTestServerServe(t, session.Options{Store: store}, g.serve)
	c, err := resocket.New(ts.URL(), quietConfig())
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	first := testkit.WaitEvent[resocket.Connected](t, rec, waitFor)
	id, _ := credentials(t, first)
	sess := testkit.Receive(t, g.started, waitFor, "the session starts")

	all := seq("c", 1, 10)
	sendAll(t, c, all)
	require.Eventually(t, func() bool { return len(g.got()) == 3 }, waitFor, time.Millisecond)

	require.NoError(t, c.Close(resocket.StatusNormalClosure, "done"))
	closed := rec.Closed(t, waitFor)
	assert.NoError(t, closed.Err)
	select {
	case <-sess.Done():
	case <-time.After(waitFor):
		t.Fatal("Close did not end the session")
	}
	close(g.open)
	waitClosed(t, g.returned, "serve returns")
	assert.ErrorIs(t, g.err, session.ErrClosed, "Receive fails once the session has ended")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err = store.Load(ctx, id)
	assert.ErrorIs(t, err, session.ErrNotFound, "ended for good")

	assert.ErrorIs(t, c.Flush(ctx), resocket.ErrClosed, "Flush once the client has ended")
	assert.ErrorIs(t, sess.Send(ctx, resocket.MessageText, []byte("late")), session.ErrClosed, "Send once the session has ended")

	got := g.got()
	assert.Equal(t, all[:3], got, "Receive returned the first three")
	assert.Equal(t, all[3:], texts(closed.Unsent), "Unsent: exactly the rest, in order, disjoint from what Receive returned")
}

// TestClientFlushWaitsForTheServer: Client.Flush returns only once the
// server's application has received every message (the Store has the
// watermark before Receive returns, and before the ack); it honours ctx.
func TestClientFlushWaitsForTheServer(t *testing.T) {
	store := session.NewMemoryStore()
	g := newGated(0)
	ts := newTestServerServe(t, session.Options{Store: store}, g.serve)
	c, err := resocket.New(ts.URL(), quietConfig())
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	first := testkit.WaitEvent[resocket.Connected](t, rec, waitFor)
	id, _ := credentials(t, first)

	sendAll(t, c, seq("c", 1, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.Flush(ctx), context.DeadlineExceeded, "nothing received yet: Flush waits, until ctx ends")

	close(g.open)
	flush(t, c)
	r, err := store.Load(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), r.Received, "Flush returned: the server's application has all three")
}

// TestSessionFlushWaitsForTheClient: Session.Flush returns only once the
// client has acknowledged, that is, its application has the messages
// (OnEvent returned); it honours ctx.
func TestSessionFlushWaitsForTheClient(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	rec := testkit.NewRecorder()
	open := make(chan struct{})
	var once sync.Once
	cfg := quietConfig()
	cfg.OnEvent = func(ev resocket.Event) {
		if _, ok := ev.(resocket.Message); ok {
			once.Do(func() { <-open }) // the application is busy with the first
		}
		rec.OnEvent(ev)
	}
	c, err := resocket.New(ts.URL(), cfg)
	require.NoError(t, err)
	defer c.Terminate()
	sess := testkit.Receive(t, ts.peer.started, waitFor, "the session starts")

	sessionSendAll(t, sess, seq("s", 1, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, sess.Flush(ctx), context.DeadlineExceeded, "the client has not acknowledged: Flush waits, until ctx ends")

	close(open)
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitFor)
	defer cancel2()
	require.NoError(t, sess.Flush(ctx2))
	assert.Equal(t, seq("s", 1, 3), texts(testkit.Only[resocket.Message](rec.Events())),
		"acknowledged: the application had every message when Flush returned")
}

// TestClientSendWaitsForRoom: with the outbox full (SendBuffer messages,
// or ResumeBufferBytes), Send waits for acknowledgements and honours ctx:
// it returns ctx's error and the message is not kept.
func TestClientSendWaitsForRoom(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func(*resocket.Config)
		sizes int
		fits  int
	}{
		{"messages", func(c *resocket.Config) { c.SendBuffer = 4 }, 1, 4},
		{"bytes", func(c *resocket.Config) { c.ResumeBufferBytes = 100 }, 40, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGated(0)
			ts := newTestServerServe(t, session.Options{}, g.serve)
			cfg := quietConfig()
			tc.cfg(&cfg)
			c, err := resocket.New(ts.URL(), cfg)
			require.NoError(t, err)
			rec := testkit.Record(t, c)
			testkit.WaitEvent[resocket.Connected](t, rec, waitFor)

			msg := func(i int) string { return fmt.Sprintf("%0*d", tc.sizes, i) }
			var want []string
			for i := 1; i <= tc.fits; i++ {
				want = append(want, msg(i))
			}
			sendAll(t, c, want)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			assert.ErrorIs(t, c.SendText(ctx, msg(99)), context.DeadlineExceeded, "the outbox is full: Send waits until ctx ends")

			close(g.open)
			flush(t, c)
			sendAll(t, c, []string{msg(100)})
			flush(t, c)
			assert.Equal(t, append(want, msg(100)), g.got(), "the message whose Send failed was not kept")
		})
	}
}

// TestSessionSendWaitsForRoom: Options.SendBuffer bounds the messages the
// client has not acknowledged; Session.Send waits for room, honouring ctx,
// and a message whose Send failed is not kept.
func TestSessionSendWaitsForRoom(t *testing.T) {
	ts := newTestServer(t, session.Options{SendBuffer: 3})
	c, rec, first, sess := connectClient(t, ts, quietConfig())
	ts.proxy.blackhole() // nothing reaches the client: nothing is acknowledged
	sessionSendAll(t, sess, seq("s", 1, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, sess.Send(ctx, resocket.MessageText, []byte("s099")), context.DeadlineExceeded)

	ts.proxy.cut()
	_, ev := rec.Await(t, 0, waitFor, func(ev resocket.Event) bool {
		cn, ok := ev.(resocket.Connected)
		return ok && cn.ConnID != first.ConnID
	})
	require.True(t, ev.Event.(resocket.Connected).Resumed)
	sessionSendAll(t, sess, []string{"s004"}) // waits for the replay's acks
	assert.Equal(t, seq("s", 1, 4), messagesUntil(t, rec, "s004"), "s099 was not kept")
	_ = c
}

// TestShutdown: Shutdown tells every client 1012, ends every session,
// returns only once every serve function has returned (or with ctx's
// error), and refuses handshakes with 503 from then on.
func TestShutdown(t *testing.T) {
	g := newGated(0)
	g.started = make(chan *session.Session, 4)
	returned := make(chan struct{}, 2)
	serve := func(s *session.Session) {
		g.started <- s
		<-s.Done()
		<-g.open // the application takes its time to wind down
		returned <- struct{}{}
	}
	ts := newTestServerServe(t, session.Options{}, serve)
	var recs []*testkit.Recorder
	var sessions []*session.Session
	for range 2 {
		c, err := resocket.New(ts.URL(), quietConfig())
		require.NoError(t, err)
		rec := testkit.Record(t, c)
		testkit.WaitEvent[resocket.Connected](t, rec, waitFor)
		sessions = append(sessions, testkit.Receive(t, g.started, waitFor, "a session starts"))
		recs = append(recs, rec)
	}

	srv := ts.h.cur.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded, "serve functions still run: Shutdown waits")
	assert.Empty(t, returned)

	close(g.open)
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitFor)
	defer cancel2()
	require.NoError(t, srv.Shutdown(ctx2))
	assert.Len(t, returned, 2, "Shutdown returned after every serve function")
	for _, sess := range sessions {
		assert.ErrorIs(t, sess.Send(ctx2, resocket.MessageText, []byte("x")), session.ErrServerClosed)
		_, _, err := sess.Receive(ctx2)
		assert.ErrorIs(t, err, session.ErrServerClosed)
	}

	for _, rec := range recs {
		d := testkit.WaitEvent[resocket.Disconnected](t, rec, waitFor)
		assert.Equal(t, resocket.StatusServiceRestart, d.Disconnect.Code, "clients are told to come back")
	}
	_, resp := rawDial(t, ts, resumeHeader("", "", ""))
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	for _, rec := range recs {
		_, ev := rec.Await(t, 0, waitFor, testkit.Is[resocket.DialFailed])
		assert.Equal(t, http.StatusServiceUnavailable, ev.Event.(resocket.DialFailed).Disconnect.HTTPStatus)
	}
}

// recordingStore remembers the IDs of the sessions created.
type recordingStore struct {
	session.Store
	mu  sync.Mutex
	ids []string
}

func (r *recordingStore) Create(ctx context.Context, id string, hash []byte, owner uint64, ttl time.Duration) error {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
	return r.Store.Create(ctx, id, hash, owner, ttl)
}

// TestSessionIDsAreUnguessable: 1000 sessions, 1000 distinct IDs of at
// least 128 bits (URL-safe base64 without padding: 22 characters or more),
// and secrets as long.
func TestSessionIDsAreUnguessable(t *testing.T) {
	store := &recordingStore{Store: session.NewMemoryStore()}
	srv := session.NewServer(session.Options{Store: store}, func(*session.Session) {})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	}()
	for range 1000 {
		srv.ServeHTTP(httptest.NewRecorder(), upgradeRequest(resumeHeader("", "", "")))
	}
	store.mu.Lock()
	ids := append([]string(nil), store.ids...)
	store.mu.Unlock()
	require.Len(t, ids, 1000)
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		assert.False(t, seen[id], "ID %s twice", id)
		seen[id] = true
		assert.GreaterOrEqual(t, len(id), 22, "at least 128 bits")
	}

	// Secrets, from real handshakes.
	ts := newTestServerServe(t, session.Options{}, func(s *session.Session) { <-s.Done() })
	secrets := map[string]bool{}
	for range 20 {
		ws, resp := rawDial(t, ts, resumeHeader("", "", ""))
		require.NotNil(t, ws)
		s := resp.Header.Get("Resocket-Secret")
		assert.GreaterOrEqual(t, len(s), 22, "at least 128 bits")
		assert.False(t, secrets[s])
		secrets[s] = true
	}
}

// TestSecretsAreNeverLogged: everything the Server and the client log,
// through a new session, a refused resume, cuts, resumes, a restart and a
// close, never holds a secret.
func TestSecretsAreNeverLogged(t *testing.T) {
	logs := &logBuffer{}
	logger := logs.logger()
	opts := session.Options{Logger: logger, Store: session.NewMemoryStore()}
	ts := newTestServer(t, opts)
	cfg := quietConfig()
	cfg.Logger = logger
	c, rec, first, _ := connectClient(t, ts, cfg)
	id, secret := credentials(t, first)
	sendAll(t, c, seq("c", 1, 5))
	flush(t, c)

	wrongSecret := secret[:len(secret)-1] + "x"
	if wrongSecret == secret {
		wrongSecret = secret[:len(secret)-1] + "y"
	}
	ws, resp := rawDial(t, ts, resumeHeader(id, wrongSecret, "0"))
	require.Nil(t, ws)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	ts.proxy.cut()
	testkit.WaitEvent[resocket.Disconnected](t, rec, waitFor)
	ts.restart(opts)
	_, ev := rec.Await(t, 0, waitFor, func(ev resocket.Event) bool {
		cn, ok := ev.(resocket.Connected)
		return ok && cn.Resumed
	})
	require.NotNil(t, ev.Event)
	sendAll(t, c, seq("c", 6, 10))
	flush(t, c)
	require.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
	rec.Closed(t, waitFor)

	out := logs.String()
	require.NotEmpty(t, out, "something was logged")
	assert.Contains(t, out, "refused", "the refusal was logged")
	assert.NotContains(t, out, secret, "the secret is never logged")
	assert.NotContains(t, out, wrongSecret, "nor a wrong one")
	assert.NotContains(t, out, secret[:16], "nor a part of it")
}

// logBuffer collects every log line of the Server and the client.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitClosed waits, bounded, for ch to be closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("%s: not within %v", what, waitFor)
	}
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// upgradeRequest is a WebSocket upgrade request with h's headers, for
// calling ServeHTTP directly: without a connection to hijack, any upgrade
// fails (500) after the handshake's checks.
func upgradeRequest(h http.Header) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	for k, v := range h {
		r.Header[k] = v
	}
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return r
}

// barrierStore holds every Claim until `of` claims have arrived (or a
// bound passes): handshakes that resume the same session at once then
// all claim it before any runs it.
type barrierStore struct {
	session.Store
	of      int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (b *barrierStore) Claim(ctx context.Context, id string, owner uint64) (session.Record, error) {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.of {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(waitFor):
	}
	return b.Store.Claim(ctx, id, owner)
}

// TestConcurrentResumesAfterARestart: two handshakes resume the same
// session at once on a Server that does not run it yet (after a
// restart): both claim it from the Store, the last claim wins, and the
// Server goes on serving: no claim may leave it stuck.
func TestConcurrentResumesAfterARestart(t *testing.T) {
	store := &barrierStore{Store: session.NewMemoryStore(), of: 2, all: make(chan struct{})}
	serve := func(s *session.Session) { <-s.Done() }
	ts := newTestServerServe(t, session.Options{Store: store}, serve)
	ws, resp := rawDial(t, ts, resumeHeader("", "", ""))
	require.NotNil(t, ws)
	id, secret := resp.Header.Get("Resocket-Session"), resp.Header.Get("Resocket-Secret")
	_ = ws.Close() // gone without a close frame: the session stays
	ts.restart(session.Options{Store: store})

	results := make(chan int, 2)
	for range 2 {
		go func() {
			d := websocket.Dialer{HandshakeTimeout: 2 * waitFor}
			ws, resp, err := d.Dial("ws://"+ts.http.Listener.Addr().String(), resumeHeader(id, secret, "0"))
			if err != nil {
				if resp == nil {
					results <- 0
					return
				}
				results <- resp.StatusCode
				return
			}
			closeRaw(ws)
			results <- http.StatusSwitchingProtocols
		}()
	}
	for range 2 {
		code := testkit.Receive(t, results, 3*waitFor, "a concurrent resume ends")
		assert.Contains(t, []int{http.StatusSwitchingProtocols, http.StatusServiceUnavailable}, code)
	}
	ws, resp = rawDial(t, ts, resumeHeader("", "", ""))
	require.NotNil(t, ws, "the Server still serves: status %d", resp.StatusCode)
}

// TestSessionLostAfterExpiry: the client stays away longer than
// ResumeTimeout (the Server shut down, the next one not yet there); the
// Store drops the session, and the client, back, reports SessionLost with
// what it had written and never had acknowledged, then a new session.
func TestSessionLostAfterExpiry(t *testing.T) {
	store := session.NewMemoryStore()
	opts := session.Options{Store: store, ResumeTimeout: 200 * time.Millisecond}
	ts := newTestServer(t, opts)
	c, rec, first, _ := connectClient(t, ts, quietConfig())
	id, _ := credentials(t, first)
	sendAll(t, c, seq("c", 1, 3))
	flush(t, c)
	ts.proxy.blackhole()
	sendAll(t, c, seq("c", 4, 6))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, ts.h.cur.Load().Shutdown(ctx)) // refuses with 503 from now on
	ts.proxy.cut()
	require.Eventually(t, func() bool {
		_, err := store.Load(ctx, id)
		return errors.Is(err, session.ErrNotFound)
	}, waitFor, 10*time.Millisecond, "the Store drops the session after ResumeTimeout")

	next := newPeer()
	ts.h.cur.Store(session.NewServer(opts, next.serve))
	lost := testkit.WaitEvent[resocket.SessionLost](t, rec, waitFor)
	assert.Equal(t, seq("c", 4, 6), texts(lost.InDoubt))
	conn := testkit.WaitEvent[resocket.Connected](t, rec, waitFor)
	assert.False(t, conn.Resumed)
	sendAll(t, c, seq("c", 7, 8))
	flush(t, c)
	assert.Equal(t, seq("c", 1, 3), strs(ts.peer.all()))
	assert.Equal(t, seq("c", 7, 8), strs(next.all()))
}
