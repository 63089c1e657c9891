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

// loop is the client's own goroutine: it dials, serves each connection,
// asks the policy, waits out the backoff, and finally reports Closed.
func (c *Client) loop(started chan<- struct{}) {
	c.loopGoroutine = goroutineID()
	close(started)
	c.finish(c.connectLoop())
}

func (c *Client) connectLoop() error {
	log := c.s.logger
	attempt := 0 // attempts since the last connection that stayed up
	for {
		if c.closeRequested() {
			return nil
		}
		attempt++
		endpoint := c.startAttempt()
		c.emit(Connecting{Attempt: attempt, URL: endpoint.Redacted()})
		conn, header, d := c.open(endpoint.String())
		if conn == nil {
			if c.closeRequested() {
				return nil // the attempt failed because the user closed
			}
			d.Attempt = attempt
			dec, delay, err := c.plan(d, c.decide(d))
			if log != nil {
				log.Warn("resocket: attempt failed", "url", endpoint.Redacted(), "attempt", attempt,
					"http_status", d.HTTPStatus, "err", d.Err, "decision", dec.Action)
			}
			c.emit(DialFailed{Disconnect: d, Decision: dec})
			c.nextURL()
			if dec.Action != Reconnect || !c.wait(delay, attempt+1) {
				return err
			}
			continue
		}
		if log != nil {
			log.Info("resocket: connected", "url", endpoint.Redacted(), "conn", conn.id, "attempt", attempt,
				"header_names", headerNames(c.s.Header))
		}
		d = c.serve(conn, Connected{ConnID: conn.id, Attempt: attempt,
			Subprotocol: conn.ws.Subprotocol(), Header: header, URL: endpoint.Redacted()})
		if d.Uptime >= c.s.StableAfter {
			// It stayed up: the next failure starts a fresh count.
			c.bo.Reset()
			attempt = 0
		}
		d.Attempt = max(attempt, 1)
		var dec Decision
		switch {
		case c.closeRequested():
			dec = Decision{Action: Stop}
		case errors.Is(d.Err, ErrForcedReconnect):
			dec = Decision{Action: Reconnect}
		default:
			dec = c.decide(d)
		}
		dec, delay, err := c.plan(d, dec)
		if log != nil {
			log.Info("resocket: disconnected", "conn", conn.id, "code", int(d.Code), "reason", d.Reason,
				"err", d.Err, "uptime", d.Uptime, "decision", dec.Action)
		}
		c.emit(Disconnected{ConnID: conn.id, Disconnect: d, Decision: dec})
		if d.Code == StatusGoingAway {
			c.nextURL()
		}
		if dec.Action != Reconnect || !c.wait(delay, attempt+1) {
			return err
		}
	}
}

// startAttempt counts an attempt and returns the endpoint to dial.
func (c *Client) startAttempt() *url.URL {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	c.nextAttempt = time.Time{}
	return c.s.urls[c.urlIndex]
}

