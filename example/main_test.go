package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runTimeout bounds every run of the program in these tests.
const runTimeout = 30 * time.Second

// syncBuffer is a bytes.Buffer safe for the program's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// runProgram runs the program with args and stdin, failing the test if it
// does not end within runTimeout.
func runProgram(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdin, &stdout, &stderr) }()
	select {
	case code := <-done:
		return result{code, stdout.String(), stderr.String()}
	case <-time.After(runTimeout):
		cancel() // ask for a clean end so that nothing leaks past the test
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		t.Fatalf("run %q did not end within %s\nstdout:\n%s\nstderr:\n%s", args, runTimeout, stdout.String(), stderr.String())
		return result{}
	}
}

// blockingStdin is a stdin that stays open until the test ends.
func blockingStdin(t *testing.T) io.Reader {
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	return r
}

// wsServer is a local WebSocket server whose connections are served by
// handle; Cleanup cuts them and waits for every handler to return.
type wsServer struct {
	*httptest.Server
	mu      sync.Mutex
	conns   map[*websocket.Conn]bool
	handles sync.WaitGroup
	closed  bool
}

func newWSServer(t *testing.T, handle func(ws *websocket.Conn, r *http.Request)) *wsServer {
	t.Helper()
	s := &wsServer{conns: map[*websocket.Conn]bool{}}
	up := websocket.Upgrader{Subprotocols: []string{"chat"}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		s.handles.Add(1)
		s.mu.Unlock()
		defer s.handles.Done()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		s.mu.Lock()
		s.conns[ws] = true
		s.mu.Unlock()
		handle(ws, r)
		s.mu.Lock()
		delete(s.conns, ws)
		s.mu.Unlock()
	}))
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		for ws := range s.conns {
			ws.NetConn().Close()
		}
		s.mu.Unlock()
		s.Close()
		s.handles.Wait()
	})
	return s
}

func (s *wsServer) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

func echoHandler(ws *websocket.Conn, _ *http.Request) {
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if err := ws.WriteMessage(typ, data); err != nil {
			return
		}
	}
}

// closeWith returns a handler that closes every connection with code.
func closeWith(code int, reason string) func(*websocket.Conn, *http.Request) {
	return func(ws *websocket.Conn, _ *http.Request) {
		msg := websocket.FormatCloseMessage(code, reason)
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return // the client's close frame, or the deadline
			}
		}
	}
}

func TestCodePolicy(t *testing.T) {
	policy := codePolicy(
		[]resocket.StatusCode{4001, 4003},
		[]resocket.StatusCode{4000, 1006},
		[]resocket.StatusCode{1008, 1013},
	)
	tests := []struct {
		name string
		d    resocket.Disconnect
		want resocket.Decision
	}{
		{"giveup list", resocket.Disconnect{Code: 4001}, resocket.Decision{Action: resocket.GiveUp}},
		{"giveup list, second code", resocket.Disconnect{Code: 4003}, resocket.Decision{Action: resocket.GiveUp}},
		{"stop list", resocket.Disconnect{Code: 4000}, resocket.Decision{Action: resocket.Stop}},
		{"stop list overrides a lost link", resocket.Disconnect{Code: 1006}, resocket.Decision{Action: resocket.Stop}},
		{"reconnect list overrides a default give up", resocket.Disconnect{Code: 1008}, resocket.Decision{Action: resocket.Reconnect}},
		{"reconnect list keeps the default's delay", resocket.Disconnect{Code: 1013},
			resocket.Decision{Action: resocket.Reconnect, MinDelay: 5 * time.Second}},
		{"unlisted code: default reconnect", resocket.Disconnect{Code: 4002}, resocket.Decision{Action: resocket.Reconnect}},
		{"unlisted code: default stop", resocket.Disconnect{Code: 1000}, resocket.Decision{Action: resocket.Stop}},
		{"unlisted code: default give up", resocket.Disconnect{Code: 1003}, resocket.Decision{Action: resocket.GiveUp}},
		{"refused handshake is left to the default", resocket.Disconnect{Code: 4001, HTTPStatus: 503, RetryAfter: 2 * time.Second},
			resocket.Decision{Action: resocket.Reconnect, MinDelay: 2 * time.Second}},
		{"refused handshake: default give up", resocket.Disconnect{Code: 1006, HTTPStatus: 401},
			resocket.Decision{Action: resocket.GiveUp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, policy(tt.d))
		})
	}
}

