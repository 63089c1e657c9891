package resocket_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// credentialsConfig waits an hour between attempts, so that only a retry
// at once can reconnect within a test, and hands out a new token on each
// call of HeaderFunc, counted in calls.
func credentialsConfig(calls *atomic.Int32) resocket.Config {
	cfg := fastConfig()
	cfg.Backoff = constantBackoff(time.Hour)
	cfg.HeaderFunc = func(context.Context) (http.Header, error) {
		n := calls.Add(1)
		return http.Header{"Authorization": {"Bearer token-" + strconv.Itoa(int(n))}}, nil
	}
	return cfg
}

func TestRefused401RetriedAtOnceWithFreshHeaders(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusUnauthorized, "", 1)
	var calls atomic.Int32
	_, events := newClient(t, srv.URL(), credentialsConfig(&calls))

	evs := events.Collect(t, waitFor, testkit.Is[resocket.Connected])
	require.Equal(t, []string{"Connecting", "DialFailed", "Reconnecting", "Connecting", "Connected"},
		testkit.Types(evs), testkit.DescribeAll(evs))
	df := evs[1].(resocket.DialFailed)
	assert.Equal(t, http.StatusUnauthorized, df.Disconnect.HTTPStatus)
	assert.True(t, df.Disconnect.FreshHeaders)
	assert.Nil(t, df.Disconnect.Previous)
	assert.Equal(t, resocket.Decision{Action: resocket.Reconnect, Immediate: true}, df.Decision)
	assert.Zero(t, evs[2].(resocket.Reconnecting).Delay, "no backoff before the retry")

	assert.EqualValues(t, 2, calls.Load(), "HeaderFunc once per attempt")
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "Bearer token-1", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Bearer token-2", reqs[1].Header.Get("Authorization"), "the retry carries the fresh token")
}

func TestRefused401TwiceInARowGivesUp(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusUnauthorized, "", -1)
	var calls atomic.Int32
	c, events := newClient(t, srv.URL(), credentialsConfig(&calls))

	evs, closed := events.Drain(t, waitFor)
	require.Equal(t, []string{"Connecting", "DialFailed", "Reconnecting", "Connecting", "DialFailed", "Closed"},
		testkit.Types(evs), testkit.DescribeAll(evs))
	second := evs[4].(resocket.DialFailed)
	require.NotNil(t, second.Disconnect.Previous, "the second refusal knows the first")
	assert.Equal(t, http.StatusUnauthorized, second.Disconnect.Previous.HTTPStatus)
	assert.Nil(t, second.Disconnect.Previous.Previous)
	assert.Equal(t, resocket.GiveUp, second.Decision.Action)
	require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	var he *resocket.HandshakeError
	require.ErrorAs(t, c.Err(), &he)
	assert.Equal(t, http.StatusUnauthorized, he.Status)
	assert.EqualValues(t, 2, calls.Load())
	assert.Len(t, srv.Requests(), 2)
}

func TestRefused401WithoutHeaderFuncGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusUnauthorized, "", -1)
	cfg := fastConfig()
	_, events := newClient(t, srv.URL(), cfg)
	evs, closed := events.Drain(t, waitFor)
	require.Equal(t, []string{"Connecting", "DialFailed", "Closed"}, testkit.Types(evs), testkit.DescribeAll(evs))
	assert.False(t, evs[1].(resocket.DialFailed).Disconnect.FreshHeaders)
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	assert.Len(t, srv.Requests(), 1)
}

// A close with 3000 is treated as a 401: one retry at once, with fresh
// headers; a 3000 again before the connection stayed up StableAfter gives
// up.
func TestClose3000RetriedOnceThenGivesUp(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	var calls atomic.Int32
	cfg := credentialsConfig(&calls)
	cfg.StableAfter = time.Hour
	_, events := newClient(t, srv.URL(), cfg)

	first := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	require.NoError(t, first.CloseWith(3000, "token expired"))
	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Equal(t, resocket.StatusCode(3000), disc.Disconnect.Code)
	assert.Equal(t, resocket.Decision{Action: resocket.Reconnect, Immediate: true}, disc.Decision)
	assert.Zero(t, testkit.WaitEvent[resocket.Reconnecting](t, events, waitFor).Delay)

	second := srv.NextConn(t, waitFor)
	assert.Equal(t, "Bearer token-2", second.Request().Header.Get("Authorization"))
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	require.NoError(t, second.CloseWith(3000, "still unauthorized"))
	disc = testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Equal(t, resocket.GiveUp, disc.Decision.Action)
	require.NotNil(t, disc.Disconnect.Previous)
	assert.Equal(t, resocket.StatusCode(3000), disc.Disconnect.Previous.Code)
	_, closed := events.Drain(t, waitFor)
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
}

// A connection that stayed up StableAfter ends the row: a token that
// expires every time after a long connection is refreshed every time.
func TestClose3000AfterStableConnectionRetriedAgain(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	var calls atomic.Int32
	cfg := credentialsConfig(&calls)
	cfg.StableAfter = time.Nanosecond // every connection stayed up long enough
	_, events := newClient(t, srv.URL(), cfg)

	for i := range 3 {
		conn := srv.NextConn(t, waitFor)
		testkit.WaitEvent[resocket.Connected](t, events, waitFor)
		require.NoError(t, conn.CloseWith(3000, "token expired"))
		disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
		assert.Nil(t, disc.Disconnect.Previous, "connection %d stayed up: a new row", i+1)
		assert.Equal(t, resocket.Decision{Action: resocket.Reconnect, Immediate: true}, disc.Decision)
	}
	srv.NextConn(t, waitFor)
	assert.EqualValues(t, 4, calls.Load())
}

// What the DefaultPolicy doc shows for a private code: the same rule for
// 4401, written by wrapping DefaultPolicy.
func TestCustomPolicyFreshCredentialsForPrivateCode(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	var calls atomic.Int32
	cfg := credentialsConfig(&calls)
	cfg.StableAfter = time.Hour
	cfg.Policy = func(d resocket.Disconnect) resocket.Decision {
		if d.Code == 4401 {
			if d.FreshHeaders && (d.Previous == nil || d.Previous.Code != 4401) {
				return resocket.Decision{Action: resocket.Reconnect, Immediate: true}
			}
			return resocket.Decision{Action: resocket.GiveUp}
		}
		return resocket.DefaultPolicy(d)
	}
	_, events := newClient(t, srv.URL(), cfg)
	for _, want := range []resocket.Action{resocket.Reconnect, resocket.GiveUp} {
		conn := srv.NextConn(t, waitFor)
		testkit.WaitEvent[resocket.Connected](t, events, waitFor)
		require.NoError(t, conn.CloseWith(4401, "token expired"))
		disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
		assert.Equal(t, want, disc.Decision.Action)
	}
	_, closed := events.Drain(t, waitFor)
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	assert.EqualValues(t, 2, calls.Load())
}
