package resocket_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestSendWhileConnectedWrites(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, _, sconn := connect(t, srv, fastConfig())
	ctx := context.Background()
	require.NoError(t, c.SendText(ctx, "text"))
	require.NoError(t, c.Send(ctx, resocket.MessageBinary, []byte{0, 1, 2}))

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
	c, _, _, sconn := connect(t, srv, fastConfig())
	for _, typ := range []resocket.MessageType{0, 3, websocket.CloseMessage, websocket.PingMessage, websocket.PongMessage, -1} {
		assert.ErrorIs(t, c.Send(context.Background(), typ, []byte("x")), resocket.ErrInvalidMessageType, "type %d", int(typ))
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
		c, _ := newClient(t, srv.URL(), cfg)
		require.True(t, srv.WaitRequests(1, waitFor))
		ctx := context.Background()
		require.NoError(t, c.SendText(ctx, "1"))
		require.NoError(t, c.SendText(ctx, "2"))
		var err error
		testkit.ReturnsWithin(t, 500*time.Millisecond, "Send into a full buffer", func() { err = c.SendText(ctx, "3") })
		assert.ErrorIs(t, err, resocket.ErrBufferFull)

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
		c, _ := newClient(t, stall.URL(), cfg)
		assert.ErrorIs(t, c.SendText(context.Background(), "x"), resocket.ErrNotConnected)
	})
}

func TestSendBufferedFlushesInOrderBeforeLaterSends(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	c, events := newClient(t, srv.URL(), fastConfig())
	require.True(t, srv.WaitRequests(1, waitFor))
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		require.NoError(t, c.SendText(ctx, strconv.Itoa(i)))
	}
	srv.StallHandshakes(false)
	sconn := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
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
	c, events, _, conn1 := connect(t, srv, fastConfig())
	ctx := context.Background()

	const maxSends = 100_000
	var (
		accepted []int
		refused  []int
		why      = map[string]int{} // refusals by error
		half     = make(chan struct{})
		back     = make(chan struct{}) // closed once the client is connected again
		sent     = make(chan struct{})
	)
	go func() {
		defer close(sent)
		deadline := time.Now().Add(10 * time.Second)
		for i := 1; i <= maxSends && time.Now().Before(deadline); i++ {
			if err := c.SendText(ctx, testkit.Payload(i)); err != nil {
				refused = append(refused, i)
				why[err.Error()]++
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
	testkit.WaitClosed(t, half, waitFor, "first 100 sends")
	srv.Restart(int(resocket.StatusServiceRestart), "restart")
	conn2 := srv.NextConn(t, waitFor)
	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Equal(t, resocket.StatusServiceRestart, disc.Disconnect.Code)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	close(back)
	testkit.WaitClosed(t, sent, 15*time.Second, "the sender")

	// Once the buffer is flushed, a last message marks the end: once the
	// server has it, every message accepted before it has been written.
	require.Eventually(t, func() bool { return c.State() == resocket.StateConnected }, waitFor, time.Millisecond,
		"the send buffer was never flushed")
	require.NoError(t, c.SendText(ctx, "end"))
	for i := 0; ; i++ {
		require.Less(t, i, maxSends+1, "no end marker")
		if receiveText(t, conn2) == "end" {
			break
		}
	}

	received := append(conn1.Received(), conn2.Received()...)
	received = received[:len(received)-1] // the end marker
	t.Logf("%d accepted, refused: %v, %d on the first connection, %d on the second",
		len(accepted), why, len(conn1.Received()), len(conn2.Received())-1)

	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
	_, closed := events.Drain(t, waitFor)
	rep := testkit.ExactlyOnceInOrder(t, testkit.Delivery{
		Accepted: accepted,
		Refused:  refused,
		Received: testkit.Seqs(t, received),
		Unsent:   testkit.MessageSeqs(t, closed.Unsent),
	})
	// Nothing may linger in the send buffer while connected: it would come
	// out of order on a later connection, or only in Closed.Unsent.
	assert.Empty(t, rep.HandedBack, "accepted messages left in the send buffer while connected")
}

func TestSendAfterCloseReturnsErrClosed(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, _, _ := connect(t, srv, fastConfig())
	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
	assert.ErrorIs(t, c.SendText(context.Background(), "late"), resocket.ErrClosed)
	assert.ErrorIs(t, c.Send(context.Background(), resocket.MessageBinary, []byte{1}), resocket.ErrClosed)
}

func TestSendAfterTerminateAndGiveUpReturnsErrClosed(t *testing.T) {
	t.Parallel()
	t.Run("terminate", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		c, _, _, _ := connect(t, srv, fastConfig())
		terminate(t, c)
		assert.ErrorIs(t, c.SendText(context.Background(), "late"), resocket.ErrClosed)
	})
	t.Run("give up", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.Refuse(http.StatusForbidden, "", -1)
		c, _ := newClient(t, srv.URL(), fastConfig())
		testkit.WaitClosed(t, c.Done(), waitFor, "Done")
		assert.ErrorIs(t, c.SendText(context.Background(), "late"), resocket.ErrClosed)
	})
}

