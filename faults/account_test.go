package faults

// Accounting: what became of every message a fault test gives to Send.
//
// Three records meet here. The sender notes when each Send started and
// ended and what it returned; the recorder (testkit.Record, started by
// setup in harness_test.go) notes when the test saw each event; the echo
// server notes, per connection, which client connection it is (the hello
// OnConnect writes first) and when each message reached it. reconcile puts
// them together, has testkit.Check find any message that reached the
// server or came back twice, out of order or though nobody sent it, and
// classifies every message: delivered (echoed, or its echo lost with its
// connection), refused by Send, handed back in Closed.Unsent, or lost in
// the nil-write window of a connection a fault killed. Anything else fails
// the test.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// Bounds on the nil-write window: how long before the test saw a
// connection's Disconnected the server may have last received a message on
// it. A message written later than that on the dying connection is the
// only kind the client may lose; the bound is how long it may go on
// writing into a dead link, by the way the fault is found.
const (
	// late is how much later than planned a timer may fire, or an event
	// reach the test, on a loaded 2-core machine under -race (stalls of
	// ~80 ms were seen). It stays under PongTimeout, so a cut link that
	// only the keepalive found would still overrun cutWindow.
	late = 200 * time.Millisecond
	// cutWindow: a link that is cut (FIN, RST, a close frame) is found by
	// the read that fails or brings the close frame. The window is the gap
	// between the last message that got through and the cut: less than one
	// send interval.
	cutWindow = sendEvery + late
	// silentWindow: a link that goes silent is found by the keepalive
	// alone. A ping goes out every max(PingInterval, PongTimeout) (the next
	// one waits for the previous one's timeout), and the connection is cut
	// PongTimeout after the first ping sent after the last sign of life.
	silentWindow = max(pingInterval, pongTimeout) + pongTimeout + late
)

// helloPrefix starts the message each connection's OnConnect writes before
// anything else, so that the server knows which client connection (ConnID)
// it is talking to.
const helloPrefix = "hello "

func hello(id uint64) string { return helloPrefix + strconv.FormatUint(id, 10) }

// sendHello is the fault tests' OnConnect.
func sendHello(ctx context.Context, conn *resocket.Conn) error {
	return conn.Send(ctx, resocket.MessageText, []byte(hello(conn.ID())))
}

// echoServer is the fault tests' upstream: a mocks.Server that echoes, and
// a log of what reached each of its connections, and when.
type echoServer struct {
	*mocks.Server

	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []*serverConn // in accept order
}

// serverConn is one accepted connection and what reached it.
type serverConn struct {
	conn *mocks.Conn

	mu       sync.Mutex
	clientID uint64    // from the hello; 0 until it came
	arrivals []arrival // every data message, in order
}

// arrival is a message and when the server read it.
type arrival struct {
	data string
	at   time.Time
}

// newEchoServer starts the echo server and follows every connection it
// accepts. It takes the server's Accepted channel: use connOf, not
// NextConn. t.Cleanup stops the followers, then the server.
func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	s := &echoServer{Server: mocks.NewServer(t, mocks.WithEcho()), stop: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		close(s.stop)
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) accept() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case c := <-s.Accepted():
			sc := &serverConn{conn: c}
			s.mu.Lock()
			s.conns = append(s.conns, sc)
			s.mu.Unlock()
			s.wg.Add(1)
			go s.follow(sc)
		}
	}
}

// follow stamps each message the connection reads, as it is read, until
// the connection has ended and everything it read is stamped, or the test
// ends.
func (s *echoServer) follow(sc *serverConn) {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		_, data, err := sc.conn.Receive(50 * time.Millisecond)
		switch {
		case errors.Is(err, mocks.ErrTimeout):
			continue
		case err != nil:
			return // ended, and everything read is stamped
		}
		a := arrival{data: string(data), at: time.Now()}
		sc.mu.Lock()
		if id, ok := strings.CutPrefix(a.data, helloPrefix); ok && len(sc.arrivals) == 0 {
			sc.clientID, _ = strconv.ParseUint(id, 10, 64)
		}
		sc.arrivals = append(sc.arrivals, a)
		sc.mu.Unlock()
	}
}

// serverConnLog is a copy of what reached one connection.
type serverConnLog struct {
	conn     *mocks.Conn
	clientID uint64
	arrivals []arrival
}

