package resocket_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// TestRotationWithoutAGap: 100 rotations under a steady stream of Sends.
// A connection is ready at every instant (Stats.Downtime stays 0), each
// rotation is one Connected naming the connection it replaced (no
// Disconnected, no Reconnecting), and every message reaches the server
// once, in order, and is echoed back once, in order.
func TestRotationWithoutAGap(t *testing.T) {
	const rotations = 100
	srv := mocks.NewServer(t, mocks.WithEcho())
	cfg := fastConfig()
	cfg.MaxConnectionAge = 15 * time.Millisecond
	c := testkit.NewClient(t, srv.URL(), cfg)
	rec := testkit.Record(t, c) // a reader that keeps up
	require.NoError(t, c.WaitConnected(context.Background()))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := 0
	for c.Stats().Connects <= rotations && ctx.Err() == nil {
		sent++
		require.NoError(t, c.SendText(ctx, testkit.Payload(sent)), "Send %d", sent)
		require.Zero(t, c.Stats().Buffered, "Send %d was buffered: no connection was ready", sent)
	}
	require.NoError(t, ctx.Err(), "%d rotations in time", rotations)
	require.NoError(t, c.Flush(ctx))
	stats := c.Stats()
	assert.Zero(t, stats.Downtime, "time with no ready connection")

	echoes := rec.Collect(t, 10*time.Second, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == testkit.Payload(sent)
	})
	var echoed [][]byte
	for _, m := range testkit.Only[resocket.Message](echoes) {
		echoed = append(echoed, m.Data)
	}
	assert.Equal(t, seqs(sent), testkit.Seqs(t, echoed), "every message echoed once, in order")
	var atServer [][]byte
	for _, conn := range srv.Conns() {
		atServer = append(atServer, conn.Received()...)
	}
	assert.Equal(t, seqs(sent), testkit.Seqs(t, atServer), "every message at the server once, in order")

	evs := rec.Events()
	connected := testkit.Only[resocket.Connected](evs)
	require.Greater(t, len(connected), rotations)
	for i, ev := range connected[1:] {
		assert.Equal(t, connected[i].ConnID, ev.Replaced, "each rotation names the connection it replaced")
	}
	assert.Empty(t, testkit.Only[resocket.Disconnected](evs), "a rotation is not a failure")
	assert.Empty(t, testkit.Only[resocket.Reconnecting](evs))
	assert.Empty(t, testkit.Only[resocket.DialFailed](evs))
	t.Logf("%d rotations, %d messages, downtime %v", len(connected)-1, sent, stats.Downtime)
}

func seqs(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// TestRotationJitter: rotation ages spread over ±10 % of MaxConnectionAge,
// so that clients started together do not rotate together.
func TestRotationJitter(t *testing.T) {
	const age = 100 * time.Millisecond
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.MaxConnectionAge = age
	_, rec := newClient(t, srv.URL(), cfg)
	evs := rec.Collect(t, 10*time.Second, func(ev resocket.Event) bool {
		c, ok := ev.(resocket.Connected)
		return ok && c.Replaced != 0 && len(srv.Conns()) > 12
	})
	_ = evs
	var ages []time.Duration
	conns := srv.Conns()
	for i := 1; i < len(conns); i++ {
		ages = append(ages, srv.RequestTimes()[i].Sub(srv.RequestTimes()[i-1]))
	}
	lo, hi := ages[0], ages[0]
	for _, a := range ages {
		lo, hi = min(lo, a), max(hi, a)
		assert.GreaterOrEqual(t, a, age-age/10, "no rotation before 90 %% of the age")
	}
	assert.Greater(t, hi-lo, age/50, "the ages vary: %v", ages)
}

// TestRotationFailureKeepsTheConnection: when the next connection cannot
// be opened, the old one stays, and the client goes on.
func TestRotationFailureKeepsTheConnection(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	cfg := fastConfig()
	cfg.MaxConnectionAge = 50 * time.Millisecond
	c, rec := newClient(t, srv.URL(), cfg)
	require.NoError(t, c.WaitConnected(context.Background()))
	srv.Refuse(503, "", -1)
	require.True(t, srv.WaitRequests(3, 10*time.Second), "rotations tried")
	assert.Equal(t, resocket.StateConnected, c.State())
	require.NoError(t, c.SendText(context.Background(), "still here"))
	ev := testkit.WaitEvent[resocket.Message](t, rec, 5*time.Second)
	assert.Equal(t, "still here", string(ev.Data))
	assert.Empty(t, testkit.Only[resocket.Disconnected](rec.Events()))
	assert.Empty(t, testkit.Only[resocket.DialFailed](rec.Events()))
}

// TestRotationFreshCredentials: every rotation runs HeaderFunc, so a
// token is renewed before it expires.
func TestRotationFreshCredentials(t *testing.T) {
	srv := mocks.NewServer(t)
	var n atomic.Int32
	cfg := fastConfig()
	cfg.MaxConnectionAge = 30 * time.Millisecond
	cfg.HeaderFunc = func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": {fmt.Sprintf("Bearer token-%d", n.Add(1))}}, nil
	}
	newClient(t, srv.URL(), cfg)
	require.True(t, srv.WaitRequests(3, 10*time.Second))
	reqs := srv.Requests()
	for i, r := range reqs[:3] {
		assert.Equal(t, fmt.Sprintf("Bearer token-%d", i+1), r.Header.Get("Authorization"))
	}
}

// TestRotationCloseAndTerminateLeaveNothingRunning: Close during
// rotations ends every goroutine, the conn readers included.
func TestRotationCloseAndTerminateLeaveNothingRunning(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	for _, terminate := range []bool{false, true} {
		cfg := fastConfig()
		cfg.MaxConnectionAge = 5 * time.Millisecond
		c, err := resocket.New(srv.URL(), cfg)
		require.NoError(t, err)
		rec := testkit.Record(t, c)
		rec.Await(t, 0, 10*time.Second, func(ev resocket.Event) bool {
			cn, ok := ev.(resocket.Connected)
			return ok && cn.Replaced != 0
		})
		if terminate {
			c.Terminate()
		} else {
			require.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
		}
		testkit.NoClientGoroutines(t, "after Close or Terminate during rotations")
		closed := rec.Closed(t, 5*time.Second)
		assert.NoError(t, closed.Err)
	}
}
