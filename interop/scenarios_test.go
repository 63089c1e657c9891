package interop

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The scenario set, run against every peer. What a peer cannot express (a
// close code its library refuses to send) is skipped for that peer only,
// and only if expectedSkips (skips_test.go) lists the row with the
// library's words.
var scenarios = []struct {
	name string
	run  func(t *testing.T, p *peer)
}{
	{"echo", testEcho},
	{"close-codes", testCloseCodes},
	{"close-without-code", testCloseWithoutCode},
	{"fin", testFIN},
	{"rst", testRST},
	{"refusals", testRefusals},
	{"restart", testRestart},
	{"half-open", testHalfOpen},
	{"client-close", testClientClose},
}

func runScenarios(t *testing.T, p *peer) {
	p.skips = newSkipLedger(p.name)
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			p.enter(t, s.name)
			s.run(t, p)
		})
	}
	p.checkAllSkipsReached(t)
}

// testEcho: text and binary messages of the sizes around the frame-length
// boundaries come back in order, intact, on the same connection.
func testEcho(t *testing.T, p *peer) {
	c := newClient(t, p.url("/echo"), resocket.Config{})
	conn := waitFor[resocket.Connected](c, within)

	sizes := []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 1 << 20}
	var want []resocket.Message
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for i := range 2 * len(sizes) {
		typ := resocket.MessageText
		if i%2 == 1 {
			typ = resocket.MessageBinary
		}
		data := payload(i, sizes[i/2], typ)
		require.NoError(t, c.Send(ctx, typ, data), "send message %d", i)
		want = append(want, resocket.Message{ConnID: conn.ConnID, Type: typ, Data: data})
	}
	for i, w := range want {
		ev := c.nextSignificant(within)
		got, ok := ev.(resocket.Message)
		require.True(t, ok, "echo %d: got %s; events:\n%s", i, testkit.Describe(ev), c.rec.History())
		assert.Equal(t, w.ConnID, got.ConnID, "echo %d on the same connection", i)
		assert.Equal(t, w.Type, got.Type, "echo %d type", i)
		assert.True(t, bytes.Equal(w.Data, got.Data), "echo %d: %d bytes back for %d sent", i, len(got.Data), len(w.Data))
	}

	end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
	require.NoError(t, end.err)
	assert.NoError(t, end.closed.Err)
	assert.Empty(t, end.closed.Unsent)
}

// payload makes message i: text is valid UTF-8 with multi-byte runes,
// binary covers every byte value; both start with i so reordering shows.
func payload(i, size int, typ resocket.MessageType) []byte {
	b := make([]byte, 0, size)
	if typ == resocket.MessageBinary {
		for j := range size {
			b = append(b, byte(i+j))
		}
		return b
	}
	if size == 0 {
		return b
	}
	b = append(b, strconv.Itoa(i)+":"...)
	for r := 0; ; r++ {
		next := []rune("aé☕z")[r%4]
		if len(b)+len(string(next)) > size {
			break
		}
		b = append(b, string(next)...)
	}
	for len(b) < size {
		b = append(b, 'x')
	}
	return b[:size]
}

// A close frame sent by the server, and what the default policy must do
// with it.
type closeRow struct {
	code     int
	reason   string
	action   resocket.Action
	minDelay time.Duration
	// unsendable: RFC 6455 §7.4 forbids the code on the wire; the peers
	// of this suite refuse it (the row is then skipped, as expectedSkips
	// says), and a peer that sends it anyway must find the client taking
	// it as a protocol error found by itself, and reconnecting.
	unsendable bool
	// reasonLost explains why the client cannot report the reason.
	reasonLost string
}

