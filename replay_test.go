package resocket_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
)

// TestReplayKeepsTheNumbersOfMessagesAcknowledgedMeanwhile: data frames
// carry no number, so the replay on a new connection must send every
// number from the handshake's answer on, even when the server
// acknowledges some of them while the replay runs (its Receive went on
// reading the old connection: a rotation, a takeover). The client once
// skipped those, and every later message landed on the wrong number: the
// server received message 91 as number 21, in place of 21 (found by
// session.TestRotationWithResume, about 1 run in 30).
//
// The server here holds the replay back (it does not read, and its
// receive buffer is small) until the client has taken in an ack of 90:
// the Send that waited for room in the outbox returns.
func TestReplayKeepsTheNumbersOfMessagesAcknowledgedMeanwhile(t *testing.T) {
	const n, size, ackedMeanwhile = 100, 256 << 10, 90
	payload := func(i int) []byte {
		return append([]byte(fmt.Sprintf("m%03d", i)), bytes.Repeat([]byte{'.'}, size-4)...)
	}
	conns := make(chan *websocket.Conn, 2)
	var handshakes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := answer("S1", "K1", "0", "0")
		if handshakes.Add(1) > 1 {
			h = answer("S1", "", "1", "0") // resumed, and it has nothing yet: replay all
		}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, h)
		if err != nil {
			return
		}
		select {
		case conns <- ws:
		default: // a reconnect while the test ends
			_ = ws.Close()
		}
	}))
	t.Cleanup(srv.Close)

	cfg := resumeConfig()
	cfg.ResumeBufferBytes = n * size // full once all n are out, until an ack
	c, _ := newClient(t, "ws"+strings.TrimPrefix(srv.URL, "http"), cfg)
	first := testkit.Receive(t, conns, waitFor, "the first connection")
	t.Cleanup(func() { _ = first.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sent := testkit.SendAll(n, func(i int) error { // while the server reads: the socket holds only a few
		return c.Send(ctx, resocket.MessageBinary, payload(i))
	})
	for i := 1; i <= n; i++ {
		_, data := readData(t, first)
		require.Equal(t, payload(i), data[1:], "message %d on the first connection", i)
	}
	require.NoError(t, testkit.Receive(t, sent, waitFor, "Send"))
	_ = first.Close() // dropped: the client resumes with all n unacknowledged

	second := testkit.Receive(t, conns, waitFor, "the resumed connection")
	t.Cleanup(func() { _ = second.Close() })
	require.NoError(t, second.NetConn().(*net.TCPConn).SetReadBuffer(16<<10))
	require.NoError(t, second.WriteMessage(websocket.BinaryMessage, ackFrame(ackedMeanwhile)))
	require.NoError(t, c.Send(ctx, resocket.MessageBinary, payload(n+1)), "room once the ack is taken in")
	require.NoError(t, second.NetConn().(*net.TCPConn).SetReadBuffer(4<<20)) // held back long enough

	for i := 1; i <= n+1; i++ {
		_, data := readData(t, second)
		if i <= ackedMeanwhile && len(data) == 1 {
			continue // acknowledged meanwhile: an empty stand-in for its number
		}
		require.Equal(t, string(payload(i)[:4]), string(data[1:min(len(data), 5)]),
			"the replay's frame number %d carries message %d", i, i)
	}
}

// readData reads the client's next data frame on ws, skipping its acks.
func readData(t *testing.T, ws *websocket.Conn) (int, []byte) {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
	for range 1000 {
		typ, data, err := ws.ReadMessage()
		require.NoError(t, err)
		if len(data) > 0 && data[0] == 0x00 {
			return typ, data
		}
	}
	t.Fatal("only acks")
	return 0, nil
}