func TestUnsentReturnedInClosed(t *testing.T) {
	t.Parallel()
	t.Run("give up", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.StallHandshakes(true)
		srv.Refuse(http.StatusUnauthorized, "", -1)
		c, events := newClient(t, srv.URL(), fastConfig())
		require.True(t, srv.WaitRequests(1, waitFor))
		ctx := context.Background()
		require.NoError(t, c.SendText(ctx, "a"))
		require.NoError(t, c.Send(ctx, resocket.MessageBinary, []byte("b")))
		require.NoError(t, c.SendText(ctx, "c"))
		srv.StallHandshakes(false)

		_, closed := events.Drain(t, waitFor)
		require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
		assert.Equal(t, []resocket.Message{
			{Type: resocket.MessageText, Data: []byte("a")},
			{Type: resocket.MessageBinary, Data: []byte("b")},
			{Type: resocket.MessageText, Data: []byte("c")},
		}, closed.Unsent)
	})
	t.Run("close during backoff", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		cfg := fastConfig()
		cfg.Backoff = constantBackoff(time.Hour)
		c, events, _, sconn := connect(t, srv, cfg)
		sconn.Drop()
		testkit.WaitEvent[resocket.Reconnecting](t, events, waitFor)
		ctx := context.Background()
		require.NoError(t, c.SendText(ctx, "x"))
		require.NoError(t, c.SendText(ctx, "y"))
		require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
		_, closed := events.Drain(t, waitFor)
		assert.NoError(t, closed.Err)
		assert.Equal(t, []string{"x", "y"}, unsentText(closed.Unsent))
	})
}

func unsentText(msgs []resocket.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Data)
	}
	return out
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, _, sconn := connect(t, srv, fastConfig())
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
	testkit.ReturnsWithin(t, waitFor, "the senders", wg.Wait)
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
	c, events, first, sconn := connect(t, srv, fastConfig())
	sconn.GoSilent()
	big := make([]byte, 256<<10)
	var err error
	for i := 0; i < 400 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = c.Send(ctx, resocket.MessageBinary, big)
		cancel()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded, "a Send on a stalled socket never blocked")

	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Equal(t, first.ConnID, disc.ConnID)
	assert.Equal(t, resocket.StatusAbnormalClosure, disc.Disconnect.Code)
	assert.Equal(t, resocket.Reconnect, disc.Decision.Action)
	again := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.NotEqual(t, first.ConnID, again.ConnID)
}

