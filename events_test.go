package resocket_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestEventsInOrderClosedLast(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, events := newClient(t, srv.URL(), fastConfig())
	sconn := srv.NextConn(t, waitFor)
	require.NoError(t, sconn.SendText("one"))
	require.NoError(t, sconn.Send(websocket.BinaryMessage, []byte{2}))

	// Read up to the second message, then close: everything comes in order.
	evs := events.Collect(t, waitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && m.Type == resocket.MessageBinary
	})
	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, "done"))
	rest, closed := events.Drain(t, waitFor)
	evs = append(evs, rest...)

	require.Equal(t, []string{"Connecting", "Connected", "Message", "Message", "Disconnected", "Closed"}, testkit.Types(evs), testkit.DescribeAll(evs))
	assertConnecting(t, evs[0], 1)
	conn := evs[1].(resocket.Connected)
	assert.Equal(t, 1, conn.Attempt)
	assert.NotZero(t, conn.ConnID)
	assert.NotNil(t, conn.Header, "Connected.Header holds the handshake response headers")
	assert.Equal(t, resocket.Message{ConnID: conn.ConnID, Type: resocket.MessageText, Data: []byte("one")}, evs[2])
	assert.Equal(t, resocket.Message{ConnID: conn.ConnID, Type: resocket.MessageBinary, Data: []byte{2}}, evs[3])
	disc := evs[4].(resocket.Disconnected)
	assert.Equal(t, conn.ConnID, disc.ConnID)
	assert.Equal(t, resocket.Decision{Action: resocket.Stop}, disc.Decision)
	assert.Positive(t, disc.Disconnect.Uptime)
	assert.NoError(t, closed.Err)
	assert.Empty(t, closed.Unsent)

	testkit.WaitClosed(t, c.Done(), waitFor, "Done")
	assert.Equal(t, resocket.StateClosed, c.State())
	assert.NoError(t, c.Err())
}

func TestStateFollowsTheClient(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(time.Hour)
	c, events := newClient(t, srv.URL(), cfg)
	require.True(t, srv.WaitRequests(1, waitFor))
	assert.Equal(t, resocket.StateConnecting, c.State(), "first attempt under way")

	srv.StallHandshakes(false)
	sconn := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.Equal(t, resocket.StateConnected, c.State())

	sconn.Drop()
	rec := testkit.WaitEvent[resocket.Reconnecting](t, events, waitFor)
	assert.Equal(t, time.Hour, rec.Delay)
	assert.Equal(t, resocket.StateReconnecting, c.State(), "waiting out the backoff")

	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
	assert.Equal(t, resocket.StateClosed, c.State())
	assert.NoError(t, c.Err())
}

func TestStateNames(t *testing.T) {
	t.Parallel()
	for s, want := range map[resocket.State]string{
		resocket.StateConnecting: "connecting", resocket.StateConnected: "connected", resocket.StateReconnecting: "reconnecting",
		resocket.StateClosing: "closing", resocket.StateClosed: "closed",
	} {
		assert.Equal(t, want, s.String())
	}
}

func TestSubprotocolNegotiated(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t, mocks.WithSubprotocols("v2", "v1"))
	cfg := fastConfig()
	cfg.Subprotocols = []string{"v1", "v2"}
	_, _, ev, sconn := connect(t, srv, cfg)
	assert.Equal(t, "v2", sconn.Subprotocol())
	assert.Equal(t, "v2", ev.Subprotocol)
	assert.Equal(t, "v1, v2", sconn.Request().Header.Get("Sec-Websocket-Protocol"))
}
