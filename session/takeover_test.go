package session_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// Two Servers share a Store; the client leaves A for B while A's session
// has no connection and its serve function only waits in Receive. A
// learns of the move at the latest when its ResumeTimeout runs out, and
// its Receive then says ErrMoved, not ErrClosed: the session goes on at
// B, and an application must not take it for ended.
func TestIdleServerLearnsOfTakeover(t *testing.T) {
	store := session.NewMemoryStore()
	type ended struct {
		name string
		err  error
	}
	ends := make(chan ended, 4)
	serve := func(name string) func(*session.Session) {
		return func(s *session.Session) {
			for {
				if _, _, err := s.Receive(context.Background()); err != nil {
					ends <- ended{name, err}
					return
				}
			}
		}
	}
	opts := session.Options{Store: store, ResumeTimeout: 300 * time.Millisecond}
	a := session.NewServer(opts, serve("A"))
	b := session.NewServer(opts, serve("B"))
	httpA, httpB := httptest.NewServer(a), httptest.NewServer(b)
	proxyA := newCutter(t, httpA.Listener.Addr().String())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, a.Shutdown(ctx))
		assert.NoError(t, b.Shutdown(ctx))
		httpA.Close()
		httpB.Close()
	})

	cfg := resumeConfig()
	cfg.URLs = []string{"ws" + httpB.URL[len("http"):]}
	c, err := resocket.New("ws://"+proxyA.addr(), cfg)
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.SendText(ctx, "hello"))
	require.NoError(t, c.Flush(ctx))

	proxyA.close() // the connection breaks, and A can no longer be reached
	connected := testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Second)
	require.True(t, connected.Resumed, rec.History())

	got := testkit.Receive(t, ends, 10*time.Second, "A's serve ending")
	assert.Equal(t, "A", got.name)
	assert.ErrorIs(t, got.err, session.ErrMoved, "A's session went on at B")

	// At B the session lives on, past A's ResumeTimeout.
	require.NoError(t, c.SendText(ctx, "still here"))
	require.NoError(t, c.Flush(ctx))
	select {
	case e := <-ends:
		t.Fatalf("%s's serve ended: %v", e.name, e.err)
	default:
	}
}
