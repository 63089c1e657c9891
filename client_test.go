package resocket

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resocket/resocket/mocks"
)

// ---- construction ----

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "http://x", "https://x", "ws://", "wss://", "ftp://h", "::bad", "ws://:8080", "127.0.0.1:80"} {
		t.Run(url, func(t *testing.T) {
			c, err := New(url, Config{})
			assert.ErrorIs(t, err, ErrInvalidURL)
			assert.Nil(t, c)
			c, err = Dial(context.Background(), url, Config{})
			assert.ErrorIs(t, err, ErrInvalidURL)
			assert.Nil(t, c)
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]Config{
		"EventBuffer -1":      {EventBuffer: -1},
		"PongTimeout -1":      {PongTimeout: -1},
		"CloseTimeout -1":     {CloseTimeout: -1},
		"ReadLimit -1":        {ReadLimit: -1},
		"header name space":   {Header: http.Header{"bad name": {"v"}}},
		"header name colon":   {Header: http.Header{"Bad:Name": {"v"}}},
		"header name empty":   {Header: http.Header{"": {"v"}}},
		"handshake header":    {Header: http.Header{"Sec-Websocket-Key": {"v"}}},
		"Backoff returns nil": {Backoff: func() backoff.BackOff { return nil }},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New("ws://127.0.0.1:1", cfg)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Nil(t, c)
			c, err = Dial(context.Background(), "ws://127.0.0.1:1", cfg)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Nil(t, c)
		})
	}
}

func TestNewAcceptsDocumentedSpecialValues(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	// Negative SendBuffer and PingInterval mean "off", not invalid.
	cfg := fastConfig()
	cfg.SendBuffer = -1
	cfg.PingInterval = -1
	_, ev, _ := connect(t, srv, cfg)
	assert.NotZero(t, ev.ConnID)
}

func TestNewNeverBlocks(t *testing.T) {
	t.Parallel()
	stall := mocks.NewStallServer(t)
	var c *Client
	returnsWithin(t, time.Second, "New against a stalling server", func() {
		var err error
		c, err = New(stall.URL(), Config{})
		assert.NoError(t, err)
	})
	require.NotNil(t, c)
	t.Cleanup(c.Terminate)
	require.True(t, stall.WaitAccepted(1, waitFor), "the client never dialed")
	assert.Equal(t, StateConnecting, c.State())
	assertConnecting(t, nextEvent(t, c, waitFor), 1)
}

// ---- events and state ----

func TestEventsInOrderClosedLast(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c := newClient(t, srv.URL(), fastConfig())
	sconn := srv.NextConn(t, waitFor)
	require.NoError(t, sconn.SendText("one"))
	require.NoError(t, sconn.Send(websocket.BinaryMessage, []byte{2}))

	// Read up to the second message, then close: everything comes in order.
	evs := collect(t, c, func(ev Event) bool { m, ok := ev.(Message); return ok && m.Type == MessageBinary }, waitFor)
	require.NoError(t, c.Close(StatusNormalClosure, "done"))
	rest, closed := drain(t, c, waitFor)
	evs = append(evs, rest...)

	require.Equal(t, []string{"Connecting", "Connected", "Message", "Message", "Disconnected", "Closed"}, typeNames(evs), fmtEvents(evs))
	assertConnecting(t, evs[0], 1)
	conn := evs[1].(Connected)
	assert.Equal(t, 1, conn.Attempt)
	assert.NotZero(t, conn.ConnID)
	assert.NotNil(t, conn.Header, "Connected.Header holds the handshake response headers")
	assert.Equal(t, Message{ConnID: conn.ConnID, Type: MessageText, Data: []byte("one")}, evs[2])
	assert.Equal(t, Message{ConnID: conn.ConnID, Type: MessageBinary, Data: []byte{2}}, evs[3])
	disc := evs[4].(Disconnected)
	assert.Equal(t, conn.ConnID, disc.ConnID)
	assert.Equal(t, Decision{Action: Stop}, disc.Decision)
	assert.Positive(t, disc.Disconnect.Uptime)
	assert.NoError(t, closed.Err)
	assert.Empty(t, closed.Unsent)

	waitClosed(t, c.Done(), waitFor, "Done")
	assert.Equal(t, StateClosed, c.State())
	assert.NoError(t, c.Err())
}