func TestCodePolicyFromFlags(t *testing.T) {
	opts, err := parseFlags([]string{"-giveup", "4001,4003", "-giveup", "4004", "-stop", "4000", "-reconnect", "1008"}, io.Discard)
	require.NoError(t, err)
	policy := opts.config().Policy
	for code, want := range map[resocket.StatusCode]resocket.Action{
		4001: resocket.GiveUp, 4003: resocket.GiveUp, 4004: resocket.GiveUp,
		4000: resocket.Stop, 1008: resocket.Reconnect, 4002: resocket.Reconnect,
	} {
		assert.Equal(t, want, policy(resocket.Disconnect{Code: code}).Action, "code %d", code)
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in          string
		name, value string
		wantErr     bool
	}{
		{in: "Authorization: Bearer abc", name: "Authorization", value: "Bearer abc"},
		{in: "X-Token:abc", name: "X-Token", value: "abc"},
		{in: "  X-Token :  a: b  ", name: "X-Token", value: "a: b"},
		{in: "X-Empty:", name: "X-Empty", value: ""},
		{in: "NoColon", wantErr: true},
		{in: ": value", wantErr: true},
		{in: "Bad Name: v", wantErr: true},
		{in: "X-Bad: a\r\nInjected: b", wantErr: true},
		{in: "Upgrade: h2c", wantErr: true},
		{in: "sec-websocket-key: x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			name, value, err := parseHeader(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.name, name)
			assert.Equal(t, tt.value, value)
		})
	}
}

func TestHeaderFlagsRepeat(t *testing.T) {
	opts, err := parseFlags([]string{"-H", "X-A: 1", "-H", "x-a: 2", "-H", "Origin: http://localhost",
		"-subprotocol", "a,b", "-subprotocol", "c"}, io.Discard)
	require.NoError(t, err)
	cfg := opts.config()
	assert.Equal(t, []string{"1", "2"}, cfg.Header.Values("X-A"))
	assert.Equal(t, "http://localhost", cfg.Header.Get("Origin"))
	assert.Equal(t, []string{"a", "b", "c"}, cfg.Subprotocols)
}

func TestBadUsage(t *testing.T) {
	tests := map[string][]string{
		"unknown flag":               {"-nope"},
		"code not a number":          {"-giveup", "40x1"},
		"code out of range":          {"-stop", "999"},
		"empty code":                 {"-reconnect", "1008,"},
		"code in two lists":          {"-giveup", "4001", "-stop", "4001"},
		"header without colon":       {"-H", "X-Token abc"},
		"header bad name":            {"-H", "X Token: abc"},
		"reserved header":            {"-H", "Connection: close"},
		"bad subprotocol":            {"-subprotocol", "a b"},
		"subprotocol twice":          {"-subprotocol", "a", "-H", "Sec-WebSocket-Protocol: b"},
		"positional argument":        {"ws://127.0.0.1:1/"},
		"negative max attempts":      {"-max-attempts", "-1"},
		"demo duration with url":     {"-url", "ws://127.0.0.1:1/", "-demo-duration", "1s"},
		"http url":                   {"-url", "http://127.0.0.1:1/"},
		"url without host":           {"-url", "ws:///path"},
		"bad duration":               {"-ping", "soon"},
		"negative demo duration":     {"-demo-duration", "-1s"},
		"value missing at the end":   {"-url"},
		"max attempts not a number":  {"-max-attempts", "many"},
		"url with a space in scheme": {"-url", "w s://x"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			res := runProgram(t, strings.NewReader(""), args...)
			assert.Equal(t, exitUsage, res.code)
			assert.NotEmpty(t, res.stderr)
			assert.Empty(t, res.stdout)
		})
	}
}

func TestHelp(t *testing.T) {
	res := runProgram(t, strings.NewReader(""), "-h")
	assert.Equal(t, exitOK, res.code)
	for _, want := range []string{"-url", "-H", "-subprotocol", "-giveup", "-stop", "-reconnect",
		"-ping", "-json", "-max-attempts", "-demo-duration", "Exit status", "Examples"} {
		assert.Contains(t, res.stderr, want)
	}
}

