package session_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket/session"
)

// TestSmallWindowsKeepTheStreamFlowing: each side tells the other its
// window at the handshake (Resocket-Window, docs/protocol.md), and the
// other acknowledges at least every half of it. Before, a server with
// SendBuffer 16 sent 16 messages, then waited for the client's ack
// timer (50 ms): 2,000 messages took 6.3 s instead of milliseconds. Here
// both windows are 8, both ways, exactly once and in order; with acks
// only from the timers the stream could not finish in under
// 2,000 / 8 × 50 ms = 12.5 s, so finishing in under half of that shows
// the acks came from the windows (the run takes well under a second).
func TestSmallWindowsKeepTheStreamFlowing(t *testing.T) {
	const n, window = 2000, 8
	ts := newTestServer(t, session.Options{SendBuffer: window})
	cfg := resumeConfig()
	cfg.SendBuffer = window // the client's outbox
	start := time.Now()
	stream(t, ts, cfg, n, 0, nil)
	elapsed := time.Since(start)
	t.Logf("%d messages each way, windows of %d: %v", n, window, elapsed)
	assert.Less(t, elapsed, time.Duration(n/window)*50*time.Millisecond/2, "acks waited for the timers")
}

// TestWindowHeaders: the 101 tells the client the server's window; a
// malformed window or batch size in the request is refused.
func TestWindowHeaders(t *testing.T) {
	ts := newTestServer(t, session.Options{SendBuffer: 100, SendBufferBytes: 1 << 20})
	ws, resp := rawDial(t, ts, resumeHeader("", "", ""))
	require.NotNil(t, ws)
	assert.Equal(t, "100", resp.Header.Get("Resocket-Window"))
	assert.Equal(t, "1048576", resp.Header.Get("Resocket-Window-Bytes"))

	for _, header := range []string{"Resocket-Window", "Resocket-Batch"} {
		h := resumeHeader("", "", "")
		h.Set(header, "-1")
		ws, resp = rawDial(t, ts, h)
		assert.Nil(t, ws, header)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, header)
	}
}
