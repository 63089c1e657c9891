package resocket_test

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// ---- how the server ends a connection → what the client decides ----

// serverEnd is one way for the server to end a live connection, and what
// the client must report and decide.
type serverEnd struct {
	name    string
	end     func(*mocks.Conn)
	code    resocket.StatusCode
	reason  string // checked when not empty
	wantErr bool   // Disconnect.Err is set (no valid close frame came)
	action  resocket.Action
}

func closeWith(code int, reason string) func(*mocks.Conn) {
	return func(c *mocks.Conn) { _ = c.CloseWith(code, reason) }
}

func TestServerCloseDecisions(t *testing.T) {
	t.Parallel()
	cases := []serverEnd{
		// Stop.
		{name: "1000 normal", end: closeWith(1000, "bye"), code: 1000, reason: "bye", action: resocket.Stop},
		// Reconnect.
		{name: "1001 going away", end: closeWith(1001, "away"), code: 1001, reason: "away", action: resocket.Reconnect},
		{name: "1005 no status", end: func(c *mocks.Conn) { _ = c.CloseNoStatus() }, code: resocket.StatusNoStatusRcvd, action: resocket.Reconnect},
		{name: "1011 internal error", end: closeWith(1011, ""), code: 1011, action: resocket.Reconnect},
		{name: "1012 service restart", end: closeWith(1012, "restarting"), code: 1012, reason: "restarting", action: resocket.Reconnect},
		{name: "1014 bad gateway", end: closeWith(1014, ""), code: 1014, action: resocket.Reconnect},
		{name: "3001 registered", end: closeWith(3001, ""), code: 3001, action: resocket.Reconnect},
		{name: "3008 timeout", end: closeWith(3008, ""), code: 3008, action: resocket.Reconnect},
		{name: "4000 private", end: closeWith(4000, "app"), code: 4000, reason: "app", action: resocket.Reconnect},
		{name: "4999 private", end: closeWith(4999, ""), code: 4999, action: resocket.Reconnect},
		{name: "FIN without close frame", end: (*mocks.Conn).Drop, code: resocket.StatusAbnormalClosure, wantErr: true, action: resocket.Reconnect},
		{name: "TCP reset", end: (*mocks.Conn).Reset, code: resocket.StatusAbnormalClosure, wantErr: true, action: resocket.Reconnect},
		// Give up.
		{name: "1002 protocol error sent by server", end: closeWith(1002, ""), code: 1002, action: resocket.GiveUp},
		{name: "1003 unsupported data", end: closeWith(1003, ""), code: 1003, action: resocket.GiveUp},
		{name: "1007 invalid payload", end: closeWith(1007, ""), code: 1007, action: resocket.GiveUp},
		{name: "1008 policy violation", end: closeWith(1008, "banned"), code: 1008, reason: "banned", action: resocket.GiveUp},
		{name: "1009 too big", end: closeWith(1009, ""), code: 1009, action: resocket.GiveUp},
		{name: "1010 mandatory extension", end: closeWith(1010, ""), code: 1010, action: resocket.GiveUp},
		{name: "3000 unauthorized", end: closeWith(3000, ""), code: 3000, action: resocket.GiveUp},
		{name: "3003 forbidden", end: closeWith(3003, ""), code: 3003, action: resocket.GiveUp},
	}
	// Close frames RFC 6455 forbids: the client found a protocol error
	// (1002 with Err set), which is worth a reconnect.
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		cases = append(cases, serverEnd{name: "invalid code " + strconv.Itoa(code), end: closeWith(code, ""),
			code: resocket.StatusProtocolError, wantErr: true, action: resocket.Reconnect})
	}
	cases = append(cases,
		// gorilla reads any close payload shorter than two bytes as "no
		// status", so a 1-byte payload is reported as 1005; the decision
		// is the same reconnect a protocol error gets.
		serverEnd{name: "1-byte payload", end: func(c *mocks.Conn) { _ = c.CloseWithPayload([]byte{0x03}) },
			code: resocket.StatusNoStatusRcvd, action: resocket.Reconnect},
		serverEnd{name: "reason not UTF-8", end: closeWith(1000, "\xff\xfe"),
			code: resocket.StatusProtocolError, wantErr: true, action: resocket.Reconnect},
		serverEnd{name: "126-byte payload", end: closeWith(1000, strings.Repeat("r", 124)),
			code: resocket.StatusProtocolError, wantErr: true, action: resocket.Reconnect},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			c, events, first, sconn := connect(t, srv, fastConfig())
			tc.end(sconn)

			disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
			d := disc.Disconnect
			assert.Equal(t, first.ConnID, disc.ConnID)
			assert.Equal(t, tc.code, d.Code, "code")
			if tc.reason != "" {
				assert.Equal(t, tc.reason, d.Reason)
			}
			if tc.wantErr {
				assert.Error(t, d.Err)
			} else {
				assert.NoError(t, d.Err)
			}
			assert.Equal(t, tc.action, disc.Decision.Action, "decision for %s", testkit.Describe(disc))
			assert.Equal(t, 1, d.Attempt)
			assert.Positive(t, d.Uptime)

			switch tc.action {
			case resocket.Reconnect:
				again := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
				assert.NotEqual(t, first.ConnID, again.ConnID, "a reconnect opens a fresh connection")
				sconn2 := srv.NextConn(t, waitFor)
				assert.NotEqual(t, sconn.ID(), sconn2.ID())
			case resocket.Stop:
				_, closed := events.Drain(t, waitFor)
				assert.NoError(t, closed.Err)
				assert.NoError(t, c.Err())
				assert.Equal(t, resocket.StateClosed, c.State())
				assert.Len(t, srv.Requests(), 1, "no reconnect after Stop")
			case resocket.GiveUp:
				_, closed := events.Drain(t, waitFor)
				require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
				assert.Equal(t, tc.code, resocket.CloseStatus(closed.Err), "CloseStatus of %v", closed.Err)
				var ce resocket.CloseError
				if assert.ErrorAs(t, closed.Err, &ce) && tc.reason != "" {
					assert.Equal(t, tc.reason, ce.Reason)
				}
				testkit.WaitClosed(t, c.Done(), waitFor, "Done")
				assert.ErrorIs(t, c.Err(), resocket.ErrGaveUp)
				assert.Equal(t, tc.code, resocket.CloseStatus(c.Err()))
				assert.Equal(t, resocket.StateClosed, c.State())
				assert.Len(t, srv.Requests(), 1, "no reconnect after GiveUp")
			}
		})
	}
}

