package resocket_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// Nobody reads Events while Dial waits through many refused attempts: the
// lifecycle events must not stall the loop, and none may be lost.
func TestDialKeepsTryingWhileNobodyReadsEvents(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	const refusals = 20
	srv.Refuse(503, "", refusals)
	cfg := fastConfig()
	cfg.EventBuffer = 1
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := resocket.Dial(ctx, srv.URL(), cfg)
	require.NoError(t, err, "the loop stalled on a full Events channel")
	events := testkit.Read(t, c)

	evs := events.Collect(t, waitFor, testkit.Is[resocket.Connected])
	var want []string
	for range refusals {
		want = append(want, "Connecting", "DialFailed", "Reconnecting")
	}
	want = append(want, "Connecting", "Connected")
	assert.Equal(t, want, testkit.Types(evs), "every event, in order")
	for i, ev := range testkit.Only[resocket.Connecting](evs) {
		assert.Equal(t, i+1, ev.Attempt)
	}
}

// Lifecycle events queued behind a full channel still come before the
// messages that followed them.
func TestBacklogKeepsOrderWithMessages(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.EventBuffer = 1
	_, events := newClient(t, srv.URL(), cfg)
	sconn := srv.NextConn(t, waitFor)
	const n = 10
	for i := range n {
		require.NoError(t, sconn.SendText(fmt.Sprint(i)))
	}
	evs := events.Collect(t, waitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == fmt.Sprint(n-1)
	})
	require.Equal(t, "Connecting", testkit.Types(evs)[0])
	require.Equal(t, "Connected", testkit.Types(evs)[1])
	msgs := testkit.Only[resocket.Message](evs)
	require.Len(t, msgs, n)
	for i, m := range msgs {
		assert.Equal(t, fmt.Sprint(i), string(m.Data))
	}
}

// Terminate with a backlog that nobody will read returns, and leaves no
// pump behind (goleak checks at the end of the package).
func TestTerminateWithUnreadBacklog(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", -1)
	cfg := fastConfig()
	cfg.EventBuffer = 1
	c, _ := newClient(t, srv.URL(), cfg)
	require.True(t, srv.WaitRequests(10, waitFor), "the loop stalled on a full Events channel")
	testkit.ReturnsWithin(t, waitFor, "Terminate", c.Terminate)
	testkit.WaitClosed(t, c.Done(), waitFor, "Done")
}

// smallBuffers is a Dialer whose connections have n-byte kernel buffers
// (SO_RCVBUF, SO_SNDBUF), fixed: the kernel does not grow them.
func smallBuffers(n int) *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := new(net.Dialer).DialContext(ctx, network, addr)
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetReadBuffer(n)
			_ = tcp.SetWriteBuffer(n)
		}
		return conn, err
	}}
}

// Nobody reads Events: once the channel is full the client must stop
// reading the socket, not buffer messages without bound, so the server's
// writes block. Both ends' kernel buffers are pinned to 64 KiB (about
// 256 KiB in all, as Linux doubles them), so anything much beyond that,
// and the 8 events of the channel, was buffered by the client. Then every
// message comes, in order, once the test reads.
func TestUnreadEventsBlockTheServer(t *testing.T) {
	t.Parallel()
	const (
		kernelBuffer = 64 << 10
		size         = 1 << 10
		limit        = 1 << 20 // four times what the kernel can hold
		maxMessages  = limit / size
		// A write blocked this long is blocked for good: nobody reads.
		blocked = time.Second
	)
	srv := mocks.NewServer(t, mocks.WithSocketBuffers(kernelBuffer))
	cfg := fastConfig()
	cfg.EventBuffer = 8
	cfg.Dialer = smallBuffers(kernelBuffer)
	_, events := newClient(t, srv.URL(), cfg)
	sconn := srv.NextConn(t, waitFor)
	first := testkit.WaitEvent[resocket.Connected](t, events, waitFor)

	pad := strings.Repeat("x", size-len(testkit.Payload(0)))
	written := 0
	var err error
	for ; written <= maxMessages; written++ {
		if err = sconn.SendWithin(websocket.BinaryMessage, []byte(testkit.Payload(written)+pad), blocked); err != nil {
			break
		}
	}
	t.Logf("the server's writes blocked after %d messages of %d bytes", written, size)
	require.LessOrEqual(t, written, maxMessages, "the client buffered %d KiB and more while nobody read Events", limit>>10)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "the server's write failed, but not on its deadline: %v", err)
	require.Greater(t, written, cfg.EventBuffer, "the writes blocked before Events could fill")

	// Every message written comes, in order, on the same connection.
	evs := events.Collect(t, waitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && bytes.HasPrefix(m.Data, []byte(testkit.Payload(written-1)))
	})
	msgs := testkit.Only[resocket.Message](evs)
	require.Len(t, msgs, len(evs), "only messages: %s", testkit.DescribeAll(evs))
	require.Len(t, msgs, written)
	for i, m := range msgs {
		require.Equal(t, first.ConnID, m.ConnID)
		seq, ok := testkit.ParseSeq(m.Data[:len(testkit.Payload(0))])
		require.True(t, ok)
		require.Equal(t, i, seq, "message lost or out of order")
	}
}
