package resocket_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// lockedBuffer is an io.Writer safe for the client's goroutine and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLoggerStructuredWithoutCredentials(t *testing.T) {
	srv := mocks.NewServer(t)
	var out lockedBuffer
	cfg := fastConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Header = http.Header{"Authorization": {"Bearer s3cr3t-token"}}
	c, events, _, sconn := connect(t, srv, cfg)
	require.Equal(t, "Bearer s3cr3t-token", sconn.Request().Header.Get("Authorization"), "the header is sent")
	require.NoError(t, sconn.CloseWith(int(resocket.StatusServiceRestart), "restart"))
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	require.NoError(t, c.Close(resocket.StatusNormalClosure, ""))

	logs := out.String()
	assert.Contains(t, logs, `"msg":"resocket: connected"`)
	assert.Contains(t, logs, `"msg":"resocket: disconnected"`)
	assert.Contains(t, logs, `"code":1012`)
	assert.Contains(t, logs, `"msg":"resocket: reconnecting"`)
	assert.Contains(t, logs, `"header_names":["Authorization"]`)
	assert.NotContains(t, logs, "s3cr3t", "header values are never logged")
}
