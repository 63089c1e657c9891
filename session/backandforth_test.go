package session_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// front serves a Server, or refuses every handshake with 503 while down:
// the client's attempt fails and it moves to its next URL.
type front struct {
	srv  *session.Server
	down atomic.Bool
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	f.srv.ServeHTTP(w, r)
}

// fleetNode is a Server of a fleet in this process, behind a front and a
// proxy that can cut its connections.
type fleetNode struct {
	front *front
	http  *httptest.Server
	proxy *cutter
}

// A client goes from A to B and back to A, where the session A ran
// before is stale: B has numbered and received messages since. A must not
// resume its stale copy; it takes the session from the Store again, and
// every message goes through once, in order, both ways.
func TestBackToAServerWithAStaleSession(t *testing.T) {
	store := session.NewMemoryStore()
	var mu sync.Mutex
	var received []string
	started := make(chan *session.Session, 8)
	serve := func(s *session.Session) {
		started <- s
		for {
			_, data, err := s.Receive(context.Background())
			if err != nil {
				return
			}
			mu.Lock()
			received = append(received, string(data))
			mu.Unlock()
		}
	}
	opts := session.Options{Store: store, ResumeTimeout: time.Minute}
	var nodes []*fleetNode
	for range 2 {
		n := &fleetNode{front: &front{srv: session.NewServer(opts, serve)}}
		n.http = httptest.NewServer(n.front)
		n.proxy = newCutter(t, n.http.Listener.Addr().String())
		nodes = append(nodes, n)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			assert.NoError(t, n.front.srv.Shutdown(ctx))
			n.proxy.close()
			n.http.Close()
		})
	}
	a, b := nodes[0], nodes[1]

	cfg := resumeConfig()
	cfg.URLs = []string{"ws://" + b.proxy.addr()}
	c, err := resocket.New("ws://"+a.proxy.addr(), cfg)
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var want, wantClient []string
	next, nextClient := 0, 0
	// exchange sends k messages each way through sess and waits until the
	// other side has them all.
	exchange := func(sess *session.Session, k int) {
		t.Helper()
		for range k {
			next++
			m := fmt.Sprintf("s%04d", next)
			require.NoError(t, sess.Send(ctx, resocket.MessageText, []byte(m)))
			want = append(want, m)
			nextClient++
			mc := fmt.Sprintf("c%04d", nextClient)
			require.NoError(t, c.SendText(ctx, mc))
			wantClient = append(wantClient, mc)
		}
		require.NoError(t, c.Flush(ctx))
		require.NoError(t, sess.Flush(ctx))
	}
	// move makes the client leave from for its other URL.
	move := func(from *fleetNode) *session.Session {
		t.Helper()
		before := rec.Len()
		from.front.down.Store(true)
		from.proxy.cut()
		_, ev := rec.Await(t, before, 10*time.Second, func(ev resocket.Event) bool {
			_, ok := ev.(resocket.Connected)
			return ok
		})
		require.True(t, ev.Event.(resocket.Connected).Resumed, rec.History())
		from.front.down.Store(false)
		return testkit.Receive(t, started, 10*time.Second, "the session's serve on the next server")
	}

	testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Second)
	onA := testkit.Receive(t, started, 10*time.Second, "the session on A")
	exchange(onA, 5)
	onB := move(a)
	exchange(onB, 5)
	// A's copy still runs: nothing told A, which had no connection.
	select {
	case <-onA.Done():
		t.Fatal("A's copy ended already; the test needs it stale")
	default:
	}
	onA2 := move(b)
	require.NotSame(t, onA, onA2, "A runs the session anew, from the Store")
	testkit.WaitClosed(t, onA.Done(), 10*time.Second, "A's stale copy ending")
	exchange(onA2, 5)

	var got []string
	for _, m := range testkit.Only[resocket.Message](rec.Events()) {
		got = append(got, string(m.Data))
	}
	assert.Equal(t, want, got, "server to client: once each, in order")
	mu.Lock()
	assert.Equal(t, wantClient, received, "client to server: once each, in order")
	mu.Unlock()
	assert.Empty(t, testkit.Only[resocket.SessionLost](rec.Events()))
}