// 1013 Try Again Later: reconnect, but no sooner than 5 s.
func TestTryAgainLaterWaitsFiveSeconds(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, events, _, sconn := connect(t, srv, fastConfig())
	_ = sconn.CloseWith(int(resocket.StatusTryAgainLater), "busy")
	disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Equal(t, resocket.StatusTryAgainLater, disc.Disconnect.Code)
	assert.Equal(t, resocket.Reconnect, disc.Decision.Action)
	assert.GreaterOrEqual(t, disc.Decision.MinDelay, 5*time.Second)
	rec := testkit.WaitEvent[resocket.Reconnecting](t, events, waitFor)
	assert.GreaterOrEqual(t, rec.Delay, 5*time.Second)
	assert.Equal(t, 2, rec.Attempt)
	testkit.ReturnsWithin(t, time.Second, "Terminate during the wait", c.Terminate)
	assert.Len(t, srv.Requests(), 1)
}

// ---- handshake refusals ----

func TestHandshakeRefusalGivesUp(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 403, 404, 426, 418} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			srv.Refuse(status, "", -1)
			c, events := newClient(t, srv.URL(), fastConfig())
			evs, closed := events.Drain(t, waitFor)
			require.Equal(t, []string{"Connecting", "DialFailed", "Closed"}, testkit.Types(evs), testkit.DescribeAll(evs))
			df := evs[1].(resocket.DialFailed)
			assert.Equal(t, status, df.Disconnect.HTTPStatus)
			assert.Equal(t, 1, df.Disconnect.Attempt)
			assert.Zero(t, df.Disconnect.Uptime)
			assert.Equal(t, resocket.GiveUp, df.Decision.Action)

			for _, err := range []error{closed.Err, c.Err()} {
				require.ErrorIs(t, err, resocket.ErrGaveUp)
				var he *resocket.HandshakeError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, status, he.Status)
				assert.ErrorIs(t, err, websocket.ErrBadHandshake)
			}
			assert.Equal(t, resocket.StateClosed, c.State())
			assert.Len(t, srv.Requests(), 1)
		})
	}
}

func TestHandshakeRefusalRetryAfter(t *testing.T) {
	t.Parallel()
	for _, status := range []int{429, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			srv.Refuse(status, "1", 1)
			_, events := newClient(t, srv.URL(), fastConfig())
			df := testkit.WaitEvent[resocket.DialFailed](t, events, waitFor)
			assert.Equal(t, status, df.Disconnect.HTTPStatus)
			assert.Equal(t, time.Second, df.Disconnect.RetryAfter)
			var he *resocket.HandshakeError
			if assert.ErrorAs(t, df.Disconnect.Err, &he) {
				assert.Equal(t, time.Second, he.RetryAfter)
			}
			assert.Equal(t, resocket.Decision{Action: resocket.Reconnect, MinDelay: time.Second}, df.Decision)
			wait := testkit.WaitEvent[resocket.Reconnecting](t, events, waitFor)
			assert.GreaterOrEqual(t, wait.Delay, time.Second)
			conn := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
			assert.Equal(t, 2, conn.Attempt)
			// The server saw the first request before it refused it, so
			// before the client could start waiting, and the second after
			// the wait: the gap between them is a floor under the wait
			// that no scheduling delay can shrink.
			times := srv.RequestTimes()
			require.Len(t, times, 2)
			assert.GreaterOrEqual(t, times[1].Sub(times[0]), time.Second, "came back before Retry-After")
		})
	}
}

