package mocks

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Errors returned by Conn.
var (
	// ErrTimeout is returned by Receive when no message came in time.
	ErrTimeout = errors.New("mocks: timed out")
	// ErrClosed is returned (wrapped with the cause) by Receive once the
	// connection has ended and every received message has been consumed.
	ErrClosed = errors.New("mocks: connection ended")
	// ErrSilent is returned by Send, SendText and WriteRaw after GoSilent.
	ErrSilent = errors.New("mocks: connection is silent")
)

// Opcodes for Frame, as in RFC 6455 §5.2.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// message is one received data message.
type message struct {
	typ  int
	data []byte
}

// Conn is the server side of one accepted connection. A reader goroutine per
// Conn reads continuously: it records data messages (and echoes them with
// WithEcho), answers pings with pongs and a client's close frame with a close
// frame, until the connection ends. All methods are safe for concurrent use;
// writes are serialised.
type Conn struct {
	srv     *Server
	id      int
	ws      *websocket.Conn
	netConn net.Conn     // what ws reads and writes (a *tls.Conn with TLS)
	tcp     *net.TCPConn // the TCP connection under netConn, if known
	isTLS   bool
	req     *http.Request

	// writeMu serialises every write, and guards closeSent; silent is
	// written under it too.
	writeMu   sync.Mutex
	closeSent bool
	silent    atomic.Bool

	pings atomic.Int64
	pongs atomic.Int64

	mu          sync.Mutex
	queue       []message
	all         [][]byte
	closeCode   int
	closeReason string
	closeOK     bool
	err         error

	msgCh     chan struct{} // signalled (cap 1) when a message is queued
	closeRecv chan struct{} // closed when the client's close frame arrived
	recvOnce  sync.Once
	killCh    chan struct{} // closed when the server ends the TCP connection
	killOnce  sync.Once
	done      chan struct{} // closed when the connection has ended
}

func newConn(s *Server, ws *websocket.Conn, req *http.Request) *Conn {
	c := &Conn{
		srv:       s,
		ws:        ws,
		netConn:   ws.NetConn(),
		req:       req,
		msgCh:     make(chan struct{}, 1),
		closeRecv: make(chan struct{}),
		killCh:    make(chan struct{}),
		done:      make(chan struct{}),
	}
	under := c.netConn
	if tc, ok := under.(*tls.Conn); ok {
		c.isTLS = true
		under = tc.NetConn()
	}
	c.tcp, _ = under.(*net.TCPConn)
	if n := s.opts.socketBuffer; n > 0 && c.tcp != nil {
		// Set before the reader starts and before any data message.
		_ = c.tcp.SetReadBuffer(n)
		_ = c.tcp.SetWriteBuffer(n)
	}

	ws.SetPingHandler(c.handlePing)
	ws.SetPongHandler(func(string) error { c.pongs.Add(1); return nil })
	ws.SetCloseHandler(c.handleClose)
	return c
}

// ID returns the connection's number: 1, 2, 3... in accept order.
func (c *Conn) ID() int { return c.id }

// Request returns a copy of the handshake request that opened the
// connection (method, URL, header, host, remote address).
func (c *Conn) Request() *http.Request { return copyRequest(c.req) }

// Subprotocol returns the subprotocol negotiated in the handshake, or "".
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Send writes one message of type typ (websocket.TextMessage or
// BinaryMessage; PingMessage and PongMessage send a control frame). Writes
// are bounded by a 5s deadline. It returns ErrSilent after GoSilent,
// websocket.ErrCloseSent after a close frame was sent, and an error for
// CloseMessage (use CloseWith) or an unknown type. A nil error means the
// frame was written to the socket, not that the client read it.
func (c *Conn) Send(typ int, data []byte) error { return c.SendWithin(typ, data, writeTimeout) }

// SendWithin is Send with a write deadline of timeout instead of 5s: a
// test can tell from it when a client has stopped reading (the write
// blocks on full socket buffers). The deadline counts from when the write
// starts, after any other write under way. A write that missed its
// deadline may have sent part of its frame, and leaves the connection
// unable to write: later writes fail, so end the connection after one.
func (c *Conn) SendWithin(typ int, data []byte, timeout time.Duration) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.silent.Load() {
		return ErrSilent
	}
	if c.closeSent {
		return websocket.ErrCloseSent
	}
	deadline := time.Now().Add(timeout)
	switch typ {
	case websocket.TextMessage, websocket.BinaryMessage:
		_ = c.ws.SetWriteDeadline(deadline)
		return c.ws.WriteMessage(typ, data)
	case websocket.PingMessage, websocket.PongMessage:
		return c.ws.WriteControl(typ, data, deadline)
	default:
		return fmt.Errorf("mocks: Send: unsupported message type %d (use CloseWith for close frames)", typ)
	}
}