var closeRows = []closeRow{
	{code: 1000, reason: "normal", action: resocket.Stop},
	{code: 1001, reason: "going away", action: resocket.Reconnect},
	{code: 1002, reason: "protocol error", action: resocket.GiveUp},
	{code: 1003, reason: "unsupported data", action: resocket.GiveUp},
	{code: 1004, reason: "reserved", unsendable: true},
	{code: 1005, reason: "no status", unsendable: true},
	{code: 1006, reason: "abnormal", unsendable: true},
	{code: 1007, reason: "invalid payload", action: resocket.GiveUp},
	{code: 1008, reason: "policy violation", action: resocket.GiveUp},
	{code: 1009, reason: "message too big", action: resocket.GiveUp},
	{code: 1010, reason: "mandatory extension", action: resocket.GiveUp},
	{code: 1011, reason: "internal error", action: resocket.Reconnect},
	{code: 1012, reason: "service restart", action: resocket.Reconnect},
	{code: 1013, reason: "try again later", action: resocket.Reconnect, minDelay: 5 * time.Second},
	{code: 1014, reason: "bad gateway", action: resocket.Reconnect,
		reasonLost: "gorilla/websocket v1.5.3 rejects 1014 as a bad close code before reading the reason"},
	{code: 1015, reason: "tls", unsendable: true},
	{code: 3000, reason: "unauthorized", action: resocket.GiveUp},
	{code: 3003, reason: "forbidden", action: resocket.GiveUp},
	{code: 3008, reason: "timeout", action: resocket.Reconnect},
	{code: 3999, reason: "registered", action: resocket.Reconnect},
	{code: 4000, reason: "", action: resocket.Reconnect},
	{code: 4001, reason: "jeton expiré ☕", action: resocket.Reconnect},
	{code: 4999, reason: strings.Repeat("r", 123), action: resocket.Reconnect},
}

// testCloseCodes: the server closes with each defined code and with codes
// from 3000–4999; the client reports code and reason and does what the
// default policy says: stop, give up, or reconnect (after MinDelay).
func testCloseCodes(t *testing.T, p *peer) {
	for _, row := range closeRows {
		t.Run(row.name(), func(t *testing.T) {
			p.enter(t, "close-codes/"+row.name())
			testCloseCode(t, p, row)
		})
	}
}

// name names the row's subtest: its code, and whether its reason is long.
func (r closeRow) name() string {
	name := strconv.Itoa(r.code)
	if len(r.reason) > 20 {
		name += "-long-reason"
	}
	return name
}

