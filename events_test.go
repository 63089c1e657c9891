package resocket

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket/mocks"
)

func TestEventsInOrderClosedLast(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c := newClient(t, srv.URL(), fastConfig())
	sconn := srv.NextConn(t, waitFor)
	require.NoError(t, sconn.SendText("one"))
	require.NoError(t, sconn.Send(websocket.BinaryMessage, []byte{2}))

	// Read up to the second message, then close: everything comes in order.
	evs := collect(t, c, func(ev Event) bool { m, ok := ev.(Message); return ok && m.Type == MessageBinary }, waitFor)
	require.NoError(t, c.Close(StatusNormalClosure, "done"))
	rest, closed := drain(t, c, waitFor)
	evs = append(evs, rest...)

	require.Equal(t, []string{"Connecting", "Connected", "Message", "Message", "Disconnected", "Closed"}, typeNames(evs), fmtEvents(evs))
	assertConnecting(t, evs[0], 1)
	conn := evs[1].(Connected)
	assert.Equal(t, 1, conn.Attempt)
	assert.NotZero(t, conn.ConnID)
	assert.NotNil(t, conn.Header, "Connected.Header holds the handshake response headers")
	assert.Equal(t, Message{ConnID: conn.ConnID, Type: MessageText, Data: []byte("one")}, evs[2])
	assert.Equal(t, Message{ConnID: conn.ConnID, Type: MessageBinary, Data: []byte{2}}, evs[3])
	disc := evs[4].(Disconnected)
	assert.Equal(t, conn.ConnID, disc.ConnID)
	assert.Equal(t, Decision{Action: Stop}, disc.Decision)
	assert.Positive(t, disc.Disconnect.Uptime)
	assert.NoError(t, closed.Err)
	assert.Empty(t, closed.Unsent)

	waitClosed(t, c.Done(), waitFor, "Done")
	assert.Equal(t, StateClosed, c.State())
	assert.NoError(t, c.Err())
}

func TestStateFollowsTheClient(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(time.Hour)
	c := newClient(t, srv.URL(), cfg)
	require.True(t, srv.WaitRequests(1, waitFor))
	assert.Equal(t, StateConnecting, c.State(), "first attempt under way")

	srv.StallHandshakes(false)
	sconn := srv.NextConn(t, waitFor)
	waitEvent[Connected](t, c, waitFor)
	assert.Equal(t, StateConnected, c.State())

	sconn.Drop()
	rec := waitEvent[Reconnecting](t, c, waitFor)
	assert.Equal(t, time.Hour, rec.Delay)
	assert.Equal(t, StateReconnecting, c.State(), "waiting out the backoff")

	require.NoError(t, c.Close(StatusNormalClosure, ""))
	assert.Equal(t, StateClosed, c.State())
	assert.NoError(t, c.Err())
}

func TestStateNames(t *testing.T) {
	t.Parallel()
	for s, want := range map[State]string{
		StateConnecting: "connecting", StateConnected: "connected", StateReconnecting: "reconnecting",
		StateClosing: "closing", StateClosed: "closed",
	} {
		assert.Equal(t, want, s.String())
	}
}

func TestSubprotocolNegotiated(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t, mocks.WithSubprotocols("v2", "v1"))
	cfg := fastConfig()
	cfg.Subprotocols = []string{"v1", "v2"}
	_, ev, sconn := connect(t, srv, cfg)
	assert.Equal(t, "v2", sconn.Subprotocol())
	assert.Equal(t, "v2", ev.Subprotocol)
	assert.Equal(t, "v1, v2", sconn.Request().Header.Get("Sec-Websocket-Protocol"))
}