func TestStateFollowsTheClient(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(time.Hour)
	c := newClient(t, srv.URL(), cfg)
	require.True(t, srv.WaitRequests(1, waitFor))
	assert.Equal(t, StateConnecting, c.State(), "first attempt under way")

	srv.StallHandshakes(false)
	sconn := srv.NextConn(t, waitFor)
	waitEvent[Connected](t, c, waitFor)
	assert.Equal(t, StateConnected, c.State())

	sconn.Drop()
	rec := waitEvent[Reconnecting](t, c, waitFor)
	assert.Equal(t, time.Hour, rec.Delay)
	assert.Equal(t, StateReconnecting, c.State(), "waiting out the backoff")

	require.NoError(t, c.Close(StatusNormalClosure, ""))
	assert.Equal(t, StateClosed, c.State())
	assert.NoError(t, c.Err())
}

func TestStateNames(t *testing.T) {
	t.Parallel()
	for s, want := range map[State]string{
		StateConnecting: "connecting", StateConnected: "connected", StateReconnecting: "reconnecting",
		StateClosing: "closing", StateClosed: "closed",
	} {
		assert.Equal(t, want, s.String())
	}
}

func TestSubprotocolNegotiated(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t, mocks.WithSubprotocols("v2", "v1"))
	cfg := fastConfig()
	cfg.Subprotocols = []string{"v1", "v2"}
	_, ev, sconn := connect(t, srv, cfg)
	assert.Equal(t, "v2", sconn.Subprotocol())
	assert.Equal(t, "v2", ev.Subprotocol)
	assert.Equal(t, "v1, v2", sconn.Request().Header.Get("Sec-Websocket-Protocol"))
}

// ---- Send ----

func TestSendWhileConnectedWrites(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, sconn := connect(t, srv, fastConfig())
	ctx := context.Background()
	require.NoError(t, c.SendText(ctx, "text"))
	require.NoError(t, c.Send(ctx, MessageBinary, []byte{0, 1, 2}))

	typ, data, err := sconn.Receive(waitFor)
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "text", string(data))
	typ, data, err = sconn.Receive(waitFor)
	require.NoError(t, err)
	assert.Equal(t, websocket.BinaryMessage, typ)
	assert.Equal(t, []byte{0, 1, 2}, data)
}

func TestSendInvalidMessageType(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, sconn := connect(t, srv, fastConfig())
	for _, typ := range []MessageType{0, 3, websocket.CloseMessage, websocket.PingMessage, websocket.PongMessage, -1} {
		assert.ErrorIs(t, c.Send(context.Background(), typ, []byte("x")), ErrInvalidMessageType, "type %d", int(typ))
	}
	// Nothing reached the server and the connection is still good.
	require.NoError(t, c.SendText(context.Background(), "after"))
	assert.Equal(t, "after", receiveText(t, sconn))
}