func testCloseCode(t *testing.T, p *peer, row closeRow) {
	bo := quickBackoff
	if row.minDelay > 0 {
		bo = parkedBackoff // check the wait, then close during it
	}
	id := uniqueID(t)
	c := newClient(t, p.url("/close", "code", strconv.Itoa(row.code), "reason", row.reason, "id", id),
		resocket.Config{Backoff: bo})
	first := waitFor[resocket.Connected](c, within)
	ev := c.nextSignificant(within)
	if words, refused := refusal(ev); refused {
		p.skip(t, "close-codes/"+row.name(), words)
	}
	d, ok := ev.(resocket.Disconnected)
	require.True(t, ok, "want Disconnected, got %s; events:\n%s", testkit.Describe(ev), c.rec.History())
	assert.Equal(t, first.ConnID, d.ConnID)

	if row.unsendable {
		// The peer put a forbidden code on the wire: gorilla fails the
		// frame, and the client reports a protocol error of its own.
		t.Logf("%s sent forbidden close code %d; the client saw %s", p.name, row.code, testkit.Describe(d))
		assert.Equal(t, resocket.StatusProtocolError, d.Disconnect.Code)
		assert.Error(t, d.Disconnect.Err)
		assert.Equal(t, resocket.Reconnect, d.Decision.Action)
		end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
		assert.NoError(t, end.closed.Err)
		return
	}

	assert.Equal(t, resocket.StatusCode(row.code), d.Disconnect.Code, "code")
	if row.reasonLost == "" {
		assert.Equal(t, row.reason, d.Disconnect.Reason, "reason")
	} else if d.Disconnect.Reason != row.reason {
		t.Logf("reason %q reported as %q: %s", row.reason, d.Disconnect.Reason, row.reasonLost)
	}
	assert.NoError(t, d.Disconnect.Err, "a close frame from the server is no transport error")
	assert.Equal(t, row.action, d.Decision.Action, "decision")
	assert.Equal(t, row.minDelay, d.Decision.MinDelay, "MinDelay")

	// The client answers the close frame, as RFC 6455 §5.5.1 asks, with
	// the code it received.
	answer := *p.reportSettled(t, id, 1).Connections[0].CloseCode
	if row.code == 1014 {
		t.Logf("%s got %d in answer to its 1014: %s", p.name, answer, row.reasonLost)
	} else {
		assert.Equal(t, row.code, answer, "the client's answer to the server's close frame")
	}

	switch row.action {
	case resocket.Stop:
		closed := c.drain()
		assert.NoError(t, closed.Err, "Stop ends cleanly")
		assert.NoError(t, c.Err())
	case resocket.GiveUp:
		closed := c.drain()
		require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
		assert.Equal(t, resocket.StatusCode(row.code), resocket.CloseStatus(closed.Err), "Closed.Err carries the close code")
		assert.ErrorIs(t, c.Err(), resocket.ErrGaveUp)
	case resocket.Reconnect:
		rec := waitFor[resocket.Reconnecting](c, within)
		assert.Equal(t, 2, rec.Attempt)
		if row.minDelay > 0 {
			assert.GreaterOrEqual(t, rec.Delay, row.minDelay, "wait at least MinDelay")
		} else {
			again := waitFor[resocket.Connected](c, within)
			assert.Equal(t, 2, again.Attempt, "second connection")
		}
		end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
		assert.NoError(t, end.err)
		assert.NoError(t, end.closed.Err)
		if row.minDelay > 0 {
			assert.Less(t, end.took, time.Second, "Close interrupts the backoff wait")
		}
	}
}

// testCloseWithoutCode: a close frame with no payload reads as 1005 and
// the client reconnects.
func testCloseWithoutCode(t *testing.T, p *peer) {
	id := uniqueID(t)
	c := newClient(t, p.url("/close", "id", id), resocket.Config{})
	first := waitFor[resocket.Connected](c, within)
	ev := c.nextSignificant(within)
	if words, refused := refusal(ev); refused {
		p.skip(t, "close-without-code", words)
	}
	d, ok := ev.(resocket.Disconnected)
	require.True(t, ok, "want Disconnected, got %s; events:\n%s", testkit.Describe(ev), c.rec.History())
	assert.Equal(t, first.ConnID, d.ConnID)
	assert.Equal(t, resocket.StatusNoStatusRcvd, d.Disconnect.Code)
	assert.Empty(t, d.Disconnect.Reason)
	assert.NoError(t, d.Disconnect.Err)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	answer := *p.reportSettled(t, id, 1).Connections[0].CloseCode
	assert.Equal(t, 1005, answer, "the client answers with a close frame without a code")
	waitFor[resocket.Connected](c, within)
	end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
	assert.NoError(t, end.closed.Err)
}

// testFIN: the server ends TCP without a close frame: 1006 with a
// transport error, and the client reconnects.
func testFIN(t *testing.T, p *peer) {
	d := lostLink(t, p, "/drop")
	assert.True(t, isUnexpectedEOF(d.Disconnect.Err), "a FIN reads as gorilla's unexpected EOF, got %v", d.Disconnect.Err)
}

// testRST: the server resets TCP without a close frame: 1006 with a
// transport error, and the client reconnects.
func testRST(t *testing.T, p *peer) {
	d := lostLink(t, p, "/reset")
	if p.resetReachesClient {
		assert.ErrorIs(t, d.Disconnect.Err, syscall.ECONNRESET)
	} else {
		// A proxy closes its own connection to the client: a FIN.
		assert.True(t, isUnexpectedEOF(d.Disconnect.Err), "the server's RST reaches the client through %s as a FIN, got %v", p.name, d.Disconnect.Err)
	}
}

