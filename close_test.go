package resocket_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestCloseSendsCodeAndReason(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, events, conn, sconn := connect(t, srv, fastConfig())
	require.NoError(t, closeClient(t, c, 4001, "bye now"))
	assert.Equal(t, resocket.StateClosed, c.State())
	assert.NoError(t, c.Err())
	testkit.WaitClosed(t, c.Done(), waitFor, "Done")

	testkit.WaitClosed(t, sconn.Done(), waitFor, "the server's connection")
	code, reason, ok := sconn.CloseReceived()
	require.True(t, ok, "no close frame reached the server")
	assert.Equal(t, 4001, code)
	assert.Equal(t, "bye now", reason)

	evs, closed := events.Drain(t, waitFor)
	disc := testkit.Only[resocket.Disconnected](evs)
	require.Len(t, disc, 1, testkit.DescribeAll(evs))
	assert.Equal(t, conn.ConnID, disc[0].ConnID)
	assert.Equal(t, resocket.Decision{Action: resocket.Stop}, disc[0].Decision)
	assert.NoError(t, closed.Err)
	assert.Empty(t, testkit.Only[resocket.Reconnecting](evs), "no reconnect after Close")
}

func TestCloseRejectsInvalidArguments(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, _, sconn := connect(t, srv, fastConfig())
	for _, code := range []resocket.StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, -1} {
		assert.ErrorIs(t, closeClient(t, c, code, ""), resocket.ErrInvalidCloseCode, "code %d", int(code))
	}
	assert.ErrorIs(t, closeClient(t, c, resocket.StatusNormalClosure, strings.Repeat("r", 124)), resocket.ErrInvalidReason)
	assert.ErrorIs(t, closeClient(t, c, resocket.StatusNormalClosure, "\xff\xfe"), resocket.ErrInvalidReason)

	// The client was left as it was.
	assert.Equal(t, resocket.StateConnected, c.State())
	require.NoError(t, c.SendText(context.Background(), "still here"))
	assert.Equal(t, "still here", receiveText(t, sconn))
	_, _, closeSent := sconn.CloseReceived()
	assert.False(t, closeSent)

	// The longest valid reason is accepted.
	require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, strings.Repeat("r", 123)))
	testkit.WaitClosed(t, sconn.Done(), waitFor, "the server's connection")
	_, reason, _ := sconn.CloseReceived()
	assert.Len(t, reason, 123)
}

func TestCloseTwiceAndAfterTerminate(t *testing.T) {
	t.Parallel()
	t.Run("close twice", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		c, _, _, _ := connect(t, srv, fastConfig())
		require.NoError(t, closeClient(t, c, resocket.StatusNormalClosure, ""))
		assert.ErrorIs(t, closeClient(t, c, resocket.StatusNormalClosure, ""), resocket.ErrClosed)
		assert.NoError(t, c.Err())
	})
	t.Run("close after terminate", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		c, _, _, _ := connect(t, srv, fastConfig())
		terminate(t, c)
		terminate(t, c) // again: harmless
		assert.ErrorIs(t, closeClient(t, c, resocket.StatusNormalClosure, ""), resocket.ErrClosed)
		assert.NoError(t, c.Err())
	})
	t.Run("close after give up", func(t *testing.T) {
		t.Parallel()
		srv := mocks.NewServer(t)
		srv.Refuse(http.StatusNotFound, "", -1)
		c, _ := newClient(t, srv.URL(), fastConfig())
		testkit.WaitClosed(t, c.Done(), waitFor, "Done")
		assert.ErrorIs(t, closeClient(t, c, resocket.StatusNormalClosure, ""), resocket.ErrClosed)
		assert.ErrorIs(t, c.Err(), resocket.ErrGaveUp, "Close after the end must not change Err")
	})
}

func TestCloseAgainstSilentServerTakesCloseTimeout(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.CloseTimeout = 300 * time.Millisecond
	c, _, _, sconn := connect(t, srv, cfg)
	sconn.GoSilent()
	var err error
	took := testkit.ReturnsWithin(t, cfg.CloseTimeout+2*time.Second, "Close", func() { err = c.Close(resocket.StatusGoingAway, "") })
	assert.NoError(t, err)
	assert.GreaterOrEqual(t, took, cfg.CloseTimeout-50*time.Millisecond, "Close gave up before CloseTimeout")
	assert.NoError(t, c.Err())
	assert.Equal(t, resocket.StateClosed, c.State())
}

