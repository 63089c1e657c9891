package resocket

import (
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"
)

// readBufs holds the buffers messages are read into before being copied
// into a slice of exactly their size, the one handed to the user. Pooled
// rather than per connection, so an idle client holds none.
var readBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// maxPooledReadBuf keeps one huge message from pinning its buffer forever.
const maxPooledReadBuf = 64 << 10

// read delivers the connection's messages to Events until it fails, and
// says why it ended. It runs on the loop. ack is nil without Config.Resume.
func (c *Client) read(conn *Conn, ack *acker) Disconnect {
	for {
		typ, r, err := conn.ws.NextReader()
		if err != nil {
			return readDisconnect(conn, err)
		}
		data, err := conn.readMessage(r)
		if err != nil {
			return readDisconnect(conn, err)
		}
		if d, ok := c.receive(conn, ack, MessageType(typ), data); !ok {
			return d
		}
		if conn.moveAsked {
			return Disconnect{Err: errMoveAsked}
		}
	}
}

// receive hands one message read from conn to the application, on the
// loop; with Config.Resume it first takes off the framing (an ack is
// taken in, a replay dropped). It reports false, and why, when the
// message ends the connection (a protocol error).
func (c *Client) receive(conn *Conn, ack *acker, typ MessageType, data []byte) (Disconnect, bool) {
	msg := Message{ConnID: conn.id, Type: typ, Data: data}
	if ack != nil {
		var deliver bool
		var err error
		if msg, deliver, err = c.unframe(conn, msg); err != nil {
			return c.protocolError(conn, err), false
		}
		if !deliver {
			return Disconnect{}, true
		}
	}
	c.counters.msgsIn.Add(1)
	c.counters.bytesIn.Add(uint64(len(msg.Data)))
	if c.isHeartbeatAnswer(msg) {
		return Disconnect{}, true
	}
	var ev Event = msg // boxed once
	if ack != nil {
		c.deliverNumbered(conn, ev, len(msg.Data), ack)
		return Disconnect{}, true
	}
	if c.events.tryMessage(ev) {
		return Disconnect{}, true
	}
	// The reader of Events, or OnEvent, is slow: while we wait for it,
	// silence on the socket is not a dead link.
	conn.busy.Store(true)
	c.events.message(ev)
	conn.activity.Add(1)
	conn.busy.Store(false)
	return Disconnect{}, true
}

// isHeartbeatAnswer reports whether msg answers Config.Heartbeat, and so
// is not delivered.
func (c *Client) isHeartbeatAnswer(msg Message) (answer bool) {
	hb := c.cfg.heartbeat
	if hb == nil || hb.IsAnswer == nil {
		return false
	}
	// A callback (see awaitEnd), marked by hand as OnEvent is: this is the
	// hot path, and a closure here would cost an allocation per message.
	c.inCallback.Add(1)
	answer = hb.IsAnswer(msg)
	c.inCallback.Add(-1)
	return answer
}

// readMessage reads one message into a slice of its own, on the loop. Every read that
// brings data counts as a sign of life, so a large message crawling over a
// slow link is not mistaken for a dead one.
func (c *Conn) readMessage(r io.Reader) ([]byte, error) {
	bp := readBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			c.activity.Add(1)
		}
		if err == io.EOF {
			if len(buf) == 0 {
				c.activity.Add(1) // an empty message is a sign of life too
			}
			break
		}
		if err != nil {
			return nil, err
		}
	}
	data := make([]byte, len(buf))
	copy(data, buf)
	if cap(buf) <= maxPooledReadBuf {
		*bp = buf
		readBufs.Put(bp)
	}
	return data, nil
}

// readDisconnect turns the error that ended reading into a Disconnect, on
// the loop.
func readDisconnect(conn *Conn, err error) Disconnect {
	if cause := conn.cause(); cause != nil {
		return Disconnect{Code: StatusAbnormalClosure, Err: cause}
	}
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		return Disconnect{Code: StatusAbnormalClosure, Err: err}
	case errors.As(err, &ce):
		return Disconnect{Code: StatusCode(ce.Code), Reason: ce.Text}
	case errors.Is(err, websocket.ErrReadLimit):
		return Disconnect{Code: StatusMessageTooBig, Err: err}
	case isTransportError(err):
		return Disconnect{Code: StatusAbnormalClosure, Err: err}
	case rejectedCloseCode(err) == StatusBadGateway:
		// IANA registered 1014 after gorilla's list was written.
		return Disconnect{Code: StatusBadGateway}
	}
	return Disconnect{Code: StatusProtocolError, Err: err}
}

func isTransportError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}
