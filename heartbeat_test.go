package resocket_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

var heartbeatData = []byte(`{"type":"ping"}`)

// heartbeatConfig sends the heartbeat every 100 ms and declares the link
// dead 400 ms after one with no data message back. answers says whether
// the heartbeat's echo is recognised (and so not delivered).
func heartbeatConfig(answers bool) resocket.Config {
	cfg := keepaliveConfig()
	cfg.PingInterval = 100 * time.Millisecond
	cfg.PongTimeout = 400 * time.Millisecond
	cfg.Heartbeat = &resocket.Heartbeat{Type: resocket.MessageText, Data: heartbeatData}
	if answers {
		cfg.Heartbeat.IsAnswer = func(m resocket.Message) bool { return bytes.Equal(m.Data, heartbeatData) }
	}
	return cfg
}

// heartbeatsSent counts the heartbeats the server received.
func heartbeatsSent(conn *mocks.Conn) int {
	n := 0
	for _, m := range conn.Received() {
		if bytes.Equal(m, heartbeatData) {
			n++
		}
	}
	return n
}

// Behind a proxy that eats pings, WebSocket pings find a live origin dead.
// The contrast for the next test.
func TestPingsUnansweredLookDead(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho(), mocks.WithPingsUnanswered())
	cfg := heartbeatConfig(true)
	cfg.Heartbeat = nil
	_, events, _, _ := connect(t, srv, cfg)
	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.ErrorIs(t, disc.Disconnect.Err, resocket.ErrPongTimeout)
}

// The heartbeat keeps a link up whose pings go unanswered, as long as the
// application answers; its answers are not delivered, other messages are.
// Each heartbeat after the first proves a check passed, as in
// TestKeepaliveKeepsHealthyIdleConnection.
func TestHeartbeatKeepsLinkWithoutPongs(t *testing.T) {
	const checks = 4
	srv := mocks.NewServer(t, mocks.WithEcho(), mocks.WithPingsUnanswered())
	c, events, first, sconn := connect(t, srv, heartbeatConfig(true))

	require.Eventually(t, func() bool { return heartbeatsSent(sconn) > checks }, 2*waitFor, 10*time.Millisecond,
		"fewer than %d heartbeats", checks+1)
	assert.Zero(t, sconn.Pings(), "the heartbeat replaces pings")
	require.NoError(t, sconn.SendText("data"))
	msg := testkit.WaitEvent[resocket.Message](t, events, waitFor)
	assert.Equal(t, "data", string(msg.Data), "answers are not delivered, other messages are")
	assert.Equal(t, first.ConnID, msg.ConnID)
	stats := c.Stats()
	assert.Nil(t, stats.LastDisconnect)
	assert.Equal(t, 1, stats.Connects)
}

// A server that answers neither pings nor the heartbeat is dead, and so
// is one behind a proxy that keeps the link busy with pings of its own:
// once a heartbeat is set, pings and pongs are no sign of life.
func TestHeartbeatUnansweredIsDead(t *testing.T) {
	for _, proxyPings := range []bool{false, true} {
		name := "answers neither"
		if proxyPings {
			name = "a proxy pings, the server is silent"
		}
		t.Run(name, func(t *testing.T) {
			srv := mocks.NewServer(t, mocks.WithPingsUnanswered())
			_, events, first, sconn := connect(t, srv, heartbeatConfig(true))
			if proxyPings {
				stop := make(chan struct{})
				pinged := make(chan struct{})
				go func() { // the proxy's own pings, every 20 ms: load, not synchronisation
					defer close(pinged)
					tick := time.NewTicker(20 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-tick.C:
							if sconn.Send(websocket.PingMessage, nil) != nil {
								return
							}
						case <-stop:
							return
						}
					}
				}()
				defer func() { close(stop); <-pinged }()
			}
			disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
			assert.Equal(t, first.ConnID, disc.ConnID)
			assert.Equal(t, resocket.StatusAbnormalClosure, disc.Disconnect.Code)
			assert.ErrorIs(t, disc.Disconnect.Err, resocket.ErrHeartbeatTimeout)
			assert.Equal(t, resocket.Reconnect, disc.Decision.Action)
			assert.Positive(t, heartbeatsSent(sconn))
			if proxyPings {
				assert.Positive(t, sconn.Pongs(), "the client answered the proxy's pings")
			}
			testkit.WaitEvent[resocket.Connected](t, events, waitFor)
		})
	}
}

// Without IsAnswer every message counts and every message is delivered,
// the heartbeat's answers included.
func TestHeartbeatWithoutMatcherDeliversAnswers(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho(), mocks.WithPingsUnanswered())
	_, events, _, _ := connect(t, srv, heartbeatConfig(false))
	for range 3 {
		msg := testkit.WaitEvent[resocket.Message](t, events, waitFor)
		assert.Equal(t, heartbeatData, msg.Data)
	}
}

func TestHeartbeatNeedsKeepalive(t *testing.T) {
	t.Parallel()
	cfg := heartbeatConfig(true)
	cfg.PingInterval = -1
	_, err := resocket.New("ws://127.0.0.1:1", cfg)
	assert.ErrorIs(t, err, resocket.ErrInvalidConfig)
	cfg = heartbeatConfig(true)
	cfg.Heartbeat.Type = 0
	_, err = resocket.New("ws://127.0.0.1:1", cfg)
	assert.ErrorIs(t, err, resocket.ErrInvalidConfig)
}
