package resocket_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// OnEvent callbacks run on the client's goroutine, where require's
// FailNow would stop that goroutine instead of the test: they only record
// what they see and what their calls return, and the test goroutine
// asserts on it.

func TestOnEventReceivesEverythingInOrder(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	rec := testkit.NewRecorder()
	ref := newClientRef()
	closeErr := make(chan error, 1)
	cfg := fastConfig()
	cfg.OnEvent = func(ev resocket.Event) {
		rec.OnEvent(ev)
		if m, ok := ev.(resocket.Message); ok && string(m.Data) == "ping" {
			// Callbacks may call Close on their own client.
			closeErr <- ref.get().Close(resocket.StatusNormalClosure, "done")
		}
	}
	c, _ := newClient(t, srv.URL(), cfg)
	ref.set(c)
	waitConnected(t, c)
	require.NoError(t, c.SendText(context.Background(), "ping"))

	evs, closed := rec.Drain(t, waitFor)
	assert.Equal(t, []string{"Connecting", "Connected", "Message", "Disconnected", "Closed"}, testkit.Types(evs))
	assert.NoError(t, closed.Err)
	assert.NoError(t, testkit.Receive(t, closeErr, waitFor, "Close from OnEvent"))
	testkit.WaitClosed(t, c.Done(), waitFor, "Done")
	testkit.WaitClosed(t, c.Events(), waitFor, "Events: it carries nothing and closes at the end")
	assert.NoError(t, c.Err())
}

func TestOnEventEchoFromTheCallback(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	const rounds = 50
	ref := newClientRef()
	var (
		mu       sync.Mutex
		sendErrs []error
		n        int // only the client's goroutine runs callbacks
	)
	done := make(chan struct{})
	send := func() {
		if err := ref.get().SendText(context.Background(), "x"); err != nil {
			mu.Lock()
			sendErrs = append(sendErrs, err)
			mu.Unlock()
		}
	}
	cfg := fastConfig()
	cfg.OnEvent = func(ev resocket.Event) {
		switch ev.(type) {
		case resocket.Connected:
			send()
		case resocket.Message:
			n++
			if n == rounds {
				close(done)
				return
			}
			send()
		}
	}
	c, _ := newClient(t, srv.URL(), cfg)
	ref.set(c)
	testkit.WaitClosed(t, done, waitFor, "the echo loop run from OnEvent")
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, sendErrs, "Send from OnEvent")
}

func TestOnEventSlowCallbackIsNotADeadLink(t *testing.T) {
	srv := mocks.NewServer(t)
	const total = 20
	var count int // only the client's goroutine runs callbacks
	done := make(chan struct{})
	rec := testkit.NewRecorder()
	cfg := fastConfig()
	// As in TestSlowConsumerLosesNothing: a PongTimeout no pong on a
	// loaded machine exceeds, and a callback slower than a ping cycle and
	// its timeout (at most 600 ms).
	cfg.PingInterval = 50 * time.Millisecond
	cfg.PongTimeout = 300 * time.Millisecond
	cfg.OnEvent = func(ev resocket.Event) {
		rec.OnEvent(ev)
		if _, ok := ev.(resocket.Message); !ok {
			return
		}
		if count == 0 {
			// Slower than a whole ping cycle: the thing under test.
			<-time.After(time.Second)
		}
		count++
		if count == total {
			close(done)
		}
	}
	newClient(t, srv.URL(), cfg)
	sconn := srv.NextConn(t, waitFor)
	for range total {
		require.NoError(t, sconn.SendText("m"))
	}
	testkit.WaitClosed(t, done, waitFor, "the messages")
	assert.Empty(t, testkit.Only[resocket.Disconnected](rec.Events()),
		"the keepalive must not call a link dead while OnEvent runs")
}