func TestSendWhileNotConnected(t *testing.T) {
	t.Parallel()
	t.Run("buffer full at once", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.StallHandshakes(true)
		cfg := fastConfig()
		cfg.SendBuffer = 2
		c := newClient(t, srv.URL(), cfg)
		require.True(t, srv.WaitRequests(1, waitFor))
		ctx := context.Background()
		require.NoError(t, c.SendText(ctx, "1"))
		require.NoError(t, c.SendText(ctx, "2"))
		var err error
		returnsWithin(t, 500*time.Millisecond, "Send into a full buffer", func() { err = c.SendText(ctx, "3") })
		assert.ErrorIs(t, err, ErrBufferFull)

		// The two accepted messages are written once connected.
		srv.StallHandshakes(false)
		sconn := srv.NextConn(t, waitFor)
		assert.Equal(t, "1", receiveText(t, sconn))
		assert.Equal(t, "2", receiveText(t, sconn))
	})
	t.Run("no buffer", func(t *testing.T) {
		t.Parallel()
		stall := mocks.NewStallServer(t)
		cfg := fastConfig()
		cfg.SendBuffer = -1
		c := newClient(t, stall.URL(), cfg)
		assert.ErrorIs(t, c.SendText(context.Background(), "x"), ErrNotConnected)
	})
}

func TestSendBufferedFlushesInOrderBeforeLaterSends(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	c := newClient(t, srv.URL(), fastConfig())
	require.True(t, srv.WaitRequests(1, waitFor))
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		require.NoError(t, c.SendText(ctx, strconv.Itoa(i)))
	}
	srv.StallHandshakes(false)
	sconn := srv.NextConn(t, waitFor)
	waitEvent[Connected](t, c, waitFor)
	// Sent after Connected, possibly while the buffer is still flushing.
	require.NoError(t, c.SendText(ctx, "6"))
	require.NoError(t, c.SendText(ctx, "7"))
	for i := 1; i <= 7; i++ {
		assert.Equal(t, strconv.Itoa(i), receiveText(t, sconn))
	}
}

// Across a graceful server restart, every message Send accepted reaches the
// server exactly once and in order; only those Send refused may be missing.
func TestSendAcrossGracefulRestart(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, conn1 := connect(t, srv, fastConfig())
	ctx := context.Background()

	const maxSends = 100_000
	var (
		accepted []int
		refused  = map[string]int{}
		half     = make(chan struct{})
		back     = make(chan struct{}) // closed once the client is connected again
		sent     = make(chan struct{})
	)
	go func() {
		defer close(sent)
		deadline := time.Now().Add(10 * time.Second)
		for i := 1; i <= maxSends && time.Now().Before(deadline); i++ {
			if err := c.SendText(ctx, strconv.Itoa(i)); err != nil {
				refused[err.Error()]++
			} else {
				accepted = append(accepted, i)
			}
			if i == 100 {
				close(half)
			}
			if i > 100 {
				select {
				case <-back:
					if i > 200 {
						return
					}
				default:
				}
			}
		}
	}()
	waitClosed(t, half, waitFor, "first 100 sends")
	srv.Restart(int(StatusServiceRestart), "restart")
	conn2 := srv.NextConn(t, waitFor)
	disc := waitEvent[Disconnected](t, c, waitFor)
	assert.Equal(t, StatusServiceRestart, disc.Disconnect.Code)
	waitEvent[Connected](t, c, waitFor)
	close(back)
	waitClosed(t, sent, 15*time.Second, "the sender")

	// Once the buffer is flushed, a last message marks the end: once the
	// server has it, every message accepted before it has been written.
	require.Eventually(t, func() bool { return c.State() == StateConnected }, waitFor, time.Millisecond,
		"the send buffer was never flushed")
	require.NoError(t, c.SendText(ctx, "end"))
	for i := 0; ; i++ {
		require.Less(t, i, maxSends+1, "no end marker")
		if receiveText(t, conn2) == "end" {
			break
		}
	}

	var got []int
	for _, m := range append(conn1.Received(), conn2.Received()...) {
		if string(m) == "end" {
			continue
		}
		n, err := strconv.Atoi(string(m))
		require.NoError(t, err)
		got = append(got, n)
	}
	t.Logf("%d accepted, refused: %v, %d on the first connection, %d on the second",
		len(accepted), refused, len(conn1.Received()), len(conn2.Received())-1)
	for i := 1; i < len(got); i++ {
		if !assert.Greater(t, got[i], got[i-1], "message %d arrived after %d: out of order or twice", got[i], got[i-1]) {
			break
		}
	}
	seen := make(map[int]bool, len(got))
	for _, n := range got {
		seen[n] = true
	}
	var missing []int
	for _, n := range accepted {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	assert.Empty(t, missing, "messages Send accepted that never reached the server")

	// Nothing may linger in the send buffer while connected: it would come
	// out of order on a later connection, or only in Closed.Unsent.
	require.NoError(t, c.Close(StatusNormalClosure, ""))
	_, closed := drain(t, c, waitFor)
	assert.Empty(t, unsentText(closed.Unsent), "accepted messages left in the send buffer while connected")
}

func TestSendAfterCloseReturnsErrClosed(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, _ := connect(t, srv, fastConfig())
	require.NoError(t, c.Close(StatusNormalClosure, ""))
	assert.ErrorIs(t, c.SendText(context.Background(), "late"), ErrClosed)
	assert.ErrorIs(t, c.Send(context.Background(), MessageBinary, []byte{1}), ErrClosed)
}

func TestSendAfterTerminateAndGiveUpReturnsErrClosed(t *testing.T) {
	t.Parallel()
	t.Run("terminate", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		c, _, _ := connect(t, srv, fastConfig())
		c.Terminate()
		assert.ErrorIs(t, c.SendText(context.Background(), "late"), ErrClosed)
	})
	t.Run("give up", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.Refuse(http.StatusForbidden, "", -1)
		c := newClient(t, srv.URL(), fastConfig())
		waitClosed(t, c.Done(), waitFor, "Done")
		assert.ErrorIs(t, c.SendText(context.Background(), "late"), ErrClosed)
	})
}

