package resocket_test

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/internal/wire"
)

// batchFrame is a batch frame (docs/protocol.md §2) of the messages.
func batchFrame(msgs ...resocket.Message) []byte {
	b := []byte{wire.KindBatch}
	for _, m := range msgs {
		b = wire.AppendEntry(b, byte(m.Type), m.Data)
	}
	return b
}

// TestBatchFramesAreDelivered: each message of a batch frame reaches the
// application on its own, in order, with its own type, between the
// messages of frames of their own; each counts as one received: the
// client acknowledges them all, and resumes after them.
func TestBatchFramesAreDelivered(t *testing.T) {
	srv := scripted(t, thenResumed("0"))
	_, events := newClient(t, srv.URL(), resumeConfig())
	conn := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)

	text := func(s string) resocket.Message { return resocket.Message{Type: resocket.MessageText, Data: []byte(s)} }
	binary := func(b ...byte) resocket.Message { return resocket.Message{Type: resocket.MessageBinary, Data: b} }
	want := []resocket.Message{text("a"), binary(0, 1), binary(), text("d"), text("e"), binary('f')}
	require.NoError(t, conn.Send(websocket.BinaryMessage, batchFrame(want[:3]...)))
	require.NoError(t, conn.Send(websocket.TextMessage, []byte("\x00d")))
	require.NoError(t, conn.Send(websocket.BinaryMessage, batchFrame(want[4:]...)))
	for i, w := range want {
		m := testkit.WaitEvent[resocket.Message](t, events, waitFor)
		assert.Equal(t, w.Type, m.Type, "message %d", i+1)
		assert.Equal(t, string(w.Data), string(m.Data), "message %d", i+1)
	}
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "no ack of all six")
		typ, data, err := conn.Receive(waitFor)
		require.NoError(t, err)
		if typ == websocket.BinaryMessage && len(data) == wire.AckLen && data[0] == wire.KindAck {
			if n, _ := wire.ParseAck(data); n == uint64(len(want)) {
				break
			}
		}
	}

	require.NoError(t, conn.CloseWith(int(resocket.StatusServiceRestart), "restart"))
	again := srv.NextConn(t, waitFor)
	assert.Equal(t, "6", again.Request().Header.Get("Resocket-Received"), "six received, each message one")
	require.NoError(t, again.Send(websocket.BinaryMessage, batchFrame(text("g"))))
	assert.Equal(t, "g", string(testkit.WaitEvent[resocket.Message](t, events, waitFor).Data))
}
