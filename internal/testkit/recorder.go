package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resocket/resocket"
)

// Stamped is an event and when the recorder took it.
type Stamped struct {
	At    time.Time
	Event resocket.Event
}

// Recorder keeps every event of one client, in order and timestamped, and
// lets a test wait, with a deadline, for the one it expects. Every wait
// fails the test with the recorded history when its deadline passes or the
// client ends first.
//
// A Recorder has a cursor for the test that reads events one after the
// other: Next, WaitEvent, Collect and Drain return events from the cursor
// on and move it past what they return. Await and Closed search by index
// and leave the cursor alone. The cursor is meant for one goroutine (the
// test's); everything else is safe for concurrent use.
type Recorder struct {
	start time.Time
	// pull, in Read mode, is the Events channel, read only while a test
	// waits; pullTurn (capacity 1) lets one waiter read it at a time.
	pull     <-chan resocket.Event
	pullTurn chan struct{}

	mu      sync.Mutex
	evs     []Stamped
	wake    chan struct{} // closed and replaced on every event
	ended   chan struct{} // closed once the source has ended
	isEnded bool
	cursor  int
}

func newRecorder() *Recorder {
	return &Recorder{start: time.Now(), wake: make(chan struct{}), ended: make(chan struct{})}
}

// Read returns a Recorder that reads c's Events channel only while the
// test waits for an event: between waits nothing reads it, so the test is
// a reader as slow as it chooses, and the client feels it (a full channel,
// then TCP backpressure). Timestamps are when the test read each event.
// The recording ends when the channel closes. t.Cleanup terminates c.
func Read(t testing.TB, c *resocket.Client) *Recorder {
	t.Helper()
	r := newRecorder()
	r.pull = c.Events()
	r.pullTurn = make(chan struct{}, 1)
	t.Cleanup(func() { terminate(t, c) })
	return r
}

// Record returns a Recorder that reads c's Events channel on a goroutine
// of its own, as fast as events come, so the client never waits on the
// test; timestamps are when each event came off the channel. The
// recording ends when the channel closes. t.Cleanup terminates c and waits
// (bounded) for that goroutine.
func Record(t testing.TB, c *resocket.Client) *Recorder {
	t.Helper()
	r := newRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range c.Events() {
			r.add(ev)
		}
		r.end()
	}()
	t.Cleanup(func() {
		terminate(t, c)
		WaitClosed(t, done, cleanupWithin, "the recorder's reader of Events")
	})
	return r
}

// NewRecorder returns a Recorder fed by its OnEvent method: set
// Config.OnEvent to rec.OnEvent. The recording ends with the first Closed.
func NewRecorder() *Recorder { return newRecorder() }

// OnEvent records ev; it ends the recording when ev is a Closed. It is
// meant for Config.OnEvent, so it never blocks and never fails a test:
// the client's goroutine calls it.
func (r *Recorder) OnEvent(ev resocket.Event) {
	r.add(ev)
	if _, ok := ev.(resocket.Closed); ok {
		r.end()
	}
}

// cleanupWithin bounds how long a cleanup waits for a client to end.
const cleanupWithin = 10 * time.Second

// terminate ends c at the end of a test, failing t if Terminate hangs.
func terminate(t testing.TB, c *resocket.Client) {
	ReturnsWithin(t, cleanupWithin, "Terminate at cleanup", c.Terminate)
}

func (r *Recorder) add(ev resocket.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, Stamped{At: time.Now(), Event: ev})
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

func (r *Recorder) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.isEnded {
		r.isEnded = true
		close(r.ended)
	}
}

// Ended returns a channel closed once the recording has ended: the Events
// channel closed (Read, Record) or a Closed came (NewRecorder). In Read
// mode it closes only once a wait has read the channel to its end.
func (r *Recorder) Ended() <-chan struct{} { return r.ended }

// Len returns how many events have been recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// Events returns the events recorded so far, in order.
func (r *Recorder) Events() []resocket.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]resocket.Event, len(r.evs))
	for i, s := range r.evs {
		out[i] = s.Event
	}
	return out
}

// Stamped returns the events recorded so far with when each was taken, in
// order.
func (r *Recorder) Stamped() []Stamped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Stamped(nil), r.evs...)
}

// History describes the events recorded so far, one a line, with the
// time since the recorder started; runs of messages are shortened as
// DescribeAll does. Failure messages of every wait end with it.
func (r *Recorder) History() string {
	evs := r.Stamped()
	all := make([]resocket.Event, len(evs))
	lines := make([]string, len(evs))
	for i, s := range evs {
		all[i] = s.Event
		lines[i] = fmt.Sprintf("+%-9s %s", s.At.Sub(r.start).Round(time.Millisecond), Describe(s.Event))
	}
	return joinLines(collapse(all, lines))
}

// Await waits until an event at index from or later matches, and returns
// its index and the event; it does not move the cursor. It fails t if
// none has come within timeout or the recording ended without one. In
// Read mode it reads the channel while it waits.
func (r *Recorder) Await(t testing.TB, from int, timeout time.Duration, match func(resocket.Event) bool) (int, Stamped) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for i := max(from, 0); i < len(r.evs); i++ {
			if match(r.evs[i].Event) {
				s := r.evs[i]
				r.mu.Unlock()
				return i, s
			}
		}
		from = len(r.evs)
		wake, ended := r.wake, r.isEnded
		r.mu.Unlock()
		if ended {
			t.Fatalf("testkit: the client's events ended before the awaited one; recorded:\n%s", r.History())
			return -1, Stamped{}
		}
		if !r.wait(wake, timer.C) {
			t.Fatalf("testkit: no awaited event within %v; recorded:\n%s", timeout, r.History())
			return -1, Stamped{}
		}
	}
}

