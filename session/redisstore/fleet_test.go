package redisstore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
	"github.com/resocket/resocket/session/redisstore"
)

// The fleet: this test binary, started again with FLEET_SERVER set to a
// name, is a server process of its own (fleetServerMain). Two of them
// share the test's redis-server.
const (
	fleetEnv       = "FLEET_SERVER" // the server's name: "A", "B"
	fleetRedisEnv  = "FLEET_REDIS"  // the redis-server's address
	fleetPrefixEnv = "FLEET_PREFIX" // the Store's key prefix
	fleetLogEnv    = "FLEET_LOG"    // the file where the server logs each message
	fleetSendEnv   = "FLEET_SEND"   // how many messages each session sends
)

// fleetServerMain serves resumable sessions from Redis on a free loopback
// port, which it prints ("listening ADDR") on stdout. Each session's
// serve function sends FLEET_SEND numbered messages (name + number), one
// a millisecond, and logs "sent X" once Send of X returned nil; and it
// logs "recv X" for each message Receive returned. Every line is one
// write(2) to a file opened O_APPEND: once written it survives SIGKILL.
//
// Commands on stdin: "pause" takes the receive lock (between one Receive
// and the next, never inside one), says "paused" and holds it, so that
// the test can SIGKILL the process with no Receive in flight: a message
// whose Receive returned but whose line was not yet written would be
// lost by the application, not by the session (the Store recorded it as
// received before Receive returned, as it must). "quit" shuts down.
func fleetServerMain() int {
	name := os.Getenv(fleetEnv)
	var sends int
	if _, err := fmt.Sscan(os.Getenv(fleetSendEnv), &sends); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", fleetSendEnv, err)
		return 2
	}
	logf, err := os.OpenFile(os.Getenv(fleetLogEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 2
	}
	var logMu sync.Mutex
	logLine := func(what string, data []byte) {
		logMu.Lock()
		defer logMu.Unlock()
		if _, err := logf.Write([]byte(what + " " + string(data) + "\n")); err != nil {
			fmt.Fprintln(os.Stderr, "fleet: log:", err)
			os.Exit(3)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv(fleetRedisEnv)})
	store := redisstore.New(rdb, redisstore.Options{Prefix: os.Getenv(fleetPrefixEnv)})

	var recvMu sync.Mutex // held from one Receive's return to its line written
	srv := session.NewServer(session.Options{Store: store, ResumeTimeout: time.Minute,
		PingInterval: 500 * time.Millisecond}, func(s *session.Session) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var sender sync.WaitGroup
		sender.Add(1)
		go func() {
			defer sender.Done()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for i := 1; i <= sends; i++ {
				m := fmt.Appendf(nil, "%s%06d", name, i)
				if s.Send(ctx, resocket.MessageText, m) != nil {
					return
				}
				logLine("sent", m)
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
		}()
		for {
			recvMu.Lock()
			_, data, err := s.Receive(ctx)
			if err == nil {
				logLine("recv", data)
			}
			recvMu.Unlock()
			if err != nil {
				break
			}
		}
		cancel()
		sender.Wait()
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 2
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "pause":
			recvMu.Lock()
			fmt.Println("paused")
		case "quit":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = srv.Shutdown(ctx)
			_ = hs.Shutdown(ctx)
			cancel()
			return 0
		}
	}
	return 0 // stdin closed: the test has gone
}

// fleetServer is one server process of the fleet, seen from the test.
type fleetServer struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // its stdout (it prints two lines at most)
	done  chan struct{} // closed once it has exited
	addr  string
	log   string
}

func startFleetServer(t *testing.T, name, prefix string, sends int) *fleetServer {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	f := &fleetServer{name: name, lines: make(chan string, 16), done: make(chan struct{}),
		log: t.TempDir() + "/" + name + ".log"}
	f.cmd = exec.Command(exe, "-test.run=^$") //nolint:gosec // this test binary
	f.cmd.Env = append(os.Environ(), fleetEnv+"="+name, fleetRedisEnv+"="+srv.addr,
		fleetPrefixEnv+"="+prefix, fleetLogEnv+"="+f.log, fmt.Sprintf("%s=%d", fleetSendEnv, sends))
	f.cmd.Stderr = os.Stderr
	f.stdin, err = f.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := f.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, f.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
		_ = f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
		f.wait(t)
	})
	line := testkit.Receive(t, f.lines, 30*time.Second, name+" listening")
	addr, ok := strings.CutPrefix(line, "listening ")
	require.True(t, ok, "%s said %q", name, line)
	f.addr = addr
	return f
}

// say writes a command to the server and waits for the line it expects.
func (f *fleetServer) say(t *testing.T, cmd, want string) {
	t.Helper()
	_, err := io.WriteString(f.stdin, cmd+"\n")
	require.NoError(t, err)
	if want != "" {
		require.Equal(t, want, testkit.Receive(t, f.lines, 10*time.Second, f.name+" "+cmd))
	}
}

// wait waits, bounded, for the process to end.
func (f *fleetServer) wait(t *testing.T) {
	t.Helper()
	testkit.WaitClosed(t, f.done, 10*time.Second, f.name+" exiting")
}

