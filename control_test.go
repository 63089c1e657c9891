package resocket_test

import (
	"context"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

func TestForceReconnectAfterCloseDoesNothing(t *testing.T) {
	srv := mocks.NewServer(t)
	c, events := newClient(t, srv.URL(), resocket.Config{})
	testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)
	require.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
	c.ForceReconnect()
	assert.Equal(t, resocket.StateClosed, c.State())
	assert.Equal(t, 1, c.Stats().Attempts)
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

	c.Terminate()
	assert.ErrorIs(t, c.WaitConnected(context.Background()), resocket.ErrClosed, "an ended client never connects")
}

func TestWaitConnectedReturnsGiveUpCause(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(403, "", -1)
	c, _ := newClient(t, srv.URL(), resocket.Config{})
	err := c.WaitConnected(context.Background())
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
