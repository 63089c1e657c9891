package resocket

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Rotation (Config.MaxConnectionAge): a connection older than the limit
// is replaced make-before-break. While rotating is on, each connection is
// read on a goroutine of its own, the conn reader, which hands every
// message to the loop: the loop must be free to dial the next connection
// and run OnConnect on it while the old one still serves. Everything else
// stays on the loop: callbacks, event delivery, the decision to switch.

// frame is what the conn reader hands to the loop: a message, or the end.
type frame struct {
	typ MessageType
	buf *[]byte // a pooled read buffer, which the loop gives back
	end bool
	d   Disconnect // why reading ended, with end
}

// startReader starts the conn reader of conn. It sends on an unbuffered
// channel: while the loop does not take a message, the reader does not
// read the next one (TCP backpressure). Its last send is the end; the
// loop must take it (drain), after which the goroutine has returned.
func (c *Client) startReader(conn *Conn) <-chan frame {
	ch := make(chan frame)
	go func() { // the conn reader
		for {
			typ, r, err := conn.ws.NextReader()
			if err == nil {
				var buf *[]byte
				if buf, err = conn.readMessage(r); err == nil {
					conn.busy.Store(true) // waiting for the loop is not a dead link
					ch <- frame{typ: MessageType(typ), buf: buf}
					conn.activity.Add(1)
					conn.busy.Store(false)
					continue
				}
			}
			ch <- frame{end: true, d: readDisconnect(conn, err)}
			return
		}
	}()
	return ch
}

// drain takes the reader's frames until its end, after the connection
// has been cut, so that the goroutine returns. It runs on the loop.
func drain(frames <-chan frame) {
	for f := range frames {
		if f.end {
			return
		}
		releaseReadBuf(f.buf)
	}
}

// rotationDelay is MaxConnectionAge with ±10 % jitter.
func (c *Client) rotationDelay() time.Duration {
	age := c.cfg.maxConnectionAge
	return age - age/10 + rand.N(age/5+1) //nolint:gosec // jitter, not a secret
}

// serveRotating reads r's connection through a conn reader and replaces
// the connection each time it reaches its age. It returns the connection
// that ended, and why. It runs on the loop.
func (c *Client) serveRotating(r *connRun) (*connRun, Disconnect) {
	frames := c.startReader(r.conn)
	age := time.NewTimer(c.rotationDelay())
	defer age.Stop()
	for {
		select {
		case f := <-frames:
			if d, ok := c.takeFrame(r, frames, f); !ok {
				return r, d
			}
			if r.conn.moveAsked {
				if next, nextFrames := c.move(r, c.drainFrames(frames)); next != nil {
					r, frames = next, nextFrames
					age.Reset(c.rotationDelay())
				}
			}
		case <-age.C:
			next, nextFrames := c.rotate(r, c.drainFrames(frames))
			if next == nil {
				if !c.closeRequested() {
					// Kept the old one: try again after a tenth of the age.
					age.Reset(max(c.rotationDelay()/10, time.Second))
				}
				continue
			}
			r, frames = next, nextFrames
			age.Reset(c.rotationDelay())
		}
	}
}

// rotate opens the next connection while r's still serves, switches Send
// to it, closes the old one with 1000 and delivers what the old one still
// brings until its close frame. It returns the new connection's run and
// reader, or nil when the new one could not be opened (the old one then
// goes on). It runs on the loop.
func (c *Client) rotate(old *connRun, drainOld func(*connRun)) (*connRun, <-chan frame) {
	c.mu.Lock()
	endpoint := c.cfg.urls[c.urlIndex]
	c.attempts++
	c.mu.Unlock()
	conn, header, d := c.open(endpoint.String())
	if conn == nil {
		c.mu.Lock()
		c.live = old.conn // open cleared or replaced it
		c.mu.Unlock()
		if req := c.closing(); req != nil {
			// Close came during the dial, maybe while the new one was
			// live: the old one closes as Close asked, and is read to its
			// end as usual.
			if req.terminate {
				old.conn.kill(errTerminated)
			} else {
				old.conn.sendClose(req.code, req.reason, req.deadline)
			}
			return nil, nil
		}
		if log := c.cfg.logger; log != nil {
			log.Warn("resocket: rotation failed; keeping the connection", "conn", old.conn.id,
				"http_status", d.HTTPStatus, "err", d.Err)
		}
		return nil, nil
	}
	// The old connection's writes finish before any goes to the new one:
	// its write lock is held while Send switches over. A Send that waited
	// for the old one writes on the new one once the lock is released (the
	// old one refuses it after its close frame).
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.closeTimeout)
	locked := old.conn.lock(ctx) == nil
	cancel()
	if !locked {
		// A write stuck on the old connection: cut it. The message comes
		// back to the send buffer and goes out on the new one.
		old.conn.kill(errConnEnded)
	}
	c.mu.Lock()
	old.conn.retired = true // its flusher, if still replaying, stops
	c.mu.Unlock()
	next := c.start(conn)
	old.conn.sendClose(StatusNormalClosure, "connection rotated", time.Now().Add(c.cfg.closeTimeout))
	if locked {
		old.conn.unlock()
	}
	c.events.lifecycle(Connected{ConnID: conn.id, Attempt: 1, Subprotocol: conn.ws.Subprotocol(),
		Header: header, URL: endpoint.Redacted(), Resumed: conn.resumed, Replaced: old.conn.id})
	if log := c.cfg.logger; log != nil {
		log.Info("resocket: rotated", "conn", conn.id, "replaced", old.conn.id, "age", time.Since(old.conn.opened))
	}
	// The old connection's last messages, up to its close frame (bounded
	// by CloseTimeout), come before any of the new one's.
	drainOld(old)
	old.stop(c)
	if c.cfg.maxConnectionAge == 0 {
		return next, nil // read on the loop
	}
	return next, c.startReader(conn)
}

// drainFrames delivers what an old connection's conn reader still brings,
// up to its end.
func (c *Client) drainFrames(frames <-chan frame) func(*connRun) {
	return func(old *connRun) {
		for f := range frames {
			if _, ok := c.takeFrame(old, frames, f); !ok {
				return
			}
		}
	}
}

// takeFrame hands one frame of r's conn reader to the application, on the
// loop. It reports false, and why, once the reader is done: its end, or a
// message that broke the protocol, after which the connection is cut and
// the reader drained.
func (c *Client) takeFrame(r *connRun, frames <-chan frame, f frame) (Disconnect, bool) {
	if f.end {
		return f.d, false
	}
	d, ok := c.receiveRead(r.conn, r.ack, f.typ, *f.buf)
	releaseReadBuf(f.buf)
	if !ok {
		r.conn.kill(errConnEnded)
		drain(frames)
	}
	return d, ok
}

// errMoveAsked ends read when the server sent the move hint.
var errMoveAsked = errors.New("resocket: the server asked to move")

// move answers the server's move hint (it is going away): the next URL
// is dialed while the old connection still serves, then the old one is
// closed and drainOld reads it to its end. It returns the new
// connection's run and reader (none while the loop reads itself), or nil
// when the new one could not be opened and the old one goes on. It runs
// on the loop.
func (c *Client) move(r *connRun, drainOld func(*connRun)) (*connRun, <-chan frame) {
	r.conn.moveAsked = false
	c.nextURL()
	return c.rotate(r, drainOld)
}
