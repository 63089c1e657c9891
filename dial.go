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

// trackDials makes d register every connection it dials with the client,
// so that Close and Terminate can cut a handshake that stalls: gorilla
// ignores a cancelled context while it waits for the 101.
func (c *Client) trackDials(d *websocket.Dialer) {
	base := d.NetDialContext
	if base == nil && d.NetDial != nil {
		netDial := d.NetDial
		base = func(_ context.Context, network, addr string) (net.Conn, error) { return netDial(network, addr) }
	}
	if base == nil {
		base = new(net.Dialer).DialContext
	}
	d.NetDialContext = c.tracked(base)
	d.NetDial = nil
	if d.NetDialTLSContext != nil {
		d.NetDialTLSContext = c.tracked(d.NetDialTLSContext)
	}
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

func (c *Client) tracked(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closeReq != nil {
			_ = conn.Close()
			return nil, ErrClosed
		}
		c.dialing = conn
		return conn, nil
	}
}

// handshake dials one connection to endpoint: headers, TCP, TLS, HTTP
// upgrade. It returns the response's headers and status, also on refusal.
func (c *Client) handshake(endpoint string) (ws *websocket.Conn, header http.Header, status int, err error) {
	request := c.s.Header.Clone()
	if c.s.HeaderFunc != nil {
		extra, err := c.s.HeaderFunc(c.ctx)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("resocket: HeaderFunc: %w", err)
		}
		if request == nil {
			request = make(http.Header, len(extra))
		}
		for k, v := range extra {
			request.Del(k)
			request[k] = v
		}
		if err := checkHeader(request, len(c.s.Subprotocols) > 0); err != nil {
			return nil, nil, 0, fmt.Errorf("resocket: HeaderFunc: %w", err)
		}
	}
	// The handshake (net/http's response parser, TLS) grows a goroutine's
	// stack to 8 KB, which an idle reader then keeps: dialing on a
	// goroutine of its own leaves the long-lived loop goroutine at 4 KB.
	// Waiting for it unconditionally is safe: Close and Terminate cut
	// the dial through ctx and the tracked connection.
	type result struct {
		ws   *websocket.Conn
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		ws, resp, err := c.dialer.DialContext(c.ctx, endpoint, request) //nolint:bodyclose // closed below, once back on the loop goroutine
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
