package resocket_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// maxAge is the MaxBufferAge of these tests. Messages are made old by
// letting this much time pass: the age is what is under test, so the
// waits are the subject, not a stand-in for an event.
const maxAge = 150 * time.Millisecond

func texts(msgs []resocket.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Data)
	}
	return out
}

// TestMaxBufferAgeDropsStaleMessagesBeforeTheFlush: a server that comes
// back gets only what is fresh; what waited too long is reported, in
// order, in one Expired event before the connection's Connected.
func TestMaxBufferAgeDropsStaleMessagesBeforeTheFlush(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", -1)
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(10 * time.Millisecond)
	cfg.MaxBufferAge = maxAge
	c, rec := newClient(t, srv.URL(), cfg)
	ctx := context.Background()
	for _, m := range []string{"old 1", "old 2", "old 3"} {
		require.NoError(t, c.SendText(ctx, m))
	}
	time.Sleep(2 * maxAge) // the three are now older than MaxBufferAge
	for _, m := range []string{"new 1", "new 2"} {
		require.NoError(t, c.SendText(ctx, m))
	}
	srv.Refuse(0, "", 0)
	conn := srv.NextConn(t, 5*time.Second)
	assert.Equal(t, "new 1", receiveText(t, conn))
	assert.Equal(t, "new 2", receiveText(t, conn))

	_, connected := rec.Await(t, 0, 5*time.Second, testkit.Is[resocket.Connected])
	_, expired := rec.Await(t, 0, 5*time.Second, testkit.Is[resocket.Expired])
	assert.Equal(t, []string{"old 1", "old 2", "old 3"}, texts(expired.Event.(resocket.Expired).Messages))
	assert.True(t, expired.At.Before(connected.At) || expired.At.Equal(connected.At), rec.History())
	assert.Len(t, testkit.Only[resocket.Expired](rec.Events()), 1, "one Expired for one check: %s", rec.History())

	_, closed, err := testkit.CloseAndDrain(t, c, rec, resocket.StatusNormalClosure, "", 5*time.Second)
	require.NoError(t, err)
	assert.Empty(t, closed.Unsent)
}

// TestMaxBufferAgeExpiredNeverInUnsent: a client closed while its buffer
// holds stale and fresh messages reports the stale ones as Expired and
// only the fresh ones as Unsent.
func TestMaxBufferAgeExpiredNeverInUnsent(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", -1)
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(10 * time.Millisecond)
	cfg.MaxBufferAge = maxAge
	c, rec := newClient(t, srv.URL(), cfg)
	ctx := context.Background()
	require.NoError(t, c.SendText(ctx, "stale"))
	time.Sleep(2 * maxAge) // "stale" is now older than MaxBufferAge
	require.NoError(t, c.SendText(ctx, "fresh"))

	_, closed, err := testkit.CloseAndDrain(t, c, rec, resocket.StatusNormalClosure, "", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"fresh"}, texts(closed.Unsent))
	var expired []string
	for _, e := range testkit.Only[resocket.Expired](rec.Events()) {
		expired = append(expired, texts(e.Messages)...)
	}
	assert.Equal(t, []string{"stale"}, expired, rec.History())
}

// TestMaxBufferAgeZeroKeepsEverything: the default keeps buffered
// messages however long the server stays away.
func TestMaxBufferAgeZeroKeepsEverything(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", -1)
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(10 * time.Millisecond)
	c, rec := newClient(t, srv.URL(), cfg)
	require.NoError(t, c.SendText(context.Background(), "kept"))
	time.Sleep(2 * maxAge) // as old as the messages the tests above expire
	srv.Refuse(0, "", 0)
	conn := srv.NextConn(t, 5*time.Second)
	assert.Equal(t, "kept", receiveText(t, conn))
	assert.Empty(t, testkit.Only[resocket.Expired](rec.Events()))
}

func TestMaxBufferAgeNegativeIsInvalid(t *testing.T) {
	_, err := resocket.New("ws://127.0.0.1:1", resocket.Config{MaxBufferAge: -time.Second})
	require.ErrorIs(t, err, resocket.ErrInvalidConfig)
}
