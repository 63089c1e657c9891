package resocket

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a client's counters, from Client.Stats.
type Stats struct {
	State       State
	URL         string // the endpoint of the current connection or the next attempt
	Attempts    int    // connection attempts started, in total
	Connects    int    // connections opened, in total
	Reconnects  int    // connections opened after the first
	MessagesIn  uint64 // data messages received
	BytesIn     uint64
	MessagesOut uint64 // data messages written (buffered ones once flushed)
	BytesOut    uint64
	Buffered    int // messages waiting in the send buffer; with Resume, in the outbox (not yet acknowledged)

	// Downtime is how long, in total since the first connection was
	// ready, no connection was ready to take a Send (it buffered). A
	// rotation (MaxConnectionAge) adds nothing to it.
	Downtime time.Duration

	ConnectedAt time.Time     // when the current connection opened; zero while there is none
	Uptime      time.Duration // how long the current connection has been open

	// LastDisconnect is why the latest connection ended or attempt
	// failed; nil before the first.
	LastDisconnect *Disconnect
	// NextAttempt is when the next attempt is due; zero unless the client
	// is waiting out a backoff.
	NextAttempt time.Time
}

// counters are updated on the hot paths without the client's lock.
type counters struct {
	msgsIn, bytesIn, msgsOut, bytesOut atomic.Uint64
}

// Stats returns a snapshot of the client's counters and state, on the
// caller's goroutine. It is cheap enough to poll for metrics.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{
		State:       c.state,
		URL:         c.cfg.urls[c.urlIndex].Redacted(),
		Attempts:    c.attempts,
		Connects:    c.connects,
		Reconnects:  max(c.connects-1, 0),
		MessagesIn:  c.counters.msgsIn.Load(),
		BytesIn:     c.counters.bytesIn.Load(),
		MessagesOut: c.counters.msgsOut.Load(),
		BytesOut:    c.counters.bytesOut.Load(),
		Buffered:    c.queue.len(),
		NextAttempt: c.nextAttempt,
		Downtime:    c.downtime,
	}
	if c.session != nil {
		s.Buffered = c.session.out.len()
	}
	if c.ready == nil && !c.unreadySince.IsZero() && c.state != StateClosed {
		s.Downtime += time.Since(c.unreadySince)
	}
	if c.live != nil {
		s.ConnectedAt = c.live.opened
		s.Uptime = time.Since(c.live.opened)
	}
	if c.last.Attempt != 0 {
		last := c.last
		s.LastDisconnect = &last
	}
	return s
}