// SendText sends s as one text message; see Send.
func (c *Conn) SendText(s string) error { return c.Send(websocket.TextMessage, []byte(s)) }

// WriteRaw writes b as is to the connection (through TLS with WithTLS),
// under the write lock and a 5s deadline: for frames gorilla would not
// write, such as fragments, sliced frames or malformed ones (see Frame). It
// returns ErrSilent after GoSilent; it does not check whether a close frame
// was sent.
func (c *Conn) WriteRaw(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.silent.Load() {
		return ErrSilent
	}
	return c.writeRawLocked(b)
}

// Receive returns the next data message received from the client, waiting up
// to timeout. Messages are queued without bound by the reader goroutine, so
// none is lost between calls. It returns ErrTimeout if none came in time and
// an error wrapping ErrClosed once the connection has ended and the queue is
// empty.
func (c *Conn) Receive(timeout time.Duration) (typ int, data []byte, err error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	ended := false
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue[0] = message{}
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return m.typ, m.data, nil
		}
		cause := c.err
		c.mu.Unlock()
		if ended {
			if cause == nil {
				return 0, nil, ErrClosed
			}
			return 0, nil, fmt.Errorf("%w: %w", ErrClosed, cause)
		}
		select {
		case <-c.msgCh:
		case <-c.done:
			ended = true
		case <-timer.C:
			return 0, nil, ErrTimeout
		}
	}
}

// Received returns a copy of every data message received so far, in order,
// whether or not Receive has returned it.
func (c *Conn) Received() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([][]byte, len(c.all))
	for i, b := range c.all {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

// CloseWith writes a close frame whose payload is exactly code (2 bytes, big
// endian, truncated to 16 bits) followed by reason, without any check: any
// code (0, 999, 1004, 1005, 1014, 5000...) and any reason bytes (invalid
// UTF-8, longer than 123 bytes) are sent as given. It then waits up to 2s for
// the client's close frame and closes the TCP connection; when it returns the
// connection has ended. It returns websocket.ErrCloseSent if a close frame
// was already sent, or the write error. On a silent connection the frame is
// written too, but no reply is awaited.
func (c *Conn) CloseWith(code int, reason string) error {
	payload := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code)) //nolint:gosec // any code, invalid ones too, on purpose
	return c.CloseWithPayload(append(payload, reason...))
}

// CloseWithPayload is CloseWith with an arbitrary close-frame payload (e.g.
// one byte, or more than 125 bytes, written with an extended length).
func (c *Conn) CloseWithPayload(payload []byte) error {
	c.writeMu.Lock()
	if c.closeSent {
		c.writeMu.Unlock()
		return websocket.ErrCloseSent
	}
	c.closeSent = true
	silent := c.silent.Load()
	err := c.writeRawLocked(Frame(true, OpClose, payload))
	c.writeMu.Unlock()

	if err == nil && !silent {
		timer := time.NewTimer(closeReplyTimeout)
		select {
		case <-c.closeRecv:
		case <-c.done:
		case <-timer.C:
		}
		timer.Stop()
	}
	c.Drop()
	return err
}

// CloseNoStatus writes a close frame with an empty payload (the client
// reports 1005, no status), then behaves as CloseWith.
func (c *Conn) CloseNoStatus() error { return c.CloseWithPayload(nil) }

// Drop closes the TCP connection without a close frame: a FIN (with TLS,
// after a close_notify alert). When it returns the connection has ended
// (bounded wait).
func (c *Conn) Drop() {
	c.kill()
	c.waitDone()
}

// Reset aborts the TCP connection with a RST (SetLinger(0), then Close),
// without a close frame, bypassing TLS. When it returns the connection has
// ended (bounded wait).
func (c *Conn) Reset() {
	c.killOnce.Do(func() { close(c.killCh) })
	if c.tcp != nil {
		_ = c.tcp.SetLinger(0)
		_ = c.tcp.Close()
	} else {
		_ = c.netConn.Close()
	}
	c.waitDone()
}

// GoSilent makes the connection stop reading (so pings get no pong, and
// close frames no reply) and stop writing (Send, SendText, WriteRaw and echo
// return ErrSilent), while its TCP connection stays open: a half-open link
// as the client sees it. The connection still counts as open and Done stays
// open until Drop, Reset, CloseWith (which still writes its frame) or
// Server.Close ends it.
func (c *Conn) GoSilent() {
	c.writeMu.Lock()
	c.silent.Store(true)
	c.writeMu.Unlock()
	// Wake the reader out of its read; it then waits to be killed.
	_ = c.netConn.SetReadDeadline(time.Now())
}

// Pings returns the number of pings received from the client so far.
func (c *Conn) Pings() int { return int(c.pings.Load()) }

// Pongs returns the number of pongs received from the client so far.
func (c *Conn) Pongs() int { return int(c.pongs.Load()) }

