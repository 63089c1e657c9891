package resocket

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Workarounds for gorilla/websocket, kept in this one file so that the
// client's logic reads without them. Each says which gorilla behaviour it
// works around; drop it when gorilla changes.

// errCloseSent is gorilla's answer to a write after our close frame.
var errCloseSent = websocket.ErrCloseSent

// longAgo is a deadline in the past: it makes a blocked write return.
var longAgo = time.Unix(1, 0)

// writeMessage writes one data message with ws.WriteMessage, honouring
// ctx's deadline and cancellation, which gorilla ignores: it only knows a
// stored write deadline, applied per frame. So the deadline is stored, and
// cancellation pulls the socket's deadline into the past while the write
// blocks. The caller holds the connection's write lock.
func writeMessage(ctx context.Context, ws *websocket.Conn, typ MessageType, data []byte, hasDeadline *bool) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetWriteDeadline(dl) // gorilla only stores it
		*hasDeadline = true
	} else if *hasDeadline {
		_ = ws.SetWriteDeadline(time.Time{})
		*hasDeadline = false
	}
	var stop func() bool
	var interrupted chan struct{}
	if ctx.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			_ = ws.NetConn().SetWriteDeadline(longAgo)
			close(interrupted)
		})
	}
	err := ws.WriteMessage(int(typ), data)
	if stop != nil && !stop() {
		<-interrupted // the AfterFunc's goroutine has ended: none outlives the call
	}
	if err != nil && isTimeout(err) {
		// The socket's deadline is ctx's, but may pass before ctx's own
		// timer has fired: report the deadline, not a network timeout.
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return context.DeadlineExceeded
		}
	}
	return err
}

// dialFunc is the shape of websocket.Dialer's NetDialContext.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// trackDials makes d hand every connection it dials to track, so that
// Close and Terminate can cut a handshake that stalls: gorilla ignores a
// cancelled context while it waits for the 101. track returns an error to
// refuse the connection (the client is closing). around wraps each call of
// the user's own dial hooks (see Client.callback).
func trackDials(d *websocket.Dialer, track func(net.Conn) error, around func(func())) {
	base := d.NetDialContext
	if base == nil && d.NetDial != nil {
		netDial := d.NetDial
		base = func(_ context.Context, network, addr string) (net.Conn, error) { return netDial(network, addr) }
	}
	userHook := base != nil
	if base == nil {
		base = new(net.Dialer).DialContext
	}
	d.NetDialContext = trackedDial(base, userHook, track, around)
	d.NetDial = nil
	if d.NetDialTLSContext != nil {
		d.NetDialTLSContext = trackedDial(d.NetDialTLSContext, true, track, around)
	}
	if proxy := d.Proxy; proxy != nil {
		d.Proxy = func(r *http.Request) (u *url.URL, err error) {
			around(func() { u, err = proxy(r) })
			return u, err
		}
	}
}

func trackedDial(dial dialFunc, userHook bool, track func(net.Conn) error, around func(func())) dialFunc {
	return func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		if userHook {
			around(func() { conn, err = dial(ctx, network, addr) })
		} else {
			conn, err = dial(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		if err := track(conn); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// rejectedCloseCode returns the code of a close frame gorilla refused as
// invalid, or 0. gorilla's list of valid codes predates 1014 (IANA
// registered it later) and reports the refusal only as the text
// "websocket: bad close code N", so this is the one place that reads an
// error's text.
func rejectedCloseCode(err error) StatusCode {
	const prefix = "websocket: bad close code "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return 0
	}
	code := 0
	for _, r := range msg[len(prefix):] {
		if r < '0' || r > '9' || code > 1e6 {
			return 0
		}
		code = code*10 + int(r-'0')
	}
	return StatusCode(code)
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