// lostLink connects to path, sends one message (the server then drops the
// link), and checks what every lost link must give: 1006, no reason, a
// transport error, a reconnect that succeeds.
func lostLink(t *testing.T, p *peer, path string) resocket.Disconnected {
	c := newClient(t, p.url(path), resocket.Config{})
	first := waitFor[resocket.Connected](c, within)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	require.NoError(t, c.SendText(ctx, "go"))
	ev := c.nextSignificant(within)
	d, ok := ev.(resocket.Disconnected)
	require.True(t, ok, "want Disconnected, got %s; events:\n%s", testkit.Describe(ev), c.rec.History())
	t.Logf("%s %s: %s", p.name, path, testkit.Describe(d))
	assert.Equal(t, first.ConnID, d.ConnID)
	assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
	assert.Empty(t, d.Disconnect.Reason)
	assert.Error(t, d.Disconnect.Err, "a lost link carries the transport error")
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	again := waitFor[resocket.Connected](c, within)
	assert.Equal(t, 2, again.Attempt)
	end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
	assert.NoError(t, end.closed.Err)
	return d
}

// A refused handshake and what the default policy must do with it.
type refusalRow struct {
	status     int
	retryAfter string // the header's value; "" for none
	action     resocket.Action
	wait       time.Duration // the Retry-After the client must read and honour
}

// testRefusals: handshakes refused with a status, with and without
// Retry-After (in seconds or as an HTTP date).
func testRefusals(t *testing.T, p *peer) {
	rows := []refusalRow{
		{status: 400, action: resocket.GiveUp},
		{status: 401, action: resocket.GiveUp},
		{status: 401, retryAfter: "7", action: resocket.GiveUp, wait: 7 * time.Second},
		{status: 403, action: resocket.GiveUp},
		{status: 404, action: resocket.GiveUp},
		{status: 426, action: resocket.GiveUp},
		{status: 408, action: resocket.Reconnect},
		{status: 429, action: resocket.Reconnect},
		{status: 429, retryAfter: "7", action: resocket.Reconnect, wait: 7 * time.Second},
		{status: 500, action: resocket.Reconnect},
		{status: 502, action: resocket.Reconnect},
		{status: 503, action: resocket.Reconnect},
		{status: 503, retryAfter: "7", action: resocket.Reconnect, wait: 7 * time.Second},
		{status: 503, retryAfter: "date+30s", action: resocket.Reconnect, wait: 30 * time.Second},
	}
	for _, row := range rows {
		name := strconv.Itoa(row.status)
		if row.retryAfter != "" {
			name += "-retry-after-" + strings.TrimPrefix(row.retryAfter, "date+")
		}
		t.Run(name, func(t *testing.T) {
			p.enter(t, "refusals/"+name)
			testRefusal(t, p, row)
		})
	}
}