func TestHandshakeRefusalReconnects(t *testing.T) {
	t.Parallel()
	for _, status := range []int{408, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			srv.Refuse(status, "", 2)
			_, events := newClient(t, srv.URL(), fastConfig())
			evs := events.Collect(t, waitFor, testkit.Is[resocket.Connected])
			dfs := testkit.Only[resocket.DialFailed](evs)
			require.Len(t, dfs, 2, testkit.DescribeAll(evs))
			for i, df := range dfs {
				assert.Equal(t, status, df.Disconnect.HTTPStatus)
				assert.Equal(t, i+1, df.Disconnect.Attempt)
				assert.Equal(t, resocket.Reconnect, df.Decision.Action)
			}
			assert.Equal(t, 3, evs[len(evs)-1].(resocket.Connected).Attempt)
			assert.Len(t, testkit.Only[resocket.Reconnecting](evs), 2)
		})
	}
}

func TestConnectionRefusedReconnects(t *testing.T) {
	t.Parallel()
	_, events := newClient(t, "ws://"+testkit.ClosedPort(t), fastConfig())
	evs := events.Collect(t, waitFor, func(ev resocket.Event) bool {
		r, ok := ev.(resocket.Reconnecting)
		return ok && r.Attempt == 3
	})
	dfs := testkit.Only[resocket.DialFailed](evs)
	require.Len(t, dfs, 2, testkit.DescribeAll(evs))
	for _, df := range dfs {
		assert.Equal(t, resocket.StatusAbnormalClosure, df.Disconnect.Code)
		assert.Error(t, df.Disconnect.Err)
		assert.Zero(t, df.Disconnect.HTTPStatus)
		assert.Equal(t, resocket.Reconnect, df.Decision.Action)
	}
	assert.Equal(t, []int{1, 2}, []int{dfs[0].Disconnect.Attempt, dfs[1].Disconnect.Attempt})
}

// Network errors reconnect under the default policy: each case makes a
// real attempt fail with a real error of its kind, and the client must
// report it as a failed attempt (1006, no HTTP status) and try again.
// (A reset of a live connection is in TestServerCloseDecisions.)
func TestDefaultPolicyNetworkErrorsReconnect(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		setup func(t *testing.T, cfg *resocket.Config) (url string)
		is    func(error) bool // the error is of the kind under test
	}{
		"DNS failure": {
			// A name only a resolver can answer, and a resolver whose DNS
			// server refuses connections: the lookup fails with a
			// *net.DNSError, as on a machine with no network.
			setup: func(t *testing.T, cfg *resocket.Config) string {
				dnsServer := testkit.ClosedPort(t)
				resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return new(net.Dialer).DialContext(ctx, "tcp", dnsServer)
				}}
				cfg.Dialer = &websocket.Dialer{NetDialContext: (&net.Dialer{Resolver: resolver}).DialContext}
				return "ws://resocket-test.invalid:80/"
			},
			is: func(err error) bool { var dns *net.DNSError; return errors.As(err, &dns) },
		},
		"connection refused": {
			setup: func(t *testing.T, _ *resocket.Config) string { return "ws://" + testkit.ClosedPort(t) },
			is:    func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) },
		},
		"handshake timeout": {
			setup: func(t *testing.T, cfg *resocket.Config) string {
				cfg.Dialer = &websocket.Dialer{HandshakeTimeout: 100 * time.Millisecond}
				return mocks.NewStallServer(t).URL()
			},
			is: func(err error) bool { var ne net.Error; return errors.As(err, &ne) && ne.Timeout() },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := fastConfig()
			url := tc.setup(t, &cfg)
			_, events := newClient(t, url, cfg)
			evs := events.Collect(t, waitFor, func(ev resocket.Event) bool {
				c, ok := ev.(resocket.Connecting)
				return ok && c.Attempt == 2
			})
			require.Equal(t, []string{"Connecting", "DialFailed", "Reconnecting", "Connecting"}, testkit.Types(evs), testkit.DescribeAll(evs))
			d := evs[1].(resocket.DialFailed)
			t.Logf("%s: %v", name, d.Disconnect.Err)
			assert.True(t, tc.is(d.Disconnect.Err), "want a %s, got %T: %v", name, d.Disconnect.Err, d.Disconnect.Err)
			assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
			assert.Zero(t, d.Disconnect.HTTPStatus)
			assert.Equal(t, resocket.Decision{Action: resocket.Reconnect}, d.Decision)
			assert.Equal(t, resocket.DefaultPolicy(d.Disconnect), d.Decision, "the default policy decided")
		})
	}
}

