package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// A client that resumes late in its ResumeTimeout keeps its session in
// the Store: the connection renews the Store's TTL when it starts, not a
// third of ResumeTimeout later, by when the TTL set at the disconnect
// has run out.
func TestLateResumeKeepsTheSessionStored(t *testing.T) {
	const resumeTimeout = time.Second
	ts := newTestServer(t, session.Options{ResumeTimeout: resumeTimeout})
	cfg := resumeConfig()
	cfg.Backoff = func() backoff.BackOff { return backoff.NewConstantBackOff(resumeTimeout * 7 / 10) }
	c, err := resocket.New(ts.URL(), cfg)
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.SendText(ctx, "before"))
	require.NoError(t, c.Flush(ctx))
	sess := testkit.Receive(t, ts.peer.started, time.Second, "the session")

	ts.proxy.cut() // the server touches the Store as it detaches
	connected := testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Second)
	require.True(t, connected.Resumed, rec.History())

	// For a whole ResumeTimeout after the resume, the Store has the
	// session, and Send keeps messages in it.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	until := time.Now().Add(resumeTimeout + resumeTimeout/5)
	for time.Now().Before(until) {
		_, err := ts.store.Load(ctx, sess.ID())
		require.NoError(t, err, "%v after the resume", time.Since(until.Add(-resumeTimeout-resumeTimeout/5)))
		<-tick.C
	}
	require.NoError(t, sess.Send(ctx, resocket.MessageText, []byte("after")))
	testkit.WaitEvent[resocket.Message](t, rec, 10*time.Second)
}