// logged returns the messages the server logged with the verb what, in
// order.
func (f *fleetServer) logged(t *testing.T, what string) []string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	require.NoError(t, err)
	var out []string
	for line := range strings.Lines(string(b)) {
		if m, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), what+" "); ok {
			out = append(out, m)
		}
	}
	return out
}

// countLines counts the lines of the file at path that start with
// prefix; 0 while it does not exist yet.
func countLines(path, prefix string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%06d", prefix, i))
	}
	return out
}

// TestFleetSurvivesSIGKILL is the proof for a fleet: two server
// processes share Redis; the client streams numbered messages both ways
// with A, A is killed with SIGKILL mid-stream, and the client resumes on
// B (Config.URLs), which claims the session from Redis. Nothing that
// Send or Receive confirmed is lost or repeated, in either direction.
func TestFleetSurvivesSIGKILL(t *testing.T) {
	const (
		clientSends = 3000 // one a millisecond: the kill comes at about 1000
		killAfter   = 1000 // messages A has received
		aSends      = 100000
		bSends      = 1000
	)
	prefix := prefix(t)
	a := startFleetServer(t, "A", prefix, aSends)
	b := startFleetServer(t, "B", prefix, bSends)

	cfg := resocket.Config{
		Resume:       true,
		URLs:         []string{"ws://" + b.addr},
		Backoff:      func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) },
		PingInterval: 200 * time.Millisecond,
		PongTimeout:  300 * time.Millisecond,
		CloseTimeout: 2 * time.Second,
	}
	c, err := resocket.New("ws://"+a.addr, cfg)
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	first := testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Second)
	require.False(t, first.Resumed)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 1; i <= clientSends; i++ {
			if err := c.SendText(ctx, fmt.Sprintf("c%06d", i)); err != nil {
				sent <- fmt.Errorf("client Send %d: %w", i, err)
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				sent <- ctx.Err()
				return
			}
		}
		sent <- nil
	}()

	require.Eventually(t, func() bool { return countLines(a.log, "recv ") >= killAfter },
		30*time.Second, 5*time.Millisecond, "A received %d messages", killAfter)
	a.say(t, "pause", "paused")
	before := rec.Len()
	require.NoError(t, a.cmd.Process.Kill()) // SIGKILL
	killed := time.Now()
	a.wait(t)
	_, resumed := rec.Await(t, before, 30*time.Second, func(ev resocket.Event) bool {
		c, ok := ev.(resocket.Connected)
		return ok && c.Resumed
	})
	recovery := resumed.At.Sub(killed)
	t.Logf("recovery: %v from SIGKILL of A to Connected{Resumed: true} on B", recovery.Round(time.Millisecond))

	require.NoError(t, testkit.Receive(t, sent, 60*time.Second, "the client's sends"))
	require.NoError(t, c.Flush(ctx), "client Flush")
	// Every client message is with the application of A or B now: Flush
	// returned once B acknowledged the last, which it does only once the
	// Store has it as received.
	last := fmt.Sprintf("%s%06d", "B", bSends)
	rec.Collect(t, 60*time.Second, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == last
	})
	_, closed, err := testkit.CloseAndDrain(t, c, rec, resocket.StatusNormalClosure, "", 10*time.Second)
	require.NoError(t, err)
	assert.Empty(t, closed.Unsent, "everything the client sent was acknowledged")
	b.say(t, "quit", "")
	b.wait(t)

	// Client to server: A's receipts then B's are every message, once,
	// in order.
	recvA, recvB := a.logged(t, "recv"), b.logged(t, "recv")
	assert.Equal(t, numbered("c", 1, clientSends), append(append([]string(nil), recvA...), recvB...),
		"client to server: A received %d, B %d", len(recvA), len(recvB))
	assert.GreaterOrEqual(t, len(recvA), killAfter)

	// Server to client: A's messages (those it confirmed, and possibly a
	// few more whose Send returned as A died, before logging) then B's,
	// each once, in order.
	var got []string
	for _, m := range testkit.Only[resocket.Message](rec.Events()) {
		got = append(got, string(m.Data))
	}
	sentA, sentB := a.logged(t, "sent"), b.logged(t, "sent")
	require.NotEmpty(t, sentA)
	require.Equal(t, numbered("A", 1, len(sentA)), sentA)
	require.Equal(t, numbered("B", 1, bSends), sentB)
	fromA := 0
	for fromA < len(got) && strings.HasPrefix(got[fromA], "A") {
		fromA++
	}
	assert.Equal(t, numbered("A", 1, fromA), got[:fromA], "A's messages: once each, in order")
	assert.GreaterOrEqual(t, fromA, len(sentA), "every message A's Send confirmed reached the client")
	assert.Equal(t, numbered("B", 1, bSends), got[fromA:], "then B's: once each, in order")
	t.Logf("client to server: %d by A, %d by B; server to client: %d from A (%d logged as sent), %d from B",
		len(recvA), len(recvB), fromA, len(sentA), len(got)-fromA)
	for _, d := range testkit.Only[resocket.SessionLost](rec.Events()) {
		t.Errorf("session lost: %+v", d)
	}
}
