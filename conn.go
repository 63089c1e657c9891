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
	errCloseSent  = websocket.ErrCloseSent
	errTerminated = errors.New("resocket: terminated")
	errConnEnded  = errors.New("resocket: connection ended")
	// longAgo is a deadline in the past: it makes a blocked write return.
	longAgo = time.Unix(1, 0)
)

// Conn is one live connection; every reopen makes a new one. The client
// hands it to OnConnect; it is no longer usable once that connection ends.
type Conn struct {
	id       uint64
	ws       *websocket.Conn
	opened   time.Time
	counters *counters // the client's

	writeMu     sync.Mutex
	hasDeadline bool // guarded by writeMu: a write deadline is set on ws

	// activity counts reads that brought data, pings and pongs; busy is
	// set while the reader waits for the Events reader. The keepalive
	// reads both.
	activity atomic.Uint64
	busy     atomic.Bool

	killOnce sync.Once
	killErr  error // why the client cut the connection; set in killOnce
	killed   atomic.Bool
}

var connIDs atomic.Uint64

func newConn(ws *websocket.Conn, readLimit int64, cs *counters) *Conn {
	c := &Conn{id: connIDs.Add(1), ws: ws, opened: time.Now(), counters: cs}
	ws.SetReadLimit(readLimit)
	ws.SetPongHandler(func(string) error {
		c.activity.Add(1)
		return nil
	})
	ws.SetPingHandler(func(data string) error {
		c.activity.Add(1)
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if err != nil && !errors.Is(err, errCloseSent) && !isTimeout(err) {
			return err
		}
		return nil
	})
	return c
}

// ID returns the connection's ID, unique within the process; it matches
// the ConnID of the events about this connection.
func (c *Conn) ID() uint64 { return c.id }

// Send writes a data message on this connection only: no buffering and no
// retry. It returns once the frame is written, or with the error that
// stopped it; after the connection has ended it fails.
func (c *Conn) Send(ctx context.Context, typ MessageType, data []byte) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("%w: %d", ErrInvalidMessageType, int(typ))
	}
	if c.killed.Load() {
		return errConnEnded
	}
	return c.write(ctx, typ, data)
}

// write writes one message, honouring ctx's deadline and cancellation. Any
// failure but errCloseSent leaves the connection unusable, so it is cut,
// and the reader reports it.
func (c *Conn) write(ctx context.Context, typ MessageType, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.ws.SetWriteDeadline(dl) // gorilla only stores it
		c.hasDeadline = true
	} else if c.hasDeadline {
		_ = c.ws.SetWriteDeadline(time.Time{})
		c.hasDeadline = false
	}
	var stop func() bool
	var interrupted chan struct{}
	if ctx.Done() != nil {
		// gorilla sets the socket's deadline per frame, so cancelling means
		// pulling that deadline into the past while the write blocks.
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			_ = c.ws.NetConn().SetWriteDeadline(longAgo)
			close(interrupted)
		})
	}
	err := c.ws.WriteMessage(int(typ), data)
	if stop != nil && !stop() {
		<-interrupted // no goroutine of ours outlives the call
	}
	if err == nil {
		c.counters.msgsOut.Add(1)
		c.counters.bytesOut.Add(uint64(len(data)))
		return nil
	}
	if errors.Is(err, errCloseSent) {
		return err
	}
	if isTimeout(err) {
		// The socket's deadline is ctx's, but may pass before ctx's own
		// timer has fired.
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		} else if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			err = context.DeadlineExceeded
		}
	}
	c.kill(err)
	return err
}

// sendClose writes a close frame; if that fails the connection is cut.
func (c *Conn) sendClose(code StatusCode, reason string, deadline time.Time) {
	msg := websocket.FormatCloseMessage(int(code), reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil && !errors.Is(err, errCloseSent) {
		c.kill(err)
		return
	}
	// Bound the wait for the peer's close frame.
	_ = c.ws.NetConn().SetReadDeadline(deadline)
}

// kill cuts the connection at once; the first cause given is kept.
func (c *Conn) kill(cause error) {
	c.killOnce.Do(func() {
		c.killErr = cause
		c.killed.Store(true)
	})
	_ = c.ws.NetConn().Close()
}

// cause returns what kill was first given, once the reader has ended.
func (c *Conn) cause() error {
	if !c.killed.Load() {
		return nil
	}
	return c.killErr
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
