package resocket

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// run is the loop goroutine: it dials, serves each connection, asks the
// policy, waits out the backoff, and finally reports Closed. Every function
// in this file runs on it, except flush (the flusher).
func (c *Client) run() {
	c.finish(c.connectLoop())
}

// connectLoop returns why the client ends: nil for a Stop or a Close.
func (c *Client) connectLoop() error {
	attempt := 0         // attempts since the last connection that stayed up
	var prev *Disconnect // the outcome before, in the row; see Disconnect.Previous
	for !c.closeRequested() {
		attempt++
		c.expireBuffered()
		endpoint, forceSeen := c.startAttempt()
		c.events.lifecycle(Connecting{Attempt: attempt, URL: endpoint.Redacted()})
		conn, header, d := c.open(endpoint.String())
		var ended Event
		if conn == nil {
			if c.closeRequested() {
				return nil // the attempt ended because the user closed
			}
			d.Attempt = attempt
			d, prev = c.inRow(d, prev)
			ended = DialFailed{Disconnect: d}
			c.nextURL()
		} else {
			forceSeen = c.forceCount() // a ForceReconnect during the dial is served by this connection
			c.logConnected(endpoint, conn, attempt)
			conn, d = c.serve(conn, Connected{ConnID: conn.id, Attempt: attempt,
				Subprotocol: conn.ws.Subprotocol(), Header: header, URL: endpoint.Redacted(),
				Resumed: conn.resumed})
			if d.Uptime >= c.cfg.stableAfter {
				// It stayed up: the next failure starts a fresh count.
				c.callback(c.bo.Reset)
				attempt = 0
			}
			d.Attempt = max(attempt, 1)
			d, prev = c.inRow(d, prev)
			ended = Disconnected{ConnID: conn.id, Disconnect: d}
			if d.Code == StatusGoingAway {
				c.nextURL()
			}
		}
		delay, again, err := c.next(d, ended, c.forcedSince(forceSeen))
		if !again || !c.wait(delay, attempt+1, forceSeen) {
			return err
		}
	}
	return nil
}

// inRow completes d with what a policy needs to tell a repeated outcome
// from a first one (Disconnect.FreshHeaders, Disconnect.Previous), and
// returns it and the Previous of the next outcome.
func (c *Client) inRow(d Disconnect, prev *Disconnect) (Disconnect, *Disconnect) {
	d.FreshHeaders = c.cfg.headerFunc != nil
	if d.Uptime < c.cfg.stableAfter {
		d.Previous = prev // a connection that stayed up ends the row
	}
	next := d
	next.Previous = nil // one step back is all a policy is given
	return d, &next
}

// next decides what follows a failed attempt or an ended connection,
// reports it (DialFailed or Disconnected, with the final decision), and
// returns the wait before the next attempt, or again == false and why the
// client ends.
func (c *Client) next(d Disconnect, ended Event, forced bool) (delay time.Duration, again bool, err error) {
	var dec Decision
	switch {
	case c.closeRequested():
		dec = Decision{Action: Stop}
	case errors.Is(d.Err, ErrForcedReconnect):
		dec = Decision{Action: Reconnect}
	default:
		c.callback(func() { dec = c.cfg.policy(d) })
		dec.MinDelay = max(dec.MinDelay, 0)
	}
	dec, delay, err = c.plan(d, dec, forced)
	c.mu.Lock()
	c.last = d
	c.mu.Unlock()
	state := StateReconnecting // after a connection: until the client ends, if it does
	switch ev := ended.(type) {
	case DialFailed:
		ev.Decision = dec
		ended = ev
		if dec.Action != Reconnect {
			state = c.State()
		}
		if log := c.cfg.logger; log != nil {
			log.Warn("resocket: attempt failed", "attempt", d.Attempt, "http_status", d.HTTPStatus,
				"err", d.Err, "decision", dec.Action)
		}
	case Disconnected:
		ev.Decision = dec
		ended = ev
		if log := c.cfg.logger; log != nil {
			log.Info("resocket: disconnected", "conn", ev.ConnID, "code", int(d.Code), "reason", d.Reason,
				"err", d.Err, "uptime", d.Uptime, "decision", dec.Action)
		}
	}
	c.moveTo(state, ended) // Closing and Closed win over it; see setStateLocked
	return delay, dec.Action == Reconnect, err
}

