package interop

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The resume protocol (docs/protocol.md) against a server built from the
// page alone: interop/node/resume-server.js, on Node's ws. The scenarios
// are those of session/exactlyonce_test.go: numbered messages both ways
// while the connection is cut, exactly once and in order.

// resumePeer is a running resume-server.js.
type resumePeer struct {
	proc *process
	port int
}

// startResumePeer starts resume-server.js on port (0: any free one).
func startResumePeer(t *testing.T, port int) *resumePeer {
	t.Helper()
	proc, port := startServer(t, "node-resume", requireNode(t), "node/resume-server.js", strconv.Itoa(port))
	return &resumePeer{proc: proc, port: port}
}

// url is the WebSocket URL of a session whose application records what it
// receives under id and sends n numbered messages.
func (p *resumePeer) url(id string, n int) string {
	return fmt.Sprintf("ws://127.0.0.1:%d/resume?%s", p.port, url.Values{"id": {id}, "n": {strconv.Itoa(n)}}.Encode())
}

// resumeReport is what the server recorded of the sessions made with one id.
type resumeReport struct {
	Sessions []struct {
		Session        string   `json:"session"`
		Live           bool     `json:"live"`
		Connected      bool     `json:"connected"`
		Received       []string `json:"received"`
		Sent           int      `json:"sent"`
		Acked          int      `json:"acked"`
		Written        int      `json:"written"`
		Connections    int      `json:"connections"`
		Resumes        int      `json:"resumes"`
		Takeovers      int      `json:"takeovers"`
		AckRegressions int      `json:"ackRegressions"`
		FinalAcks      int      `json:"finalAcks"`
		AckedAtClose   *int     `json:"ackedAtClose"`
		ProtocolErrors []string `json:"protocolErrors"`
		Batches        int      `json:"batches"`
	} `json:"sessions"`
}

// get fetches a control path of the server and decodes its JSON into v.
func (p *resumePeer) get(t *testing.T, path string, q url.Values, v any) {
	t.Helper()
	// No keep-alive: an idle pooled connection would be a leaked goroutine.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: within + 5*time.Second}
	u := fmt.Sprintf("http://127.0.0.1:%d%s", p.port, path)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := hc.Get(u)
	require.NoError(t, err, "GET %s", u)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v), "GET %s", u)
}

func (p *resumePeer) report(t *testing.T, id string) resumeReport {
	t.Helper()
	var r resumeReport
	p.get(t, "/report", url.Values{"id": {id}}, &r)
	return r
}

// waitReceived returns the report once id's latest session has received
// at least k messages: the server answers when its application receives
// the k-th, so this waits on the event, not by polling. It fails the test
// after `within`.
func (p *resumePeer) waitReceived(t *testing.T, id string, k int) resumeReport {
	t.Helper()
	var r resumeReport
	p.get(t, "/wait", url.Values{"id": {id}, "received": {strconv.Itoa(k)}, "ms": {strconv.Itoa(int(within / time.Millisecond))}}, &r)
	require.NotEmpty(t, r.Sessions, "no session of %s", id)
	got := len(r.Sessions[len(r.Sessions)-1].Received)
	require.GreaterOrEqual(t, got, k, "the server's application received %d of %d within %s", got, k, within)
	return r
}

// control calls a control path (/cut, /pause) and returns how many
// connections it acted on.
func (p *resumePeer) control(t *testing.T, path, key string) int {
	t.Helper()
	var r map[string]int
	p.get(t, path, nil, &r)
	return r[key]
}

// resumeConfig is the client of session/exactlyonce_test.go: fast
// reconnects, a keepalive that finds a half-open link in half a second.
func resumeConfig() resocket.Config {
	return resocket.Config{
		Resume:       true,
		Backoff:      func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) },
		PingInterval: 200 * time.Millisecond,
		PongTimeout:  300 * time.Millisecond,
		CloseTimeout: 2 * time.Second,
	}
}

