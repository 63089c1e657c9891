package resocket_test

import (
	"fmt"
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

// The keepalive tests measure time, so they do not run in parallel with
// the rest.

// keepaliveConfig pings every 100ms and declares the link dead after 200ms
// of silence.
func keepaliveConfig() resocket.Config {
	cfg := fastConfig()
	cfg.PingInterval = 100 * time.Millisecond
	cfg.PongTimeout = 200 * time.Millisecond
	return cfg
}

func TestKeepaliveDetectsSilentServer(t *testing.T) {
	srv := mocks.NewServer(t)
	cfg := keepaliveConfig()
	c, events, first, sconn := connect(t, srv, cfg)
	connectedAt := c.Stats().ConnectedAt
	require.False(t, connectedAt.IsZero())
	silent := time.Now() // the link goes silent after this
	sconn.GoSilent()

	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	// When the client found the link dead, on its own clock: how late the
	// test read the event does not count.
	took := connectedAt.Add(disc.Disconnect.Uptime).Sub(silent)
	assert.Equal(t, first.ConnID, disc.ConnID)
	assert.Equal(t, resocket.StatusAbnormalClosure, disc.Disconnect.Code)
	assert.ErrorIs(t, disc.Disconnect.Err, resocket.ErrPongTimeout)
	assert.Equal(t, resocket.Reconnect, disc.Decision.Action)
	// A ping answered just before the silence pushes detection back by up
	// to one PongTimeout.
	assert.Less(t, took, cfg.PingInterval+2*cfg.PongTimeout+500*time.Millisecond, "a dead link found too late")

	again := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.NotEqual(t, first.ConnID, again.ConnID)
	srv.NextConn(t, waitFor)
}

func TestKeepaliveSendsPings(t *testing.T) {
	srv := mocks.NewServer(t)
	cfg := keepaliveConfig()
	cfg.PingInterval = 50 * time.Millisecond
	_, _, _, sconn := connect(t, srv, cfg)
	assert.Eventually(t, func() bool { return sconn.Pings() >= 2 }, waitFor, 10*time.Millisecond, "no pings")
}

// A healthy, idle connection answering pings stays up across many ping
// cycles. After each ping the keepalive checks, PongTimeout later, that an
// answer came; only then does it ping again. So each ping after the first
// proves a check passed: the test counts pings instead of measuring time,
// and PongTimeout is far above what a pong takes on a loaded machine
// (100 ms was not).
func TestKeepaliveKeepsHealthyIdleConnection(t *testing.T) {
	const checks = 4
	srv := mocks.NewServer(t)
	cfg := keepaliveConfig()
	cfg.PingInterval = 100 * time.Millisecond
	cfg.PongTimeout = 400 * time.Millisecond
	c, events, first, sconn := connect(t, srv, cfg)

	require.Eventually(t, func() bool { return sconn.Pings() > checks }, 2*waitFor, 10*time.Millisecond,
		"fewer than %d pings", checks+1)
	stats := c.Stats()
	assert.Nil(t, stats.LastDisconnect, "a healthy idle connection ended")
	assert.Equal(t, 1, stats.Connects)
	assert.Equal(t, resocket.StateConnected, c.State())
	select {
	case <-sconn.Done():
		t.Fatal("the server's connection ended")
	default:
	}
	// The same connection, and nothing happened to it.
	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
	evs, _ := events.Drain(t, waitFor)
	assert.Equal(t, []string{"Disconnected", "Closed"}, testkit.Types(evs), testkit.DescribeAll(evs))
	if d := testkit.Only[resocket.Disconnected](evs); len(d) == 1 {
		assert.Equal(t, first.ConnID, d[0].ConnID)
	}
}

func TestKeepaliveOff(t *testing.T) {
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.PingInterval = -1
	cfg.PongTimeout = 50 * time.Millisecond
	c, _, _, sconn := connect(t, srv, cfg)
	sconn.GoSilent()
	// Waiting for something that must not happen.
	idle := time.NewTimer(400 * time.Millisecond)
	defer idle.Stop()
	select {
	case ev := <-c.Events():
		t.Fatalf("with the keepalive off, a silent link produced %s", testkit.Describe(ev))
	case <-idle.C:
	}
	assert.Equal(t, 0, sconn.Pings())
}

func TestClientAnswersServerPings(t *testing.T) {
	srv := mocks.NewServer(t)
	_, _, _, sconn := connect(t, srv, fastConfig())
	require.NoError(t, sconn.Send(websocket.PingMessage, []byte("are you there")))
	assert.Eventually(t, func() bool { return sconn.Pongs() == 1 }, waitFor, 5*time.Millisecond)
}

// A slow reader of Events slows reading from the socket: nothing is dropped,
// the order holds, and the keepalive does not take the pause for a dead
// link.
func TestSlowConsumerLosesNothing(t *testing.T) {
	const total = 200
	for _, pauseAfter := range []int{0, 20} {
		t.Run(fmt.Sprintf("pause after %d messages", pauseAfter), func(t *testing.T) {
			srv := mocks.NewServer(t)
			cfg := fastConfig()
			cfg.EventBuffer = 1
			// A PongTimeout far above what a pong takes on a loaded
			// machine, and a pause of the reader far above a ping cycle
			// and its timeout (at most 600 ms): a keepalive that took the
			// pause for silence would cut the link during it.
			cfg.PingInterval = 50 * time.Millisecond
			cfg.PongTimeout = 300 * time.Millisecond
			c, events := newClient(t, srv.URL(), cfg)
			sconn := srv.NextConn(t, waitFor)

			pad := strings.Repeat("x", 16<<10) // enough to fill the socket buffers
			sent := make(chan error, 1)
			go func() {
				for i := range total {
					if err := sconn.SendText(fmt.Sprintf("%04d%s", i, pad)); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()

			pause := func() {
				// The reader's pause is the behaviour under test.
				<-time.After(time.Second)
			}
			if pauseAfter == 0 {
				pause()
			}
			var connID uint64
			next := 0
			deadline := time.Now().Add(10 * time.Second)
			for next < total {
				require.True(t, time.Now().Before(deadline), "only %d of %d messages in time", next, total)
				switch ev := events.Next(t, waitFor).(type) {
				case resocket.Connected:
					connID = ev.ConnID
				case resocket.Message:
					require.Equal(t, connID, ev.ConnID)
					require.Equal(t, fmt.Sprintf("%04d", next), string(ev.Data[:4]), "message lost or out of order")
					next++
					if next == pauseAfter {
						pause()
					}
				case resocket.Disconnected:
					t.Fatalf("disconnected after %d of %d messages: %s", next, total, testkit.Describe(ev))
				}
			}
			assert.NoError(t, testkit.Receive(t, sent, waitFor, "the server's sends"))
			assert.Equal(t, resocket.StateConnected, c.State())
		})
	}
}

func TestReadLimit(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.ReadLimit = 1024
	_, events, first, sconn := connect(t, srv, cfg)

	require.NoError(t, sconn.Send(websocket.BinaryMessage, make([]byte, 1024)))
	msg := testkit.WaitEvent[resocket.Message](t, events, waitFor)
	assert.Len(t, msg.Data, 1024, "a message of exactly ReadLimit is accepted")

	require.NoError(t, sconn.Send(websocket.BinaryMessage, make([]byte, 1025)))
	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Equal(t, first.ConnID, disc.ConnID)
	assert.Equal(t, resocket.StatusMessageTooBig, disc.Disconnect.Code)
	assert.Error(t, disc.Disconnect.Err)
	assert.Equal(t, resocket.GiveUp, disc.Decision.Action, "1009 is in the give-up row of the default policy")

	testkit.WaitClosed(t, sconn.Done(), waitFor, "the server's connection")
	code, _, ok := sconn.CloseReceived()
	require.True(t, ok, "the client sent no close frame")
	assert.Equal(t, int(resocket.StatusMessageTooBig), code)
	_, closed := events.Drain(t, waitFor)
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
}
