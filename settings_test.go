package resocket

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The defaults documented on Config and its constants are the ones a zero
// Config gets.
func TestZeroConfigGetsTheDocumentedDefaults(t *testing.T) {
	s, err := newSettings("ws://127.0.0.1:1", Config{})
	require.NoError(t, err)
	assert.Equal(t, 25*time.Second, s.pingInterval, "PingInterval")
	assert.Equal(t, 15*time.Second, s.pongTimeout, "PongTimeout")
	assert.Equal(t, 5*time.Second, s.closeTimeout, "CloseTimeout")
	assert.Equal(t, int64(16<<20), s.readLimit, "ReadLimit: 16 MiB")
	assert.Equal(t, 1024, s.sendBuffer, "SendBuffer")
	assert.Equal(t, 128, s.eventBuffer, "EventBuffer")
	assert.Equal(t, 5*time.Second, s.stableAfter, "StableAfter")
	assert.True(t, s.keepalive, "keepalive on")
	assert.Nil(t, s.logger, "silent")
	assert.NotNil(t, s.policy, "DefaultPolicy")
	assert.NotNil(t, s.newBackoff, "DefaultBackoff")

	c, err := New("ws://127.0.0.1:1", Config{PingInterval: -1})
	require.NoError(t, err)
	defer c.Terminate()
	assert.Equal(t, 128, cap(c.Events()), "the Events channel has the default capacity")
}

// The special values documented on Config fields: < 0 turns keepalive and
// buffering off, OnEvent leaves the channel unbuffered.
func TestConfigSpecialValues(t *testing.T) {
	s, err := newSettings("ws://127.0.0.1:1", Config{PingInterval: -1, SendBuffer: -1, OnEvent: func(Event) {}})
	require.NoError(t, err)
	assert.False(t, s.keepalive)
	assert.Equal(t, 0, s.sendBuffer)
	assert.Equal(t, 0, s.eventBuffer)

	s, err = newSettings("ws://127.0.0.1:1", Config{PingInterval: time.Second, SendBuffer: 3, EventBuffer: 7,
		PongTimeout: 2 * time.Second, CloseTimeout: 3 * time.Second, ReadLimit: 10, StableAfter: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, time.Second, s.pingInterval)
	assert.Equal(t, 2*time.Second, s.pongTimeout)
	assert.Equal(t, 3*time.Second, s.closeTimeout)
	assert.Equal(t, int64(10), s.readLimit)
	assert.Equal(t, 3, s.sendBuffer)
	assert.Equal(t, 7, s.eventBuffer)
	assert.Equal(t, time.Minute, s.stableAfter)
}
