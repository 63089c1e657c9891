package resocket

import (
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// keepalive pings a connection every interval and cuts it when nothing
// arrives within timeout of a ping. It runs on a timer rather than a
// goroutine of its own, so an idle client costs one goroutine, not two.
//
// Silence while the reader waits for a slow Events reader is not death:
// the reader is not reading, so pongs queue unread in the socket. Such a
// wait counts as activity.
type keepalive struct {
	conn              *Conn
	interval, timeout time.Duration

	mu       sync.Mutex
	timer    *time.Timer
	stopped  bool
	awaiting bool   // a ping is out; the next firing checks for an answer
	seen     uint64 // conn.activity when the ping went out
	// pending counts armed or running firings, so that stop can wait for
	// the last one to return.
	pending sync.WaitGroup
}

// startKeepalive arms the first ping; it runs on the loop.
func startKeepalive(conn *Conn, interval, timeout time.Duration) *keepalive {
	k := &keepalive{conn: conn, interval: interval, timeout: timeout}
	k.mu.Lock()
	k.pending.Add(1)
	k.timer = time.AfterFunc(interval, k.fire)
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
	var next time.Duration
	if k.awaiting {
		k.awaiting = false
		if k.conn.activity.Load() == k.seen && !k.conn.busy.Load() {
			k.conn.kill(ErrPongTimeout)
			return
		}
		next = max(k.interval-k.timeout, 0)
	} else {
		k.seen = k.conn.activity.Load()
		err := k.conn.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(k.timeout))
		switch {
		case errors.Is(err, errCloseSent):
			return // closing: the close handshake has its own bound
		case err != nil && !isTimeout(err):
			k.conn.kill(err)
			return
		}
		// A ping that could not be written in time (a large write holds
		// the connection) still waits for any sign of life.
		k.awaiting = true
		next = k.timeout
	}
	k.pending.Add(1)
	k.timer.Reset(next)
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
