package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT records what a kit function reports, so that the tests can check
// that it fails when it should. Fatalf ends the goroutine, as testing's
// does; run gives each use a goroutine of its own.
type fakeT struct {
	testing.TB // nil: any other method panics
	mu         sync.Mutex
	errs       []string
	fatal      bool
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeT) report() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.errs, "\n")
}

// run calls fn with a fakeT on a goroutine of its own and waits for it.
func run(t *testing.T, fn func(testing.TB)) *fakeT {
	t.Helper()
	f := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	testkit.WaitClosed(t, done, testkit.WaitFor, "the kit function under test")
	return f
}

func TestCheckClassifiesEveryMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    testkit.Delivery
		want testkit.Report
	}{
		{
			name: "all delivered",
			d:    testkit.Delivery{Accepted: []int{1, 2, 3}, Received: []int{1, 2, 3}},
			want: testkit.Report{Delivered: []int{1, 2, 3}},
		},
		{
			name: "some handed back, one refused and not received",
			d:    testkit.Delivery{Accepted: []int{1, 3, 4}, Refused: []int{2}, Received: []int{1}, Unsent: []int{3, 4}},
			want: testkit.Report{Delivered: []int{1}, HandedBack: []int{3, 4}},
		},
		{
			name: "refused yet received",
			d:    testkit.Delivery{Accepted: []int{1}, Refused: []int{2}, Received: []int{1, 2}},
			want: testkit.Report{Delivered: []int{1}, RefusedReceived: []int{2}},
		},
		{
			name: "lost",
			d:    testkit.Delivery{Accepted: []int{1, 2, 3}, Received: []int{1, 3}},
			want: testkit.Report{Delivered: []int{1, 3}, Lost: []int{2}},
		},
		{
			name: "duplicate",
			d:    testkit.Delivery{Accepted: []int{1, 2}, Received: []int{1, 2, 2}},
			want: testkit.Report{Delivered: []int{1, 2}, Violations: []string{"message 2 received more than once"}},
		},
		{
			name: "out of order",
			d:    testkit.Delivery{Accepted: []int{1, 2}, Received: []int{2, 1}},
			want: testkit.Report{Delivered: []int{1, 2}, Violations: []string{"message 1 received after message 2"}},
		},
		{
			name: "received and handed back",
			d:    testkit.Delivery{Accepted: []int{1}, Received: []int{1}, Unsent: []int{1}},
			want: testkit.Report{Violations: []string{"message 1 both received and handed back"}},
		},
		{
			name: "never sent",
			d:    testkit.Delivery{Accepted: []int{1}, Received: []int{1, 7}, Unsent: []int{8}},
			want: testkit.Report{Delivered: []int{1}, Violations: []string{
				"message 7 received but never sent", "message 8 handed back but never sent",
			}},
		},
		{
			name: "refused yet handed back",
			d:    testkit.Delivery{Refused: []int{1}, Unsent: []int{1}},
			want: testkit.Report{Violations: []string{"message 1 handed back though Send refused it"}},
		},
		{
			name: "handed back out of order",
			d:    testkit.Delivery{Accepted: []int{1, 2}, Unsent: []int{2, 1}},
			want: testkit.Report{HandedBack: []int{1, 2}, Violations: []string{"message 1 handed back after message 2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, testkit.Check(tt.d))
		})
	}
}

