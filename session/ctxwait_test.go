package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// A Send or Receive that waits behind another one still honours its own
// ctx. Each used to wait for the other on a mutex that no ctx could
// interrupt: a Send with a deadline of 50 ms stayed blocked for as long
// as the first Send waited for room, which a client that stopped reading
// makes forever.
func TestWaitingBehindAnotherHonoursCtx(t *testing.T) {
	const tries = 5 // a try may come before the waiting call; later ones come behind it
	t.Run("Send", func(t *testing.T) {
		behind := waitBehind(t, session.Options{SendBuffer: 1}, func(s *session.Session) {
			require.NoError(t, s.Send(context.Background(), resocket.MessageText, []byte("fills the window")))
		}, func(s *session.Session, ctx context.Context) error {
			return s.Send(ctx, resocket.MessageText, []byte("waits for room")) // nobody acknowledges
		}, func(s *session.Session, ctx context.Context) error {
			return s.Send(ctx, resocket.MessageText, []byte("behind"))
		}, tries)
		for i, err := range behind {
			assert.ErrorIs(t, err, context.DeadlineExceeded, "Send %d behind the waiting one", i+1)
		}
	})
	t.Run("Receive", func(t *testing.T) {
		behind := waitBehind(t, session.Options{}, func(*session.Session) {}, func(s *session.Session, ctx context.Context) error {
			_, _, err := s.Receive(ctx) // the client sends nothing
			return err
		}, func(s *session.Session, ctx context.Context) error {
			_, _, err := s.Receive(ctx)
			return err
		}, tries)
		for i, err := range behind {
			assert.ErrorIs(t, err, context.DeadlineExceeded, "Receive %d behind the waiting one", i+1)
		}
	})
}

// waitBehind starts a session for a raw client that reads nothing and
// sends nothing, runs setup on it, then first until first's ctx ends (it
// waits), and meanwhile tries calls of then, one after the other, each
// with a ctx of 50 ms; it returns their errors, each within waitFor or
// the test fails. A try either waits behind first or, having come
// before it, waits as first does: either way its ctx ends it.
func waitBehind(t *testing.T, opts session.Options, setup func(*session.Session), first, then func(*session.Session, context.Context) error, tries int) []error {
	t.Helper()
	started := make(chan *session.Session, 1)
	release := make(chan struct{})
	ts := newTestServerServe(t, opts, func(s *session.Session) {
		started <- s
		<-release
	})
	t.Cleanup(func() { close(release) })
	ws, _ := rawDial(t, ts, resumeHeader("", "", ""))
	require.NotNil(t, ws)
	s := testkit.Receive(t, started, waitFor, "the session starts")
	setup(s)

	firstCtx, cancelFirst := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() { firstDone <- first(s, firstCtx) }()
	var errs []error
	for range tries {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			done <- then(s, ctx)
		}()
		errs = append(errs, testkit.Receive(t, done, waitFor, "the call behind the waiting one"))
	}
	cancelFirst()
	assert.ErrorIs(t, testkit.Receive(t, firstDone, waitFor, "the waiting call"), context.Canceled)
	return errs
}
