package resocket_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// waitFor bounds every wait for something that should happen promptly.
const waitFor = testkit.WaitFor

// fastConfig reconnects at once and bounds Close by one second; the
// keepalive keeps its (long) default so that it never interferes.
func fastConfig() resocket.Config {
	return resocket.Config{
		Backoff:      func() backoff.BackOff { return &backoff.ZeroBackOff{} },
		CloseTimeout: time.Second,
	}
}

// constantBackoff returns a Config.Backoff that always waits d.
func constantBackoff(d time.Duration) func() backoff.BackOff {
	return func() backoff.BackOff { return backoff.NewConstantBackOff(d) }
}

// newClient starts a client that is terminated when the test ends, and a
// recorder that reads its events only while the test waits for one: the
// test is the client's reader, as slow as it chooses to be.
func newClient(t testing.TB, url string, cfg resocket.Config) (*resocket.Client, *testkit.Recorder) {
	t.Helper()
	c := testkit.NewClient(t, url, cfg)
	return c, testkit.Read(t, c)
}

// connect starts a client against srv and waits until it is connected and
// the server holds its connection.
func connect(t testing.TB, srv *mocks.Server, cfg resocket.Config) (*resocket.Client, *testkit.Recorder, resocket.Connected, *mocks.Conn) {
	t.Helper()
	c, events := newClient(t, srv.URL(), cfg)
	conn := srv.NextConn(t, waitFor)
	ev := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	return c, events, ev, conn
}

// closeClient calls Close, failing the test unless it returns within
// CloseTimeout and a margin for a loaded machine.
func closeClient(t testing.TB, c *resocket.Client, code resocket.StatusCode, reason string) error {
	t.Helper()
	var err error
	testkit.ReturnsWithin(t, waitFor, "Close", func() { err = c.Close(code, reason) })
	return err
}

// terminate calls Terminate, failing the test unless it returns within
// waitFor.
func terminate(t testing.TB, c *resocket.Client) {
	t.Helper()
	testkit.ReturnsWithin(t, waitFor, "Terminate", c.Terminate)
}

// waitConnected is WaitConnected bounded by waitFor.
func waitConnected(t testing.TB, c *resocket.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, c.WaitConnected(ctx))
}

// clientRef hands a client to its own callbacks. New may already run them
// on the client's goroutine before it returns, so a plain variable set
// after New would race; a channel orders the two.
type clientRef struct {
	ch   chan *resocket.Client
	once sync.Once
	c    *resocket.Client
}

func newClientRef() *clientRef { return &clientRef{ch: make(chan *resocket.Client, 1)} }

func (r *clientRef) set(c *resocket.Client) { r.ch <- c }

// get waits (bounded) for set; it returns nil if set never came.
func (r *clientRef) get() *resocket.Client {
	r.once.Do(func() {
		timer := time.NewTimer(waitFor)
		defer timer.Stop()
		select {
		case r.c = <-r.ch:
		case <-timer.C:
		}
	})
	return r.c
}

// receiveText receives one message on the server side and returns it as a
// string, failing the test if none comes.
func receiveText(t testing.TB, conn *mocks.Conn) string {
	t.Helper()
	_, data, err := conn.Receive(waitFor)
	require.NoError(t, err)
	return string(data)
}

// assertConnecting checks that ev is a Connecting for attempt number attempt.
func assertConnecting(t testing.TB, ev resocket.Event, attempt int) {
	t.Helper()
	c, ok := ev.(resocket.Connecting)
	if assert.True(t, ok, "want Connecting, got %s", testkit.Describe(ev)) {
		assert.Equal(t, attempt, c.Attempt)
	}
}
