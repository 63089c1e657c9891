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
	_, events, first, sconn := connect(t, srv, cfg)
	sconn.GoSilent()
	silent := time.Now()

	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	took := time.Since(silent)
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

// A healthy, idle connection answering pings stays up for many intervals.
func TestKeepaliveKeepsHealthyIdleConnection(t *testing.T) {
	srv := mocks.NewServer(t)
	cfg := keepaliveConfig()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.PongTimeout = 100 * time.Millisecond
	c, _, _, sconn := connect(t, srv, cfg)

	// Idling across many ping intervals is the behaviour under test.
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	select {
	case ev := <-c.Events():
		t.Fatalf("a healthy idle connection produced %s", testkit.Describe(ev))
	case <-idle.C:
	}
	assert.GreaterOrEqual(t, sconn.Pings(), 5)
	assert.Equal(t, resocket.StateConnected, c.State())
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
			cfg.PingInterval = 50 * time.Millisecond
			cfg.PongTimeout = 100 * time.Millisecond
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
				<-time.After(300 * time.Millisecond)
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
