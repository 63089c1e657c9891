package resocket

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Limiter paces dial attempts; golang.org/x/time/rate's *Limiter
// satisfies it. Config.DialLimiter's Wait is called before every attempt,
// once per attempt, on the client's own goroutine, as a callback (it may
// call any method of the client). Nothing skips it: not ForceReconnect,
// not a policy's Immediate retry.
//
// Wait should block until the attempt may go ahead and return nil, or
// return an error. An error fails the attempt (DialFailed with 1006 and
// the error) and the policy decides what follows; DefaultPolicy reconnects
// after the backoff. The ctx it is given ends when Close or Terminate is
// called: Wait should then return at once, and Close and Terminate wait
// for it (no longer than CloseTimeout), so that nothing of the client is
// left running when they return. A Wait that ignores its ctx holds them
// up to CloseTimeout, and Done closes once it returns.
type Limiter interface {
	Wait(ctx context.Context) error
}

// waitLimiter waits for Config.DialLimiter, if set, on the loop.
// limiterWaits tells awaitEnd that the callback running is this one.
func (c *Client) waitLimiter() error {
	lim := c.cfg.dialLimiter
	if lim == nil {
		return nil
	}
	var err error
	c.limiterWaits.Add(1) // before inCallback, and dropped after it: see awaitEnd
	c.callback(func() { err = lim.Wait(c.ctx) })
	c.limiterWaits.Add(-1)
	if err != nil {
		return fmt.Errorf("resocket: DialLimiter: %w", err)
	}
	return nil
}

// trackDial records the raw connection of a handshake under way, so that
// requestClose can cut it; it refuses the connection once the client is
// closing. It runs on the dial helper.
func (c *Client) trackDial(conn net.Conn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeReq != nil {
		return ErrClosed
	}
	c.dialing = conn
	return nil
}

// handshake dials one connection to endpoint: headers, TCP, TLS, HTTP
// upgrade. It runs on the loop and returns the response's headers and
// status, also on refusal.
func (c *Client) handshake(endpoint string) (ws *websocket.Conn, header http.Header, status int, err error) {
	request, err := c.requestHeader()
	if err != nil {
		return nil, nil, 0, err
	}
	// The handshake (net/http's response parser, TLS) grows a goroutine's
	// stack to 8 KB, which an idle reader then keeps: dialing on a helper
	// goroutine leaves the long-lived loop goroutine at 4 KB. Waiting for
	// it unconditionally is safe: Close and Terminate cut the dial through
	// ctx and the tracked connection, and the Dialer's hooks run as
	// callbacks, so that Close from one does not wait for this.
	type result struct {
		ws   *websocket.Conn
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() { // the dial helper
		ws, resp, err := c.dialer.DialContext(c.ctx, endpoint, request) //nolint:bodyclose // closed below, once back on the loop
		done <- result{ws, resp, err}
	}()
	r := <-done
	ws, resp, err := r.ws, r.resp, r.err
	c.mu.Lock()
	c.dialing = nil
	c.mu.Unlock()
	if resp != nil {
		// gorilla has already read what it keeps of the body.
		_ = resp.Body.Close()
		header, status = resp.Header, resp.StatusCode
	}
	return ws, header, status, err
}

// requestHeader is Header with HeaderFunc's headers merged over it.
func (c *Client) requestHeader() (http.Header, error) {
	request := c.cfg.header.Clone()
	if s := c.session; s != nil {
		if request == nil {
			request = make(http.Header)
		}
		c.mu.Lock()
		point := s.point()
		s.offered = point.Received
		c.mu.Unlock()
		defer s.codec.Offer(request, point) // last: HeaderFunc cannot override it
	}
	if c.cfg.headerFunc == nil {
		return request, nil
	}
	var extra http.Header
	var err error
	c.callback(func() { extra, err = c.cfg.headerFunc(c.ctx) })
	if err != nil {
		return nil, fmt.Errorf("resocket: HeaderFunc: %w", err)
	}
	if request == nil {
		request = make(http.Header, len(extra))
	}
	for k, v := range extra {
		request.Del(k)
		request[k] = v
	}
	if err := checkHeader(request, len(c.cfg.subprotocols) > 0); err != nil {
		return nil, fmt.Errorf("resocket: HeaderFunc: %w", err)
	}
	return request, nil
}

// dialDisconnect describes a failed handshake for the policy.
func dialDisconnect(err error, header http.Header, status int) Disconnect {
	d := Disconnect{Code: StatusAbnormalClosure, Err: err}
	switch {
	case status != 0 && errors.Is(err, websocket.ErrBadHandshake):
		d.HTTPStatus = status
		d.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
		d.Err = &HandshakeError{Status: status, RetryAfter: d.RetryAfter}
	case isCertificateError(err):
		d.Code = StatusTLSHandshake
	}
	return d
}

// isCertificateError reports whether err is a rejected server certificate:
// retrying will not make it valid.
func isCertificateError(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &authority) ||
		errors.As(err, &hostname) || errors.As(err, &invalid)
}