// log waits until every message each connection has read is stamped, and
// returns a copy of the log, in accept order.
func (s *echoServer) log(t *testing.T) []serverConnLog {
	t.Helper()
	var out []serverConnLog
	requireEventually(t, waitFor, func() bool {
		s.mu.Lock()
		conns := slices.Clone(s.conns)
		s.mu.Unlock()
		out = out[:0]
		for _, sc := range conns {
			sc.mu.Lock()
			l := serverConnLog{conn: sc.conn, clientID: sc.clientID, arrivals: slices.Clone(sc.arrivals)}
			sc.mu.Unlock()
			if len(l.arrivals) != len(sc.conn.Received()) {
				return false
			}
			out = append(out, l)
		}
		return true
	}, "the server's log catches up with what its connections read")
	return out
}

// connOf waits until the server has heard the hello of client connection
// id and returns that connection.
func (s *echoServer) connOf(t *testing.T, id uint64) *mocks.Conn {
	t.Helper()
	var found *mocks.Conn
	requireEventually(t, waitFor, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, sc := range s.conns {
			sc.mu.Lock()
			match := sc.clientID == id
			sc.mu.Unlock()
			if match {
				found = sc.conn
				return true
			}
		}
		return false
	}, "the server heard the hello of connection %d", id)
	return found
}

// sendRec is what became of one Send.
type sendRec struct {
	seq        int    // its place in the order of Sends
	data       string // what was sent
	start, end time.Time
	err        error
}

// sender sends numbered text messages (testkit.Payload: "m000042") one
// after the other,
// every interval, and records each Send's outcome.
type sender struct {
	c    *resocket.Client
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	recs []sendRec
}

