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

// TestMaxBufferAgeWithResume: messages that waited unwritten in the
// outbox longer than MaxBufferAge are dropped and reported; those after
// them take their numbers, and the server receives exactly the rest.
func TestMaxBufferAgeWithResume(t *testing.T) {
	const maxAge = 150 * time.Millisecond
	ts := newTestServer(t, session.Options{})
	cfg := resumeConfig()
	cfg.MaxBufferAge = maxAge
	c, err := resocket.New(ts.URL(), cfg)
	require.NoError(t, err)
	rec := testkit.Record(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	require.NoError(t, c.SendText(ctx, "before"))
	require.NoError(t, c.Flush(ctx))
	ts.proxy.refusing.Store(true)
	ts.proxy.cut()
	rec.Await(t, 0, 5*time.Second, testkit.Is[resocket.Disconnected])
	require.NoError(t, c.SendText(ctx, "old 1"))
	require.NoError(t, c.SendText(ctx, "old 2"))
	time.Sleep(2 * maxAge) // the age is what is under test
	require.NoError(t, c.SendText(ctx, "new"))
	ts.proxy.refusing.Store(false)
	require.NoError(t, c.Flush(ctx))

	var got []string
	for _, d := range ts.peer.all() {
		got = append(got, string(d))
	}
	assert.Equal(t, []string{"before", "new"}, got)
	var expired []string
	for _, e := range testkit.Only[resocket.Expired](rec.Events()) {
		for _, m := range e.Messages {
			expired = append(expired, string(m.Data))
		}
	}
	assert.Equal(t, []string{"old 1", "old 2"}, expired, rec.History())
	connected := testkit.Only[resocket.Connected](rec.Events())
	assert.True(t, connected[len(connected)-1].Resumed, rec.History())
}