// countingConn counts the bytes the client has handed to the kernel.
type countingConn struct {
	net.Conn
	written *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// A Send blocked on a socket the server stopped reading, when the server
// then drops the connection, broke under its write: the frame never
// completed, so the server cannot have the message. With a send buffer it
// is kept, Send returns nil, and the message is written on the next
// connection, in its place and once; without one, Send returns the
// write's error and the message is gone. (Had the next connection been up
// already, Send would have written it there: the hour-long backoff, cut
// short by ForceReconnect once Send has returned, rules that out, so each
// case takes the path it names.)
func TestSendBrokenUnderWriteKeptForNextConnection(t *testing.T) {
	t.Parallel()
	for _, buffered := range []bool{true, false} {
		t.Run(map[bool]string{true: "buffered", false: "no buffer"}[buffered], func(t *testing.T) {
			t.Parallel()
			const kernelBuffer = 64 << 10
			srv := mocks.NewServer(t, mocks.WithSocketBuffers(kernelBuffer))
			var written atomic.Int64
			cfg := fastConfig()
			cfg.Backoff = constantBackoff(time.Hour)
			cfg.PingInterval = -1 // nothing but the message on the wire
			if !buffered {
				cfg.SendBuffer = -1
			}
			cfg.Dialer = smallBuffers(kernelBuffer)
			dial := cfg.Dialer.NetDialContext
			cfg.Dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: conn, written: &written}, nil
			}
			c, events, first, conn1 := connect(t, srv, cfg)
			ctx := context.Background()

			require.NoError(t, c.SendText(ctx, testkit.Payload(0)))
			require.Equal(t, testkit.Payload(0), receiveText(t, conn1), "the server reads")
			conn1.GoSilent()
			// Far more than the kernel's buffers on both ends (about
			// 256 KiB): the write cannot complete while nobody reads.
			big := append([]byte(testkit.Payload(1)), make([]byte, 4<<20)...)
			before := written.Load()
			sent := make(chan error, 1)
			go func() { sent <- c.Send(ctx, resocket.MessageBinary, big) }()
			// Part of the frame has left the client: the Send is in its
			// write, and blocked there.
			require.Eventually(t, func() bool { return written.Load()-before >= kernelBuffer }, waitFor, time.Millisecond,
				"the big message never started to leave")
			conn1.Reset() // the connection dies under the write

			err := testkit.Receive(t, sent, waitFor, "the blocked Send")
			disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
			assert.Equal(t, first.ConnID, disc.ConnID)
			assert.Equal(t, resocket.StatusAbnormalClosure, disc.Disconnect.Code)
			testkit.WaitEvent[resocket.Reconnecting](t, events, waitFor)
			kept := map[bool]int{true: 1, false: 0}[buffered]
			assert.Equal(t, kept, c.Stats().Buffered, "messages kept for the next connection")
			c.ForceReconnect()
			conn2 := srv.NextConn(t, waitFor)
			testkit.WaitEvent[resocket.Connected](t, events, waitFor)
			require.NoError(t, c.SendText(ctx, testkit.Payload(2)))

			var got [][]byte
			for {
				_, data, err := conn2.Receive(waitFor)
				require.NoError(t, err)
				got = append(got, data)
				if string(data) == testkit.Payload(2) {
					break
				}
				require.Less(t, len(got), 2, "more than the kept message and the next one")
			}
			var received []int // by the server, over both connections
			for _, m := range append(conn1.Received(), got...) {
				seq, ok := testkit.ParseSeq(m[:min(len(m), len(testkit.Payload(0)))])
				require.True(t, ok, "an unnumbered message: %q", m[:min(len(m), 16)])
				received = append(received, seq)
			}
			if buffered {
				require.NoError(t, err, "the message is kept, not refused")
				testkit.ExactlyOnceInOrder(t, testkit.Delivery{Accepted: []int{0, 1, 2}, Received: received})
				assert.Equal(t, big, got[0], "the kept message, whole")
			} else {
				require.Error(t, err, "with no buffer to keep it in, the write's error comes back")
				t.Logf("Send: %v", err)
				assert.NotErrorIs(t, err, resocket.ErrNotConnected, "the write's own error, not the buffer's")
				var opErr *net.OpError
				assert.ErrorAs(t, err, &opErr, "a transport error: %v", err)
				testkit.ExactlyOnceInOrder(t, testkit.Delivery{Accepted: []int{0, 2}, Refused: []int{1}, Received: received})
				assert.Equal(t, []int{0, 2}, received, "a refused message is not written later")
			}
		})
	}
}