func TestUnsentReturnedInClosed(t *testing.T) {
	t.Parallel()
	t.Run("give up", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.StallHandshakes(true)
		srv.Refuse(http.StatusUnauthorized, "", -1)
		c := newClient(t, srv.URL(), fastConfig())
		require.True(t, srv.WaitRequests(1, waitFor))
		ctx := context.Background()
		require.NoError(t, c.SendText(ctx, "a"))
		require.NoError(t, c.Send(ctx, MessageBinary, []byte("b")))
		require.NoError(t, c.SendText(ctx, "c"))
		srv.StallHandshakes(false)

		_, closed := drain(t, c, waitFor)
		require.ErrorIs(t, closed.Err, ErrGaveUp)
		assert.Equal(t, []Message{
			{Type: MessageText, Data: []byte("a")},
			{Type: MessageBinary, Data: []byte("b")},
			{Type: MessageText, Data: []byte("c")},
		}, closed.Unsent)
	})
	t.Run("close during backoff", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		cfg := fastConfig()
		cfg.Backoff = constantBackoff(time.Hour)
		c, _, sconn := connect(t, srv, cfg)
		sconn.Drop()
		waitEvent[Reconnecting](t, c, waitFor)
		ctx := context.Background()
		require.NoError(t, c.SendText(ctx, "x"))
		require.NoError(t, c.SendText(ctx, "y"))
		require.NoError(t, c.Close(StatusNormalClosure, ""))
		_, closed := drain(t, c, waitFor)
		assert.NoError(t, closed.Err)
		assert.Equal(t, []string{"x", "y"}, unsentText(closed.Unsent))
	})
}