func startSender(t *testing.T, c *resocket.Client, interval time.Duration) *sender {
	s := &sender{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(interval)
	t.Cleanup(func() { s.halt() })
	return s
}

func (s *sender) run(interval time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		data := testkit.Payload(seq)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := s.c.SendText(ctx, data)
		cancel()
		s.mu.Lock()
		s.recs = append(s.recs, sendRec{seq: seq, data: data, start: start, end: time.Now(), err: err})
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// halt stops sending and returns every Send's outcome, in order.
func (s *sender) halt() []sendRec {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sendRec(nil), s.recs...)
}

// sent returns how many Sends have returned so far.
func (s *sender) sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// tally accounts for every message given to Send.
type tally struct {
	sent     int
	echoed   int // the server got it and the echo came back
	echoLost int // the server got it; its echo was lost with a connection that died
	sendErr  int // Send returned an error
	unsent   int // handed back in Closed.Unsent
	lost     int // nil Send, never reached the server: in a nil-write window (see windows)
	// unexplained lists, with the reason, every message that is none of
	// the above: each is a broken promise.
	unexplained []string
	// windows holds, for every connection a fault killed, the nil-write
	// window: from the server's last message on it to its Disconnected.
	windows map[uint64]time.Duration
}

func (tl tally) String() string {
	return fmt.Sprintf("sent %d: delivered %d (echoed %d, echo lost with its connection %d), Send error %d, Closed.Unsent %d, "+
		"nil write but lost %d (windows %s)",
		tl.sent, tl.echoed+tl.echoLost, tl.echoed, tl.echoLost, tl.sendErr, tl.unsent, tl.lost, tl.windowList())
}

// windowList lists the nil-write windows, by connection.
func (tl tally) windowList() string {
	if len(tl.windows) == 0 {
		return "none"
	}
	ids := make([]uint64, 0, len(tl.windows))
	for id := range tl.windows {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("conn %d: %s", id, ms(tl.windows[id]))
	}
	return strings.Join(parts, ", ")
}

// assertAccounted checks what every fault test with traffic promises: no
// Send failed, every message is delivered, handed back or lost in the
// nil-write window of a connection the fault killed, and each such window
// is at most bound.
func assertAccounted(t *testing.T, tl tally, bound time.Duration) {
	t.Helper()
	assert.Zero(t, tl.sendErr, "no Send fails under a fault: %v", tl)
	const shown = 10
	for _, why := range tl.unexplained[:min(len(tl.unexplained), shown)] {
		t.Errorf("unaccounted message: %s", why)
	}
	if len(tl.unexplained) > shown {
		t.Errorf("… and %d more unaccounted messages", len(tl.unexplained)-shown)
	}
	for id, w := range tl.windows {
		assert.LessOrEqual(t, w, bound, "nil-write window of connection %d: %v", id, tl)
	}
}

// connLife is what the test saw of one client connection: when its
// Connected and its Disconnected came.
type connLife struct {
	connected    time.Time
	disconnected time.Time // zero if it never ended
	d            resocket.Disconnected
}

// killedByFault reports whether the connection ended other than by the
// test's own doing (Close, ForceReconnect).
func (l connLife) killedByFault() bool {
	return !l.disconnected.IsZero() && l.d.Decision.Action != resocket.Stop &&
		!errors.Is(l.d.Disconnect.Err, resocket.ErrForcedReconnect)
}

// lives returns the life of every connection, and the order in which the
// test saw them connect.
func lives(evs []testkit.Stamped) (map[uint64]*connLife, []uint64) {
	byID := map[uint64]*connLife{}
	var order []uint64
	for _, s := range evs {
		switch ev := s.Event.(type) {
		case resocket.Connected:
			byID[ev.ConnID] = &connLife{connected: s.At}
			order = append(order, ev.ConnID)
		case resocket.Disconnected:
			if l := byID[ev.ConnID]; l != nil {
				l.disconnected, l.d = s.At, ev
			}
		}
	}
	return byID, order
}

// liveAt returns the connection whose Connected was the latest the test
// had seen at time at, if it had not been seen to end by then.
func liveAt(byID map[uint64]*connLife, order []uint64, at time.Time) (uint64, bool) {
	for i := len(order) - 1; i >= 0; i-- {
		l := byID[order[i]]
		if l.connected.After(at) {
			continue
		}
		return order[i], l.disconnected.IsZero() || l.disconnected.After(at)
	}
	return 0, false
}

// reconcile classifies every Send by what the server read, the events and
// Closed.Unsent show. It fails t at once if a message reached the server
// twice or out of order, was echoed twice or out of order, was echoed but
// never read by the server, was both delivered and handed back, was handed
// back after Send refused it or out of order, or if the server read, the
// client received or got back a message nobody sent (testkit.Check finds
// all of these). Messages lost outside a nil-write window are listed in
// tally.unexplained.
//
// A message counts as lost in the nil-write window of connection C only
// if all of these hold:
//   - Send returned nil, and the server never read it, on any connection;
//   - it was written on C: C's Connected was the latest the test had seen
//     when Send started and still when it returned, and C was not yet
//     seen to end when Send started (a message sent while disconnected
//     is buffered, so it cannot be lost);
//   - C was killed by the fault (not by Close or ForceReconnect);
//   - the server heard from C (its hello), and every message it read on C
//     was sent before this one: TCP delivers in order, so only a tail of
//     what was written on C can be missing.
//
// The window of C (in tally.windows, for every connection a fault killed)
// runs from the last message the server read on C to C's Disconnected.
func reconcile(t *testing.T, recs []sendRec, evs []testkit.Stamped, unsent []resocket.Message, server []serverConnLog) tally {
	t.Helper()
	seqOf := make(map[string]int, len(recs))
	var sent testkit.Delivery // to the server: what Send did, what the server read, what came back
	for _, r := range recs {
		seqOf[r.data] = r.seq
		if r.err != nil {
			sent.Refused = append(sent.Refused, r.seq)
		} else {
			sent.Accepted = append(sent.Accepted, r.seq)
		}
	}
	seq := func(what string, data []byte) int {
		t.Helper()
		n, ok := seqOf[string(data)]
		require.True(t, ok, "%s a message nobody sent: %.20q", what, data)
		return n
	}

	// What the server read, connection by connection in accept order.
	type receipt struct {
		clientID uint64
		at       time.Time
	}
	received := map[int]receipt{}
	lastSeq := map[uint64]int{}          // per client connection, the latest message read on it
	lastRead := map[uint64]time.Time{}   // per client connection, when the server last read anything on it
	serverOf := map[uint64]*mocks.Conn{} // per client connection
	for _, sc := range server {
		if sc.clientID != 0 {
			serverOf[sc.clientID] = sc.conn
			lastSeq[sc.clientID] = -1
		}
		for _, a := range sc.arrivals {
			if sc.clientID != 0 {
				lastRead[sc.clientID] = a.at
			}
			if strings.HasPrefix(a.data, helloPrefix) {
				continue
			}
			n := seq("the server read", []byte(a.data))
			sent.Received = append(sent.Received, n)
			received[n] = receipt{clientID: sc.clientID, at: a.at}
			if sc.clientID != 0 {
				lastSeq[sc.clientID] = n
			}
		}
	}
	for _, m := range unsent {
		sent.Unsent = append(sent.Unsent, seq("Closed.Unsent holds", m.Data))
	}
	// Each message reached the server once, in order, or was handed back.
	rep := testkit.Check(sent)
	require.Empty(t, rep.Violations, "what reached the server and what was handed back")

	// What came back: each echo once, in order, of a message the server
	// read. The server's echoes are a delivery of their own: what it read,
	// sent back; the echoes lost with their connection are its Lost.
	echoes := testkit.Delivery{Accepted: sent.Received}
	for _, s := range evs {
		m, ok := s.Event.(resocket.Message)
		if !ok || strings.HasPrefix(string(m.Data), helloPrefix) {
			continue
		}
		echoes.Received = append(echoes.Received, seq("the client received", m.Data))
	}
	require.Empty(t, testkit.Check(echoes).Violations,
		"the echoes (a message the server read counts as sent, an echo as received)")
	echoed := make(map[int]bool, len(echoes.Received))
	for _, n := range echoes.Received {
		echoed[n] = true
	}
	handedBack := make(map[int]bool, len(rep.HandedBack))
	for _, n := range rep.HandedBack {
		handedBack[n] = true
	}

	byID, order := lives(evs)
	tl := tally{sent: len(recs), sendErr: len(sent.Refused), windows: map[uint64]time.Duration{}}
	for id, l := range byID {
		if at, ok := lastRead[id]; ok && l.killedByFault() {
			tl.windows[id] = l.disconnected.Sub(at)
		}
	}
	for _, r := range recs {
		rc, read := received[r.seq]
		switch {
		case r.err != nil: // counted in sendErr
		case echoed[r.seq]:
			tl.echoed++
		case read:
			l := byID[rc.clientID]
			if l == nil || l.disconnected.IsZero() || l.d.Decision.Action == resocket.Stop {
				tl.unexplained = append(tl.unexplained, fmt.Sprintf(
					"message %d reached the server on connection %d, which did not die, yet was never echoed", r.seq, rc.clientID))
				continue
			}
			tl.echoLost++
		case handedBack[r.seq]:
			tl.unsent++
		default:
			if why := outsideWindow(r, byID, order, lastSeq, serverOf); why != "" {
				tl.unexplained = append(tl.unexplained, fmt.Sprintf("message %d (Send %s–%s, nil error) never reached the server and %s",
					r.seq, r.start.Format("15:04:05.000"), r.end.Format("15:04:05.000"), why))
				continue
			}
			tl.lost++
		}
	}
	return tl
}

// outsideWindow returns why a message that Send accepted and the server
// never read is not in a nil-write window, or "" if it is (see reconcile).
func outsideWindow(r sendRec, byID map[uint64]*connLife, order []uint64, lastSeq map[uint64]int, serverOf map[uint64]*mocks.Conn) string {
	id, live := liveAt(byID, order, r.start)
	if !live {
		return "was sent while no connection was open: it should have been buffered"
	}
	if after, _ := liveAt(byID, order, r.end); after != id {
		return fmt.Sprintf("a new connection opened while Send ran (%d, then %d)", id, after)
	}
	l := byID[id]
	switch {
	case serverOf[id] != nil && lastSeq[id] > r.seq:
		return fmt.Sprintf("the server read message %d, sent later on the same connection %d", lastSeq[id], id)
	case l.disconnected.IsZero():
		return fmt.Sprintf("its connection %d never died", id)
	case !l.killedByFault():
		return fmt.Sprintf("its connection %d ended by the test's own doing (%s)", id, testkit.Describe(l.d))
	case serverOf[id] == nil:
		return fmt.Sprintf("the server never heard from its connection %d", id)
	}
	return ""
}

// awaitMessage waits until a message with this text has come.
func awaitMessage(t *testing.T, rec *testkit.Recorder, text string) {
	t.Helper()
	rec.Await(t, 0, waitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == text
	})
}

// finish stops the sender once the link is healthy again, waits until the
// last message sent has come back (the echoes are in order, so every
// earlier one that will ever come has come), closes the client with 1000
// and returns the accounting.
func finish(t *testing.T, srv *echoServer, c *resocket.Client, rec *testkit.Recorder, s *sender) tally {
	t.Helper()
	recs := s.halt()
	lastOK := -1
	for _, r := range recs {
		if r.err == nil {
			lastOK = r.seq
		}
	}
	if lastOK >= 0 {
		awaitMessage(t, rec, testkit.Payload(lastOK)) // its echo
	}
	require.NoError(t, c.Close(resocket.StatusNormalClosure, "done"))
	closed := rec.Closed(t, waitFor)
	require.NoError(t, closed.Err)
	return reconcile(t, recs, rec.Stamped(), closed.Unsent, srv.log(t))
}
