package resocket

import (
	"context"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket/mocks"
)

func TestForceReconnectDropsLiveConnection(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	c := newClient(t, srv.URL(), Config{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }})
	first := waitEvent[Connected](t, c, 5*time.Second)

	c.ForceReconnect()

	d := waitEvent[Disconnected](t, c, 5*time.Second)
	assert.Equal(t, first.ConnID, d.ConnID)
	assert.ErrorIs(t, d.Disconnect.Err, ErrForcedReconnect)
	assert.Equal(t, Decision{Action: Reconnect}, d.Decision, "the policy is not consulted")
	r := waitEvent[Reconnecting](t, c, 5*time.Second)
	assert.Zero(t, r.Delay, "a forced reconnect skips the hour-long backoff")
	second := waitEvent[Connected](t, c, 5*time.Second)
	assert.NotEqual(t, first.ConnID, second.ConnID)
}

func TestForceReconnectCutsBackoffWait(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", 1)
	c := newClient(t, srv.URL(), Config{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }})
	r := waitEvent[Reconnecting](t, c, 5*time.Second)
	require.Equal(t, time.Hour, r.Delay)
	require.False(t, c.Stats().NextAttempt.IsZero(), "Stats shows when the next attempt is due")

	c.ForceReconnect()

	waitEvent[Connected](t, c, 5*time.Second)
	assert.Equal(t, StateConnected, c.State())
}

func TestForceReconnectAfterCloseDoesNothing(t *testing.T) {
	srv := mocks.NewServer(t)
	c := newClient(t, srv.URL(), Config{})
	waitEvent[Connected](t, c, 5*time.Second)
	require.NoError(t, c.Close(StatusNormalClosure, ""))
	c.ForceReconnect()
	assert.Equal(t, StateClosed, c.State())
	assert.Equal(t, 1, c.Stats().Attempts)
}

func TestWaitConnected(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	c := newClient(t, srv.URL(), Config{})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.WaitConnected(ctx), context.DeadlineExceeded, "still stalled")

	srv.StallHandshakes(false)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	require.NoError(t, c.WaitConnected(ctx2))
	assert.Equal(t, StateConnected, c.State())

	c.Terminate()
	assert.ErrorIs(t, c.WaitConnected(context.Background()), ErrClosed, "an ended client never connects")
}

func TestWaitConnectedReturnsGiveUpCause(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(403, "", -1)
	c := newClient(t, srv.URL(), Config{})
	err := c.WaitConnected(context.Background())
	assert.ErrorIs(t, err, ErrGaveUp)
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 403, he.Status)
}

func TestURLsRotateAfterFailedDialAndGoingAway(t *testing.T) {
	down := mocks.NewServer(t)
	down.Refuse(502, "", -1)
	a := mocks.NewServer(t)
	b := mocks.NewServer(t)
	zero := func() backoff.BackOff { return &backoff.ZeroBackOff{} }
	c := newClient(t, down.URL(), Config{URLs: []string{a.URL(), b.URL()}, Backoff: zero})

	failed := waitEvent[DialFailed](t, c, 5*time.Second)
	assert.Equal(t, 502, failed.Disconnect.HTTPStatus)
	onA := waitEvent[Connected](t, c, 5*time.Second)
	assert.Equal(t, a.URL(), onA.URL, "a failed dial moves on to the next endpoint")

	a.NextConn(t, 5*time.Second).CloseWith(int(StatusGoingAway), "draining")
	onB := waitEvent[Connected](t, c, 5*time.Second)
	assert.Equal(t, b.URL(), onB.URL, "1001 Going Away moves on to the next endpoint")

	b.NextConn(t, 5*time.Second).CloseWith(int(StatusServiceRestart), "")
	again := waitEvent[Connected](t, c, 5*time.Second)
	assert.Equal(t, b.URL(), again.URL, "other codes retry the same endpoint")
}