// plan turns the policy's decision into the wait before the next attempt:
// the backoff's delay, plus MinDelay when the policy set one, or none after
// a ForceReconnect or an Immediate decision. When the backoff has run out,
// a Reconnect becomes a GiveUp. err is why the client ends after a GiveUp.
func (c *Client) plan(d Disconnect, dec Decision, forced bool) (_ Decision, delay time.Duration, err error) {
	switch dec.Action {
	case Stop:
		return dec, 0, nil
	case Reconnect:
	default:
		return Decision{Action: GiveUp}, 0, fmt.Errorf("%w: %w", ErrGaveUp, d.cause())
	}
	if forced || dec.Immediate {
		return dec, 0, nil
	}
	c.callback(func() { delay = c.bo.NextBackOff() })
	if delay == backoff.Stop {
		return Decision{Action: GiveUp}, 0,
			fmt.Errorf("%w: backoff stopped after attempt %d: %w", ErrGaveUp, d.Attempt, d.cause())
	}
	// Clients told the same MinDelay (1013, a Retry-After) would all come
	// back at the same instant: the backoff's jitter goes on top.
	return dec, dec.MinDelay + delay, nil
}

// wait waits out delay before attempt number next, unless ForceReconnect
// is called (since forceSeen) first. It reports false when the client is
// closed meanwhile.
func (c *Client) wait(delay time.Duration, next int, forceSeen uint64) bool {
	c.mu.Lock()
	c.nextAttempt = time.Now().Add(delay)
	c.mu.Unlock()
	if log := c.cfg.logger; log != nil {
		log.Debug("resocket: reconnecting", "attempt", next, "delay", delay)
	}
	c.moveTo(StateReconnecting, Reconnecting{Attempt: next, Delay: delay})
	if delay <= 0 {
		return !c.closeRequested() // no timer to wait on
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-c.wake:
			if c.forcedSince(forceSeen) {
				return true
			}
			// A wake-up left over from a ForceReconnect that an earlier
			// connection served: keep waiting.
		case <-c.ctx.Done():
			return false
		}
	}
}

// forceCount and forcedSince are how the loop learns of ForceReconnect:
// by its count, so that one call is served once, wherever the loop was.
func (c *Client) forceCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forceGen
}

func (c *Client) forcedSince(seen uint64) bool { return c.forceCount() != seen }

// startAttempt counts an attempt and returns the endpoint to dial, and the
// ForceReconnect count as it starts.
func (c *Client) startAttempt() (*url.URL, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	c.nextAttempt = time.Time{}
	return c.cfg.urls[c.urlIndex], c.forceGen
}

// nextURL moves on to the next endpoint, if there is more than one.
func (c *Client) nextURL() {
	c.mu.Lock()
	c.urlIndex = (c.urlIndex + 1) % len(c.cfg.urls)
	c.mu.Unlock()
}

func (c *Client) logConnected(endpoint *url.URL, conn *Conn, attempt int) {
	if log := c.cfg.logger; log != nil {
		log.Info("resocket: connected", "url", endpoint.Redacted(), "conn", conn.id, "attempt", attempt,
			"header_names", headerNames(c.cfg.header))
	}
}

// headerNames lists the names, never the values, of h: values carry
// credentials.
func headerNames(h http.Header) []string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// open waits for the DialLimiter, dials a connection and runs OnConnect on it. It returns the
// connection and the server's handshake headers, or a nil Conn and why.
// Once Close is requested it returns a nil Conn and the zero Disconnect.
func (c *Client) open(endpoint string) (*Conn, http.Header, Disconnect) {
	if err := c.waitLimiter(); err != nil {
		if c.closeRequested() {
			return nil, nil, Disconnect{}
		}
		return nil, nil, Disconnect{Code: StatusAbnormalClosure, Err: err}
	}
	ws, header, status, err := c.handshake(endpoint)
	if err != nil {
		return nil, nil, dialDisconnect(err, header, status)
	}
	conn := newConn(ws, c.cfg.readLimit, c.cfg.closeTimeout, &c.counters, c.cfg.heartbeat == nil)
	c.mu.Lock()
	req := c.closeReq
	if req == nil {
		c.live = conn
		c.connects++
	}
	c.mu.Unlock()
	if req != nil {
		// Closed while the handshake ran: nobody else saw this connection.
		c.drop(conn, req.code, req.reason, !req.terminate)
		return nil, nil, Disconnect{}
	}
	if c.session != nil {
		if d, ok := c.resume(conn, header); !ok {
			return nil, nil, d
		}
	}
	if c.cfg.onConnect == nil {
		return conn, header, Disconnect{}
	}
	var onConnectErr error
	c.callback(func() { onConnectErr = c.cfg.onConnect(c.ctx, conn) })
	switch {
	case c.closeRequested(): // OnConnect called Close, whose frame is out
		c.drop(conn, 0, "", false)
		return nil, nil, Disconnect{}
	case onConnectErr != nil:
		c.drop(conn, StatusNormalClosure, "OnConnect failed", true)
		return nil, nil, Disconnect{Code: StatusAbnormalClosure,
			Err: fmt.Errorf("resocket: OnConnect: %w", onConnectErr), Uptime: time.Since(conn.opened)}
	}
	return conn, header, Disconnect{}
}

