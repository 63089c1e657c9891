package resocket

import (
	"time"
)

// The client's life: its state, how it changes, how it is closed, and how
// Close and Terminate wait for its end.
//
// Closing has one signal, c.ctx: its cancellation means Close or Terminate
// was called. Everything the loop waits on selects on it, and callbacks
// receive it. closeReq says which of the two and with what; terminated
// additionally tells event delivery to stop waiting for the reader.

// closeRequest is the first Close or Terminate.
type closeRequest struct {
	code      StatusCode
	reason    string
	terminate bool      // Terminate was called (first, or after Close)
	deadline  time.Time // CloseTimeout after the first call: bounds the handshake and event delivery
}

// requestClose records a Close or Terminate and interrupts whatever the
// loop waits on: the backoff, a handshake (its socket is closed: gorilla
// ignores ctx while it waits for the 101), a callback's ctx. It runs on the
// caller's goroutine. It returns whether this call was the first, and the
// live connection, if any, for the caller to close.
func (c *Client) requestClose(code StatusCode, reason string, terminate bool) (first bool, live *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateClosed {
		return false, nil
	}
	if c.closeReq == nil {
		first = true
		c.closeReq = &closeRequest{code: code, reason: reason, deadline: time.Now().Add(c.cfg.closeTimeout)}
		c.setStateLocked(StateClosing)
		if c.dialing != nil {
			_ = c.dialing.Close()
		}
		c.cancel()
	}
	if terminate && !c.closeReq.terminate {
		c.closeReq.terminate = true
		close(c.terminated)
	}
	return first, c.live
}

// closeDeadline is when waiting for the peer's close frame, and for the
// reader of Events, ends after Close.
func (c *Client) closeDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeReq == nil {
		return time.Now().Add(c.cfg.closeTimeout)
	}
	return c.closeReq.deadline
}

// closing returns the close request, if any.
func (c *Client) closing() *closeRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeReq
}

func (c *Client) closeRequested() bool {
	return c.ctx.Err() != nil
}

// awaitEnd is how Close and Terminate wait for the client's end, on the
// caller's goroutine. The rule that keeps them from deadlocking needs no
// knowledge of who calls: they wait for Done unless one of the client's
// callbacks is running. Only a callback can be on the stack of a goroutine
// the end depends on (the loop, or the dial helper the loop waits for);
// while none runs, everything the loop waits on is interrupted by the
// close request. When a callback is running (Close may have been called
// from it), they return once the close is requested, and Done closes after
// the callback returns.
//
// One callback blocks by design: the DialLimiter's Wait, which a storm
// keeps waiting for seconds. It was given c.ctx, cancelled by now, so it
// returns at once unless Close was called from inside it: then awaitEnd
// waits for Done, but no longer than the close deadline, which is what
// Close from inside Wait costs. Callbacks run one at a time (all on the
// loop, or the Dialer's hooks while the loop waits for them), so when the
// one running is the limiter's, the two counts are equal; limiterWaits is
// read first and rises before inCallback, so a mixed reading errs towards
// waiting only when no other callback can be the caller.
func (c *Client) awaitEnd() {
	limiter := c.limiterWaits.Load()
	switch c.inCallback.Load() {
	case 0:
		<-c.done
	case limiter:
		t := time.NewTimer(time.Until(c.closeDeadline()))
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
		}
	}
}

// callback runs f, user code, marked as such for awaitEnd. The loop and the
// dial helper run every callback through it: DialLimiter, HeaderFunc,
// OnConnect, Policy, OnEvent, Backoff, Heartbeat.IsAnswer, and the
// Dialer's hooks.
func (c *Client) callback(f func()) {
	c.inCallback.Add(1)
	defer c.inCallback.Add(-1)
	f()
}

// moveTo is how the loop changes state: it sets the state and reports the
// event that says so, together.
func (c *Client) moveTo(to State, ev Event) {
	c.mu.Lock()
	c.setStateLocked(to)
	c.mu.Unlock()
	c.events.lifecycle(ev)
}

// setStateLocked is the one place that writes c.state. Closing and Closed
// are final: after Close only Closed may follow, and nothing after Closed.
func (c *Client) setStateLocked(to State) {
	switch {
	case c.state == StateClosed:
	case c.closeReq != nil && to != StateClosed:
		c.state = StateClosing
	default:
		c.state = to
	}
}

// markReadyLocked makes conn the connection Send writes to directly, once
// the send buffer is empty; WaitConnected waits on readyCh. A rotation
// replaces the ready connection with the next one in this one step.
func (c *Client) markReadyLocked(conn *Conn) {
	wasReady := c.ready != nil
	c.ready = conn
	c.setStateLocked(StateConnected)
	if !wasReady {
		close(c.readyCh)
		if !c.unreadySince.IsZero() {
			c.downtime += time.Since(c.unreadySince)
		}
	}
}

// unready undoes markReadyLocked when conn ends.
func (c *Client) unready(conn *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unreadyLocked(conn)
	if c.live == conn {
		c.live = nil
	}
}

func (c *Client) unreadyLocked(conn *Conn) {
	if conn != nil && c.ready == conn {
		c.ready = nil
		c.readyCh = make(chan struct{})
		c.unreadySince = time.Now()
	}
}

// finish ends the client, on the loop goroutine: Closed with what was
// never sent, then the channel closes, then Done. Nothing runs after Done
// closes.
func (c *Client) finish(err error) {
	c.expireBuffered() // Unsent holds what is still fresh
	c.mu.Lock()
	c.setStateLocked(StateClosed)
	c.err = err
	unsent := c.queue.drain()
	if c.session != nil {
		unsent = c.session.drain()
	}
	c.progressedLocked()
	c.mu.Unlock()
	c.cancel()
	if log := c.cfg.logger; err != nil && log != nil {
		log.Warn("resocket: gave up", "err", err)
	}
	c.events.last(Closed{Err: err, Unsent: unsent})
	close(c.done)
}