// A server that accepts TCP but never answers the handshake: the dialer's
// handshake timeout fails the attempt, and the client tries again.
func TestStalledHandshakeTimesOutAndRetries(t *testing.T) {
	t.Parallel()
	stall := mocks.NewStallServer(t)
	cfg := fastConfig()
	cfg.Dialer = &websocket.Dialer{HandshakeTimeout: 200 * time.Millisecond}
	_, events := newClient(t, stall.URL(), cfg)
	df := testkit.WaitEvent[resocket.DialFailed](t, events, waitFor)
	assert.Equal(t, resocket.StatusAbnormalClosure, df.Disconnect.Code)
	assert.Error(t, df.Disconnect.Err)
	assert.Equal(t, resocket.Reconnect, df.Decision.Action)
	require.True(t, stall.WaitAccepted(2, waitFor), "no second attempt")
}

// ---- backoff ----

// MinDelay is a floor under the backoff's jitter, not a replacement for
// it: clients told the same Retry-After must not return in lockstep.
func TestWaitIsMinDelayPlusBackoff(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusInternalServerError, "", -1)
	b := new(mocks.BackOff)
	b.On("NextBackOff").Return(10 * time.Millisecond).Once()
	b.On("NextBackOff").Return(150 * time.Millisecond).Once()
	b.On("NextBackOff").Return(backoff.Stop)
	b.On("Reset").Return().Maybe()
	cfg := fastConfig()
	cfg.Backoff = func() backoff.BackOff { return b }
	minDelays := []time.Duration{100 * time.Millisecond, 0}
	var calls atomic.Int32
	cfg.Policy = func(resocket.Disconnect) resocket.Decision {
		return resocket.Decision{Action: resocket.Reconnect, MinDelay: minDelays[min(int(calls.Add(1))-1, 1)]}
	}
	_, events := newClient(t, srv.URL(), cfg)
	evs, closed := events.Drain(t, waitFor)
	recs := testkit.Only[resocket.Reconnecting](evs)
	require.Len(t, recs, 2, testkit.DescribeAll(evs))
	assert.Equal(t, 110*time.Millisecond, recs[0].Delay, "MinDelay, then the backoff's delay on top")
	assert.Equal(t, 150*time.Millisecond, recs[1].Delay, "without MinDelay, the backoff's delay")
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	b.AssertNumberOfCalls(t, "NextBackOff", 3)
}

func TestBackoffStopGivesUpWithLastCause(t *testing.T) {
	t.Parallel()
	stopNow := func() func() backoff.BackOff {
		b := new(mocks.BackOff)
		b.On("NextBackOff").Return(backoff.Stop)
		b.On("Reset").Return().Maybe()
		return func() backoff.BackOff { return b }
	}
	t.Run("refused handshake", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.Refuse(http.StatusServiceUnavailable, "", -1)
		cfg := fastConfig()
		cfg.Backoff = stopNow()
		c, events := newClient(t, srv.URL(), cfg)
		evs, closed := events.Drain(t, waitFor)
		assert.Empty(t, testkit.Only[resocket.Reconnecting](evs), "no wait once the backoff stopped")
		dfs := testkit.Only[resocket.DialFailed](evs)
		require.Len(t, dfs, 1, testkit.DescribeAll(evs))
		assert.Equal(t, resocket.GiveUp, dfs[0].Decision.Action, "the decision says what comes next")
		require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
		var he *resocket.HandshakeError
		require.ErrorAs(t, closed.Err, &he)
		assert.Equal(t, http.StatusServiceUnavailable, he.Status)
		assert.ErrorIs(t, c.Err(), resocket.ErrGaveUp)
	})
	t.Run("server close frame", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		cfg := fastConfig()
		cfg.Backoff = stopNow()
		_, events, _, sconn := connect(t, srv, cfg)
		_ = sconn.CloseWith(int(resocket.StatusServiceRestart), "restart")
		_, closed := events.Drain(t, waitFor)
		require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
		assert.Equal(t, resocket.StatusServiceRestart, resocket.CloseStatus(closed.Err))
	})
	t.Run("dropped connection", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		cfg := fastConfig()
		cfg.Backoff = stopNow()
		_, events, _, sconn := connect(t, srv, cfg)
		sconn.Drop()
		disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
		_, closed := events.Drain(t, waitFor)
		require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
		assert.ErrorIs(t, closed.Err, disc.Disconnect.Err, "the cause is the drop's error")
	})
}