func TestTerminateSendsNoCloseFrame(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	c, _, _, sconn := connect(t, srv, fastConfig())
	testkit.ReturnsWithin(t, time.Second, "Terminate", c.Terminate)
	testkit.WaitClosed(t, c.Done(), waitFor, "Done")
	testkit.WaitClosed(t, c.Events(), waitFor, "Events")
	testkit.WaitClosed(t, sconn.Done(), waitFor, "the server's connection")
	_, _, ok := sconn.CloseReceived()
	assert.False(t, ok, "Terminate sent a close frame")
	assert.NoError(t, c.Err())
	assert.Equal(t, resocket.StateClosed, c.State())
}

func TestCloseAndTerminateInterruptBackoff(t *testing.T) {
	t.Parallel()
	for _, terminate := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "terminate"}[terminate], func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			cfg := fastConfig()
			cfg.Backoff = constantBackoff(time.Hour)
			c, events, _, sconn := connect(t, srv, cfg)
			sconn.Drop()
			rec := testkit.WaitEvent[resocket.Reconnecting](t, events, waitFor)
			require.Equal(t, time.Hour, rec.Delay)
			testkit.ReturnsWithin(t, time.Second, "ending the client during a backoff wait", func() {
				if terminate {
					c.Terminate()
				} else {
					assert.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
				}
			})
			testkit.WaitClosed(t, c.Done(), time.Second, "Done")
			assert.NoError(t, c.Err())
			assert.Equal(t, 1, len(srv.Requests()), "no attempt after the client ended")
		})
	}
}

func TestCloseAndTerminateInterruptStalledHandshake(t *testing.T) {
	t.Parallel()
	// Each returns the server's URL and a wait for the client's attempt to
	// reach it.
	servers := map[string]func(t *testing.T) (string, func() bool){
		"server holds request": func(t *testing.T) (string, func() bool) {
			srv := mocks.NewServer(t)
			srv.StallHandshakes(true)
			return srv.URL(), func() bool { return srv.WaitRequests(1, waitFor) }
		},
		"server never answers TCP": func(t *testing.T) (string, func() bool) {
			srv := mocks.NewStallServer(t)
			return srv.URL(), func() bool { return srv.WaitAccepted(1, waitFor) }
		},
	}
	for name, start := range servers {
		for _, terminate := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/close", true: "/terminate"}[terminate], func(t *testing.T) {
				t.Parallel()
				url, reached := start(t)
				c, events := newClient(t, url, fastConfig())
				assertConnecting(t, events.Next(t, waitFor), 1)
				require.True(t, reached(), "the client never reached the server")
				testkit.ReturnsWithin(t, 2*time.Second, "ending the client during a stalled handshake", func() {
					if terminate {
						c.Terminate()
					} else {
						assert.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
					}
				})
				evs, _ := events.Drain(t, waitFor)
				assert.Empty(t, testkit.Only[resocket.DialFailed](evs), "the user's own close is not a failed attempt")
				assert.NoError(t, c.Err())
			})
		}
	}
}

func TestConcurrentCloseTerminateSend(t *testing.T) {
	t.Parallel()
	for run := range 5 {
		t.Run(strconv.Itoa(run), func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t, mocks.WithEcho())
			c, _, _, _ := connect(t, srv, fastConfig())
			var wg sync.WaitGroup
			var closeOK atomic.Int32
			start := make(chan struct{})
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					switch g % 4 {
					case 0:
						err := c.Close(resocket.StatusNormalClosure, "bye")
						if err == nil {
							closeOK.Add(1)
						} else {
							assert.ErrorIs(t, err, resocket.ErrClosed)
						}
					case 1:
						c.Terminate()
					default:
						for i := range 50 {
							_ = c.SendText(context.Background(), strconv.Itoa(i))
						}
					}
				}()
			}
			close(start)
			testkit.ReturnsWithin(t, waitFor, "concurrent Close, Terminate and Send", wg.Wait)
			testkit.WaitClosed(t, c.Done(), time.Second, "Done")
			testkit.WaitClosed(t, c.Events(), time.Second, "Events")
			assert.LessOrEqual(t, closeOK.Load(), int32(1), "more than one Close succeeded")
			assert.NoError(t, c.Err())
			assert.ErrorIs(t, c.SendText(context.Background(), "late"), resocket.ErrClosed)
		})
	}
}

