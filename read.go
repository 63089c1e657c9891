package resocket

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"

	"github.com/resocket/resocket/internal/wire"
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
		bp, err := conn.readMessage(r)
		if err != nil {
			return readDisconnect(conn, err)
		}
		d, ok := c.receiveRead(conn, ack, MessageType(typ), *bp)
		releaseReadBuf(bp)
		if !ok {
			return d
		}
		if conn.moveAsked {
			return Disconnect{Err: errMoveAsked}
		}
	}
}

// receiveRead hands what one WebSocket message read from conn into buf
// brings to the application: a message, or with Config.Resume a frame of
// the protocol; what is kept is copied out of buf.
func (c *Client) receiveRead(conn *Conn, ack *acker, typ MessageType, buf []byte) (Disconnect, bool) {
	if ack != nil && c.session.builtin && len(buf) > 0 && buf[0] == wire.KindBatch {
		return c.receiveBatch(conn, ack, typ, buf)
	}
	return c.receive(conn, ack, typ, own(buf))
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
	c.deliver(conn, ack, msg)
	return Disconnect{}, true
}

// receiveBatch hands the data messages of a batch frame (docs/protocol.md
// §2) to the application, in order, as receive does one message; frame,
// the kind byte first, is a read buffer that each message is copied out
// of.
func (c *Client) receiveBatch(conn *Conn, ack *acker, typ MessageType, frame []byte) (Disconnect, bool) {
	if typ != MessageBinary || len(frame) == 1 {
		return c.protocolError(conn, errResume("batch frame empty or sent as text")), false
	}
	for entries := frame[1:]; len(entries) > 0; {
		t, data, rest, err := wire.NextEntry(entries)
		if err != nil {
			return c.protocolError(conn, fmt.Errorf("%w: %w", ErrResumeProtocol, err)), false
		}
		entries = rest
		deliver, err := c.numbered(conn, 0)
		if err != nil {
			return c.protocolError(conn, err), false
		}
		if deliver {
			c.deliver(conn, ack, Message{ConnID: conn.id, Type: MessageType(t), Data: own(data)})
		}
	}
	return Disconnect{}, true
}

// deliver hands a message, new to the application, to Events (or OnEvent).
func (c *Client) deliver(conn *Conn, ack *acker, msg Message) {
	c.counters.msgsIn.Add(1)
	c.counters.bytesIn.Add(uint64(len(msg.Data)))
	if c.isHeartbeatAnswer(msg) {
		return
	}
	var ev Event = msg // boxed once
	if ack != nil {
		c.deliverNumbered(conn, ev, len(msg.Data), ack)
		return
	}
	if c.events.tryMessage(ev) {
		return
	}
	// The reader of Events, or OnEvent, is slow: while we wait for it,
	// silence on the socket is not a dead link.
	conn.busy.Store(true)
	c.events.message(ev)
	conn.activity.Add(1)
	conn.busy.Store(false)
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

// readMessage reads one message into a pooled buffer (releaseReadBuf
// gives it back), on the loop. Every read that brings data counts as a
// sign of life, so a large message crawling over a slow link is not
// mistaken for a dead one.
func (c *Conn) readMessage(r io.Reader) (*[]byte, error) {
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
			*bp = buf
			releaseReadBuf(bp)
			return nil, err
		}
	}
	*bp = buf
	return bp, nil
}

func releaseReadBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledReadBuf {
		readBufs.Put(bp)
	}
}

// own copies what was read into a slice of exactly its size, the one
// handed to the application.
func own(b []byte) []byte {
	data := make([]byte, len(b))
	copy(data, b)
	return data
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