func TestMaxRetriesMakesExactlyThreeAttempts(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", -1)
	cfg := fastConfig()
	cfg.Backoff = func() backoff.BackOff { return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, 2) }
	_, events := newClient(t, srv.URL(), cfg)
	evs, closed := events.Drain(t, waitFor)
	assert.Equal(t, []string{
		"Connecting", "DialFailed", "Reconnecting",
		"Connecting", "DialFailed", "Reconnecting",
		"Connecting", "DialFailed", "Closed",
	}, testkit.Types(evs), testkit.DescribeAll(evs))
	assert.Len(t, srv.Requests(), 3)
	require.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	var he *resocket.HandshakeError
	require.ErrorAs(t, closed.Err, &he)
	assert.Equal(t, http.StatusServiceUnavailable, he.Status)
}

// A server that accepts and drops at once must not reset the backoff.
func TestShortConnectionsDoNotResetBackoff(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	b := new(mocks.BackOff)
	b.On("NextBackOff").Return(time.Millisecond)
	b.On("Reset").Return().Maybe()
	cfg := fastConfig()
	cfg.Backoff = func() backoff.BackOff { return b }
	cfg.StableAfter = time.Hour
	_, events := newClient(t, srv.URL(), cfg)
	var attempts []int
	for range 3 {
		srv.NextConn(t, waitFor).Drop()
		ev := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
		attempts = append(attempts, ev.Attempt)
		disc := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
		assert.Equal(t, ev.ConnID, disc.ConnID)
		assert.Equal(t, ev.Attempt, disc.Disconnect.Attempt)
	}
	assert.Equal(t, []int{1, 2, 3}, attempts, "the attempt count keeps growing")
	b.AssertNotCalled(t, "Reset")
	assert.GreaterOrEqual(t, len(b.Calls), 3)
}

// A connection that stayed up longer than StableAfter resets the backoff
// and the attempt count.
func TestStableConnectionResetsBackoff(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	b := new(mocks.BackOff)
	b.On("NextBackOff").Return(time.Millisecond)
	b.On("Reset").Return().Maybe()
	cfg := fastConfig()
	cfg.Backoff = func() backoff.BackOff { return b }
	// Long enough that a connection the server drops at once stays below
	// it even on a loaded machine (it measured 50 ms, and flaked).
	cfg.StableAfter = time.Second
	_, events := newClient(t, srv.URL(), cfg)

	// An unstable first connection: attempt 2 follows.
	srv.NextConn(t, waitFor).Drop()
	d1 := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	require.Less(t, d1.Disconnect.Uptime, cfg.StableAfter, "the first connection was meant to be short")
	sconn := srv.NextConn(t, waitFor)
	ev := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	// The client opened the connection before it reported it: from now
	// on, its uptime is at least the time that passes.
	up := time.NewTimer(cfg.StableAfter)
	defer up.Stop()
	assert.Equal(t, 2, ev.Attempt)
	b.AssertNotCalled(t, "Reset")

	// Staying up past StableAfter is the behaviour under test: wait it out.
	<-up.C
	sconn.Drop()
	d2 := testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.GreaterOrEqual(t, d2.Disconnect.Uptime, cfg.StableAfter)
	assert.Equal(t, 1, d2.Disconnect.Attempt, "a stable connection starts a fresh count")
	b.AssertNumberOfCalls(t, "Reset", 1)
	next := testkit.WaitEvent[resocket.Connecting](t, events, waitFor)
	assert.Equal(t, 1, next.Attempt)
}

