package resocket

import (
	"time"

	"github.com/resocket/resocket/internal/fifo"
)

// queue holds, in order, messages Send accepted and not yet done with:
// without Config.Resume, the send buffer (messages waiting for a
// connection); with it, the session's outbox (messages the server has
// not acknowledged). The client's mutex guards it.
type queue struct {
	items    fifo.Queue[queued]
	bytes    int
	accepted uint64 // messages ever pushed: the id of the newest
	stamp    bool   // record when each message was pushed (MaxBufferAge)
	drained  bool   // the client ended: what was left is Closed.Unsent, not done
}

// queued is one message, with what Flush and MaxBufferAge need.
type queued struct {
	msg Message
	id  uint64    // its rank among the messages Send accepted, from 1
	at  time.Time // when it was pushed, if stamped
}

func (q *queue) len() int { return q.items.Len() }

// push appends a copy of data.
func (q *queue) push(typ MessageType, data []byte) {
	q.accepted++
	e := queued{msg: Message{Type: typ, Data: append([]byte(nil), data...)}, id: q.accepted}
	if q.stamp {
		e.at = time.Now()
	}
	q.items.Push(e)
	q.bytes += len(data)
}

// at returns the i-th message from the front.
func (q *queue) at(i int) Message { return q.items.At(i).msg }

// dropFront removes the k oldest messages, releasing the backing array once
// empty so that a burst does not pin its memory.
func (q *queue) dropFront(k int) {
	for _, e := range q.items.Items()[:k] {
		q.bytes -= len(e.msg.Data)
	}
	q.items.DropFront(k)
	q.items.Trim(0)
}

// messages returns the messages from index i to j, in order.
func (q *queue) messages(i, j int) []Message {
	if i == j {
		return nil
	}
	out := make([]Message, 0, j-i)
	for _, e := range q.items.Items()[i:j] {
		out = append(out, e.msg)
	}
	return out
}

// drain empties the queue and returns what it held.
func (q *queue) drain() []Message {
	m := q.messages(0, q.len())
	q.items, q.bytes = fifo.Queue[queued]{}, 0
	q.drained = len(m) > 0
	return m
}

// expire removes, from index from on, the messages pushed before cutoff,
// and returns them in order. Messages are pushed in time order, so they
// are the first ones of that part.
func (q *queue) expire(from int, cutoff time.Time) []Message {
	items := q.items.Items()
	k := from
	for k < len(items) && items[k].at.Before(cutoff) {
		k++
	}
	if k == from {
		return nil
	}
	gone := q.messages(from, k)
	for _, e := range items[from:k] {
		q.bytes -= len(e.msg.Data)
	}
	q.items.Remove(from, k)
	q.items.Trim(0)
	return gone
}

// doneThrough reports whether every message up to id has left the queue.
func (q *queue) doneThrough(id uint64) bool {
	if q.drained {
		return false // handed back unsent: Flush reports ErrClosed
	}
	return q.len() == 0 || q.items.At(0).id > id
}

// expireBuffered drops what waited in the send buffer (or, unwritten, in
// the outbox) longer than MaxBufferAge, and reports it in one Expired
// event. It runs on the loop, while no flusher runs.
func (c *Client) expireBuffered() {
	if c.cfg.maxBufferAge <= 0 {
		return
	}
	cutoff := time.Now().Add(-c.cfg.maxBufferAge)
	c.mu.Lock()
	var gone []Message
	if c.session != nil {
		gone = c.session.expire(cutoff)
	} else {
		gone = c.queue.expire(0, cutoff)
	}
	if gone != nil {
		c.progressedLocked()
	}
	c.mu.Unlock()
	if gone != nil {
		c.events.lifecycle(Expired{Messages: gone})
	}
}
