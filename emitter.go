package resocket

import (
	"sync"
	"sync/atomic"
	"time"
)

// emitter hands events to the application, in order: to Config.OnEvent
// when set, otherwise on the Events channel. It is the only code that
// sends on that channel, and the only code that closes it.
//
// Messages wait for the reader: that wait is what slows reading from the
// socket when the reader falls behind (TCP backpressure). Lifecycle events
// never make the loop wait: when the channel is full they queue in a
// backlog that a short-lived pump goroutine delivers, in order, ahead of
// any later event. So a client whose events nobody reads yet (while Dial
// waits, say) keeps reconnecting. While idle it costs no goroutine.
//
// Once Close is called, a delivery waits for the reader no later than the
// close deadline; once Terminate is called, not at all: events the reader
// does not take then are dropped.
//
// lifecycle, tryMessage, message and last run on the loop goroutine; the
// pump runs on its own.
type emitter struct {
	ch      chan Event
	onEvent func(Event) // wrapped by the client as a callback

	closing    <-chan struct{}  // Close or Terminate was called
	terminated <-chan struct{}  // Terminate was called
	closeBy    func() time.Time // after closing: when to stop waiting for the reader

	mu      sync.Mutex
	pending []Event       // the backlog, delivered by the pump
	pumping atomic.Bool   // a pump runs; set under mu by lifecycle, cleared by the pump
	idle    chan struct{} // closed when the current pump has delivered everything
}

// lifecycle delivers ev without waiting for the reader.
func (e *emitter) lifecycle(ev Event) {
	if e.onEvent != nil {
		e.onEvent(ev)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.pumping.Load() {
		select {
		case e.ch <- ev:
			return
		default:
		}
		e.pumping.Store(true)
		e.idle = make(chan struct{})
		go e.pump(e.idle)
	}
	e.pending = append(e.pending, ev)
}

// tryMessage is the fast path of message: it delivers ev if the channel
// has room and no backlog is ahead of it, and reports whether it did.
func (e *emitter) tryMessage(ev Event) bool {
	if e.onEvent != nil || e.pumping.Load() {
		return false
	}
	select {
	case e.ch <- ev:
		return true
	default:
		return false
	}
}

// message delivers ev after the backlog, waiting for the reader.
func (e *emitter) message(ev Event) {
	if e.onEvent != nil {
		e.onEvent(ev)
		return
	}
	e.waitPump()
	e.send(ev)
}

// last delivers the final event after everything else, then closes the
// channel. Nothing may be emitted after it.
func (e *emitter) last(ev Event) {
	e.message(ev)
	close(e.ch)
}

// waitPump waits until no pump runs; the pump's deliveries are bounded
// after Close as ours are.
func (e *emitter) waitPump() {
	if !e.pumping.Load() {
		return
	}
	e.mu.Lock()
	idle := e.idle
	e.mu.Unlock()
	<-idle
}

// pump delivers the backlog in order, then ends. Closing idle is its last
// act, so that whoever waits for it knows the goroutine is gone.
func (e *emitter) pump(idle chan struct{}) {
	for {
		e.mu.Lock()
		if len(e.pending) == 0 {
			e.pending = nil
			e.pumping.Store(false)
			e.mu.Unlock()
			close(idle)
			return
		}
		ev := e.pending[0]
		e.pending[0] = nil
		e.pending = e.pending[1:]
		e.mu.Unlock()
		e.send(ev)
	}
}

// send puts ev on the channel, waiting for the reader until the close
// deadline after Close, and not at all after Terminate.
func (e *emitter) send(ev Event) {
	select {
	case e.ch <- ev:
		return
	default:
	}
	select {
	case e.ch <- ev:
		return
	case <-e.terminated:
	case <-e.closing:
		t := time.NewTimer(time.Until(e.closeBy()))
		defer t.Stop()
		select {
		case e.ch <- ev:
			return
		case <-e.terminated:
		case <-t.C:
		}
	}
	select { // the reader gave up on us: deliver only if there is room
	case e.ch <- ev:
	default:
	}
}