// Nobody reads Events (capacity 1) while the server pushes messages: Close
// still returns within CloseTimeout plus a margin, and so does Terminate.
func TestCloseAndTerminateNeverBlockOnFullEvents(t *testing.T) {
	t.Parallel()
	for _, terminate := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "terminate"}[terminate], func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			cfg := fastConfig()
			cfg.EventBuffer = 1
			cfg.CloseTimeout = 300 * time.Millisecond
			c, _ := newClient(t, srv.URL(), cfg)
			sconn := srv.NextConn(t, waitFor)
			pushed := pushMessages(t, sconn, 1<<10)
			// Let the server fill the pipe.
			require.Eventually(t, func() bool { return pushed.Load() >= 50 }, waitFor, 5*time.Millisecond)
			testkit.ReturnsWithin(t, cfg.CloseTimeout+2*time.Second, "ending with a full Events channel", func() {
				if terminate {
					c.Terminate()
				} else {
					assert.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
				}
			})
			testkit.WaitClosed(t, c.Done(), time.Second, "Done")
			testkit.WaitClosed(t, c.Events(), time.Second, "Events")
			assert.NoError(t, c.Err())
		})
	}
}

// pushMessages makes the server send messages of size bytes until a write
// fails (or a bound is reached); the test waits for it at cleanup.
func pushMessages(t *testing.T, sconn *mocks.Conn, size int) *atomic.Int64 {
	var n atomic.Int64
	done := make(chan struct{})
	stop := make(chan struct{})
	payload := []byte(strings.Repeat("m", size))
	go func() {
		defer close(done)
		for range 100_000 {
			select {
			case <-stop:
				return
			default:
			}
			if sconn.Send(websocket.TextMessage, payload) != nil {
				return
			}
			n.Add(1)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done // bounded by the server's 5s write deadline
	})
	return &n
}

// Close while a Send is blocked on a socket the server stopped reading:
// Close cannot write its frame, so it cuts the connection at CloseTimeout,
// and the blocked Send returns.
func TestCloseWithSendBlockedOnSocket(t *testing.T) {
	t.Parallel()
	for _, terminate := range []bool{false, true} {
		t.Run(map[bool]string{false: "close", true: "terminate"}[terminate], func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t)
			cfg := fastConfig()
			cfg.CloseTimeout = 300 * time.Millisecond
			c, _, _, sconn := connect(t, srv, cfg)
			sconn.GoSilent()

			var sends atomic.Int64
			var lastErr atomic.Value
			senderDone := make(chan struct{})
			go func() {
				defer close(senderDone)
				big := make([]byte, 256<<10)
				for range 1000 {
					if err := c.Send(context.Background(), resocket.MessageBinary, big); err != nil {
						lastErr.Store(err)
						return
					}
					sends.Add(1)
				}
			}()
			waitProgressStops(t, &sends)

			testkit.ReturnsWithin(t, cfg.CloseTimeout+2*time.Second, "ending with a blocked Send", func() {
				if terminate {
					c.Terminate()
				} else {
					assert.NoError(t, c.Close(resocket.StatusNormalClosure, ""))
				}
			})
			testkit.WaitClosed(t, senderDone, 2*time.Second, "the blocked Send")
			assert.Error(t, lastErr.Load().(error))
			assert.NoError(t, c.Err())
		})
	}
}

// waitProgressStops waits (bounded) until n has not moved for 200ms: the
// sender is then blocked on the socket.
func waitProgressStops(t *testing.T, n *atomic.Int64) {
	t.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	last, still := int64(-1), 0
	for range 500 { // 10s
		<-ticker.C
		if v := n.Load(); v == last {
			still++
			if still == 10 {
				return
			}
		} else {
			last, still = v, 0
		}
	}
	t.Fatalf("the sender never blocked (%d sends)", n.Load())
}
