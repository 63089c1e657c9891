package resocket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var (
	errTerminated = errors.New("resocket: terminated")
	errConnEnded  = errors.New("resocket: connection ended")
)

// Conn is one live connection; every reopen makes a new one. The client
// hands it to OnConnect; it is no longer usable once that connection ends.
//
// Writers (Client.Send on callers' goroutines, the flusher, OnConnect's
// Conn.Send) take writeLock, a channel rather than a mutex so that a writer
// waiting behind a blocked write still honours its ctx and the
// connection's end. Pings, pongs and close frames go through gorilla's
// WriteControl, which is safe beside a data write.
type Conn struct {
	id       uint64
	ws       *websocket.Conn
	opened   time.Time
	counters *counters // the client's

	writeLock   chan struct{} // holds a token while a data write is under way
	hasDeadline bool          // guarded by writeLock: a write deadline is set on ws

	// activity counts reads that brought data, and pings and pongs unless
	// pingsAreLife is false (a Heartbeat replaces them); busy is set while
	// the reader waits for the Events reader. The keepalive reads both.
	activity     atomic.Uint64
	busy         atomic.Bool
	pingsAreLife bool

	// With Config.Resume: whether the handshake resumed the session, and
	// the number from which the flusher replays the outbox. Set by the
	// loop before the connection is shared.
	resumed    bool
	replayFrom uint64
	inSeq      uint64 // the number of the last data message read (the loop's)
	moveAsked  bool   // the server sent the move hint (the loop's)
	// the server's window, from its answer (0: not said)
	peerWindow, peerWindowBytes int

	// retired: a rotation has replaced this connection, which must never
	// become the one Send writes to again (under the client's mutex).
	retired bool

	endOnce sync.Once
	ended   chan struct{} // closed by kill
	endErr  error         // why the client cut the connection; set before ended closes
}

var connIDs atomic.Uint64

// newConn wraps a fresh connection. controlTimeout bounds each pong it
// writes in answer to a ping (Config.CloseTimeout). pingsAreLife says
// whether pings and pongs count as signs of life.
func newConn(ws *websocket.Conn, readLimit int64, controlTimeout time.Duration, cs *counters, pingsAreLife bool) *Conn {
	c := &Conn{id: connIDs.Add(1), ws: ws, opened: time.Now(), counters: cs,
		writeLock: make(chan struct{}, 1), ended: make(chan struct{}), pingsAreLife: pingsAreLife}
	ws.SetReadLimit(readLimit)
	ws.SetPongHandler(func(string) error {
		c.controlSeen()
		return nil
	})
	// Runs on the reader (the loop goroutine).
	ws.SetPingHandler(func(data string) error {
		c.controlSeen()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(controlTimeout))
		if err != nil && !errors.Is(err, errCloseSent) && !isTimeout(err) {
			return err
		}
		return nil
	})
	return c
}

// controlSeen counts a ping or pong as a sign of life, unless a proxy
// might have made it up (see Heartbeat).
func (c *Conn) controlSeen() {
	if c.pingsAreLife {
		c.activity.Add(1)
	}
}

// ID returns the connection's ID, unique within the process; it matches
// the ConnID of the events about this connection.
func (c *Conn) ID() uint64 { return c.id }

// Send writes a data message on this connection only: no buffering and no
// retry. It returns once the frame is written, or with the error that
// stopped it: ctx's error if ctx ends first, also while it waits for
// another write on this connection to finish; an error once the
// connection has ended.
func (c *Conn) Send(ctx context.Context, typ MessageType, data []byte) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("%w: %d", ErrInvalidMessageType, int(typ))
	}
	return c.write(ctx, typ, data)
}

// write writes one message, honouring ctx while it waits for the write
// lock and while it writes. It runs on the caller's goroutine (Send,
// Conn.Send) or the flusher's. errConnEnded means the connection ended
// while the message waited: nothing of it reached the wire. Any failure of
// the write itself but errCloseSent leaves the connection unusable (a
// frame may be cut half-way), so it is cut and the reader reports it.
func (c *Conn) write(ctx context.Context, typ MessageType, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	return c.writeLocked(ctx, typ, data, len(data))
}

// writeLocked is write for a caller that holds the write lock. payload is
// the application's bytes in data, counted in Stats; -1 for a frame of the
// resume protocol's own (an ack), which is not counted.
func (c *Conn) writeLocked(ctx context.Context, typ MessageType, data []byte, payload int) error {
	if c.isEnded() {
		return errConnEnded
	}
	err := writeMessage(ctx, c.ws, typ, data, &c.hasDeadline)
	if err == nil {
		if payload >= 0 {
			c.counters.msgsOut.Add(1)
			c.counters.bytesOut.Add(uint64(payload))
		}
		return nil
	}
	if !errors.Is(err, errCloseSent) {
		c.kill(err)
	}
	return err
}

// lock takes the write lock, unless ctx or the connection ends first.
func (c *Conn) lock(ctx context.Context) error {
	select {
	case c.writeLock <- struct{}{}: // uncontended: no timer, no select on ctx
		return nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.writeLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ended:
		return errConnEnded
	}
}

func (c *Conn) unlock() { <-c.writeLock }

// sendClose writes a close frame and bounds the wait for the peer's answer
// by deadline; if the frame cannot be written the connection is cut.
func (c *Conn) sendClose(code StatusCode, reason string, deadline time.Time) {
	msg := websocket.FormatCloseMessage(int(code), reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil && !errors.Is(err, errCloseSent) {
		c.kill(err)
		return
	}
	_ = c.ws.NetConn().SetReadDeadline(deadline)
}

// kill cuts the connection at once, from any goroutine; the first cause
// given is kept.
func (c *Conn) kill(cause error) {
	c.endOnce.Do(func() {
		c.endErr = cause
		close(c.ended)
	})
	_ = c.ws.NetConn().Close()
}

func (c *Conn) isEnded() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

// cause returns what kill was first given, or nil.
func (c *Conn) cause() error {
	if !c.isEnded() {
		return nil
	}
	return c.endErr
}