func TestExactlyOnceInOrderFailsOnLossAndViolations(t *testing.T) {
	t.Parallel()
	ok := run(t, func(t testing.TB) {
		testkit.ExactlyOnceInOrder(t, testkit.Delivery{Accepted: []int{1, 2}, Received: []int{1}, Unsent: []int{2}})
	})
	assert.Empty(t, ok.report())

	bad := run(t, func(t testing.TB) {
		testkit.ExactlyOnceInOrder(t, testkit.Delivery{Accepted: []int{1, 2, 3}, Received: []int{3, 1, 1}})
	})
	assert.Contains(t, bad.report(), "message 1 received after message 3")
	assert.Contains(t, bad.report(), "message 1 received more than once")
	assert.Contains(t, bad.report(), "never received nor handed back: [2]")
}

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 42, 999999, 1234567} {
		seq, ok := testkit.ParseSeq([]byte(testkit.Payload(n)))
		assert.True(t, ok)
		assert.Equal(t, n, seq)
	}
	assert.Equal(t, "m000042", testkit.Payload(42))
	for _, bad := range []string{"", "m", "m12", "x000001", "m00000a", "m-00001"} {
		_, ok := testkit.ParseSeq([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}
	f := run(t, func(t testing.TB) { testkit.Seqs(t, [][]byte{[]byte("m000001"), []byte("hello")}) })
	assert.Contains(t, f.report(), `"hello" is not numbered`)
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		ev   resocket.Event
		want string
	}{
		{resocket.Connecting{Attempt: 2}, "Connecting{attempt 2}"},
		{resocket.Connected{ConnID: 7, Attempt: 1, Subprotocol: "v2"}, `Connected{conn 7 attempt 1 subprotocol "v2"}`},
		{resocket.Reconnecting{Attempt: 3, Delay: time.Second}, "Reconnecting{attempt 3 after 1s}"},
		{resocket.Closed{Err: boom, Unsent: make([]resocket.Message, 2)}, "Closed{err boom, 2 unsent}"},
		{
			resocket.Disconnected{ConnID: 7, Disconnect: resocket.Disconnect{Code: 1013, Reason: "busy", Attempt: 1},
				Decision: resocket.Decision{Action: resocket.Reconnect, MinDelay: 5 * time.Second}},
			`Disconnected{conn 7 code 1013 (try again later) reason "busy" attempt 1 -> reconnect (at least 5s)}`,
		},
		{
			resocket.DialFailed{Disconnect: resocket.Disconnect{Code: 1006, HTTPStatus: 503, RetryAfter: time.Second, Err: boom, Attempt: 2},
				Decision: resocket.Decision{Action: resocket.GiveUp}},
			`DialFailed{code 1006 (abnormal closure) http 503 retry-after 1s err "boom" attempt 2 -> give up}`,
		},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, testkit.Describe(tt.ev))
	}
	long := resocket.Message{ConnID: 1, Type: resocket.MessageText, Data: []byte(strings.Repeat("x", 40))}
	assert.Equal(t, `Message{conn 1 text 40 bytes "`+strings.Repeat("x", 32)+`..."}`, testkit.Describe(long))
	assert.Equal(t, "<nil event>", testkit.Describe(nil))
}

func TestDescribeAllShortensRunsOfMessages(t *testing.T) {
	t.Parallel()
	evs := []resocket.Event{resocket.Connecting{Attempt: 1}}
	for i := range 10 {
		evs = append(evs, resocket.Message{Data: []byte(testkit.Payload(i))})
	}
	evs = append(evs, resocket.Closed{})
	lines := strings.Split(testkit.DescribeAll(evs), "\n")
	require.Len(t, lines, 1+2+1+2+1, testkit.DescribeAll(evs))
	assert.Contains(t, lines[1], "m000000")
	assert.Contains(t, lines[3], "6 more messages")
	assert.Contains(t, lines[5], "m000009")
	assert.Equal(t, "  (no events)", testkit.DescribeAll(nil))
	assert.Equal(t, []string{"Connecting", "Message"}, testkit.Types(evs[:2]))
	assert.Len(t, testkit.Only[resocket.Message](evs), 10)
}

// feed hands events to a recorder's OnEvent from another goroutine, as a
// client would.
func feed(rec *testkit.Recorder, evs ...resocket.Event) {
	go func() {
		for _, ev := range evs {
			rec.OnEvent(ev)
		}
	}()
}