// DefaultBackoff, as its doc states: delay n is 100 ms plus a uniform draw
// in [0, 2×interval], the interval starting at 450 ms and doubling up to
// 15 s; so the first comes within [100 ms, 1 s], the next within 1.9 s,
// ... up to 30.1 s, and it never stops. The statistical checks use
// bounds a correct backoff misses with probability below 1e-90 (all 1000
// draws of a window outside a fifth of it), so they cannot flake.
func TestDefaultBackoffProgression(t *testing.T) {
	t.Parallel()
	const (
		runs    = 1000
		windows = 9 // the interval reaches its cap at the seventh
		floor   = 100 * time.Millisecond
	)
	interval := func(n int) time.Duration { return min(450*time.Millisecond<<n, 15*time.Second) }
	lo := make([]time.Duration, windows)
	hi := make([]time.Duration, windows)
	for n := range windows {
		lo[n], hi[n] = time.Duration(math.MaxInt64), 0
	}
	for range runs {
		b := resocket.DefaultBackoff()
		for n := range windows {
			d := b.NextBackOff()
			require.NotEqual(t, backoff.Stop, d, "delay %d: the default backoff never gives up", n+1)
			top := floor + 2*interval(n)
			require.GreaterOrEqual(t, d, floor, "delay %d below the floor", n+1)
			require.LessOrEqual(t, d, top, "delay %d above its window [%v, %v]", n+1, floor, top)
			lo[n], hi[n] = min(lo[n], d), max(hi[n], d)
		}
	}
	assert.Equal(t, time.Second, floor+2*interval(0), "the first window ends at 1 s")
	assert.Equal(t, 30100*time.Millisecond, floor+2*interval(windows-1), "the cap: at most 30.1 s")
	for n := range windows {
		width := 2 * interval(n)
		// Spread over the whole window: jitter, not a fixed delay.
		assert.Less(t, lo[n], floor+width/5, "delay %d: no draw in the bottom fifth of its window", n+1)
		assert.Greater(t, hi[n], floor+width*4/5, "delay %d: no draw in the top fifth of its window", n+1)
		if n > 0 && interval(n) == 2*interval(n-1) {
			assert.Greater(t, hi[n], floor+2*interval(n-1), "delay %d: the window did not grow", n+1)
		}
	}
	t.Logf("first window: %v to %v; capped window: %v to %v", lo[0], hi[0], lo[windows-1], hi[windows-1])

	// Far past the cap, still no Stop and still within 30.1 s.
	b := resocket.DefaultBackoff()
	for n := range 200 {
		d := b.NextBackOff()
		require.NotEqual(t, backoff.Stop, d, "delay %d", n+1)
		require.LessOrEqual(t, d, 30100*time.Millisecond, "delay %d", n+1)
	}
	// Reset starts again from the first window.
	b.Reset()
	assert.LessOrEqual(t, b.NextBackOff(), time.Second, "after Reset, the first window again")
	// A decorator's Stop passes through.
	limited := backoff.WithMaxRetries(resocket.DefaultBackoff(), 1)
	assert.NotEqual(t, backoff.Stop, limited.NextBackOff())
	assert.Equal(t, backoff.Stop, limited.NextBackOff())
}

// ---- every reopen is a fresh connection ----

func TestEveryReopenIsAFreshConnection(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	_, events := newClient(t, srv.URL(), fastConfig())
	ids := map[uint64]bool{}
	serverIDs := map[int]bool{}
	for i := range 4 {
		sconn := srv.NextConn(t, waitFor)
		assert.False(t, serverIDs[sconn.ID()])
		serverIDs[sconn.ID()] = true
		ev := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
		assert.False(t, ids[ev.ConnID], "ConnID %d reused", ev.ConnID)
		ids[ev.ConnID] = true
		require.NoError(t, sconn.SendText("on "+strconv.Itoa(i)))
		msg := testkit.WaitEvent[resocket.Message](t, events, waitFor)
		assert.Equal(t, ev.ConnID, msg.ConnID, "a message carries its connection's ID")
		assert.Equal(t, "on "+strconv.Itoa(i), string(msg.Data))
		sconn.Drop()
	}
	assert.Len(t, ids, 4)
	assert.Len(t, serverIDs, 4)
}

func TestHeaderFuncBeforeEveryAttempt(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusInternalServerError, "", 1)
	var calls atomic.Int32
	cfg := fastConfig()
	cfg.Header = http.Header{"X-Static": {"s"}, "X-Token": {"old"}}
	cfg.HeaderFunc = func(ctx context.Context) (http.Header, error) {
		n := strconv.Itoa(int(calls.Add(1)))
		return http.Header{"X-Token": {"t" + n}, "X-Call": {n}}, nil
	}
	_, events := newClient(t, srv.URL(), cfg)
	srv.NextConn(t, waitFor).Drop() // attempt 2; attempt 1 was refused
	srv.NextConn(t, waitFor)        // attempt 3
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)

	assert.Equal(t, int32(3), calls.Load(), "once per attempt")
	reqs := srv.Requests()
	require.Len(t, reqs, 3)
	for i, r := range reqs {
		n := strconv.Itoa(i + 1)
		assert.Equal(t, "s", r.Header.Get("X-Static"), "Header is sent on every attempt")
		assert.Equal(t, []string{"t" + n}, r.Header.Values("X-Token"), "HeaderFunc's value replaces Header's")
		assert.Equal(t, n, r.Header.Get("X-Call"))
	}
	assert.Equal(t, []string{"old"}, cfg.Header.Values("X-Token"), "the caller's Header is not modified")
}

