package resocket

import "time"

// queue holds, in order, messages Send accepted and not yet done with:
// without Config.Resume, the send buffer (messages waiting for a
// connection); with it, the session's outbox (messages the server has
// not acknowledged). The client's mutex guards it.
type queue struct {
	items    []queued
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

func (q *queue) len() int { return len(q.items) }

// push appends a copy of data.
func (q *queue) push(typ MessageType, data []byte) {
	q.accepted++
	e := queued{msg: Message{Type: typ, Data: append([]byte(nil), data...)}, id: q.accepted}
	if q.stamp {
		e.at = time.Now()
	}
	q.items = append(q.items, e)
	q.bytes += len(data)
}

// at returns the i-th message from the front.
func (q *queue) at(i int) Message { return q.items[i].msg }

// dropFront removes the k oldest messages, releasing the backing array once
// empty so that a burst does not pin its memory.
func (q *queue) dropFront(k int) {
	for i := range k {
		q.bytes -= len(q.items[i].msg.Data)
		q.items[i] = queued{}
	}
	q.items = q.items[k:]
	if len(q.items) == 0 {
		q.items = nil
	}
}

// messages returns the messages from index i to j, in order.
func (q *queue) messages(i, j int) []Message {
	if i == j {
		return nil
	}
	out := make([]Message, 0, j-i)
	for _, e := range q.items[i:j] {
		out = append(out, e.msg)
	}
	return out
}

// drain empties the queue and returns what it held.
func (q *queue) drain() []Message {
	m := q.messages(0, len(q.items))
	q.items, q.bytes = nil, 0
	q.drained = len(m) > 0
	return m
}

// expire removes, from index from on, the messages pushed before cutoff,
// and returns them in order. Messages are pushed in time order, so they
// are the first ones of that part.
func (q *queue) expire(from int, cutoff time.Time) []Message {
	k := from
	for k < len(q.items) && q.items[k].at.Before(cutoff) {
		k++
	}
	if k == from {
		return nil
	}
	gone := q.messages(from, k)
	for _, e := range q.items[from:k] {
		q.bytes -= len(e.msg.Data)
	}
	q.items = append(q.items[:from], q.items[k:]...)
	if len(q.items) == 0 {
		q.items = nil
	}
	return gone
}

// doneThrough reports whether every message up to id has left the queue.
func (q *queue) doneThrough(id uint64) bool {
	if q.drained {
		return false // handed back unsent: Flush reports ErrClosed
	}
	return len(q.items) == 0 || q.items[0].id > id
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
