package session_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// gatedStore holds SetReceived of one message number until released, so
// that a test can close the client while Receive is recording it, and
// holds Delete until that SetReceived is done, so that the session's end
// does not make it fail.
type gatedStore struct {
	session.Store
	seq      uint64
	entered  chan struct{}
	release  chan struct{}
	recorded chan struct{}
	once     sync.Once
}

func (g *gatedStore) SetReceived(ctx context.Context, id string, owner, n uint64) error {
	if n != g.seq {
		return g.Store.SetReceived(ctx, id, owner, n)
	}
	g.once.Do(func() { close(g.entered) })
	<-g.release
	defer close(g.recorded)
	return g.Store.SetReceived(ctx, id, owner, n)
}

func (g *gatedStore) Delete(ctx context.Context, id string, owner uint64) error {
	select {
	case <-g.recorded:
	case <-ctx.Done():
	}
	return g.Store.Delete(ctx, id, owner)
}

// The client closes while the application is in Receive and more
// messages wait in the server's inbox. Closed.Unsent must hold exactly the
// messages the application never gets: the one Receive is returning is
// acknowledged before the close, and those still waiting are not
// returned after it. The server once acknowledged only what Receive had
// finished returning, and kept returning the inbox after the close: the
// message in between was both received and handed back (found by
// faults.TestResumeSlowCloseClientCloses).
func TestClientCloseHandsBackExactly(t *testing.T) {
	store := &gatedStore{Store: session.NewMemoryStore(), seq: 3,
		entered: make(chan struct{}), release: make(chan struct{}), recorded: make(chan struct{})}
	var mu sync.Mutex
	var got [][]byte
	served := make(chan struct{})
	srv := session.NewServer(session.Options{Store: store}, func(s *session.Session) {
		defer close(served)
		for {
			_, data, err := s.Receive(context.Background())
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, data)
			mu.Unlock()
		}
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	}()
	defer func() {
		select {
		case <-store.release:
		default:
			close(store.release)
		}
	}()

	c, err := resocket.New("ws"+strings.TrimPrefix(hs.URL, "http"), resumeConfig())
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	const n = 10
	accepted := make([]int, n)
	for i := range n {
		accepted[i] = i + 1
		require.NoError(t, c.SendText(t.Context(), testkit.Payload(i+1)))
	}
	testkit.WaitClosed(t, store.entered, 5*time.Second, "Receive records message 3")
	require.NoError(t, c.Close(resocket.StatusNormalClosure, "bye"))
	closed := rec.Closed(t, 5*time.Second)
	require.NoError(t, closed.Err)
	close(store.release)
	testkit.WaitClosed(t, served, 5*time.Second, "the session ends")

	mu.Lock()
	defer mu.Unlock()
	testkit.ExactlyOnceInOrder(t, testkit.Delivery{Accepted: accepted, Received: testkit.Seqs(t, got),
		Unsent: testkit.MessageSeqs(t, closed.Unsent)})
}
