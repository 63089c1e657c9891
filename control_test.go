package resocket_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestForceReconnectDropsLiveConnection(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	c, events := newClient(t, srv.URL(), resocket.Config{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }})
	first := testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)

	c.ForceReconnect()

	d := testkit.WaitEvent[resocket.Disconnected](t, events, 5*time.Second)
	assert.Equal(t, first.ConnID, d.ConnID)
	assert.ErrorIs(t, d.Disconnect.Err, resocket.ErrForcedReconnect)
	assert.Equal(t, resocket.Decision{Action: resocket.Reconnect}, d.Decision, "the policy is not consulted")
	r := testkit.WaitEvent[resocket.Reconnecting](t, events, 5*time.Second)
	assert.Zero(t, r.Delay, "a forced reconnect skips the hour-long backoff")
	second := testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)
	assert.NotEqual(t, first.ConnID, second.ConnID)
}

func TestForceReconnectCutsBackoffWait(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", 1)
	c, events := newClient(t, srv.URL(), resocket.Config{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }})
	r := testkit.WaitEvent[resocket.Reconnecting](t, events, 5*time.Second)
	require.Equal(t, time.Hour, r.Delay)
	require.False(t, c.Stats().NextAttempt.IsZero(), "Stats shows when the next attempt is due")

	c.ForceReconnect()

	testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)
	assert.Equal(t, resocket.StateConnected, c.State())
}

// Once a client has ended, however it ended, ForceReconnect returns at once
// and starts nothing: no goroutine, no attempt, no event, and the outcome
// stays as it was. Not parallel: it counts the process's goroutines.
func TestForceReconnectAfterCloseDoesNothing(t *testing.T) {
	ends := map[string]struct {
		refuse bool // the server refuses with 403: the client gives up
		end    func(*testing.T, *resocket.Client)
	}{
		"close": {end: func(t *testing.T, c *resocket.Client) {
			assert.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
		}},
		"terminate": {end: func(t *testing.T, c *resocket.Client) { terminate(t, c) }},
		"give up":   {refuse: true, end: func(*testing.T, *resocket.Client) {}},
	}
	for name, tc := range ends {
		t.Run(name, func(t *testing.T) {
			srv := mocks.NewServer(t)
			if tc.refuse {
				srv.Refuse(http.StatusForbidden, "", -1)
			}
			c, events := newClient(t, srv.URL(), fastConfig())
			if !tc.refuse {
				srv.NextConn(t, waitFor) // the server has registered it
				testkit.WaitEvent[resocket.Connected](t, events, waitFor)
			}
			tc.end(t, c)
			_, closed := events.Drain(t, waitFor)
			testkit.WaitClosed(t, c.Done(), waitFor, "Done")
			errBefore, stats := c.Err(), c.Stats()
			requests, conns := len(srv.Requests()), len(srv.Conns())
			// Every goroutine of the client has ended with Close, Terminate
			// or the give-up: any goroutine beyond these was started by
			// ForceReconnect.
			before := goleak.IgnoreCurrent()

			testkit.ReturnsWithin(t, time.Second, "ForceReconnect on an ended client", c.ForceReconnect)

			goleak.VerifyNone(t, before)
			select {
			case ev, open := <-c.Events():
				assert.False(t, open, "an event after Closed: %s", testkit.Describe(ev))
			case <-time.After(waitFor):
				t.Fatal("Events not closed")
			}
			assert.Equal(t, resocket.StateClosed, c.State())
			assert.Equal(t, errBefore, c.Err(), "the outcome is unchanged")
			assert.Equal(t, closed.Err, c.Err())
			assert.Equal(t, stats.Attempts, c.Stats().Attempts, "no attempt counted")
			assert.Len(t, srv.Requests(), requests, "no handshake reached the server")
			assert.Len(t, srv.Conns(), conns)
			assert.ErrorIs(t, c.SendText(context.Background(), "late"), resocket.ErrClosed)
		})
	}
}

func TestWaitConnected(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	c, _ := newClient(t, srv.URL(), resocket.Config{})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.WaitConnected(ctx), context.DeadlineExceeded, "still stalled")

	srv.StallHandshakes(false)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	require.NoError(t, c.WaitConnected(ctx2))
	assert.Equal(t, resocket.StateConnected, c.State())

	terminate(t, c)
	ctx3, cancel3 := context.WithTimeout(context.Background(), waitFor)
	defer cancel3()
	assert.ErrorIs(t, c.WaitConnected(ctx3), resocket.ErrClosed, "an ended client never connects")
}

func TestWaitConnectedReturnsGiveUpCause(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(403, "", -1)
	c, _ := newClient(t, srv.URL(), resocket.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	err := c.WaitConnected(ctx)
	assert.ErrorIs(t, err, resocket.ErrGaveUp)
	var he *resocket.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 403, he.Status)
}

func TestURLsRotateAfterFailedDialAndGoingAway(t *testing.T) {
	down := mocks.NewServer(t)
	down.Refuse(502, "", -1)
	a := mocks.NewServer(t)
	b := mocks.NewServer(t)
	zero := func() backoff.BackOff { return &backoff.ZeroBackOff{} }
	_, events := newClient(t, down.URL(), resocket.Config{URLs: []string{a.URL(), b.URL()}, Backoff: zero})

	failed := testkit.WaitEvent[resocket.DialFailed](t, events, 5*time.Second)
	assert.Equal(t, 502, failed.Disconnect.HTTPStatus)
	onA := testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)
	assert.Equal(t, a.URL(), onA.URL, "a failed dial moves on to the next endpoint")

	a.NextConn(t, 5*time.Second).CloseWith(int(resocket.StatusGoingAway), "draining")
	onB := testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)
	assert.Equal(t, b.URL(), onB.URL, "1001 Going Away moves on to the next endpoint")

	b.NextConn(t, 5*time.Second).CloseWith(int(resocket.StatusServiceRestart), "")
	again := testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)
	assert.Equal(t, b.URL(), again.URL, "other codes retry the same endpoint")
}