func TestOnConnectRunsBeforeBufferedMessages(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	ids := make(chan uint64, 8)
	cfg := fastConfig()
	cfg.OnConnect = func(ctx context.Context, conn *resocket.Conn) error {
		ids <- conn.ID()
		if err := conn.Send(ctx, 99, nil); !errors.Is(err, resocket.ErrInvalidMessageType) {
			return errors.New("Conn.Send accepted message type 99")
		}
		return conn.Send(ctx, resocket.MessageText, []byte("hello"))
	}
	c, events := newClient(t, srv.URL(), cfg)
	require.True(t, srv.WaitRequests(1, waitFor))
	ctx := context.Background()
	for _, m := range []string{"a", "b", "c"} {
		require.NoError(t, c.SendText(ctx, m))
	}
	srv.StallHandshakes(false)
	sconn := srv.NextConn(t, waitFor)
	ev := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	require.NoError(t, c.SendText(ctx, "d"))
	var got []string
	for range 5 {
		got = append(got, receiveText(t, sconn))
	}
	assert.Equal(t, []string{"hello", "a", "b", "c", "d"}, got)
	assert.Equal(t, ev.ConnID, testkit.Receive(t, ids, waitFor, "OnConnect"), "OnConnect gets the connection that Connected reports")

	// Again on the next connection, first of all.
	sconn.Drop()
	sconn2 := srv.NextConn(t, waitFor)
	ev2 := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.Equal(t, "hello", receiveText(t, sconn2))
	assert.Equal(t, ev2.ConnID, testkit.Receive(t, ids, waitFor, "OnConnect again"))
}

func TestOnConnectFailureIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	boom := errors.New("subscription refused")
	var calls atomic.Int32
	cfg := fastConfig()
	cfg.OnConnect = func(ctx context.Context, conn *resocket.Conn) error {
		if calls.Add(1) == 1 {
			return boom
		}
		return nil
	}
	// Tag each attempt: the server may register the second connection
	// before the first, whose handler lost the race to the scheduler.
	var attempts atomic.Int32
	cfg.HeaderFunc = func(context.Context) (http.Header, error) {
		return http.Header{"X-Attempt": {strconv.Itoa(int(attempts.Add(1)))}}, nil
	}
	_, events := newClient(t, srv.URL(), cfg)
	evs := events.Collect(t, waitFor, testkit.Is[resocket.Connected])
	require.Equal(t, []string{"Connecting", "DialFailed", "Reconnecting", "Connecting", "Connected"}, testkit.Types(evs), testkit.DescribeAll(evs))
	df := evs[1].(resocket.DialFailed)
	assert.ErrorIs(t, df.Disconnect.Err, boom)
	assert.Equal(t, resocket.Reconnect, df.Decision.Action)
	assert.Equal(t, 1, df.Disconnect.Attempt)
	assert.Equal(t, 2, evs[4].(resocket.Connected).Attempt)
	assert.Equal(t, int32(2), calls.Load())
	first := srv.NextConn(t, waitFor)
	if second := srv.NextConn(t, waitFor); second.Request().Header.Get("X-Attempt") == "1" {
		first = second
	}
	require.Equal(t, "1", first.Request().Header.Get("X-Attempt"))
	testkit.WaitClosed(t, first.Done(), waitFor, "the connection whose OnConnect failed")
}

func TestHeaderFuncErrorIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	boom := errors.New("token service down")
	var calls atomic.Int32
	cfg := fastConfig()
	cfg.HeaderFunc = func(ctx context.Context) (http.Header, error) {
		if calls.Add(1) == 1 {
			return nil, boom
		}
		return nil, nil
	}
	_, events := newClient(t, srv.URL(), cfg)
	df := testkit.WaitEvent[resocket.DialFailed](t, events, waitFor)
	assert.ErrorIs(t, df.Disconnect.Err, boom)
	assert.Zero(t, df.Disconnect.HTTPStatus)
	assert.Equal(t, resocket.Reconnect, df.Decision.Action)
	ev := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.Equal(t, 2, ev.Attempt)
	assert.Len(t, srv.Requests(), 1, "the failed attempt never reached the server")
}

// A header the handshake sets itself can never work: the attempt fails
// with ErrInvalidConfig and the client gives up instead of looping.
func TestHeaderFuncReservedHeaderGivesUp(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.HeaderFunc = func(context.Context) (http.Header, error) {
		return http.Header{"Sec-Websocket-Key": {"mine"}}, nil
	}
	_, events := newClient(t, srv.URL(), cfg)
	evs, closed := events.Drain(t, waitFor)
	dfs := testkit.Only[resocket.DialFailed](evs)
	require.Len(t, dfs, 1, testkit.DescribeAll(evs))
	assert.ErrorIs(t, dfs[0].Disconnect.Err, resocket.ErrInvalidConfig)
	assert.Equal(t, resocket.GiveUp, dfs[0].Decision.Action)
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	assert.Empty(t, srv.Requests())
}

