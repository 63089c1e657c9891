package resocket_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
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
	c, events := newClient(t, srv.URL(), cfg)
	defer terminate(t, c)
	first := srv.NextConn(t, waitFor)
	firstID := testkit.WaitEvent[resocket.Connected](t, events, waitFor).ConnID

	gate.armed.Store(true)
	sent := make(chan error, 1)
	go func() { sent <- c.SendText(context.Background(), "kept") }()
	testkit.WaitClosed(t, gate.writing, waitFor, "the held write reaching the socket")
	c.ForceReconnect() // the connection ends under the write
	second := srv.NextConn(t, waitFor)
	require.NotEqual(t, firstID, testkit.WaitEvent[resocket.Connected](t, events, waitFor).ConnID)
	close(gate.release) // only now does the broken write return

	require.NoError(t, testkit.Receive(t, sent, waitFor, "Send"))
	_, data, err := second.Receive(waitFor)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(data), "written on the connection that was already up")
	assert.Empty(t, first.Received(), "nothing of it reached the first connection")
	_, _, err = second.Receive(200 * time.Millisecond)
	assert.Error(t, err, "written once")
}