func unsentText(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Data)
	}
	return out
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, sconn := connect(t, srv, fastConfig())
	const senders, each = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	start := make(chan struct{})
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				if err := c.SendText(context.Background(), strconv.Itoa(g)+":"+strconv.Itoa(i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	next := make([]int, senders) // per sender, the index expected next
	for range senders * each {
		msg := receiveText(t, sconn)
		g, i, ok := strings.Cut(msg, ":")
		require.True(t, ok, msg)
		gi, _ := strconv.Atoi(g)
		ii, _ := strconv.Atoi(i)
		require.Equal(t, next[gi], ii, "sender %d's messages out of order", gi)
		next[gi]++
	}
}

// A Send blocked on a socket the peer stopped reading returns at ctx's
// deadline; the connection is then unusable, so the client reconnects.
func TestSendDeadlineOnStalledSocket(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, first, sconn := connect(t, srv, fastConfig())
	sconn.GoSilent()
	big := make([]byte, 256<<10)
	var err error
	for i := 0; i < 400 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = c.Send(ctx, MessageBinary, big)
		cancel()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded, "a Send on a stalled socket never blocked")

	disc := waitEvent[Disconnected](t, c, waitFor)
	assert.Equal(t, first.ConnID, disc.ConnID)
	assert.Equal(t, StatusAbnormalClosure, disc.Disconnect.Code)
	assert.Equal(t, Reconnect, disc.Decision.Action)
	again := waitEvent[Connected](t, c, waitFor)
	assert.NotEqual(t, first.ConnID, again.ConnID)
}

// ---- Close ----

func TestCloseSendsCodeAndReason(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, conn, sconn := connect(t, srv, fastConfig())
	require.NoError(t, c.Close(4001, "bye now"))
	assert.Equal(t, StateClosed, c.State())
	assert.NoError(t, c.Err())
	waitClosed(t, c.Done(), waitFor, "Done")

	waitClosed(t, sconn.Done(), waitFor, "the server's connection")
	code, reason, ok := sconn.CloseReceived()
	require.True(t, ok, "no close frame reached the server")
	assert.Equal(t, 4001, code)
	assert.Equal(t, "bye now", reason)

	evs, closed := drain(t, c, waitFor)
	disc := onlyOf[Disconnected](evs)
	require.Len(t, disc, 1, fmtEvents(evs))
	assert.Equal(t, conn.ConnID, disc[0].ConnID)
	assert.Equal(t, Decision{Action: Stop}, disc[0].Decision)
	assert.NoError(t, closed.Err)
	assert.Empty(t, onlyOf[Reconnecting](evs), "no reconnect after Close")
}

func TestCloseRejectsInvalidArguments(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, sconn := connect(t, srv, fastConfig())
	for _, code := range []StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, -1} {
		assert.ErrorIs(t, c.Close(code, ""), ErrInvalidCloseCode, "code %d", int(code))
	}
	assert.ErrorIs(t, c.Close(StatusNormalClosure, strings.Repeat("r", 124)), ErrInvalidReason)
	assert.ErrorIs(t, c.Close(StatusNormalClosure, "\xff\xfe"), ErrInvalidReason)

	// The client was left as it was.
	assert.Equal(t, StateConnected, c.State())
	require.NoError(t, c.SendText(context.Background(), "still here"))
	assert.Equal(t, "still here", receiveText(t, sconn))
	_, _, closeSent := sconn.CloseReceived()
	assert.False(t, closeSent)

	// The longest valid reason is accepted.
	require.NoError(t, c.Close(StatusNormalClosure, strings.Repeat("r", 123)))
	waitClosed(t, sconn.Done(), waitFor, "the server's connection")
	_, reason, _ := sconn.CloseReceived()
	assert.Len(t, reason, 123)
}

func TestCloseTwiceAndAfterTerminate(t *testing.T) {
	t.Parallel()
	t.Run("close twice", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		c, _, _ := connect(t, srv, fastConfig())
		require.NoError(t, c.Close(StatusNormalClosure, ""))
		assert.ErrorIs(t, c.Close(StatusNormalClosure, ""), ErrClosed)
		assert.NoError(t, c.Err())
	})
	t.Run("close after terminate", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		c, _, _ := connect(t, srv, fastConfig())
		c.Terminate()
		c.Terminate() // again: harmless
		assert.ErrorIs(t, c.Close(StatusNormalClosure, ""), ErrClosed)
		assert.NoError(t, c.Err())
	})
	t.Run("close after give up", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.Refuse(http.StatusNotFound, "", -1)
		c := newClient(t, srv.URL(), fastConfig())
		waitClosed(t, c.Done(), waitFor, "Done")
		assert.ErrorIs(t, c.Close(StatusNormalClosure, ""), ErrClosed)
		assert.ErrorIs(t, c.Err(), ErrGaveUp, "Close after the end must not change Err")
	})
}