// Done returns a channel closed when the connection has ended (the client
// closed, a read failed, Drop, Reset, CloseWith, Server.Close...) and its
// reader goroutine is finishing; by then OpenConns no longer counts it.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns the error that ended the connection's reader (a
// *websocket.CloseError when the client closed), or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CloseReceived returns the code and reason of the close frame the client
// sent, if one came (code 1005 for an empty payload).
func (c *Conn) CloseReceived() (code int, reason string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeReason, c.closeOK
}

// Frame builds one unmasked (server-to-client) WebSocket frame with the given
// FIN bit, opcode (OpText...) and payload, choosing the 7-bit, 16-bit or
// 64-bit length encoding by the payload's size, without any validation: for
// WriteRaw.
func Frame(fin bool, opcode int, payload []byte) []byte {
	b0 := byte(opcode) & 0x0F //nolint:gosec // the low 4 bits, whatever the caller passed
	if fin {
		b0 |= 0x80
	}
	b := make([]byte, 0, 10+len(payload))
	b = append(b, b0)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// readLoop reads until the connection fails, then ends it.
func (c *Conn) readLoop() {
	defer c.srv.wg.Done()
	var err error
	for {
		var typ int
		var data []byte
		typ, data, err = c.ws.ReadMessage()
		if err != nil {
			break
		}
		c.record(typ, data)
		if c.srv.opts.echo {
			_ = c.Send(typ, data) // refused when silent or closing
		}
	}
	if c.silent.Load() {
		// A half-open link: hold the TCP connection until the server ends it.
		<-c.killCh
	}
	if c.killed() && c.tcp != nil {
		// Unread bytes make close(2) send a RST instead of a FIN: discard
		// what has arrived first.
		_ = c.netConn.SetReadDeadline(time.Time{})
		drain(c.tcp)
	}
	_ = c.netConn.Close()
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	c.srv.remove(c)
	close(c.done)
}

func (c *Conn) record(typ int, data []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, message{typ: typ, data: data})
	c.all = append(c.all, append([]byte(nil), data...))
	c.mu.Unlock()
	select {
	case c.msgCh <- struct{}{}:
	default:
	}
}

// handlePing counts a ping and answers it, unless silent or closing or
// the server leaves pings unanswered (WithPingsUnanswered).
func (c *Conn) handlePing(appData string) error {
	c.pings.Add(1)
	if c.srv.opts.ignorePings {
		return nil
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.silent.Load() || c.closeSent {
		return nil
	}
	_ = c.ws.WriteControl(websocket.PongMessage, []byte(appData), time.Now().Add(writeTimeout))
	return nil
}

// handleClose records the client's close frame and answers it as gorilla's
// default handler does (echoing the code), unless a close frame was sent.
func (c *Conn) handleClose(code int, text string) error {
	c.mu.Lock()
	c.closeCode, c.closeReason, c.closeOK = code, text, true
	c.mu.Unlock()
	c.writeMu.Lock()
	if !c.silent.Load() && !c.closeSent {
		c.closeSent = true
		payload := []byte{}
		if code != websocket.CloseNoStatusReceived {
			payload = websocket.FormatCloseMessage(code, "")
		}
		_ = c.ws.WriteControl(websocket.CloseMessage, payload, time.Now().Add(writeTimeout))
	}
	c.writeMu.Unlock()
	c.recvOnce.Do(func() { close(c.closeRecv) })
	return nil
}

// writeRawLocked writes b to the connection; c.writeMu must be held. A single
// Write keeps the frame whole even against gorilla's own control writes.
func (c *Conn) writeRawLocked(b []byte) error {
	_ = c.netConn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.netConn.Write(b)
	_ = c.netConn.SetWriteDeadline(time.Time{})
	return err
}

// kill starts ending the connection without a close frame and without
// waiting: it sends the FIN at once (plain TCP), fails pending writes and
// wakes the reader, which then drains what the client already sent (so that
// closing does not turn into a RST) and closes the connection.
func (c *Conn) kill() {
	c.killOnce.Do(func() { close(c.killCh) })
	switch {
	case c.tcp == nil:
		_ = c.netConn.Close()
		return
	case !c.isTLS:
		_ = c.tcp.CloseWrite()
	default:
		// TLS: close_notify and the FIN are sent by the reader's Close.
		_ = c.netConn.SetWriteDeadline(time.Now())
	}
	_ = c.netConn.SetReadDeadline(time.Now())
}

// killed reports whether the server has ended (or is ending) the connection.
func (c *Conn) killed() bool {
	select {
	case <-c.killCh:
		return true
	default:
		return false
	}
}

// waitDone waits (bounded) for the reader to end the connection.
func (c *Conn) waitDone() {
	timer := time.NewTimer(shutdownTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
	}
}
