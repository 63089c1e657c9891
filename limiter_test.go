package resocket_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// fakeLimiter is a resocket.Limiter that records each Wait and answers as
// its answer func says (nil: at once, no error).
type fakeLimiter struct {
	answer  func(ctx context.Context, call int) error
	entered chan int // receives the number of each call as it starts (buffered)

	mu    sync.Mutex
	calls int
}

func newFakeLimiter(answer func(ctx context.Context, call int) error) *fakeLimiter {
	return &fakeLimiter{answer: answer, entered: make(chan int, 100)}
}

func (l *fakeLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	l.calls++
	call := l.calls
	l.mu.Unlock()
	select {
	case l.entered <- call:
	default:
	}
	if l.answer == nil {
		return nil
	}
	return l.answer(ctx, call)
}

func (l *fakeLimiter) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// blockUntilCancelled is a Limiter answer that never lets an attempt go.
func blockUntilCancelled(ctx context.Context, _ int) error {
	<-ctx.Done()
	return ctx.Err()
}

// Wait is called exactly once before every attempt, and before the
// attempt reaches the server.
func TestDialLimiterWaitedOncePerAttempt(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", 3)
	var requestsAtWait []int
	lim := newFakeLimiter(func(context.Context, int) error {
		requestsAtWait = append(requestsAtWait, len(srv.Requests())) // on the client's goroutine only
		return nil
	})
	cfg := fastConfig()
	cfg.DialLimiter = lim
	c, events := newClient(t, srv.URL(), cfg)
	evs := events.Collect(t, waitFor, testkit.Is[resocket.Connected])

	connecting := testkit.Only[resocket.Connecting](evs)
	require.Len(t, connecting, 4, testkit.DescribeAll(evs))
	assert.Equal(t, 4, lim.Calls(), "one Wait per attempt")
	assert.Equal(t, 4, c.Stats().Attempts)
	assert.Len(t, srv.Requests(), 4)
	assert.Equal(t, []int{0, 1, 2, 3}, requestsAtWait, "each Wait comes before its attempt's request")
}

// A Wait error fails the attempt; the policy decides what follows.
func TestDialLimiterErrorFailsTheAttempt(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	denied := errors.New("over the fleet's dial budget")
	lim := newFakeLimiter(func(_ context.Context, call int) error {
		if call == 1 {
			return denied
		}
		return nil
	})
	cfg := fastConfig()
	cfg.DialLimiter = lim
	_, events := newClient(t, srv.URL(), cfg)
	evs := events.Collect(t, waitFor, testkit.Is[resocket.Connected])
	require.Equal(t, []string{"Connecting", "DialFailed", "Reconnecting", "Connecting", "Connected"},
		testkit.Types(evs), testkit.DescribeAll(evs))
	df := evs[1].(resocket.DialFailed)
	assert.ErrorIs(t, df.Disconnect.Err, denied)
	assert.Equal(t, resocket.StatusAbnormalClosure, df.Disconnect.Code)
	assert.Equal(t, resocket.Reconnect, df.Decision.Action)
	assert.Len(t, srv.Requests(), 1, "the refused attempt never dialed")
}

// The ctx Wait gets is the client's: Close and Terminate cancel it, and
// return once Wait has returned and the client has ended.
func TestCloseAndTerminateInterruptDialLimiter(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"Close", "Terminate"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			lim := newFakeLimiter(blockUntilCancelled)
			cfg := fastConfig()
			cfg.DialLimiter = lim
			c, events := newClient(t, srv.URL(), cfg)
			testkit.Receive(t, lim.entered, waitFor, "a call of Wait")
			testkit.ReturnsWithin(t, waitFor, how, func() {
				if how == "Close" {
					assert.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
				} else {
					c.Terminate()
				}
			})
			select {
			case <-c.Done():
			default:
				t.Fatalf("%s returned before the client ended", how)
			}
			evs, closed := events.Drain(t, waitFor)
			assert.Equal(t, []string{"Connecting", "Closed"}, testkit.Types(evs), testkit.DescribeAll(evs))
			assert.NoError(t, closed.Err)
			assert.Empty(t, srv.Requests(), "nothing was dialed")
			assert.Equal(t, 1, lim.Calls())
		})
	}
}

// The limiter paces the retry at once after a refused credential too:
// Wait is called before every attempt, whatever the policy decided.
func TestDialLimiterPacesImmediateRetry(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusUnauthorized, "", 1)
	lim := newFakeLimiter(nil)
	cfg := fastConfig()
	cfg.DialLimiter = lim
	cfg.HeaderFunc = func(context.Context) (http.Header, error) { return nil, nil }
	_, events := newClient(t, srv.URL(), cfg)
	testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.Equal(t, 2, lim.Calls())
}