func TestCloseAgainstSilentServerTakesCloseTimeout(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.CloseTimeout = 300 * time.Millisecond
	c, _, sconn := connect(t, srv, cfg)
	sconn.GoSilent()
	var err error
	took := returnsWithin(t, cfg.CloseTimeout+2*time.Second, "Close", func() { err = c.Close(StatusGoingAway, "") })
	assert.NoError(t, err)
	assert.GreaterOrEqual(t, took, cfg.CloseTimeout-50*time.Millisecond, "Close gave up before CloseTimeout")
	assert.NoError(t, c.Err())
	assert.Equal(t, StateClosed, c.State())
}

func TestTerminateSendsNoCloseFrame(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, sconn := connect(t, srv, fastConfig())
	returnsWithin(t, time.Second, "Terminate", c.Terminate)
	waitClosed(t, c.Done(), waitFor, "Done")
	waitClosed(t, c.Events(), waitFor, "Events")
	waitClosed(t, sconn.Done(), waitFor, "the server's connection")
	_, _, ok := sconn.CloseReceived()
	assert.False(t, ok, "Terminate sent a close frame")
	assert.NoError(t, c.Err())
	assert.Equal(t, StateClosed, c.State())
}

func TestCloseAndTerminateInterruptBackoff(t *testing.T) {
	t.Parallel()
	for _, terminate := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "terminate"}[terminate], func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			cfg := fastConfig()
			cfg.Backoff = constantBackoff(time.Hour)
			c, _, sconn := connect(t, srv, cfg)
			sconn.Drop()
			rec := waitEvent[Reconnecting](t, c, waitFor)
			require.Equal(t, time.Hour, rec.Delay)
			returnsWithin(t, time.Second, "ending the client during a backoff wait", func() {
				if terminate {
					c.Terminate()
				} else {
					assert.NoError(t, c.Close(StatusNormalClosure, ""))
				}
			})
			waitClosed(t, c.Done(), time.Second, "Done")
			assert.NoError(t, c.Err())
			assert.Equal(t, 1, len(srv.Requests()), "no attempt after the client ended")
		})
	}
}

func TestCloseAndTerminateInterruptStalledHandshake(t *testing.T) {
	t.Parallel()
	// Each returns the server's URL and a wait for the client's attempt to
	// reach it.
	servers := map[string]func(t *testing.T) (string, func() bool){
		"server holds request": func(t *testing.T) (string, func() bool) {
			srv := mocks.NewServer(t)
			srv.StallHandshakes(true)
			return srv.URL(), func() bool { return srv.WaitRequests(1, waitFor) }
		},
		"server never answers TCP": func(t *testing.T) (string, func() bool) {
			srv := mocks.NewStallServer(t)
			return srv.URL(), func() bool { return srv.WaitAccepted(1, waitFor) }
		},
	}
	for name, start := range servers {
		for _, terminate := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/close", true: "/terminate"}[terminate], func(t *testing.T) {
				t.Parallel()
				url, reached := start(t)
				c := newClient(t, url, fastConfig())
				assertConnecting(t, nextEvent(t, c, waitFor), 1)
				require.True(t, reached(), "the client never reached the server")
				returnsWithin(t, 2*time.Second, "ending the client during a stalled handshake", func() {
					if terminate {
						c.Terminate()
					} else {
						assert.NoError(t, c.Close(StatusNormalClosure, ""))
					}
				})
				evs := collect(t, c, nil, waitFor)
				assert.Empty(t, onlyOf[DialFailed](evs), "the user's own close is not a failed attempt")
				assert.NoError(t, c.Err())
			})
		}
	}
}

