package session_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// stream sends n numbered messages each way between a client and the
// test server's sessions, calling fault after every step messages the
// server has received, and asserts exactly once, in order, both ways.
func stream(t *testing.T, ts *testServer, cfg resocket.Config, n, step int, fault func(i int)) *testkit.Recorder {
	t.Helper()
	rec, _ := streamTo(t, ts.URL(), ts.peer, cfg, n, step, fault)
	return rec
}

// streamTo is stream against url, with p the server side of every Server
// the client may reach.
func streamTo(t *testing.T, url string, p *peer, cfg resocket.Config, n, step int, fault func(i int)) (*testkit.Recorder, *resocket.Client) {
	t.Helper()
	ts := &testServer{peer: p}
	c, err := resocket.New(url, cfg)
	require.NoError(t, err)
	rec := testkit.Record(t, c)

	// The server side sends its numbered messages from the first session
	// it runs; a later Server (a restart) carries on from the Store, so
	// the sender follows whichever session is current.
	serverSent := make(chan error, 1)
	go func() {
		sess := <-ts.peer.started
		for i := 1; i <= n; i++ {
			for {
				err := sess.Send(context.Background(), resocket.MessageText, []byte(fmt.Sprintf("s%06d", i)))
				if err == nil {
					break
				}
				select { // the session moved to a new Server: carry on there
				case sess = <-ts.peer.started:
				case <-time.After(10 * time.Second):
					serverSent <- fmt.Errorf("server send %d: %w", i, err)
					return
				}
			}
		}
		serverSent <- nil
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nextFault := step
	for i := 1; i <= n; i++ {
		require.NoError(t, c.SendText(ctx, fmt.Sprintf("c%06d", i)), "Send %d", i)
		if fault != nil && i == nextFault {
			require.Eventually(t, func() bool { return ts.peer.count() >= i-step/2 }, 10*time.Second, time.Millisecond)
			fault(i)
			nextFault += step
		}
	}
	require.NoError(t, c.Flush(ctx), "client Flush; server has %d; stats %+v\n%s", ts.peer.count(), c.Stats(), rec.History())
	require.Equal(t, n, ts.peer.count(), "the server received every message once Flush returned")
	require.NoError(t, testkit.Receive(t, serverSent, 30*time.Second, "server sends"))

	got := rec.Collect(t, 30*time.Second, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == fmt.Sprintf("s%06d", n)
	})
	var fromServer []string
	for _, m := range testkit.Only[resocket.Message](got) {
		fromServer = append(fromServer, string(m.Data))
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("s%06d", i+1)
	}
	assert.Equal(t, want, fromServer, "server to client: exactly once, in order")
	var fromClient []string
	for _, d := range ts.peer.inOrder() {
		fromClient = append(fromClient, string(d))
	}
	for i := range want {
		want[i] = fmt.Sprintf("c%06d", i+1)
	}
	assert.Equal(t, want, fromClient, "client to server: exactly once, in order")
	return rec, c
}

func TestExactlyOnceWithoutFaults(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	rec := stream(t, ts, resumeConfig(), 500, 0, nil)
	connected := testkit.Only[resocket.Connected](rec.Events())
	require.Len(t, connected, 1)
	assert.False(t, connected[0].Resumed, "the first connection starts the session")
}

func TestExactlyOnceAcrossCuts(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	rec := stream(t, ts, resumeConfig(), 3000, 300, func(int) { ts.proxy.cut() })
	connected := testkit.Only[resocket.Connected](rec.Events())
	require.GreaterOrEqual(t, len(connected), 5, rec.History())
	for _, c := range connected[1:] {
		assert.True(t, c.Resumed, "every reconnect resumes: %s", rec.History())
	}
	assert.Empty(t, testkit.Only[resocket.SessionLost](rec.Events()))
}

func TestExactlyOnceAcrossHalfOpenLinks(t *testing.T) {
	ts := newTestServer(t, session.Options{PingInterval: 200 * time.Millisecond})
	rec := stream(t, ts, resumeConfig(), 1500, 500, func(int) { ts.proxy.blackhole() })
	disconnects := testkit.Only[resocket.Disconnected](rec.Events())
	require.NotEmpty(t, disconnects)
	for _, d := range disconnects {
		assert.ErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout, "found by the keepalive: %s", rec.History())
	}
}

func TestExactlyOnceAcrossServerRestarts(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	rec := stream(t, ts, resumeConfig(), 2000, 500, func(int) { ts.restart(ts.opts) })
	var codes []resocket.StatusCode
	for _, d := range testkit.Only[resocket.Disconnected](rec.Events()) {
		codes = append(codes, d.Disconnect.Code)
	}
	require.NotEmpty(t, codes)
	for _, c := range codes {
		assert.Equal(t, resocket.StatusServiceRestart, c, "Shutdown says 1012: %s", rec.History())
	}
	for _, c := range testkit.Only[resocket.Connected](rec.Events())[1:] {
		assert.True(t, c.Resumed, "each new Server resumes from the Store: %s", rec.History())
	}
}
