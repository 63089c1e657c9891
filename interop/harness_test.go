package interop

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/stretchr/testify/require"
)

// Bounds on every wait of the suite. They are deadlines, not delays: each
// wait ends as soon as what it waits for happens.
const (
	within      = 10 * time.Second // an event the scenario causes
	startWithin = 20 * time.Second // a server process to come up
)

// process is a server process started by a test: its whole process group
// is killed and reaped when the test ends.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     string        // its stderr (and stdout after the port line)
	exited  chan struct{} // closed once Wait has returned
	drained chan struct{} // closed once its stdout is read to the end
	err     error         // from Wait, once exited is closed
	// stopSignal, if set, is sent to the process first at the end of the
	// test, so that it stops its children and reaps them itself.
	stopSignal syscall.Signal
}

// startServer starts a peer server that prints its port as the first line
// on stdout, and returns it with that port. The test fails, naming `make
// interop-deps`, if it exits or prints no port within startWithin.
func startServer(t *testing.T, name string, argv ...string) (*process, int) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close() // the child and the reader hold their own descriptors
	r, w, err := os.Pipe()
	require.NoError(t, err)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = w
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr()
	p := &process{name: name, cmd: cmd, log: logPath, exited: make(chan struct{}), drained: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		w.Close()
		r.Close()
		t.Fatalf("start %s (%s): %v; %s", name, strings.Join(argv, " "), err, depsHint)
	}
	w.Close()
	p.reap(t)

	// The first line is the port; the rest goes to the log.
	rest, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	portLine := make(chan string, 1)
	go func() {
		defer close(p.drained)
		defer r.Close()
		defer rest.Close()
		br := bufio.NewReader(r)
		line, _ := br.ReadString('\n')
		portLine <- strings.TrimSpace(line)
		_, _ = io.Copy(rest, br)
	}()

	timer := time.NewTimer(startWithin)
	defer timer.Stop()
	select {
	case line := <-portLine:
		port, err := strconv.Atoi(line)
		if err != nil || port <= 0 {
			t.Fatalf("%s printed %q instead of its port; its log:\n%s\n%s", name, line, p.tail(), depsHint)
		}
		return p, port
	case <-p.exited:
		<-p.drained
		t.Fatalf("%s exited before listening (%v); its log:\n%s\n%s", name, p.err, p.tail(), depsHint)
	case <-timer.C:
		t.Fatalf("%s printed no port within %s; its log:\n%s", name, startWithin, p.tail())
	}
	return nil, 0
}

// startDaemon starts a process that prints nothing useful (nginx), with
// stdout and stderr in its log file. At the end of the test it gets
// stopSignal first, then SIGKILL for its whole group.
func startDaemon(t *testing.T, name, logPath string, stopSignal syscall.Signal, argv ...string) *process {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr()
	p := &process{name: name, cmd: cmd, log: logPath, exited: make(chan struct{}), drained: make(chan struct{}),
		stopSignal: stopSignal}
	close(p.drained)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v; %s", name, strings.Join(argv, " "), err, depsHint)
	}
	p.reap(t)
	return p
}

// reap waits for the process in the background, and at the end of the test
// kills its process group and waits for it, showing its log if the test
// failed.
func (p *process) reap(t *testing.T) {
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if p.stopSignal != 0 {
			_ = p.cmd.Process.Signal(p.stopSignal)
			select {
			case <-p.exited:
			case <-time.After(within / 2):
			}
		}
		p.killGroup(syscall.SIGKILL)
		select {
		case <-p.exited:
		case <-time.After(within):
			t.Errorf("%s (pid %d) still running %s after SIGKILL", p.name, p.cmd.Process.Pid, within)
		}
		<-p.drained
		if t.Failed() {
			t.Logf("log of %s:\n%s", p.name, p.tail())
		}
	})
}

// killGroup signals the process and every process it started.
func (p *process) killGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// wait waits for the process to exit, failing the test after d.
func (p *process) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("%s (pid %d) did not exit within %s", p.name, p.cmd.Process.Pid, d)
	}
}

// tail returns the end of the process's log.
func (p *process) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	const max = 8 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// dialable reports whether something accepts TCP connections on addr.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// freePort returns a port nothing listens on now, for a server that
// cannot pick its own and report it (nginx).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// client is a resocket client under test and the recorder of its events
// (testkit.Read: the test reads Events only while it waits for one), which
// explains a failure with the events seen.
type client struct {
	*resocket.Client
	t   *testing.T
	rec *testkit.Recorder
}

// quickBackoff keeps reconnects fast: the scenarios check decisions and
// delays, not the default backoff's curve.
func quickBackoff() backoff.BackOff { return backoff.NewConstantBackOff(25 * time.Millisecond) }

// parkedBackoff keeps a client waiting in its backoff until the test
// closes it: for checking a decision without a second connection.
func parkedBackoff() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }

// newClient starts a client; it is terminated when the test ends whatever
// happened before.
func newClient(t *testing.T, url string, cfg resocket.Config) *client {
	t.Helper()
	if cfg.Backoff == nil {
		cfg.Backoff = quickBackoff
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 2 * time.Second
	}
	rc := testkit.NewClient(t, url, cfg)
	return &client{Client: rc, t: t, rec: testkit.Read(t, rc)}
}

// waitFor returns the first event of type T, passing over others; it fails
// the test if the client ends or nothing of type T comes within d.
func waitFor[T resocket.Event](c *client, d time.Duration) T {
	c.t.Helper()
	return testkit.WaitEvent[T](c.t, c.rec, d)
}

// nextSignificant returns the next event other than Connecting, which says
// nothing about how a connection or an attempt ended.
func (c *client) nextSignificant(d time.Duration) resocket.Event {
	c.t.Helper()
	evs := c.rec.Collect(c.t, d, func(ev resocket.Event) bool { return !testkit.Is[resocket.Connecting](ev) })
	return evs[len(evs)-1]
}

// ending is how a client ended at the test's request.
type ending struct {
	err    error           // from Close
	took   time.Duration   // how long Close took, with the events to their end
	closed resocket.Closed // the last event
	events []resocket.Event
}

// closeAndDrain calls Close while reading events, so that Close never waits
// on a full channel, and returns how the client ended.
func (c *client) closeAndDrain(code resocket.StatusCode, reason string) ending {
	c.t.Helper()
	start := time.Now()
	events, closed, err := testkit.CloseAndDrain(c.t, c.Client, c.rec, code, reason, within)
	return ending{err: err, took: time.Since(start), closed: closed, events: events}
}

// drain reads events until the channel closes and returns the Closed
// event, failing the test unless the client has ended within `within`
// with one Closed, its last event.
func (c *client) drain() resocket.Closed {
	c.t.Helper()
	_, closed := c.rec.Drain(c.t, within)
	return closed
}

var ids atomic.Uint64

// uniqueID names the record a server keeps of this test's connections.
func uniqueID(t *testing.T) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s.%d", name, ids.Add(1))
}

// transportError names the kind of transport error err is, for the
// report of what a client saw.
func transportError(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset (RST)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), isUnexpectedEOF(err):
		return "EOF (FIN)"
	case errors.Is(err, resocket.ErrPongTimeout):
		return "pong timeout"
	}
	return err.Error()
}

// isUnexpectedEOF reports gorilla's reading of a FIN without a close
// frame: a *websocket.CloseError 1006 that does not unwrap to io.EOF.
func isUnexpectedEOF(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure
}

// serverProcAttr puts a server in a process group of its own, so that the
// test can kill it with everything it started, and has the kernel kill it
// should the test binary die first (a go test timeout, say) instead of
// leaving it listening.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
