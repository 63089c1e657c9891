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

// eventLog records what OnEvent receives, from the client's goroutine.
type eventLog struct {
	mu     sync.Mutex
	events []resocket.Event
	closed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{closed: make(chan struct{})} }

func (l *eventLog) add(ev resocket.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	if _, ok := ev.(resocket.Closed); ok {
		close(l.closed)
	}
}

func (l *eventLog) snapshot() []resocket.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]resocket.Event(nil), l.events...)
}

func TestOnEventReceivesEverythingInOrder(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	log := newEventLog()
	ref := newClientRef()
	cfg := fastConfig()
	cfg.OnEvent = func(ev resocket.Event) {
		log.add(ev)
		if m, ok := ev.(resocket.Message); ok && string(m.Data) == "ping" {
			// Callbacks may call Close on their own client.
			require.NoError(t, ref.get().Close(resocket.StatusNormalClosure, "done"))
		}
	}
	c, _ := newClient(t, srv.URL(), cfg)
	ref.set(c)
	require.NoError(t, c.WaitConnected(context.Background()))
	require.NoError(t, c.SendText(context.Background(), "ping"))

	select {
	case <-log.closed:
	case <-time.After(waitFor):
		t.Fatalf("no Closed; got %s", testkit.DescribeAll(log.snapshot()))
	}
	<-c.Done()
	assert.Equal(t, []string{"Connecting", "Connected", "Message", "Disconnected", "Closed"}, testkit.Types(log.snapshot()))
	_, open := <-c.Events()
	assert.False(t, open, "the Events channel carries nothing and closes at the end")
	assert.NoError(t, c.Err())
}

func TestOnEventEchoFromTheCallback(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	const rounds = 50
	got := make(chan int, 1)
	ref := newClientRef()
	n := 0
	cfg := fastConfig()
	cfg.OnEvent = func(ev resocket.Event) {
		switch ev.(type) {
		case resocket.Connected:
			require.NoError(t, ref.get().SendText(context.Background(), "x"))
		case resocket.Message:
			n++ // only the client's goroutine runs callbacks
			if n == rounds {
				got <- n
				return
			}
			require.NoError(t, ref.get().SendText(context.Background(), "x"))
		}
	}
	c, _ := newClient(t, srv.URL(), cfg)
	ref.set(c)
	select {
	case k := <-got:
		assert.Equal(t, rounds, k)
	case <-time.After(waitFor):
		t.Fatal("the echo loop run from OnEvent stalled")
	}
}

func TestOnEventSlowCallbackIsNotADeadLink(t *testing.T) {
	srv := mocks.NewServer(t)
	var (
		mu    sync.Mutex
		disc  []resocket.Disconnected
		count int
	)
	done := make(chan struct{})
	cfg := fastConfig()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.PongTimeout = 100 * time.Millisecond
	cfg.OnEvent = func(ev resocket.Event) {
		switch ev := ev.(type) {
		case resocket.Message:
			if count == 0 {
				// Slower than a whole ping cycle: the thing under test.
				<-time.After(400 * time.Millisecond)
			}
			count++
			if count == 20 {
				close(done)
			}
		case resocket.Disconnected:
			mu.Lock()
			disc = append(disc, ev)
			mu.Unlock()
		}
	}
	newClient(t, srv.URL(), cfg)
	sconn := srv.NextConn(t, waitFor)
	for i := 0; i < 20; i++ {
		require.NoError(t, sconn.SendText("m"))
	}
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("messages stopped arriving")
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, disc, "the keepalive must not call a link dead while OnEvent runs")
}