// Callbacks get a context that ends when the client is closed, so one
// blocked on it does not hold Close or Terminate up.
func TestCallbackContextEndsOnClose(t *testing.T) {
	t.Parallel()
	for _, cb := range []string{"HeaderFunc", "OnConnect"} {
		for _, terminate := range []bool{false, true} {
			t.Run(cb+map[bool]string{false: "/close", true: "/terminate"}[terminate], func(t *testing.T) {
				t.Parallel()
				srv := mocks.NewServer(t)
				entered := make(chan struct{}, 1)
				returned := make(chan error, 1)
				block := func(ctx context.Context) error {
					entered <- struct{}{}
					<-ctx.Done()
					returned <- ctx.Err()
					return ctx.Err()
				}
				cfg := fastConfig()
				if cb == "HeaderFunc" {
					cfg.HeaderFunc = func(ctx context.Context) (http.Header, error) { return nil, block(ctx) }
				} else {
					cfg.OnConnect = func(ctx context.Context, _ *resocket.Conn) error { return block(ctx) }
				}
				c, events := newClient(t, srv.URL(), cfg)
				testkit.Receive(t, entered, waitFor, cb+" call")
				testkit.ReturnsWithin(t, 2*time.Second, "ending the client while "+cb+" blocks", func() {
					if terminate {
						c.Terminate()
					} else {
						assert.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
					}
				})
				assert.ErrorIs(t, testkit.Receive(t, returned, waitFor, cb+" returning"), context.Canceled)
				evs, _ := events.Drain(t, waitFor)
				assert.Empty(t, testkit.Only[resocket.DialFailed](evs), "the user's own close is not a failed attempt: %s", testkit.DescribeAll(evs))
				assert.NoError(t, c.Err())
			})
		}
	}
}

func TestConnUnusableAfterItsConnectionEnds(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	conns := make(chan *resocket.Conn, 4)
	cfg := fastConfig()
	cfg.OnConnect = func(_ context.Context, conn *resocket.Conn) error { conns <- conn; return nil }
	c, events, ev, sconn := connect(t, srv, cfg)
	first := testkit.Receive(t, conns, waitFor, "OnConnect")
	require.Equal(t, ev.ConnID, first.ID())
	sconn.Drop()
	testkit.WaitEvent[resocket.Disconnected](t, events, waitFor)
	assert.Error(t, first.Send(context.Background(), resocket.MessageText, []byte("stale")))
	sconn2 := srv.NextConn(t, waitFor)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	require.NoError(t, c.SendText(context.Background(), "fresh"))
	assert.Equal(t, "fresh", receiveText(t, sconn2))
	assert.Empty(t, sconn2.Received()[1:], "nothing from the stale Conn reached the new connection")
}

// ---- TLS ----

func TestTLSWithTrustedCertificate(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t, mocks.WithTLS(), mocks.WithEcho())
	require.True(t, strings.HasPrefix(srv.URL(), "wss://"))
	cfg := fastConfig()
	cfg.Dialer = &websocket.Dialer{TLSClientConfig: srv.TLSConfig()}
	c, events, ev, sconn := connect(t, srv, cfg)
	require.NoError(t, c.SendText(context.Background(), "secure"))
	msg := testkit.WaitEvent[resocket.Message](t, events, waitFor)
	assert.Equal(t, ev.ConnID, msg.ConnID)
	assert.Equal(t, "secure", string(msg.Data))

	// And again after a drop.
	sconn.Drop()
	again := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.NotEqual(t, ev.ConnID, again.ConnID)
	assert.Nil(t, cfg.Dialer.TLSClientConfig.ClientSessionCache, "the caller's Dialer is not modified")
}

func TestTLSUntrustedCertificateGivesUp(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t, mocks.WithTLS())
	_, events := newClient(t, srv.URL(), fastConfig())
	evs, closed := events.Drain(t, waitFor)
	dfs := testkit.Only[resocket.DialFailed](evs)
	require.Len(t, dfs, 1, testkit.DescribeAll(evs))
	assert.Equal(t, resocket.StatusTLSHandshake, dfs[0].Disconnect.Code)
	assert.Error(t, dfs[0].Disconnect.Err)
	assert.Equal(t, resocket.GiveUp, dfs[0].Decision.Action)
	assert.ErrorIs(t, closed.Err, resocket.ErrGaveUp)
	assert.Empty(t, srv.Conns())
}