func TestConcurrentCloseTerminateSend(t *testing.T) {
	t.Parallel()
	for run := range 5 {
		t.Run(strconv.Itoa(run), func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t, mocks.WithEcho())
			c, _, _ := connect(t, srv, fastConfig())
			var wg sync.WaitGroup
			var closeOK atomic.Int32
			start := make(chan struct{})
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					switch g % 4 {
					case 0:
						err := c.Close(StatusNormalClosure, "bye")
						if err == nil {
							closeOK.Add(1)
						} else {
							assert.ErrorIs(t, err, ErrClosed)
						}
					case 1:
						c.Terminate()
					default:
						for i := range 50 {
							_ = c.SendText(context.Background(), strconv.Itoa(i))
						}
					}
				}()
			}
			close(start)
			returnsWithin(t, waitFor, "concurrent Close, Terminate and Send", wg.Wait)
			waitClosed(t, c.Done(), time.Second, "Done")
			waitClosed(t, c.Events(), time.Second, "Events")
			assert.LessOrEqual(t, closeOK.Load(), int32(1), "more than one Close succeeded")
			assert.NoError(t, c.Err())
			assert.ErrorIs(t, c.SendText(context.Background(), "late"), ErrClosed)
		})
	}
}

// Nobody reads Events (capacity 1) while the server pushes messages: Close
// still returns within CloseTimeout plus a margin, and so does Terminate.
func TestCloseAndTerminateNeverBlockOnFullEvents(t *testing.T) {
	t.Parallel()
	for _, terminate := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "terminate"}[terminate], func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			cfg := fastConfig()
			cfg.EventBuffer = 1
			cfg.CloseTimeout = 300 * time.Millisecond
			c := newClient(t, srv.URL(), cfg)
			sconn := srv.NextConn(t, waitFor)
			pushed := pushMessages(t, sconn, 1<<10)
			// Let the server fill the pipe.
			require.Eventually(t, func() bool { return pushed.Load() >= 50 }, waitFor, 5*time.Millisecond)
			returnsWithin(t, cfg.CloseTimeout+2*time.Second, "ending with a full Events channel", func() {
				if terminate {
					c.Terminate()
				} else {
					assert.NoError(t, c.Close(StatusNormalClosure, ""))
				}
			})
			waitClosed(t, c.Done(), time.Second, "Done")
			waitClosed(t, c.Events(), time.Second, "Events")
			assert.NoError(t, c.Err())
		})
	}
}

// pushMessages makes the server send messages of size bytes until a write
// fails (or a bound is reached); the test waits for it at cleanup.
func pushMessages(t *testing.T, sconn *mocks.Conn, size int) *atomic.Int64 {
	var n atomic.Int64
	done := make(chan struct{})
	stop := make(chan struct{})
	payload := []byte(strings.Repeat("m", size))
	go func() {
		defer close(done)
		for range 100_000 {
			select {
			case <-stop:
				return
			default:
			}
			if sconn.Send(websocket.TextMessage, payload) != nil {
				return
			}
			n.Add(1)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done // bounded by the server's 5s write deadline
	})
	return &n
}

