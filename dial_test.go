package resocket_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestDialReturnsConnectedClient(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t, mocks.WithEcho())
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := resocket.Dial(ctx, srv.URL(), fastConfig())
	require.NoError(t, err)
	events := testkit.Read(t, c)
	assert.Equal(t, resocket.StateConnected, c.State())

	// The events seen while dialing are still there.
	assertConnecting(t, events.Next(t, waitFor), 1)
	conn, ok := events.Next(t, waitFor).(resocket.Connected)
	require.True(t, ok)
	require.NoError(t, c.SendText(ctx, "ping"))
	msg := testkit.WaitEvent[resocket.Message](t, events, waitFor)
	assert.Equal(t, resocket.Message{ConnID: conn.ConnID, Type: resocket.MessageText, Data: []byte("ping")}, msg)
}

func TestDialRetriesUntilConnected(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", 3)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := resocket.Dial(ctx, srv.URL(), fastConfig())
	require.NoError(t, err)
	testkit.TerminateOnCleanup(t, c)
	assert.Equal(t, resocket.StateConnected, c.State())
	assert.Len(t, srv.Requests(), 4)
}

// Not parallel: it checks that a failed Dial leaves no goroutine behind.
func TestDialDeadlineLeavesNothingRunning(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", -1)
	leaks := goleak.IgnoreCurrent()
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(10 * time.Millisecond)
	const deadline = 300 * time.Millisecond
	start := time.Now() // before the deadline's clock starts
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var (
		c   *resocket.Client
		err error
	)
	testkit.ReturnsWithin(t, 2*time.Second, "Dial", func() { c, err = resocket.Dial(ctx, srv.URL(), cfg) })
	took := time.Since(start)
	assert.Nil(t, c)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var he *resocket.HandshakeError
	if assert.ErrorAs(t, err, &he, "the last attempt's cause") {
		assert.Equal(t, http.StatusServiceUnavailable, he.Status)
	}
	assert.GreaterOrEqual(t, took, deadline, "Dial gave up before its deadline")
	goleak.VerifyNone(t, leaks)
}

func TestDialStalledHandshakeHonoursDeadline(t *testing.T) {
	t.Parallel()
	stall := mocks.NewStallServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	testkit.ReturnsWithin(t, 2*time.Second, "Dial against a stalled handshake", func() {
		var c *resocket.Client
		c, err = resocket.Dial(ctx, stall.URL(), fastConfig())
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
	c, err := resocket.Dial(ctx, srv.URL(), fastConfig())
	assert.Nil(t, c)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestDialGivesUp(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusForbidden, "", -1)
	var (
		c   *resocket.Client
		err error
	)
	testkit.ReturnsWithin(t, 2*time.Second, "Dial against a 403", func() { c, err = resocket.Dial(context.Background(), srv.URL(), resocket.Config{}) })
	assert.Nil(t, c)
	require.ErrorIs(t, err, resocket.ErrGaveUp)
	var he *resocket.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusForbidden, he.Status)
	assert.Len(t, srv.Requests(), 1, "no retry after a 403")
}
