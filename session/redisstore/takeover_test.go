package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
	"github.com/resocket/resocket/session/redisstore"
)

// node is one session.Server of a fleet in this process, and what its
// serve function did.
type node struct {
	name string
	srv  *session.Server
	http *httptest.Server

	mu       sync.Mutex
	sent     int   // messages whose Send returned nil
	sendErr  error // why sending stopped
	received []string
	recvErr  error
	ended    chan struct{} // closed when serve has returned
}

// newNode starts a Server on store; its serve function sends sends
// numbered messages (name + number), one a millisecond, and receives
// until the session ends.
func newNode(t *testing.T, name string, store session.Store, sends int) *node {
	n := &node{name: name, ended: make(chan struct{})}
	n.srv = session.NewServer(session.Options{Store: store, ResumeTimeout: time.Minute}, func(s *session.Session) {
		defer close(n.ended)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for i := 1; i <= sends; i++ {
				if err := s.Send(context.Background(), resocket.MessageText, fmt.Appendf(nil, "%s%06d", name, i)); err != nil {
					n.mu.Lock()
					n.sendErr = err
					n.mu.Unlock()
					return
				}
				n.mu.Lock()
				n.sent = i
				n.mu.Unlock()
				select {
				case <-tick.C:
				case <-s.Done():
				}
			}
		}()
		for {
			_, data, err := s.Receive(context.Background())
			n.mu.Lock()
			if err != nil {
				n.recvErr = err
				n.mu.Unlock()
				break
			}
			n.received = append(n.received, string(data))
			n.mu.Unlock()
		}
		wg.Wait()
	})
	n.http = httptest.NewServer(n.srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, n.srv.Shutdown(ctx))
		n.http.Close()
	})
	return n
}

func (n *node) url() string { return "ws" + n.http.URL[len("http"):] }

// A client leaves server A, which is alive and still sending into the
// session, for server B: B's Claim in Redis moves the session, and from
// then on every write of A fails with ErrMoved. A's Send, which returned
// nil for exactly the messages Redis kept, is the truth: the client gets
// those, through B, and none other.
func TestTakeoverFromALiveServer(t *testing.T) {
	const clientSends = 600
	store := redisstore.New(client(t), redisstore.Options{Prefix: prefix(t)})
	a := newNode(t, "A", store, 100000)
	b := newNode(t, "B", store, 0)

	// The client's connections, so that the test can break them.
	var connMu sync.Mutex
	var conns []net.Conn
	dialer := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			connMu.Lock()
			conns = append(conns, c)
			connMu.Unlock()
		}
		return c, err
	}}
	c, err := resocket.New(a.url(), resocket.Config{
		Resume:  true,
		URLs:    []string{b.url()},
		Dialer:  dialer,
		Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) },
	})
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 1; i <= clientSends; i++ {
			if err := c.SendText(ctx, fmt.Sprintf("c%06d", i)); err != nil {
				sent <- err
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		sent <- nil
	}()
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.received) >= clientSends/3
	}, 30*time.Second, time.Millisecond)

	// A stops taking connections, and the client's breaks: its next
	// attempt at A is refused, the one after goes to B. A's session
	// lives on meanwhile, without a connection, and keeps sending.
	a.http.Listener.Close()
	before := rec.Len()
	connMu.Lock()
	for _, conn := range conns {
		_ = conn.Close()
	}
	connMu.Unlock()
	rec.Await(t, before, 10*time.Second, func(ev resocket.Event) bool {
		c, ok := ev.(resocket.Connected)
		return ok && c.Resumed
	})
	testkit.WaitClosed(t, a.ended, 10*time.Second, "A's serve, once B has claimed the session")
	a.mu.Lock()
	aSent, aSendErr, aRecvErr := a.sent, a.sendErr, a.recvErr
	a.mu.Unlock()
	require.ErrorIs(t, aSendErr, session.ErrMoved, "A's Send after the claim")
	assert.ErrorIs(t, aRecvErr, session.ErrMoved, "A's Receive after the claim")
	require.Positive(t, aSent)

	require.NoError(t, testkit.Receive(t, sent, 60*time.Second, "the client's sends"))
	require.NoError(t, c.Flush(ctx))
	last := fmt.Sprintf("A%06d", aSent)
	rec.Collect(t, 30*time.Second, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == last
	})
	_, closed, err := testkit.CloseAndDrain(t, c, rec, resocket.StatusNormalClosure, "", 10*time.Second)
	require.NoError(t, err)
	assert.Empty(t, closed.Unsent)

	var got []string
	for _, m := range testkit.Only[resocket.Message](rec.Events()) {
		got = append(got, string(m.Data))
	}
	assert.Equal(t, numbered("A", 1, aSent), got, "exactly the messages A's Send confirmed, once, in order")
	a.mu.Lock()
	b.mu.Lock()
	all := append(append([]string(nil), a.received...), b.received...)
	t.Logf("A sent %d, received %d; B received %d", aSent, len(a.received), len(b.received))
	b.mu.Unlock()
	a.mu.Unlock()
	assert.Equal(t, numbered("c", 1, clientSends), all, "client to server: A's then B's, once, in order")
}