// streamResume sends n numbered messages each way between a client and
// the Node server, calling fault after every step messages Send accepted
// (once the server has received at least half of the step), then checks
// exactly once, in order, both ways; it closes the client and returns its
// events and the server's report.
func streamResume(t *testing.T, p *resumePeer, n, step int, fault func()) ([]resocket.Event, resumeReport) {
	t.Helper()
	id := uniqueID(t)
	c := testkit.NewClient(t, p.url(id, n), resumeConfig())
	rec := testkit.Record(t, c) // the client never waits on the test

	ctx, cancel := context.WithTimeout(context.Background(), 3*within)
	defer cancel()
	var accepted []int
	for i := 1; i <= n; i++ {
		if err := c.SendText(ctx, testkit.Payload(i)); err != nil {
			t.Fatalf("Send %d: %v; events:\n%s", i, err, rec.History())
		}
		accepted = append(accepted, i)
		if fault != nil && i%step == 0 && i < n {
			p.waitReceived(t, id, i-step/2)
			fault()
		}
	}
	require.NoError(t, c.Flush(ctx), "Flush; stats %+v; events:\n%s", c.Stats(), rec.History())
	// Flush returned: the server acknowledged every message, so its
	// application has them all.
	r := p.report(t, id)
	require.Len(t, r.Sessions, 1, "one session throughout")
	require.Len(t, r.Sessions[0].Received, n, "the server received every message once Flush returned")

	// Every message of the server, then the end of the client.
	rec.Collect(t, 3*within, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == testkit.Payload(n)
	})
	_, closed, err := testkit.CloseAndDrain(t, c, rec, resocket.StatusNormalClosure, "done", within)
	require.NoError(t, err)
	require.NoError(t, closed.Err)
	all := rec.Events()

	received := make([][]byte, len(r.Sessions[0].Received))
	for i, s := range r.Sessions[0].Received {
		received[i] = []byte(s)
	}
	testkit.ExactlyOnceInOrder(t, testkit.Delivery{
		Accepted: accepted,
		Received: testkit.Seqs(t, received),
		Unsent:   testkit.MessageSeqs(t, closed.Unsent),
	})
	assert.Empty(t, closed.Unsent, "Flush returned: nothing is left")

	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	assert.Equal(t, want, testkit.MessageSeqs(t, testkit.Only[resocket.Message](all)),
		"server to client: exactly once, in order")

	// The client's close ends the session (§5), after the server's final
	// ack; the server has no protocol error to report.
	end := p.report(t, id).Sessions[0]
	assert.Empty(t, end.ProtocolErrors, "the server found no protocol error")
	assert.Zero(t, end.AckRegressions, "no ack of the client went backwards")
	assert.Equal(t, n, end.Sent)
	assert.False(t, end.Live, "the client's close ended the session")
	assert.Positive(t, end.FinalAcks, "the server acked before answering the close")
	assert.Positive(t, end.Batches, "the server sent batch frames (docs/protocol.md §2), which the client took in")
	if assert.NotNil(t, end.AckedAtClose, "the server saw the client's close frame") {
		assert.Equal(t, n, *end.AckedAtClose, "the client's final ack came before its close frame")
	}
	return all, p.report(t, id)
}

// TestResumeNodeWithoutFaults: one connection, one session, both ways.
func TestResumeNodeWithoutFaults(t *testing.T) {
	t.Parallel()
	p := startResumePeer(t, 0)
	all, _ := streamResume(t, p, 500, 0, nil)
	connected := testkit.Only[resocket.Connected](all)
	require.Len(t, connected, 1)
	assert.False(t, connected[0].Resumed, "the first connection starts the session")
	assert.Equal(t, "1", connected[0].Header.Get("Resocket-Resume"))
}

// TestResumeNodeAcrossCuts: the server ends every TCP connection without
// a close frame, nine times while messages stream both ways; every
// reconnect resumes, and nothing is lost or doubled.
func TestResumeNodeAcrossCuts(t *testing.T) {
	t.Parallel()
	p := startResumePeer(t, 0)
	cuts := 0
	all, r := streamResume(t, p, 3000, 300, func() { cuts += p.control(t, "/cut", "cut") })
	connected := testkit.Only[resocket.Connected](all)
	history := testkit.DescribeAll(all)
	require.GreaterOrEqual(t, len(connected), 5, history)
	assert.False(t, connected[0].Resumed)
	for _, c := range connected[1:] {
		assert.True(t, c.Resumed, "every reconnect resumes: %s", history)
	}
	assert.Empty(t, testkit.Only[resocket.SessionLost](all))
	assert.Equal(t, len(connected)-1, r.Sessions[0].Resumes, "the server resumed each reconnect")
	t.Logf("%d connections cut; %d connections", cuts, len(connected))
}