func testRefusal(t *testing.T, p *peer, row refusalRow) {
	kv := []string{"status", strconv.Itoa(row.status)}
	if after, ok := strings.CutPrefix(row.retryAfter, "date+"); ok {
		d, err := time.ParseDuration(after)
		require.NoError(t, err)
		kv = append(kv, "retryAfter", time.Now().Add(d).UTC().Format(http.TimeFormat))
	} else if row.retryAfter != "" {
		kv = append(kv, "retryAfter", row.retryAfter)
	}
	c := newClient(t, p.url("/refuse", kv...), resocket.Config{})
	ev := c.nextSignificant(within)
	f, ok := ev.(resocket.DialFailed)
	require.True(t, ok, "want DialFailed, got %s; events:\n%s", testkit.Describe(ev), c.rec.History())
	d := f.Disconnect
	assert.Equal(t, row.status, d.HTTPStatus, "HTTPStatus")
	assert.Equal(t, 1, d.Attempt)
	assert.Zero(t, d.Uptime)
	var he *resocket.HandshakeError
	if assert.ErrorAs(t, d.Err, &he) {
		assert.Equal(t, row.status, he.Status)
	}
	assert.ErrorIs(t, d.Err, websocket.ErrBadHandshake)
	if strings.HasPrefix(row.retryAfter, "date+") {
		// An HTTP date has a resolution of one second.
		assert.InDelta(t, row.wait.Seconds(), d.RetryAfter.Seconds(), 2, "RetryAfter from an HTTP date")
	} else {
		assert.Equal(t, row.wait, d.RetryAfter, "RetryAfter")
	}
	assert.Equal(t, row.action, f.Decision.Action, "decision")

	switch row.action {
	case resocket.GiveUp:
		closed := c.drain()
		require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
		assert.ErrorAs(t, closed.Err, &he, "Closed.Err carries the refusal")
	case resocket.Reconnect:
		assert.Equal(t, d.RetryAfter, f.Decision.MinDelay, "MinDelay is Retry-After")
		rec := waitFor[resocket.Reconnecting](c, within)
		assert.Equal(t, 2, rec.Attempt)
		// The backoff is 25 ms: the wait is Retry-After plus the backoff.
		assert.Equal(t, d.RetryAfter+25*time.Millisecond, rec.Delay, "Reconnecting.Delay")
		if d.RetryAfter == 0 {
			again := waitFor[resocket.DialFailed](c, within)
			assert.Equal(t, 2, again.Disconnect.Attempt, "the client tried again")
		}
		end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
		assert.NoError(t, end.err)
		assert.NoError(t, end.closed.Err)
		assert.Less(t, end.took, time.Second, "Close interrupts the wait")
	}
}

// testRestart: the server restarts gracefully (1012) twice while the
// client sends numbered messages, paced (one a millisecond) or in a burst
// (as fast as Send returns, so that restarts catch messages in flight and
// in the send buffer). Every message Send accepted reaches the server
// exactly once and in order, or comes back in Closed.Unsent; the echoes
// hold no duplicate.
func testRestart(t *testing.T, p *peer) {
	t.Run("paced", func(t *testing.T) { testRestartWith(t, p, 300, 60, time.Millisecond) })
	t.Run("burst", func(t *testing.T) { testRestartWith(t, p, 3000, 500, 0) })
}