func TestRecorderCursorAndAwait(t *testing.T) {
	t.Parallel()
	rec := testkit.NewRecorder()
	feed(rec,
		resocket.Connecting{Attempt: 1},
		resocket.Connected{ConnID: 1, Attempt: 1},
		resocket.Message{ConnID: 1, Data: []byte("a")},
		resocket.Message{ConnID: 1, Data: []byte("b")},
		resocket.Disconnected{ConnID: 1},
		resocket.Closed{},
	)
	assert.Equal(t, resocket.Connecting{Attempt: 1}, rec.Next(t, testkit.WaitFor))
	conn := testkit.WaitEvent[resocket.Connected](t, rec, testkit.WaitFor)
	assert.Equal(t, uint64(1), conn.ConnID)
	// Await searches by index and leaves the cursor alone.
	i, s := rec.Await(t, 0, testkit.WaitFor, testkit.Is[resocket.Disconnected])
	assert.Equal(t, 4, i)
	assert.False(t, s.At.IsZero())
	evs := rec.Collect(t, testkit.WaitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == "b"
	})
	assert.Equal(t, []string{"Message", "Message"}, testkit.Types(evs))
	rest, closed := rec.Drain(t, testkit.WaitFor)
	assert.Equal(t, []string{"Disconnected", "Closed"}, testkit.Types(rest))
	assert.NoError(t, closed.Err)
	assert.Equal(t, resocket.Closed{}, rec.Closed(t, testkit.WaitFor))
	testkit.WaitClosed(t, rec.Ended(), testkit.WaitFor, "Ended")
	assert.Equal(t, 6, rec.Len())
	assert.Len(t, rec.Stamped(), 6)
	assert.Contains(t, rec.History(), "Disconnected{conn 1")
}

func TestRecorderWaitsFail(t *testing.T) {
	t.Parallel()
	t.Run("timeout", func(t *testing.T) {
		rec := testkit.NewRecorder()
		rec.OnEvent(resocket.Connecting{Attempt: 1})
		f := run(t, func(t testing.TB) { testkit.WaitEvent[resocket.Connected](t, rec, 10*time.Millisecond) })
		assert.True(t, f.fatal)
		assert.Contains(t, f.report(), "no awaited event within 10ms")
		assert.Contains(t, f.report(), "Connecting{attempt 1}", "the history is shown")
	})
	t.Run("ended first", func(t *testing.T) {
		rec := testkit.NewRecorder()
		rec.OnEvent(resocket.Closed{})
		f := run(t, func(t testing.TB) { testkit.WaitEvent[resocket.Connected](t, rec, testkit.WaitFor) })
		assert.Contains(t, f.report(), "ended before the awaited one")
	})
	t.Run("drain without end", func(t *testing.T) {
		rec := testkit.NewRecorder()
		f := run(t, func(t testing.TB) { rec.Drain(t, 10*time.Millisecond) })
		assert.Contains(t, f.report(), "did not end within 10ms")
	})
	t.Run("Closed not last", func(t *testing.T) {
		rec := testkit.NewRecorder()
		rec.OnEvent(resocket.Connecting{Attempt: 1})
		rec.OnEvent(resocket.Closed{})
		rec.OnEvent(resocket.Connecting{Attempt: 2})
		f := run(t, func(t testing.TB) { rec.Drain(t, testkit.WaitFor) })
		assert.Contains(t, f.report(), "Closed is event 2 of 3, not the last")
	})
	t.Run("two Closed", func(t *testing.T) {
		rec := testkit.NewRecorder()
		rec.OnEvent(resocket.Closed{})
		rec.OnEvent(resocket.Closed{})
		f := run(t, func(t testing.TB) { rec.Drain(t, testkit.WaitFor) })
		assert.Contains(t, f.report(), "2 Closed events")
	})
}

// Read leaves the channel unread between waits: the client feels a slow
// reader. Record reads everything at once.
func TestReadAndRecordAgainstAClient(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"read", "record"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := mocks.NewServer(t, mocks.WithEcho())
			c := testkit.NewClient(t, srv.URL(), resocket.Config{EventBuffer: 1})
			var rec *testkit.Recorder
			if mode == "read" {
				rec = testkit.Read(t, c)
			} else {
				rec = testkit.Record(t, c)
			}
			testkit.WaitEvent[resocket.Connected](t, rec, testkit.WaitFor)
			for i := range 5 {
				require.NoError(t, c.SendText(context.Background(), testkit.Payload(i)))
			}
			var got []resocket.Message
			for range 5 {
				got = append(got, testkit.WaitEvent[resocket.Message](t, rec, testkit.WaitFor))
			}
			assert.Equal(t, []int{0, 1, 2, 3, 4}, testkit.MessageSeqs(t, got))
			// With one slot in Events and nobody reading, Close would wait
			// CloseTimeout for a reader: it runs while the recorder drains.
			evs, closed, err := testkit.CloseAndDrain(t, c, rec, resocket.StatusNormalClosure, "", testkit.WaitFor)
			assert.NoError(t, err)
			assert.NoError(t, closed.Err)
			assert.Equal(t, "Closed", testkit.Types(evs)[len(evs)-1])
		})
	}
}