// wait waits for something new: an event or the end. In Read mode it
// reads the channel itself, unless another waiter is reading it. It
// reports false when deadline fired first.
func (r *Recorder) wait(wake <-chan struct{}, deadline <-chan time.Time) bool {
	if r.pull == nil {
		select {
		case <-wake:
		case <-r.ended:
		case <-deadline:
			return false
		}
		return true
	}
	select {
	case r.pullTurn <- struct{}{}:
		defer func() { <-r.pullTurn }()
	case <-wake:
		return true
	case <-deadline:
		return false
	}
	select {
	case ev, ok := <-r.pull:
		if ok {
			r.add(ev)
		} else {
			r.end()
		}
		return true
	case <-wake: // a previous turn recorded something
		return true
	case <-deadline:
		return false
	}
}

// Next returns the event at the cursor, waiting for it up to timeout, and
// moves the cursor past it. It fails t on timeout or when the recording
// ends first.
func (r *Recorder) Next(t testing.TB, timeout time.Duration) resocket.Event {
	t.Helper()
	evs := r.Collect(t, timeout, func(resocket.Event) bool { return true })
	if len(evs) == 0 {
		return nil
	}
	return evs[0]
}

// WaitEvent returns the first event of type T at or after r's cursor,
// waiting for it up to timeout, and moves the cursor past it; the events
// before it are passed over (Collect returns them). It fails t on timeout
// or when the recording ends first.
func WaitEvent[T resocket.Event](t testing.TB, r *Recorder, timeout time.Duration) T {
	t.Helper()
	evs := r.Collect(t, timeout, Is[T])
	if len(evs) == 0 {
		var zero T
		return zero
	}
	return evs[len(evs)-1].(T)
}

// Collect returns the events from the cursor up to and including the
// first that until matches, waiting for it up to timeout, and moves the
// cursor past it. It fails t on timeout or when the recording ends first.
func (r *Recorder) Collect(t testing.TB, timeout time.Duration, until func(resocket.Event) bool) []resocket.Event {
	t.Helper()
	r.mu.Lock()
	from := r.cursor
	r.mu.Unlock()
	i, _ := r.Await(t, from, timeout, until)
	if i < 0 {
		return nil // t's Fatalf did not stop the goroutine
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]resocket.Event, 0, i+1-from)
	for _, s := range r.evs[from : i+1] {
		out = append(out, s.Event)
	}
	r.cursor = i + 1
	return out
}

// Drain waits up to timeout for the recording to end and returns the
// events from the cursor on, and the Closed event; the cursor moves to
// the end. It fails t on timeout, and unless the whole recording holds
// exactly one Closed, as its last event.
func (r *Recorder) Drain(t testing.TB, timeout time.Duration) ([]resocket.Event, resocket.Closed) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		wake, ended := r.wake, r.isEnded
		r.mu.Unlock()
		if ended {
			break
		}
		if !r.wait(wake, timer.C) {
			t.Fatalf("testkit: the client's events did not end within %v; recorded:\n%s", timeout, r.History())
			return nil, resocket.Closed{}
		}
	}
	r.mu.Lock()
	all := make([]resocket.Event, len(r.evs))
	for i, s := range r.evs {
		all[i] = s.Event
	}
	from := r.cursor
	r.cursor = len(all)
	r.mu.Unlock()
	closed, err := lastClosed(all)
	if err != nil {
		t.Fatalf("testkit: %v; recorded:\n%s", err, r.History())
	}
	return all[from:], closed
}

// lastClosed checks that evs hold exactly one Closed, as the last event,
// and returns it.
func lastClosed(evs []resocket.Event) (resocket.Closed, error) {
	var closed []int
	for i, ev := range evs {
		if _, ok := ev.(resocket.Closed); ok {
			closed = append(closed, i)
		}
	}
	switch {
	case len(closed) == 0:
		return resocket.Closed{}, fmt.Errorf("the events ended without a Closed")
	case len(closed) > 1:
		return resocket.Closed{}, fmt.Errorf("%d Closed events, at %s", len(closed), strings.Trim(fmt.Sprint(closed), "[]"))
	case closed[0] != len(evs)-1:
		return resocket.Closed{}, fmt.Errorf("Closed is event %d of %d, not the last", closed[0]+1, len(evs))
	}
	return evs[len(evs)-1].(resocket.Closed), nil
}

// Closed waits up to timeout for the Closed event and returns it, without
// moving the cursor. It fails t on timeout or when the recording ends
// without one.
func (r *Recorder) Closed(t testing.TB, timeout time.Duration) resocket.Closed {
	t.Helper()
	_, s := r.Await(t, 0, timeout, Is[resocket.Closed])
	closed, _ := s.Event.(resocket.Closed)
	return closed
}

// CloseAndDrain calls c.Close(code, reason) on a goroutine of its own
// while it drains r (see Drain), so that Close never waits for a reader
// of Events, and returns the events from the cursor on, the Closed event
// and what Close returned. It fails t unless both are done within timeout.
func CloseAndDrain(t testing.TB, c *resocket.Client, r *Recorder, code resocket.StatusCode, reason string,
	timeout time.Duration,
) ([]resocket.Event, resocket.Closed, error) {
	t.Helper()
	closeErr := make(chan error, 1)
	go func() { closeErr <- c.Close(code, reason) }()
	evs, closed := r.Drain(t, timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-closeErr:
		return evs, closed, err
	case <-timer.C:
		t.Fatalf("testkit: Close did not return within %v after the events ended", timeout)
		return evs, closed, nil
	}
}