func testRestartWith(t *testing.T, p *peer, total, every int, pace time.Duration) {
	const restarts = 2
	id := uniqueID(t)
	c := newClient(t, p.url("/restart", "id", id, "restarts", strconv.Itoa(restarts), "every", strconv.Itoa(every)),
		resocket.Config{
			// Long enough for messages to queue in the send buffer.
			Backoff:     func() backoff.BackOff { return backoff.NewConstantBackOff(30 * time.Millisecond) },
			SendBuffer:  total,
			EventBuffer: 2 * total,
		})
	waitFor[resocket.Connected](c, within)

	type outcome struct {
		accepted []int
		failed   map[int]error
	}
	sent := make(chan outcome, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*within)
	defer cancel()
	go func() {
		o := outcome{failed: map[int]error{}}
		var tick <-chan time.Time
		if pace > 0 {
			t := time.NewTicker(pace) // pacing, not synchronisation
			defer t.Stop()
			tick = t.C
		}
		for i := 1; i <= total; i++ {
			if tick != nil {
				<-tick
			}
			if err := c.SendText(ctx, testkit.Payload(i)); err != nil {
				o.failed[i] = err
			} else {
				o.accepted = append(o.accepted, i)
			}
		}
		sent <- o
	}()
	// Events holds 2×total: room for every echo and every connection's
	// events, so the client never waits for the test while it sends.
	o := testkit.Receive(t, sent, 3*within, "the sender's outcome")
	select {
	case <-c.Done():
		t.Fatalf("the client ended while sending: %v; events:\n%s", c.Err(), c.rec.History())
	default:
	}

	// Let the client write what it still holds: the server has received
	// the last message accepted (the client writes in order). Echoes are
	// no sign of that: what a server receives after its close frame it
	// no longer echoes.
	if len(o.accepted) > 0 {
		lastSent := testkit.Payload(o.accepted[len(o.accepted)-1])
		p.reportUntil(t, id, "the last message accepted reached the server", func(r report) bool {
			for _, conn := range r.Connections {
				if slices.Contains(conn.Received, lastSent) {
					return true
				}
			}
			return false
		})
	}
	end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
	require.NoError(t, end.err)
	require.NoError(t, end.closed.Err)
	// end.events holds every event after the first Connected, which the
	// test waited for above.
	echoes := testkit.MessageSeqs(t, testkit.Only[resocket.Message](end.events))
	connected := 1 + len(testkit.Only[resocket.Connected](end.events))
	disconnects := testkit.Only[resocket.Disconnected](end.events)
	unsent := testkit.MessageSeqs(t, end.closed.Unsent)

	// The restarts the client saw. How many of the server's restarts
	// caught the client before it had sent everything depends on timing;
	// each connection ended once, with a restart or with our Close (which
	// may cross the server's 1012: then the 1012 is what ended it).
	require.Len(t, disconnects, connected, "one Disconnected per connection; events:\n%s", c.rec.History())
	restartsSeen := 0
	for _, d := range disconnects {
		if d.Decision.Action == resocket.Stop {
			assert.Contains(t, []resocket.StatusCode{resocket.StatusNormalClosure, resocket.StatusServiceRestart},
				d.Disconnect.Code, "ended by our Close: %s", testkit.Describe(d))
			continue
		}
		restartsSeen++
		assert.Equal(t, resocket.StatusServiceRestart, d.Disconnect.Code)
		assert.Equal(t, "restart", d.Disconnect.Reason)
		assert.NoError(t, d.Disconnect.Err)
		assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	}
	assert.GreaterOrEqual(t, restartsSeen, 1, "the first restart comes before the last message")
	assert.LessOrEqual(t, restartsSeen, restarts)

	// What the server received, connection by connection, once it has
	// seen every connection end. A Close during a handshake (the client
	// reconnecting) leaves the server a connection the client never
	// reported as Connected: it carries no message.
	r := p.reportUntil(t, id, "every connection ended", func(r report) bool {
		if len(r.Connections) < connected {
			return false
		}
		for _, conn := range r.Connections {
			if conn.CloseCode == nil {
				return false
			}
		}
		return true
	})
	for i, conn := range r.Connections[connected:] {
		t.Logf("connection %d: a handshake cut by Close, closed with %d", connected+i+1, *conn.CloseCode)
		assert.Empty(t, conn.Received, "a connection the client never reported carries nothing")
	}
	var received []int
	for i, conn := range r.Connections {
		datas := make([][]byte, len(conn.Received))
		for j, s := range conn.Received {
			datas[j] = []byte(s)
		}
		nums := testkit.Seqs(t, datas)
		if len(nums) > 0 {
			t.Logf("connection %d: received %d..%d (%d messages, %d after the restart threshold)",
				i+1, nums[0], nums[len(nums)-1], len(nums), max(0, len(nums)-every))
		}
		received = append(received, nums...)
	}
	// The last connection ended with a closing handshake at the server
	// too: our 1000, or the echo of its own 1012 (or, when the two close
	// frames crossed, our 1000 while we saw its 1012).
	assert.Contains(t, []int{1000, 1012}, *r.Connections[connected-1].CloseCode,
		"close code at the server of the last connection")

	// Exactly once, in order: every accepted message was received once,
	// or handed back unsent; a message Send refused was received at most
	// once; nothing else was received.
	delivery := testkit.Delivery{Accepted: o.accepted, Received: received, Unsent: unsent}
	for n, err := range o.failed {
		delivery.Refused = append(delivery.Refused, n)
		t.Logf("message %d: Send failed: %v (received by the server: %v)", n, err, slices.Contains(received, n))
	}
	slices.Sort(delivery.Refused)
	testkit.ExactlyOnceInOrder(t, delivery)
	assert.Empty(t, o.failed, "a graceful restart makes no Send fail")

	// Echoes: at most once each, in order, and only of what was received:
	// the server's delivery of what it received back to the client, some
	// of it lost with the connection a restart ended (what a server
	// receives after its close frame it no longer echoes).
	for _, v := range testkit.Check(testkit.Delivery{Accepted: received, Received: echoes}).Violations {
		t.Errorf("echoes (sent: what the server received; received: the echoes): %s", v)
	}
	t.Logf("%d sent, %d accepted, %d received by the server, %d echoed, %d unsent, %d failed; %d restarts seen",
		total, len(o.accepted), len(received), len(echoes), len(unsent), len(o.failed), restartsSeen)
}

