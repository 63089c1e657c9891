package resocket_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// sleepConfig's keepalive would not ping for an hour: only noticing the
// sleep can make it ping within a test. Its PongTimeout (300 ms) is under
// the probe's 3 s cap, so the check after waking comes 300 ms later.
func sleepConfig() resocket.Config {
	cfg := fastConfig()
	cfg.PingInterval = time.Hour
	cfg.PongTimeout = 300 * time.Millisecond
	return cfg
}

// sleepyClient starts a client against srv whose wall clock the test can
// move ahead (a suspended machine's monotonic clock stops, its wall clock
// does not), looking at the clocks every 10 ms, and waits until it is
// connected.
func sleepyClient(t *testing.T, srv *mocks.Server, cfg resocket.Config) (*resocket.Client, *atomic.Int64, *testkit.Recorder, resocket.Connected, *mocks.Conn) {
	t.Helper()
	ahead := new(atomic.Int64)
	c, err := resocket.NewWithWallClockAhead(srv.URL(), cfg, ahead, 10*time.Millisecond)
	require.NoError(t, err)
	testkit.TerminateOnCleanup(t, c)
	events := testkit.Read(t, c)
	conn := srv.NextConn(t, waitFor)
	connected := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	return c, ahead, events, connected, conn
}

// After a sleep, a link that died meanwhile is found at once: the
// keepalive pings on waking instead of at its next PingInterval.
func TestSleepDetectedDeadLinkFoundAtOnce(t *testing.T) {
	srv := mocks.NewServer(t)
	_, ahead, events, first, sconn := sleepyClient(t, srv, sleepConfig())
	sconn.GoSilent() // the server forgot us while we slept

	ahead.Store(int64(time.Hour)) // wake up an hour later
	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Equal(t, first.ConnID, disc.ConnID)
	assert.Equal(t, resocket.StatusAbnormalClosure, disc.Disconnect.Code)
	assert.ErrorIs(t, disc.Disconnect.Err, resocket.ErrPongTimeout)
	assert.Equal(t, 0, sconn.Pings(), "the silent server read nothing")
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
}

// A link that survived the sleep answers the ping sent on waking and
// stays up.
func TestSleepDetectedLiveLinkStaysUp(t *testing.T) {
	srv := mocks.NewServer(t)
	c, ahead, _, _, sconn := sleepyClient(t, srv, sleepConfig())
	require.Zero(t, sconn.Pings())

	ahead.Store(int64(time.Hour))
	require.Eventually(t, func() bool { return sconn.Pings() == 1 }, waitFor, 5*time.Millisecond,
		"no ping on waking")
	// Waiting for something that must not happen: the check 300 ms after
	// the ping finds the pong.
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	<-idle.C
	stats := c.Stats()
	assert.Nil(t, stats.LastDisconnect, "a live link ended after a sleep")
	assert.Equal(t, 1, stats.Connects)
	assert.Equal(t, resocket.StateConnected, c.State())
	assert.Equal(t, 1, sconn.Pings(), "one ping per sleep, none without one")
}

// Without a jump between the clocks, looking at them changes nothing: no
// ping before PingInterval.
func TestNoSleepNoPing(t *testing.T) {
	srv := mocks.NewServer(t)
	_, ahead, _, _, sconn := sleepyClient(t, srv, sleepConfig())
	ahead.Store(int64(time.Second)) // a clock step under the threshold
	idle := time.NewTimer(200 * time.Millisecond)
	defer idle.Stop()
	<-idle.C // waiting for something that must not happen
	assert.Zero(t, sconn.Pings())
}
