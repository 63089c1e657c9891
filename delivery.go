package resocket

import (
	"sync"
	"sync/atomic"
	"time"
)

// How events reach the reader of Events. Messages wait for the reader:
// that wait is what slows reading from the socket when the reader falls
// behind. Lifecycle events never make the loop wait: when the channel is
// full they queue in a backlog that a short-lived pump goroutine delivers,
// in order, ahead of any later message. So a client whose events nobody
// reads yet (while Dial waits, say) keeps reconnecting.
type backlog struct {
	mu      sync.Mutex
	pending []Event
	pumping atomic.Bool   // a pump runs; set by the loop, cleared by the pump
	idle    chan struct{} // closed when the current pump has delivered everything
}

// emit delivers a lifecycle event without waiting for the reader.
func (c *Client) emit(ev Event) {
	if c.s.OnEvent != nil {
		c.s.OnEvent(ev)
		return
	}
	b := &c.backlog
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pumping.Load() {
		select {
		case c.events <- ev:
			return
		default:
		}
		b.pumping.Store(true)
		b.idle = make(chan struct{})
		go c.pump(b.idle)
	}
	b.pending = append(b.pending, ev)
}

// pump delivers the backlog in order, then ends.
func (c *Client) pump(idle chan struct{}) {
	b := &c.backlog
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.pending = nil
			b.pumping.Store(false)
			close(idle)
			b.mu.Unlock()
			return
		}
		ev := b.pending[0]
		b.pending[0] = nil
		b.pending = b.pending[1:]
		b.mu.Unlock()
		c.deliver(ev)
	}
}

// emitInOrder delivers ev, waiting for the reader, after everything the
// backlog holds: for messages and for the last event.
func (c *Client) emitInOrder(ev Event) {
	if c.s.OnEvent != nil {
		c.s.OnEvent(ev)
		return
	}
	b := &c.backlog
	if b.pumping.Load() {
		b.mu.Lock()
		idle := b.idle
		b.mu.Unlock()
		<-idle // the pump's deliveries are bounded after Close, as ours are
	}
	c.deliver(ev)
}

// deliver sends ev, waiting for the reader. After Close it waits no later
// than CloseTimeout from the Close; after Terminate, not at all.
func (c *Client) deliver(ev Event) {
	select {
	case c.events <- ev:
		return
	default:
	}
	select {
	case c.events <- ev:
	case <-c.abandon:
		c.emitNow(ev)
	case <-c.closing:
		t := time.NewTimer(time.Until(c.closeBy))
		defer t.Stop()
		select {
		case c.events <- ev:
		case <-c.abandon:
			c.emitNow(ev)
		case <-t.C:
			c.abandonEvents()
			c.emitNow(ev)
		}
	}
}

// emitNow delivers ev if the channel has room, and drops it otherwise.
func (c *Client) emitNow(ev Event) {
	select {
	case c.events <- ev:
	default:
	}
}
