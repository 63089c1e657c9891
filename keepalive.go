package resocket

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Heartbeat is an application-level keepalive, for servers behind proxies
// and CDNs that answer WebSocket pings themselves (so a dead origin looks
// alive) or drop them (so a live one looks dead), as graphql-ws keep-alive
// and Phoenix heartbeats do.
//
// With Config.Heartbeat set, the keepalive sends this message where it
// would send a ping, every PingInterval, and the link is dead (1006 and
// ErrHeartbeatTimeout) when no data message arrives within PongTimeout of
// it. Pings and pongs no longer count as signs of life, since a proxy may
// make them up; the client still answers the server's pings.
type Heartbeat struct {
	// Type and Data are the message sent; Type is MessageText or
	// MessageBinary. Data is copied by New. Heartbeats are written like
	// any message (after a write under way) and count in
	// Stats.MessagesOut; they are not kept for the next connection.
	Type MessageType
	Data []byte
	// IsAnswer, if set, recognises the server's answers to the heartbeat:
	// a message for which it returns true is not delivered as a Message
	// event (it is counted in Stats all the same). nil means no message
	// is recognised: every message is delivered. Either way, any data
	// message counts as a sign of life, the answer or not, just as any
	// frame does after a ping: a message the origin sent proves the path
	// is up. It runs on the client's goroutine for every message
	// received, so it must be quick; it may call any method of the
	// client.
	IsAnswer func(Message) bool
}

// sleepCheckInterval is how often, at least, the keepalive compares the
// wall clock with the monotonic one to notice that the machine slept: a
// suspended machine's monotonic clock stops (and Go's timers with it)
// while its wall clock runs on.
const sleepCheckInterval = 5 * time.Second

// sleepJump is how far the wall clock must run ahead of the monotonic one
// between two looks for the keepalive to take it for a sleep rather than
// for a clock adjustment.
const sleepJump = 2 * time.Second

// probeTimeout is the most the keepalive waits for an answer to the ping
// it sends on waking: the link that was up before a sleep is usually dead
// after it, and the keepalive should not wait out a whole PongTimeout.
const probeTimeout = 3 * time.Second

// clock reads the wall clock and the monotonic clock at once; mono keeps
// Go's monotonic reading, wall has it stripped. Tests inject their own.
type clock func() (wall, mono time.Time)

func systemClock() (wall, mono time.Time) {
	now := time.Now()
	return now.Round(0), now
}

// keepalive pings a connection every interval and cuts it when nothing
// arrives within timeout of a ping. It runs on a timer rather than a
// goroutine of its own, so an idle client costs one goroutine, not two.
//
// The timer fires at least every sleepCheck, to notice a sleep of the
// machine at once: then it pings (or sends the heartbeat) straight away
// and waits for an answer no longer than probeTimeout.
//
// Silence while the reader waits for a slow Events reader is not death:
// the reader is not reading, so pongs queue unread in the socket. Such a
// wait counts as activity.
type keepalive struct {
	conn              *Conn
	interval, timeout time.Duration
	heartbeat         *Heartbeat // nil: WebSocket pings
	clock             clock
	sleepCheck        time.Duration

	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool
	awaiting bool      // a ping is out; the check at due looks for an answer
	seen     uint64    // conn.activity when the ping went out
	due      time.Time // monotonic: when the next ping goes out, or the answer is checked
	wall     time.Time // the clocks when the timer was last armed
	mono     time.Time
	// pending counts armed or running firings, so that stop can wait for
	// the last one to return.
	pending sync.WaitGroup
}

// startKeepalive arms the first ping; it runs on the loop.
func (c *Client) startKeepalive(conn *Conn) *keepalive {
	s := c.cfg
	k := &keepalive{conn: conn, interval: s.pingInterval, timeout: s.pongTimeout, heartbeat: s.heartbeat,
		clock: s.clock, sleepCheck: s.sleepCheck}
	k.mu.Lock()
	k.wall, k.mono = k.clock()
	k.due = k.mono.Add(k.interval)
	k.pending.Add(1)
	k.timer = time.AfterFunc(min(k.interval, k.sleepCheck), k.fire)
	k.mu.Unlock()
	return k
}

// fire runs on a timer goroutine of its own, one firing at a time.
func (k *keepalive) fire() {
	defer k.pending.Done()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	wall, mono := k.clock()
	slept := wall.Sub(k.wall)-mono.Sub(k.mono) > sleepJump
	k.wall, k.mono = wall, mono
	switch {
	case slept:
		// Whatever was awaited, the link is suspect now: ask at once.
		if !k.ping(mono, min(k.timeout, probeTimeout)) {
			return
		}
	case mono.Before(k.due):
		// Only a look at the clocks.
	case k.awaiting:
		k.awaiting = false
		if k.conn.activity.Load() == k.seen && !k.conn.busy.Load() {
			k.conn.kill(k.deadErr())
			return
		}
		k.due = mono.Add(max(k.interval-k.timeout, 0))
	default:
		if !k.ping(mono, k.timeout) {
			return
		}
	}
	k.pending.Add(1)
	k.timer.Reset(min(max(k.due.Sub(mono), 0), k.sleepCheck))
}

// ping sends a ping (or the heartbeat) and awaits an answer within
// timeout. It reports false when the connection is ending or cut.
func (k *keepalive) ping(now time.Time, timeout time.Duration) bool {
	k.seen = k.conn.activity.Load()
	var err error
	if hb := k.heartbeat; hb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = k.conn.write(ctx, hb.Type, hb.Data)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil // as below: a heartbeat not written in time still awaits an answer
		}
	} else {
		err = k.conn.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(timeout))
		if isTimeout(err) {
			// A ping that could not be written in time (a large write
			// holds the connection) still waits for any sign of life.
			err = nil
		}
	}
	switch {
	case errors.Is(err, errCloseSent), errors.Is(err, errConnEnded):
		return false // closing: the close handshake has its own bound
	case err != nil:
		k.conn.kill(err)
		return false
	}
	k.awaiting = true
	k.due = now.Add(timeout)
	return true
}

func (k *keepalive) deadErr() error {
	if k.heartbeat != nil {
		return ErrHeartbeatTimeout
	}
	return ErrPongTimeout
}

// stop ends the keepalive and waits for a firing under way to return. It
// runs on the loop.
func (k *keepalive) stop() {
	if k == nil {
		return
	}
	k.mu.Lock()
	k.stopped = true
	if k.timer.Stop() {
		k.pending.Done()
	}
	k.mu.Unlock()
	k.pending.Wait()
}