// TestResumeNodeAcrossHalfOpenLinks: the server stops reading its
// connection (a half-open link); the client's keepalive finds it and
// resumes while the server still holds the old connection: a takeover.
func TestResumeNodeAcrossHalfOpenLinks(t *testing.T) {
	t.Parallel()
	p := startResumePeer(t, 0)
	all, r := streamResume(t, p, 1500, 500, func() { p.control(t, "/pause", "paused") })
	history := testkit.DescribeAll(all)
	var disconnects []resocket.Disconnected
	for _, d := range testkit.Only[resocket.Disconnected](all) {
		if d.Decision.Action != resocket.Stop { // not the test's own Close
			disconnects = append(disconnects, d)
		}
	}
	require.NotEmpty(t, disconnects)
	for _, d := range disconnects {
		assert.ErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout, "found by the keepalive: %s", history)
	}
	for _, c := range testkit.Only[resocket.Connected](all)[1:] {
		assert.True(t, c.Resumed, "every reconnect resumes: %s", history)
	}
	assert.Equal(t, len(disconnects), r.Sessions[0].Takeovers, "each resume took over the held connection")
}

// TestResumeNodeSessionLost: the server restarts with new memory, so it
// no longer knows the session: the client reports SessionLost with what
// the old server never acknowledged, then Connected{Resumed: false}, and
// sends none of those again; what it never wrote goes first in the new
// session.
func TestResumeNodeSessionLost(t *testing.T) {
	t.Parallel()
	const before, after, fromServer = 100, 100, 50
	p := startResumePeer(t, 0)
	id := uniqueID(t)
	c := testkit.NewClient(t, p.url(id, fromServer), resumeConfig())
	rec := testkit.Record(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*within)
	defer cancel()

	first := testkit.WaitEvent[resocket.Connected](t, rec, within)
	assert.False(t, first.Resumed)
	for i := 1; i <= before; i++ {
		require.NoError(t, c.SendText(ctx, testkit.Payload(i)))
	}
	r1 := p.waitReceived(t, id, before)
	rec.Collect(t, within, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == testkit.Payload(fromServer)
	})

	// The server dies with its memory: SIGKILL, then a new process on the
	// same port.
	p.proc.killGroup(9)
	p.proc.wait(t, within)
	d := testkit.WaitEvent[resocket.Disconnected](t, rec, within)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	// Not written on any connection: these go first in the new session.
	for i := before + 1; i <= before+after; i++ {
		require.NoError(t, c.SendText(ctx, testkit.Payload(i)))
	}
	p2 := startResumePeer(t, p.port)

	evs := rec.Collect(t, within, testkit.Is[resocket.Connected])
	second := evs[len(evs)-1].(resocket.Connected)
	assert.False(t, second.Resumed, "a new session")
	var lost []resocket.SessionLost
	for _, ev := range evs {
		if l, ok := ev.(resocket.SessionLost); ok {
			lost = append(lost, l)
		}
	}
	require.Len(t, lost, 1, "one SessionLost before the new session: %s", testkit.DescribeAll(evs))
	assert.True(t, testkit.Is[resocket.SessionLost](evs[len(evs)-2]), "SessionLost right before Connected: %s", testkit.DescribeAll(evs))
	inDoubt := testkit.MessageSeqs(t, lost[0].InDoubt)

	require.NoError(t, c.Flush(ctx), "Flush in the new session; events:\n%s", rec.History())
	r2 := p2.report(t, id)
	require.Len(t, r2.Sessions, 1)
	assert.NotEqual(t, r1.Sessions[0].Session, r2.Sessions[0].Session)
	assert.Equal(t, second.Header.Get("Resocket-Session"), r2.Sessions[0].Session)
	rec.Collect(t, within, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && m.ConnID == second.ConnID && string(m.Data) == testkit.Payload(fromServer)
	})
	_, closed, err := testkit.CloseAndDrain(t, c, rec, resocket.StatusNormalClosure, "done", within)
	require.NoError(t, err)
	require.NoError(t, closed.Err)
	assert.Empty(t, closed.Unsent)

	// The old server had 1..before; in doubt is what it never acked: a
	// tail of those, in order. The new server got before+1..before+after
	// and nothing in doubt.
	old := receivedSeqs(t, r1)
	assert.Equal(t, seqRange(1, before), old, "the old server received every message once, in order")
	if len(inDoubt) > 0 {
		assert.Equal(t, seqRange(before-len(inDoubt)+1, before), inDoubt, "in doubt: the unacknowledged tail")
	}
	assert.Equal(t, seqRange(before+1, before+after), receivedSeqs(t, r2),
		"the new session: what was never written, first; nothing in doubt again")

	// The client got each server's messages once, in order: the old
	// session's, then the new one's from 1.
	var got []int
	for _, m := range testkit.Only[resocket.Message](rec.Events()) {
		n, ok := testkit.ParseSeq(m.Data)
		require.True(t, ok)
		got = append(got, n)
	}
	assert.Equal(t, append(seqRange(1, fromServer), seqRange(1, fromServer)...), got)
	t.Logf("%d in doubt after the restart: %v", len(inDoubt), inDoubt)
}

