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

func TestStatsCountTraffic(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	c, events := newClient(t, srv.URL(), resocket.Config{Backoff: func() backoff.BackOff { return &backoff.ZeroBackOff{} }})
	ctx := context.Background()
	waitConnected(t, c)

	require.NoError(t, c.SendText(ctx, "hello"))
	require.NoError(t, c.SendText(ctx, "world!"))
	testkit.WaitEvent[resocket.Message](t, events, 5*time.Second)
	testkit.WaitEvent[resocket.Message](t, events, 5*time.Second)

	s := c.Stats()
	assert.Equal(t, resocket.StateConnected, s.State)
	assert.Equal(t, srv.URL(), s.URL)
	assert.Equal(t, 1, s.Attempts)
	assert.Equal(t, 1, s.Connects)
	assert.Equal(t, 0, s.Reconnects)
	assert.Equal(t, uint64(2), s.MessagesOut)
	assert.Equal(t, uint64(11), s.BytesOut)
	assert.Equal(t, uint64(2), s.MessagesIn)
	assert.Equal(t, uint64(11), s.BytesIn)
	assert.False(t, s.ConnectedAt.IsZero())
	assert.Nil(t, s.LastDisconnect)
	assert.True(t, s.NextAttempt.IsZero())

	srv.NextConn(t, 5*time.Second).CloseWith(int(resocket.StatusServiceRestart), "bye")
	testkit.WaitEvent[resocket.Connected](t, events, 5*time.Second)
	s = c.Stats()
	assert.Equal(t, 2, s.Attempts)
	assert.Equal(t, 1, s.Reconnects)
	require.NotNil(t, s.LastDisconnect)
	assert.Equal(t, resocket.StatusServiceRestart, s.LastDisconnect.Code)
	assert.Equal(t, "bye", s.LastDisconnect.Reason)
}

func TestStatsBufferedWhileDisconnected(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", -1)
	c, events := newClient(t, srv.URL(), resocket.Config{Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }})
	testkit.WaitEvent[resocket.Reconnecting](t, events, 5*time.Second)
	require.NoError(t, c.SendText(context.Background(), "later"))
	s := c.Stats()
	assert.Equal(t, 1, s.Buffered)
	assert.Equal(t, resocket.StateReconnecting, s.State)
	assert.Zero(t, s.MessagesOut)
	assert.WithinDuration(t, time.Now().Add(time.Hour), s.NextAttempt, time.Minute)
}