func TestReturnsWithinAndWaitClosedFail(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := run(t, func(t testing.TB) {
		testkit.ReturnsWithin(t, 10*time.Millisecond, "a blocked call", func() { <-release })
	})
	close(release) // the blocked call's goroutine ends: no leak
	assert.Contains(t, f.report(), "a blocked call did not return within 10ms")

	never := make(chan int)
	f = run(t, func(t testing.TB) { testkit.WaitClosed(t, never, 10*time.Millisecond, "never") })
	assert.Contains(t, f.report(), "never not closed within 10ms")

	values := make(chan int, 1)
	values <- 7
	assert.Equal(t, 7, testkit.Receive(t, values, testkit.WaitFor, "a value"))
	f = run(t, func(t testing.TB) { testkit.Receive(t, values, 10*time.Millisecond, "another value") })
	assert.Contains(t, f.report(), "another value: nothing within 10ms")
	close(values)
	f = run(t, func(t testing.TB) { testkit.Receive(t, values, testkit.WaitFor, "a closed channel") })
	assert.Contains(t, f.report(), "a closed channel: closed without a value")

	took := testkit.ReturnsWithin(t, testkit.WaitFor, "a quick call", func() {})
	assert.Less(t, took, testkit.WaitFor)
}

func TestClosedPortRefuses(t *testing.T) {
	t.Parallel()
	addr := testkit.ClosedPort(t)
	assert.True(t, strings.HasPrefix(addr, "127.0.0.1:"))
	c := testkit.NewClient(t, "ws://"+addr, resocket.Config{})
	rec := testkit.Read(t, c)
	df := testkit.WaitEvent[resocket.DialFailed](t, rec, testkit.WaitFor)
	assert.Equal(t, resocket.StatusAbnormalClosure, df.Disconnect.Code)
	assert.Error(t, df.Disconnect.Err)
}

// ClientGoroutines sees every client in the process, so this test does not
// run in parallel: Go runs it before the parallel tests, whose clients
// would show in its snapshots.
func TestClientGoroutinesAtTheInstant(t *testing.T) {
	srv := mocks.NewServer(t)
	c := testkit.NewClient(t, srv.URL(), resocket.Config{})
	rec := testkit.Record(t, c)
	testkit.WaitEvent[resocket.Connected](t, rec, testkit.WaitFor)

	running := testkit.ClientGoroutines()
	require.NotEmpty(t, running, "a connected client has goroutines")
	assert.Contains(t, strings.Join(running, "\n\n"), "github.com/resocket/resocket.(*Client).run(", "the loop is among them")
	for _, g := range running {
		assert.NotContains(t, g, "testkit_test.TestClientGoroutinesAtTheInstant",
			"the test's own goroutine is not the client's")
	}
	f := run(t, func(t testing.TB) { testkit.NoClientGoroutines(t, "while connected") })
	assert.True(t, f.fatal)
	assert.Contains(t, f.report(), "while connected: ")
	assert.Contains(t, f.report(), "goroutines of the client are still running")
	assert.NotEmpty(t, testkit.ClientGoroutinesLeft())

	var left []string
	testkit.ReturnsWithin(t, testkit.WaitFor, "Terminate", func() {
		c.Terminate()
		left = testkit.ClientGoroutinesLeft()
	})
	testkit.NoGoroutinesLeft(t, "Terminate returned", left)
	testkit.NoClientGoroutines(t, "later")
	assert.Empty(t, testkit.ClientGoroutines())
}