// testHalfOpen: the server stops reading and answering pings (a half-open
// link shows the same silence): the ping timeout finds it.
func testHalfOpen(t *testing.T, p *peer) {
	const interval, timeout = 200 * time.Millisecond, 300 * time.Millisecond
	c := newClient(t, p.url("/silent", "ms", "5000"), resocket.Config{
		PingInterval: interval,
		PongTimeout:  timeout,
		Backoff:      parkedBackoff,
	})
	first := waitFor[resocket.Connected](c, within)
	ev := c.nextSignificant(within)
	d, ok := ev.(resocket.Disconnected)
	require.True(t, ok, "want Disconnected, got %s; events:\n%s", testkit.Describe(ev), c.rec.History())
	t.Logf("%s: %s", p.name, testkit.Describe(d))
	assert.Equal(t, first.ConnID, d.ConnID)
	assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
	assert.ErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	assert.GreaterOrEqual(t, d.Disconnect.Uptime, interval+timeout, "found no sooner than interval + timeout")
	assert.Less(t, d.Disconnect.Uptime, 3*(interval+timeout), "found within about interval + timeout")
	waitFor[resocket.Reconnecting](c, within)
	end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
	assert.NoError(t, end.closed.Err)
}

// testClientClose: the client's close code and reason reach the server;
// Terminate reaches it as a connection lost without a close frame.
func testClientClose(t *testing.T, p *peer) {
	for _, row := range []struct {
		name   string
		code   resocket.StatusCode
		reason string
	}{
		{"1000", resocket.StatusNormalClosure, ""},
		{"1001", resocket.StatusGoingAway, "shutting down"},
		{"4001", 4001, "client bye ☕"},
		{"terminate", 0, ""},
	} {
		t.Run(row.name, func(t *testing.T) {
			p.enter(t, "client-close/"+row.name)
			id := uniqueID(t)
			c := newClient(t, p.url("/echo", "id", id), resocket.Config{})
			waitFor[resocket.Connected](c, within)
			ctx, cancel := context.WithTimeout(context.Background(), within)
			defer cancel()
			require.NoError(t, c.SendText(ctx, "hi"))
			waitFor[resocket.Message](c, within)

			want := row.code
			if row.code == 0 {
				c.Terminate()
				assert.NoError(t, c.Err())
				want = resocket.StatusAbnormalClosure
			} else {
				end := c.closeAndDrain(row.code, row.reason)
				require.NoError(t, end.err)
				assert.NoError(t, end.closed.Err)
				var d *resocket.Disconnected
				for _, ev := range end.events {
					if e, ok := ev.(resocket.Disconnected); ok {
						d = &e
					}
				}
				if assert.NotNil(t, d, "a Disconnected for the closed connection") {
					assert.Equal(t, resocket.Stop, d.Decision.Action, "the user's Close is a Stop")
				}
			}
			r := p.reportSettled(t, id, 1)
			conn := r.Connections[0]
			assert.Equal(t, int(want), *conn.CloseCode, "close code at the server")
			if row.code != 0 {
				assert.Equal(t, row.reason, *conn.CloseReason, "close reason at the server")
			}
		})
	}
}