// drop ends a connection that never reached serve, with a close frame
// (bounded by CloseTimeout) when withFrame is set.
func (c *Client) drop(conn *Conn, code StatusCode, reason string, withFrame bool) {
	if withFrame {
		conn.sendClose(code, reason, time.Now().Add(c.cfg.closeTimeout))
	}
	conn.kill(errConnEnded)
	c.unready(conn)
}

// serve runs one open connection: keepalive, flushing the send buffer,
// reading, until it ends. It returns the connection that ended (with
// MaxConnectionAge, the last of those that replaced it) and why, once
// every helper has stopped.
func (c *Client) serve(conn *Conn, connected Connected) (*Conn, Disconnect) {
	r := c.start(conn)
	c.events.lifecycle(connected) // the state is Connected once the buffer is flushed
	var d Disconnect
	if c.cfg.maxConnectionAge > 0 {
		r, d = c.serveRotating(r)
	} else {
		for d = c.read(r.conn, r.ack); errors.Is(d.Err, errMoveAsked); d = c.read(r.conn, r.ack) {
			if next, _ := c.move(r, func(old *connRun) { c.read(old.conn, old.ack) }); next != nil {
				r = next
			}
		}
	}
	r.stop(c)
	d.Uptime = time.Since(r.conn.opened)
	return r.conn, d
}

// connRun is what serves one connection beside its reader: the
// keepalive, the flusher, the acker.
type connRun struct {
	conn     *Conn
	ka       *keepalive
	flushing sync.WaitGroup
	ack      *acker // with Config.Resume
}

// start starts serving conn, on the loop: the keepalive, and the flusher
// or, with nothing to flush, conn becomes the connection Send writes to.
func (c *Client) start(conn *Conn) *connRun {
	r := &connRun{conn: conn}
	if c.cfg.keepalive {
		r.ka = c.startKeepalive(conn)
	}
	c.expireBuffered() // before the flush: what waited too long is not written
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.session != nil && conn.replayFrom <= c.session.last():
		c.unreadyLocked(c.ready) // a rotation: later Sends wait behind the replay
		r.flushing.Add(1)
		go c.flushResumable(conn, conn.replayFrom, &r.flushing)
	case c.session == nil && c.queue.len() > 0:
		c.unreadyLocked(c.ready) // a rotation: later Sends wait behind the flush
		// Flush beside the reader: a peer that answers what we flush must
		// not block on us while we block on it.
		r.flushing.Add(1)
		go c.flush(conn, &r.flushing)
	default:
		c.markReadyLocked(conn)
	}
	if c.session != nil {
		r.ack = newAcker(c, conn)
	}
	return r
}

// stop ends the connection and waits for its helpers, on the loop.
func (r *connRun) stop(c *Client) {
	r.conn.kill(errConnEnded) // stops the flusher and any Send blocked on the socket
	r.flushing.Wait()
	r.ack.stop()
	r.ka.stop()
	c.unready(r.conn)
}

// flush runs on the flusher: it writes the send buffer in order on a fresh
// connection, then makes the connection ready, unless a rotation has
// replaced it meanwhile. A message stays buffered until its write
// succeeds, and leaves the buffer before the write lock is released: a
// rotation, which takes that lock, never sees a message both written
// here and still first in the buffer for the next connection.
func (c *Client) flush(conn *Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c.mu.Lock()
		if c.closeReq != nil || conn.isEnded() || conn.retired {
			c.mu.Unlock()
			return
		}
		if c.queue.len() == 0 {
			c.markReadyLocked(conn)
			c.mu.Unlock()
			return
		}
		m := c.queue.at(0) // only flush removes from the front
		c.mu.Unlock()
		if err := conn.lock(c.ctx); err != nil {
			return
		}
		if err := conn.writeLocked(c.ctx, m.Type, m.Data, len(m.Data)); err != nil {
			conn.unlock()
			return
		}
		c.mu.Lock()
		c.queue.dropFront(1)
		c.progressedLocked()
		c.mu.Unlock()
		conn.unlock()
	}
}