func receivedSeqs(t *testing.T, r resumeReport) []int {
	t.Helper()
	require.NotEmpty(t, r.Sessions)
	s := r.Sessions[len(r.Sessions)-1]
	datas := make([][]byte, len(s.Received))
	for i, d := range s.Received {
		datas[i] = []byte(d)
	}
	return testkit.Seqs(t, datas)
}

func seqRange(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestResumeNodeDrain: a server shutting down (§5 "the server restarts")
// closes with 1012 after its final ack and refuses upgrades with 503 and
// Retry-After; once it takes upgrades again, the client resumes.
func TestResumeNodeDrain(t *testing.T) {
	t.Parallel()
	p := startResumePeer(t, 0)
	id := uniqueID(t)
	c := testkit.NewClient(t, p.url(id, 10), resumeConfig())
	rec := testkit.Record(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	testkit.WaitEvent[resocket.Connected](t, rec, within)
	for i := 1; i <= 10; i++ {
		require.NoError(t, c.SendText(ctx, testkit.Payload(i)))
	}
	p.waitReceived(t, id, 10)

	require.Equal(t, 1, p.control(t, "/drain", "closed"))
	d := testkit.WaitEvent[resocket.Disconnected](t, rec, within)
	assert.Equal(t, resocket.StatusServiceRestart, d.Disconnect.Code)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	f := testkit.WaitEvent[resocket.DialFailed](t, rec, within)
	assert.Equal(t, http.StatusServiceUnavailable, f.Disconnect.HTTPStatus)
	assert.Equal(t, time.Second, f.Disconnect.RetryAfter)
	assert.Equal(t, resocket.Reconnect, f.Decision.Action)
	p.control(t, "/undrain", "")

	next := testkit.WaitEvent[resocket.Connected](t, rec, within)
	assert.True(t, next.Resumed, "the session survived the drain: %s", rec.History())
	require.NoError(t, c.Flush(ctx))
	assert.Equal(t, seqRange(1, 10), receivedSeqs(t, p.report(t, id)))
	assert.Empty(t, testkit.Only[resocket.SessionLost](rec.Events()))
}

// handshake dials the resume endpoint with the given request headers
// (key, value pairs) and returns the response and, on a 101, the
// connection (closed when the test ends).
func (p *resumePeer) handshake(t *testing.T, id string, kv ...string) (*http.Response, *websocket.Conn) {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	d := websocket.Dialer{HandshakeTimeout: within}
	ws, resp, err := d.Dial(p.url(id, 3), h)
	require.NotNil(t, resp, "dial: %v", err)
	if resp.Body != nil {
		resp.Body.Close()
	}
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return resp, ws
}

// TestResumeNodeServerChecks: the Node server refuses and fails what §1
// and §4 say it must, so that the scenarios above run against a server
// that checks, not one that takes anything.
func TestResumeNodeServerChecks(t *testing.T) {
	t.Parallel()
	p := startResumePeer(t, 0)
	id := uniqueID(t)

	// A new session, whose client reads the server's 3 messages and acks
	// none of them.
	resp, ws := p.handshake(t, id, "Resocket-Resume", "1")
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	sess, secret := resp.Header.Get("Resocket-Session"), resp.Header.Get("Resocket-Secret")
	assert.Equal(t, "0", resp.Header.Get("Resocket-Resumed"))
	assert.Equal(t, "0", resp.Header.Get("Resocket-Received"))
	assert.Len(t, sess, 22, "128 bits in URL-safe base64")
	assert.Len(t, secret, 43, "256 bits in URL-safe base64")
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(within)))
	for i := 1; i <= 3; i++ {
		typ, data, err := ws.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, websocket.TextMessage, typ)
		assert.Equal(t, "\x00"+testkit.Payload(i), string(data))
	}

	refusals := []struct {
		name   string
		status int
		kv     []string
	}{
		{"no Resocket-Resume", 400, nil},
		{"version 2", 400, []string{"Resocket-Resume", "2"}},
		{"no secret", 400, []string{"Resocket-Resume", "1", "Resocket-Session", sess, "Resocket-Received", "0"}},
		{"malformed ID", 400, []string{"Resocket-Resume", "1", "Resocket-Session", "a b", "Resocket-Secret", secret, "Resocket-Received", "0"}},
		{"leading zero", 400, []string{"Resocket-Resume", "1", "Resocket-Session", sess, "Resocket-Secret", secret, "Resocket-Received", "01"}},
		{"count beyond 2^64-1", 400, []string{"Resocket-Resume", "1", "Resocket-Session", sess, "Resocket-Secret", secret, "Resocket-Received", "18446744073709551616"}},
		{"wrong secret", 403, []string{"Resocket-Resume", "1", "Resocket-Session", sess, "Resocket-Secret", secret + "x", "Resocket-Received", "0"}},
		{"resume point beyond sent", 400, []string{"Resocket-Resume", "1", "Resocket-Session", sess, "Resocket-Secret", secret, "Resocket-Received", "4"}},
	}
	for _, r := range refusals {
		resp, _ := p.handshake(t, id, r.kv...)
		assert.Equal(t, r.status, resp.StatusCode, r.name)
		assert.NotEmpty(t, resp.Header.Get("Resocket-Error"), "%s: Resocket-Error says why", r.name)
	}

	// An unknown session starts a new one.
	resp, _ = p.handshake(t, id, "Resocket-Resume", "1", "Resocket-Session", "unknown", "Resocket-Secret", "x", "Resocket-Received", "7")
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, "0", resp.Header.Get("Resocket-Resumed"))
	assert.NotEqual(t, "unknown", resp.Header.Get("Resocket-Session"))

	// A resume takes the session over from the first connection, which
	// still holds it; the server sends from the resume point on.
	resp, ws2 := p.handshake(t, id, "Resocket-Resume", "1", "Resocket-Session", sess, "Resocket-Secret", secret, "Resocket-Received", "2")
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Resocket-Resumed"))
	assert.Equal(t, sess, resp.Header.Get("Resocket-Session"))
	assert.Empty(t, resp.Header.Get("Resocket-Secret"), "a secret only with a new session")
	require.NoError(t, ws2.SetReadDeadline(time.Now().Add(within)))
	_, data, err := ws2.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "\x00"+testkit.Payload(3), string(data), "the replay starts after the resume point")
	_, _, err = ws.ReadMessage()
	assert.Error(t, err, "the old connection was closed")

	// Below what the client acknowledged (2, by resuming from it): 400.
	resp, _ = p.handshake(t, id, "Resocket-Resume", "1", "Resocket-Session", sess, "Resocket-Secret", secret, "Resocket-Received", "1")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a resume point below what was acknowledged")

	// An ack beyond what was sent: close 1002.
	ack := make([]byte, 9)
	ack[0] = 1
	binary.BigEndian.PutUint64(ack[1:], 4)
	require.NoError(t, ws2.WriteMessage(websocket.BinaryMessage, ack))
	// First the server's final ack (§3): it has received nothing.
	typ, data, err := ws2.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.BinaryMessage, typ)
	assert.Equal(t, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, data)
	_, _, err = ws2.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseProtocolError, ce.Code)
}
