package resocket_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))

	logs := out.String()
	assert.Contains(t, logs, `"msg":"resocket: connected"`)
	assert.Contains(t, logs, `"msg":"resocket: disconnected"`)
	assert.Contains(t, logs, `"code":1012`)
	assert.Contains(t, logs, `"msg":"resocket: reconnecting"`)
	assert.Contains(t, logs, `"header_names":["Authorization"]`)
	assert.NotContains(t, logs, "s3cr3t", "header values are never logged")
}

// logRecord is one record a captureHandler took: its level, message and
// every attribute, groups flattened to dotted keys and values resolved
// (LogValuer) and formatted.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// captureHandler is a slog.Handler that keeps every record at any level,
// with the attributes added by WithAttrs and WithGroup, for a test to
// count and search.
type captureHandler struct {
	store  *logStore
	attrs  []slog.Attr // from WithAttrs, already qualified by their groups
	groups []string
}

type logStore struct {
	mu      sync.Mutex
	records []logRecord
}

func newCaptureHandler() *captureHandler { return &captureHandler{store: &logStore{}} }

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		flatten(rec.attrs, "", a)
	}
	prefix := strings.Join(h.groups, ".")
	r.Attrs(func(a slog.Attr) bool {
		flatten(rec.attrs, prefix, a)
		return true
	})
	h.store.mu.Lock()
	h.store.records = append(h.store.records, rec)
	h.store.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	prefix := strings.Join(h.groups, ".")
	out := *h
	out.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if prefix != "" {
			a = slog.Group(prefix, a)
		}
		out.attrs = append(out.attrs, a)
	}
	return &out
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	out := *h
	out.groups = append(append([]string(nil), h.groups...), name)
	return &out
}

// flatten adds a (resolved) to m under its key, qualified by prefix;
// groups add their name to the prefix of their members.
func flatten(m map[string]string, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	key := a.Key
	if prefix != "" {
		key = prefix + "." + key
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, member := range a.Value.Group() {
			flatten(m, key, member)
		}
		return
	}
	m[key] = a.Value.String()
}

func (h *captureHandler) records() []logRecord {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return append([]logRecord(nil), h.store.records...)
}

func (h *captureHandler) messages() []string {
	var out []string
	for _, r := range h.records() {
		out = append(out, r.msg)
	}
	return out
}

// everyLogPath drives a client through every path that logs: a refused
// attempt, a reconnect, a connection, a server's close, and a final
// refusal that gives up.
func everyLogPath(t *testing.T, cfg resocket.Config) {
	t.Helper()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", 1)
	c, events := newClient(t, srv.URL(), cfg)
	sconn := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	srv.Refuse(http.StatusForbidden, "", -1)
	require.NoError(t, sconn.CloseWith(int(resocket.StatusServiceRestart), "restart"))
	_, closed := events.Drain(t, waitFor)
	require.ErrorIs(t, closed.Err, resocket.ErrGaveUp, "the second attempt was refused with 403")
	testkit.WaitClosed(t, c.Done(), waitFor, "Done")
}

// Not parallel: it replaces the process's default logger. A nil Logger
// means silent: not even slog's default logger gets a record. With a
// Logger, the same run does log, so the check is not vacuous.
func TestSilentByDefault(t *testing.T) {
	// slog.SetDefault also routes the log package into the handler, and
	// setting the old default back does not undo that: restore both.
	oldDefault, oldWriter, oldFlags := slog.Default(), log.Writer(), log.Flags()
	t.Cleanup(func() {
		slog.SetDefault(oldDefault)
		log.SetOutput(oldWriter)
		log.SetFlags(oldFlags)
	})
	process := newCaptureHandler()
	slog.SetDefault(slog.New(process))

	cfg := fastConfig()
	everyLogPath(t, cfg)
	assert.Empty(t, process.messages(), "a client without a Logger logged")

	own := newCaptureHandler()
	cfg.Logger = slog.New(own)
	everyLogPath(t, cfg)
	assert.Empty(t, process.messages(), "a client with a Logger logged to the default logger")
	assert.Subset(t, own.messages(), []string{
		"resocket: attempt failed", "resocket: reconnecting", "resocket: connected",
		"resocket: disconnected", "resocket: gave up",
	}, "the same run with a Logger logs every step")
}

// HeaderFunc's header values are credentials as much as Header's: none
// reaches any record, attribute or message, at any level, on any path
// (refusal, connection, reconnect, a HeaderFunc error and giving up).
func TestHeaderFuncValuesNeverLogged(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t"
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", 1)
	logs := newCaptureHandler()
	var calls atomic.Int32
	cfg := fastConfig()
	cfg.Logger = slog.New(logs)
	cfg.Header = http.Header{"X-Static": {"static-" + secret}}
	cfg.HeaderFunc = func(context.Context) (http.Header, error) {
		n := calls.Add(1)
		h := http.Header{
			"Authorization": {fmt.Sprintf("Bearer func-%s-%d", secret, n)},
			"X-Token":       {fmt.Sprintf("token-%s-%d", secret, n)},
		}
		if n == 4 {
			// A header the handshake sets itself: the attempt fails with
			// an error, and the client gives up.
			h.Set("Sec-Websocket-Key", "key-"+secret)
		}
		return h, nil
	}
	c, events := newClient(t, srv.URL(), cfg)
	sconn := srv.NextConn(t, waitFor) // attempt 2; 1 was refused
	require.Equal(t, "Bearer func-"+secret+"-2", sconn.Request().Header.Get("Authorization"), "HeaderFunc's header is sent")
	require.NoError(t, sconn.CloseWith(int(resocket.StatusServiceRestart), "restart"))
	srv.NextConn(t, waitFor).Drop() // attempt 3; attempt 4 fails in HeaderFunc's header
	_, closed := events.Drain(t, waitFor)
	require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	testkit.WaitClosed(t, c.Done(), waitFor, "Done")

	records := logs.records()
	require.NotEmpty(t, records)
	assert.Subset(t, logs.messages(), []string{
		"resocket: attempt failed", "resocket: connected", "resocket: disconnected", "resocket: gave up",
	}, "every path was logged")
	for _, r := range records {
		assert.NotContains(t, r.msg, secret, "message of %q", r.msg)
		for k, v := range r.attrs {
			assert.NotContains(t, v, secret, "attribute %s of %q", k, r.msg)
			assert.NotContains(t, k, secret, "an attribute key of %q", r.msg)
		}
	}
}