// Close while a Send is blocked on a socket the server stopped reading:
// Close cannot write its frame, so it cuts the connection at CloseTimeout,
// and the blocked Send returns.
func TestCloseWithSendBlockedOnSocket(t *testing.T) {
	t.Parallel()
	for _, terminate := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "terminate"}[terminate], func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			cfg := fastConfig()
			cfg.CloseTimeout = 300 * time.Millisecond
			c, _, sconn := connect(t, srv, cfg)
			sconn.GoSilent()

			var sends atomic.Int64
			var lastErr atomic.Value
			senderDone := make(chan struct{})
			go func() {
				defer close(senderDone)
				big := make([]byte, 256<<10)
				for range 1000 {
					if err := c.Send(context.Background(), MessageBinary, big); err != nil {
						lastErr.Store(err)
						return
					}
					sends.Add(1)
				}
			}()
			waitProgressStops(t, &sends)

			returnsWithin(t, cfg.CloseTimeout+2*time.Second, "ending with a blocked Send", func() {
				if terminate {
					c.Terminate()
				} else {
					assert.NoError(t, c.Close(StatusNormalClosure, ""))
				}
			})
			waitClosed(t, senderDone, 2*time.Second, "the blocked Send")
			assert.Error(t, lastErr.Load().(error))
			assert.NoError(t, c.Err())
		})
	}
}

// waitProgressStops waits (bounded) until n has not moved for 200ms: the
// sender is then blocked on the socket.
func waitProgressStops(t *testing.T, n *atomic.Int64) {
	t.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	last, still := int64(-1), 0
	for range 500 { // 10s
		<-ticker.C
		if v := n.Load(); v == last {
			still++
			if still == 10 {
				return
			}
		} else {
			last, still = v, 0
		}
	}
	t.Fatalf("the sender never blocked (%d sends)", n.Load())
}

// ---- Dial ----

func TestDialReturnsConnectedClient(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t, mocks.WithEcho())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := Dial(ctx, srv.URL(), fastConfig())
	require.NoError(t, err)
	t.Cleanup(c.Terminate)
	assert.Equal(t, StateConnected, c.State())

	// The events seen while dialing are still there.
	assertConnecting(t, nextEvent(t, c, waitFor), 1)
	conn, ok := nextEvent(t, c, waitFor).(Connected)
	require.True(t, ok)
	require.NoError(t, c.SendText(ctx, "ping"))
	msg := waitEvent[Message](t, c, waitFor)
	assert.Equal(t, Message{ConnID: conn.ConnID, Type: MessageText, Data: []byte("ping")}, msg)
}

func TestDialRetriesUntilConnected(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", 3)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := Dial(ctx, srv.URL(), fastConfig())
	require.NoError(t, err)
	t.Cleanup(c.Terminate)
	assert.Equal(t, StateConnected, c.State())
	assert.Len(t, srv.Requests(), 4)
}

// Not parallel: it checks that a failed Dial leaves no goroutine behind.
func TestDialDeadlineLeavesNothingRunning(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", -1)
	leaks := goleak.IgnoreCurrent()
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var (
		c   *Client
		err error
	)
	took := returnsWithin(t, 2*time.Second, "Dial", func() { c, err = Dial(ctx, srv.URL(), cfg) })
	assert.Nil(t, c)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var he *HandshakeError
	if assert.ErrorAs(t, err, &he, "the last attempt's cause") {
		assert.Equal(t, http.StatusServiceUnavailable, he.Status)
	}
	assert.GreaterOrEqual(t, took, 250*time.Millisecond)
	goleak.VerifyNone(t, leaks)
}

func TestDialStalledHandshakeHonoursDeadline(t *testing.T) {
	t.Parallel()
	stall := mocks.NewStallServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	returnsWithin(t, 2*time.Second, "Dial against a stalled handshake", func() {
		var c *Client
		c, err = Dial(ctx, stall.URL(), fastConfig())
		assert.Nil(t, c)
	})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestDialCancelledContext(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := Dial(ctx, srv.URL(), fastConfig())
	assert.Nil(t, c)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestDialGivesUp(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusForbidden, "", -1)
	var (
		c   *Client
		err error
	)
	returnsWithin(t, 2*time.Second, "Dial against a 403", func() { c, err = Dial(context.Background(), srv.URL(), Config{}) })
	assert.Nil(t, c)
	require.ErrorIs(t, err, ErrGaveUp)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusForbidden, he.Status)
	assert.Len(t, srv.Requests(), 1, "no retry after a 403")
}
