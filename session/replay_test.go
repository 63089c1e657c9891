package session_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// TestReplayKeepsTheNumbersOfMessagesAcknowledgedMeanwhile: the server's
// side of the rule the client follows: data frames carry no number, so a
// replay sends every number from the client's resume point on, also those
// the client acknowledges while the replay runs (it took them in on its
// old connection). The server's writer once skipped to the acknowledged
// count, and the client, counting from its resume point, took every later
// message for a replay and dropped it.
//
// A raw client holds the replay back (it does not read, and its receive
// buffer is small) until the server has taken in its ack: Session.Flush
// returns.
func TestReplayKeepsTheNumbersOfMessagesAcknowledgedMeanwhile(t *testing.T) {
	const n, size = 100, 128 << 10 // within DefaultSendBufferBytes
	payload := func(i int) []byte {
		return append([]byte(fmt.Sprintf("s%03d", i)), bytes.Repeat([]byte{'.'}, size-4)...)
	}
	ts := newTestServer(t, session.Options{})
	first, resp := rawDial(t, ts, resumeHeader("", "", ""))
	require.NotNil(t, first, "a new session")
	id, secret := resp.Header.Get("Resocket-Session"), resp.Header.Get("Resocket-Secret")
	sess := testkit.Receive(t, ts.peer.started, waitFor, "the session starts")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sent := testkit.SendAll(n, func(i int) error { // while the client reads: the socket holds only a few
		return sess.Send(ctx, resocket.MessageBinary, payload(i))
	})
	for i := 1; i <= n; i++ {
		require.Equal(t, payload(i), readServerData(t, first)[1:], "message %d on the first connection", i)
	}
	require.NoError(t, testkit.Receive(t, sent, waitFor, "Session.Send"))

	// The client resumes from 0 (its offer left before it took the n in),
	// then acknowledges all n on the new connection.
	var tcp *net.TCPConn
	d := websocket.Dialer{HandshakeTimeout: waitFor, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			tcp = conn.(*net.TCPConn)
			err = tcp.SetReadBuffer(16 << 10)
		}
		return conn, err
	}}
	second, _, err := d.Dial("ws://"+ts.http.Listener.Addr().String(), resumeHeader(id, secret, "0"))
	require.NoError(t, err)
	t.Cleanup(func() { closeRaw(second) })
	require.NoError(t, second.WriteMessage(websocket.BinaryMessage, ackFrame(n)))
	require.NoError(t, sess.Flush(ctx), "the server has taken the ack in")
	require.NoError(t, tcp.SetReadBuffer(4<<20)) // held back long enough
	require.NoError(t, sess.Send(ctx, resocket.MessageBinary, payload(n+1)))

	for i := 1; i <= n+1; i++ {
		data := readServerData(t, second)
		if i <= n && len(data) == 1 {
			continue // acknowledged meanwhile: an empty stand-in for its number
		}
		require.Equal(t, string(payload(i)[:4]), string(data[1:min(len(data), 5)]),
			"the replay's frame number %d carries message %d", i, i)
	}
}

// readServerData reads the server's next data frame on ws, skipping its
// acks.
func readServerData(t *testing.T, ws *websocket.Conn) []byte {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
	for range 1000 {
		_, data, err := ws.ReadMessage()
		require.NoError(t, err)
		if len(data) > 0 && data[0] == 0x00 {
			return data
		}
	}
	t.Fatal("only acks")
	return nil
}

func ackFrame(n uint64) []byte { return binary.BigEndian.AppendUint64([]byte{0x01}, n) }