// nextURL moves on to the next endpoint, if there is more than one.
func (c *Client) nextURL() {
	c.mu.Lock()
	c.urlIndex = (c.urlIndex + 1) % len(c.s.urls)
	c.mu.Unlock()
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

// open dials a connection and runs OnConnect on it. It returns the
// connection and the server's handshake headers, or a nil Conn and why.
func (c *Client) open(endpoint string) (*Conn, http.Header, Disconnect) {
	ws, header, status, err := c.handshake(endpoint)
	if err != nil {
		return nil, nil, dialDisconnect(err, header, status)
	}
	conn := newConn(ws, c.s.ReadLimit, &c.counters)
	c.mu.Lock()
	req := c.closeReq
	if req == nil {
		c.live = conn
		c.connects++
	}
	c.mu.Unlock()
	select {
	case <-c.wake: // a ForceReconnect during the dial is served by this connection
	default:
	}
	if req != nil {
		// Closed while the handshake ran: nobody else saw this connection.
		if !req.terminate {
			conn.sendClose(req.code, req.reason, time.Now().Add(time.Second))
		}
		conn.kill(errConnEnded)
		return nil, nil, Disconnect{}
	}
	if c.s.OnConnect != nil {
		if err := c.s.OnConnect(c.ctx, conn); err != nil {
			c.dropLive(conn, StatusNormalClosure, "OnConnect failed")
			return nil, nil, Disconnect{Code: StatusAbnormalClosure,
				Err: fmt.Errorf("resocket: OnConnect: %w", err), Uptime: time.Since(conn.opened)}
		}
		if c.closeRequested() { // OnConnect called Close; its frame is out
			c.dropLive(conn, 0, "")
			return nil, nil, Disconnect{}
		}
	}
	return conn, header, Disconnect{}
}

// dropLive ends a connection that never reached serve, with a close frame
// when code is not 0.
func (c *Client) dropLive(conn *Conn, code StatusCode, reason string) {
	if code != 0 {
		conn.sendClose(code, reason, time.Now().Add(time.Second))
	}
	conn.kill(errConnEnded)
	c.mu.Lock()
	c.live = nil
	c.mu.Unlock()
}

// serve runs one open connection: keepalive, flushing the send buffer,
// reading, until it ends. It returns why, once every helper has stopped.
func (c *Client) serve(conn *Conn, connected Connected) Disconnect {
	var ka *keepalive
	if c.s.keepalive {
		ka = startKeepalive(conn, c.s.PingInterval, c.s.PongTimeout)
	}
	var flushing sync.WaitGroup
	c.mu.Lock()
	if c.queue.len() == 0 {
		c.markReadyLocked(conn)
	} else {
		// Flush beside the reader: a peer that answers what we flush must
		// not block on us while we block on it.
		flushing.Add(1)
		go c.flush(conn, &flushing)
	}
	c.mu.Unlock()
	c.emit(connected)

	d := c.read(conn)

	conn.kill(errConnEnded) // stops the flusher and any Send blocked on the socket
	flushing.Wait()
	ka.stop()
	c.mu.Lock()
	if c.ready == conn {
		c.ready = nil
		c.readyCh = make(chan struct{})
	}
	if c.closeReq == nil {
		c.state = StateReconnecting // until the policy says otherwise
	}
	c.live = nil
	c.mu.Unlock()
	d.Uptime = time.Since(conn.opened)
	return d
}

// markReadyLocked makes conn the one Send writes to directly.
func (c *Client) markReadyLocked(conn *Conn) {
	c.ready = conn
	if c.closeReq == nil {
		c.state = StateConnected
	}
	close(c.readyCh)
}

// flush writes the send buffer in order on a fresh connection, then makes
// the connection ready. A message stays buffered until its write succeeds.
func (c *Client) flush(conn *Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c.mu.Lock()
		if c.closeReq != nil || conn.killed.Load() {
			c.mu.Unlock()
			return
		}
		if c.queue.len() == 0 {
			c.markReadyLocked(conn)
			c.mu.Unlock()
			return
		}
		m := c.queue.front() // only flush removes from the front
		c.mu.Unlock()
		if err := conn.write(c.ctx, m.Type, m.Data); err != nil {
			return
		}
		c.mu.Lock()
		c.queue.pop()
		c.mu.Unlock()
	}
}

// decide asks the policy.
func (c *Client) decide(d Disconnect) Decision {
	dec := c.s.policy(d)
	dec.MinDelay = max(dec.MinDelay, 0)
	return dec
}

// plan turns the policy's decision into what happens next: a Reconnect
// waits the backoff's delay, plus MinDelay when the policy set one, unless
// the backoff has run out, which makes it a GiveUp. err is why the client ends
// after a GiveUp.
func (c *Client) plan(d Disconnect, dec Decision) (_ Decision, delay time.Duration, err error) {
	c.mu.Lock()
	c.last = d
	c.mu.Unlock()
	switch dec.Action {
	case Stop:
		return dec, 0, nil
	case Reconnect:
	default:
		return Decision{Action: GiveUp}, 0, fmt.Errorf("%w: %w", ErrGaveUp, d.cause())
	}
	select {
	case <-c.wake: // ForceReconnect: dial now
		return dec, 0, nil
	default:
	}
	delay = c.bo.NextBackOff()
	if delay == backoff.Stop {
		return Decision{Action: GiveUp}, 0,
			fmt.Errorf("%w: backoff stopped after attempt %d: %w", ErrGaveUp, d.Attempt, d.cause())
	}
	if dec.MinDelay > 0 {
		// Clients told the same MinDelay (1013, a Retry-After) would all
		// come back at the same instant: the backoff's jitter goes on top.
		return dec, dec.MinDelay + delay, nil
	}
	return dec, delay, nil
}

// wait waits out delay before attempt next. It reports false when the
// client is closed meanwhile.
func (c *Client) wait(delay time.Duration, next int) bool {
	c.mu.Lock()
	closing := c.closeReq != nil
	if !closing {
		c.state = StateReconnecting
		c.nextAttempt = time.Now().Add(delay)
	}
	c.mu.Unlock()
	if closing {
		return false
	}
	if log := c.s.logger; log != nil {
		log.Debug("resocket: reconnecting", "attempt", next, "delay", delay)
	}
	c.emit(Reconnecting{Attempt: next, Delay: delay})
	if delay <= 0 {
		return !c.closeRequested() // no timer to wait on
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.wake:
		return true
	case <-c.closing:
		return false
	}
}

func (c *Client) closeRequested() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeReq != nil
}

// finish ends the client: Closed with what was never sent, then the
// channel closes and Done.
func (c *Client) finish(err error) {
	c.mu.Lock()
	c.state = StateClosed
	c.err = err
	unsent := c.queue.drain()
	c.mu.Unlock()
	c.cancel()
	if log := c.s.logger; err != nil && log != nil {
		log.Warn("resocket: gave up", "err", err)
	}
	c.emitInOrder(Closed{Err: err, Unsent: unsent}) // after the backlog; nothing follows it
	close(c.events)
	close(c.done)
}
