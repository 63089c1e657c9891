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

// TestRollingRestartWithoutAGap: two servers share a Store behind the
// client's URLs and are restarted in turn, each drained first. Each time
// the client moves make-before-break: the next server's connection is
// open before the old one closes, nothing is lost or repeated, and no
// failure is reported.
func TestRollingRestartWithoutAGap(t *testing.T) {
	store := session.NewMemoryStore()
	p := newPeer()
	servers := []*testServer{
		newTestServerFor(t, session.Options{Store: store}, p),
		newTestServerFor(t, session.Options{Store: store}, p),
	}
	cfg := resumeConfig()
	cfg.URLs = []string{servers[1].URL()}
	cur := 0
	rec, c := streamTo(t, servers[0].URL(), p, cfg, 2000, 400, func(int) {
		s := servers[cur]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, s.h.cur.Load().Drain(ctx), "every client moved")
		s.restart(s.opts)
		cur = 1 - cur
	})
	evs := rec.Events()
	assert.Empty(t, testkit.Only[resocket.Disconnected](evs), "a move is not a failure: %s", rec.History())
	assert.Empty(t, testkit.Only[resocket.DialFailed](evs))
	moves := 0
	for _, ev := range testkit.Only[resocket.Connected](evs)[1:] {
		assert.True(t, ev.Resumed, rec.History())
		assert.NotZero(t, ev.Replaced, "each connection replaced the one before: %s", rec.History())
		moves++
	}
	assert.Equal(t, 5, moves, "one move per restart")
	downtime := c.Stats().Downtime
	t.Logf("%d moves; time with no ready connection, in total: %v (Send kept numbering into the outbox meanwhile)", moves, downtime)
}

// TestRotationWithResume: MaxConnectionAge with a resumable session: each
// new connection takes the session over from the old one on the server,
// and nothing is lost or repeated either way.
func TestRotationWithResume(t *testing.T) {
	ts := newTestServer(t, session.Options{})
	cfg := resumeConfig()
	cfg.MaxConnectionAge = 20 * time.Millisecond
	rec := stream(t, ts, cfg, 3000, 0, nil)
	replaced := 0
	for _, ev := range testkit.Only[resocket.Connected](rec.Events())[1:] {
		assert.True(t, ev.Resumed, rec.History())
		if ev.Replaced != 0 {
			replaced++
		}
	}
	assert.NotZero(t, replaced, "rotations happened: %s", rec.History())
	assert.Empty(t, testkit.Only[resocket.SessionLost](rec.Events()))
	t.Logf("%d rotations", replaced)
}