func TestDemo(t *testing.T) {
	saved := demoTiming
	t.Cleanup(func() { demoTiming = saved })
	// The first restart comes 1.5 s after the first connection opened: half
	// a second away from any tick, so tick 1 is surely echoed (a message
	// that crosses the server's close frame is dropped by the server).
	demoTiming.lifetime = 1500 * time.Millisecond
	demoTiming.refuse = 0

	res := runProgram(t, nil, "-demo-duration", "6s")
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)

	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	disconnected, reconnected := -1, -1
	for i, l := range lines {
		fields := strings.Fields(l)
		require.GreaterOrEqual(t, len(fields), 2, "line %q", l)
		switch {
		case fields[1] == "disconnected" && disconnected < 0:
			disconnected = i
			assert.Contains(t, l, "code=1012 (service restart)")
			assert.Contains(t, l, "decision=reconnect")
		case fields[1] == "connected" && disconnected >= 0 && reconnected < 0:
			reconnected = i
		}
	}
	require.GreaterOrEqual(t, disconnected, 0, "no disconnected line:\n%s", res.stdout)
	require.Greater(t, reconnected, disconnected, "no connected line after the disconnect:\n%s", res.stdout)
	assert.Contains(t, res.stdout, `text "tick 1"`, "stderr:\n%s", res.stderr)
	// The end may find the client connected or waiting to reconnect (then
	// the ticks it holds are unsent); either way it ends cleanly.
	assert.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3} closed +err=<nil> unsent=\d+$`, lines[len(lines)-1])
}

func TestWscatEcho(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := newWSServer(t, func(ws *websocket.Conn, r *http.Request) {
		got <- r.Header.Clone()
		echoHandler(ws, r)
	})
	res := runProgram(t, strings.NewReader("a\nb\n"),
		"-url", srv.wsURL(), "-H", "X-Token: secret", "-subprotocol", "chat")
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	assert.Equal(t, "a\nb\n", res.stdout)
	assert.Regexp(t, `connected +conn=\d+ attempt=1 subprotocol=chat`, res.stderr)
	assert.Contains(t, res.stderr, "code=1000 (normal closure)")
	assert.Regexp(t, `closed +err=<nil> unsent=0\n$`, res.stderr)
	h := <-got
	assert.Equal(t, "secret", h.Get("X-Token"))
}

func TestWscatBinary(t *testing.T) {
	srv := newWSServer(t, func(ws *websocket.Conn, r *http.Request) {
		if ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}) != nil {
			return
		}
		echoHandler(ws, r)
	})
	// The server's binary message comes first; the echo of "x" follows.
	res := runProgram(t, strings.NewReader("x\n"), "-url", srv.wsURL())
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	assert.Equal(t, "<binary 3 bytes>\nx\n", res.stdout)
}

func TestGiveUp(t *testing.T) {
	srv := newWSServer(t, closeWith(4001, "not allowed"))
	res := runProgram(t, blockingStdin(t), "-url", srv.wsURL(), "-giveup", "4001,4003")
	assert.Equal(t, exitFail, res.code, "stderr:\n%s", res.stderr)
	assert.Contains(t, res.stderr, `code=4001 (private) reason="not allowed"`)
	assert.Contains(t, res.stderr, `decision="give up"`)
	assert.Contains(t, res.stderr, "gave up")
}

func TestStop(t *testing.T) {
	srv := newWSServer(t, closeWith(4000, "done"))
	res := runProgram(t, blockingStdin(t), "-url", srv.wsURL(), "-stop", "4000")
	assert.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	assert.Contains(t, res.stderr, "decision=stop")
	assert.Regexp(t, `closed +err=<nil> unsent=0\n$`, res.stderr)
}

func TestMaxAttempts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	res := runProgram(t, blockingStdin(t), "-url", url, "-max-attempts", "3")
	assert.Equal(t, exitFail, res.code, "stderr:\n%s", res.stderr)
	assert.Equal(t, 3, strings.Count(res.stderr, "dial failed"), "stderr:\n%s", res.stderr)
	assert.Contains(t, res.stderr, "attempt=3 status=503")
	assert.Contains(t, res.stderr, "gave up")
}

func TestJSON(t *testing.T) {
	srv := newWSServer(t, echoHandler)
	res := runProgram(t, strings.NewReader("x\n"), "-url", srv.wsURL(), "-json")
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	var events []string
	for _, line := range strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n") {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "line %q", line)
		_, err := time.Parse(time.RFC3339, ev["time"].(string))
		assert.NoError(t, err)
		name := ev["event"].(string)
		events = append(events, name)
		switch name {
		case "message":
			assert.Equal(t, "text", ev["type"])
			assert.Equal(t, "x", ev["text"])
		case "disconnected":
			assert.EqualValues(t, 1000, ev["code"])
			assert.Equal(t, "stop", ev["decision"])
		case "closed":
			assert.EqualValues(t, 0, ev["unsent"])
			assert.NotContains(t, ev, "err")
		}
	}
	assert.Equal(t, []string{"connecting", "connected", "message", "disconnected", "closed"}, events)
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		ev   resocket.Event
		want string
	}{
		{resocket.Connecting{Attempt: 1}, "connecting      attempt=1"},
		{resocket.Connected{ConnID: 3, Attempt: 2, Subprotocol: "chat"}, "connected       conn=3 attempt=2 subprotocol=chat"},
		{resocket.Message{ConnID: 1, Type: resocket.MessageText, Data: []byte("tick 1")}, `message         conn=1 text "tick 1"`},
		{resocket.Message{ConnID: 1, Type: resocket.MessageBinary, Data: []byte{0, 1}}, "message         conn=1 binary 2 bytes"},
		{resocket.Disconnected{ConnID: 1,
			Disconnect: resocket.Disconnect{Code: 1012, Reason: "service restart", Attempt: 1, Uptime: 4 * time.Second},
			Decision:   resocket.Decision{Action: resocket.Reconnect}},
			`disconnected    conn=1 code=1012 (service restart) reason="service restart" uptime=4s decision=reconnect`},
		{resocket.Disconnected{ConnID: 2,
			Disconnect: resocket.Disconnect{Code: 1013, Attempt: 1, Uptime: 1500 * time.Millisecond},
			Decision:   resocket.Decision{Action: resocket.Reconnect, MinDelay: 5 * time.Second}},
			`disconnected    conn=2 code=1013 (try again later) uptime=1.5s decision=reconnect min-delay=5s`},
		{resocket.DialFailed{
			Disconnect: resocket.Disconnect{Code: 1006, HTTPStatus: 503, RetryAfter: time.Second, Attempt: 2,
				Err: &resocket.HandshakeError{Status: 503, RetryAfter: time.Second}},
			Decision: resocket.Decision{Action: resocket.Reconnect, MinDelay: time.Second}},
			`dial failed     attempt=2 status=503 retry-after=1s decision=reconnect min-delay=1s`},
		{resocket.DialFailed{
			Disconnect: resocket.Disconnect{Code: 1006, Attempt: 1, Err: errors.New("connection refused")},
			Decision:   resocket.Decision{Action: resocket.GiveUp}},
			`dial failed     attempt=1 code=1006 (abnormal closure) err="connection refused" decision="give up"`},
		{resocket.Reconnecting{Attempt: 2, Delay: 412345678 * time.Nanosecond}, "reconnecting    attempt=2 delay=412ms"},
		{resocket.Closed{}, "closed          err=<nil> unsent=0"},
		{resocket.Closed{Err: fmt.Errorf("%w: boom", resocket.ErrGaveUp), Unsent: make([]resocket.Message, 2)},
			`closed          err="resocket: gave up: boom" unsent=2`},
	}
	for _, tt := range tests {
		t.Run(eventName(tt.ev), func(t *testing.T) {
			var out bytes.Buffer
			p := newPrinter(false, true, &out, io.Discard)
			p.now = func() time.Time { return time.Date(2024, 1, 2, 12, 0, 1, 123e6, time.UTC) }
			p.event(tt.ev)
			assert.Equal(t, "12:00:01.123 "+tt.want+"\n", out.String())
		})
	}
}

func TestJSONOfMessage(t *testing.T) {
	now := time.Date(2024, 1, 2, 12, 0, 1, 0, time.UTC)
	b, err := json.Marshal(jsonOf(now, resocket.Message{ConnID: 1, Type: resocket.MessageBinary, Data: []byte{1, 2, 3}}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"time":"2024-01-02T12:00:01.000Z","event":"message","conn":1,"type":"binary","data":"AQID","size":3}`, string(b))

	b, err = json.Marshal(jsonOf(now, resocket.Reconnecting{Attempt: 1, Delay: 0}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"time":"2024-01-02T12:00:01.000Z","event":"reconnecting","attempt":1,"delay_ms":0}`, string(b))
}

// TestResumeDemo: the resumable demo counts 1200 messages each way while
// its server is dropped and restarted, and reports none lost or repeated.
func TestResumeDemo(t *testing.T) {
	saved := resumeTiming
	t.Cleanup(func() { resumeTiming = saved })
	resumeTiming.every = time.Millisecond
	resumeTiming.disturbEvery = 150 * time.Millisecond

	res := runProgram(t, nil, "-resume")
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "client → server: sent 1200, received 1200, lost 0, repeated 0\n")
	assert.Contains(t, res.stdout, "server → client: sent 1200, received 1200, lost 0, repeated 0\n")
	assert.Contains(t, res.stdout, "demo: dropping every connection")
	assert.Contains(t, res.stdout, "demo: restarting the server (1012)")
	assert.Regexp(t, `connected +conn=\d+ attempt=\d+ resumed`, res.stdout, "a reconnect resumes the session")
	assert.NotContains(t, res.stdout, "session lost")
}
