package resocket_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/mocks"
)

// A write broken by its connection's end never completed its frame, so
// the message is kept; when the next connection is already up by the time
// the write fails, Send writes it there, once.
func TestSendKeptGoesToTheNextConnectionAlreadyUp(t *testing.T) {
	srv := mocks.NewServer(t)
	gate := newWriteGate()
	gate.release = make(chan struct{})
	cfg := quickConfig()
	cfg.Dialer = gate.dialer()
	c, err := resocket.New(srv.URL(), cfg)
	require.NoError(t, err)
	defer func() { within(t, lifecycleWait, "Terminate", c.Terminate) }()
	first := srv.NextConn(t, lifecycleWait)
	firstID := nextConnected(t, c).ConnID

	gate.armed.Store(true)
	sent := make(chan error, 1)
	go func() { sent <- c.SendText(context.Background(), "kept") }()
	select {
	case <-gate.writing:
	case <-time.After(lifecycleWait):
		t.Fatal("the write never reached the socket")
	}
	c.ForceReconnect() // the connection ends under the write
	second := srv.NextConn(t, lifecycleWait)
	require.NotEqual(t, firstID, nextConnected(t, c).ConnID)
	close(gate.release) // only now does the broken write return

	select {
	case err := <-sent:
		require.NoError(t, err)
	case <-time.After(lifecycleWait):
		t.Fatal("Send did not return")
	}
	_, data, err := second.Receive(lifecycleWait)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(data), "written on the connection that was already up")
	assert.Empty(t, first.Received(), "nothing of it reached the first connection")
	_, _, err = second.Receive(200 * time.Millisecond)
	assert.Error(t, err, "written once")
}

// nextConnected skips events until a Connected.
func nextConnected(t *testing.T, c *resocket.Client) resocket.Connected {
	t.Helper()
	timeout := time.After(lifecycleWait)
	for {
		select {
		case ev := <-c.Events():
			if conn, ok := ev.(resocket.Connected); ok {
				return conn
			}
		case <-timeout:
			t.Fatal("no Connected")
		}
	}
}
