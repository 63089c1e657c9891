package resocket

// sendQueue holds, in order, the messages Send accepted while no
// connection was ready. The client's mutex guards it.
type sendQueue struct {
	msgs  []Message
	limit int // most messages held; 0: buffering off

	pushed, popped uint64 // in total, for Flush
}

func (q *sendQueue) full() bool { return len(q.msgs) >= q.limit }
func (q *sendQueue) len() int   { return len(q.msgs) }
func (q *sendQueue) push(m Message) {
	q.msgs = append(q.msgs, m)
	q.pushed++
}

// front returns the oldest message; the queue must not be empty.
func (q *sendQueue) front() Message { return q.msgs[0] }

// pop drops the oldest message, releasing the backing array once empty so
// that a burst does not pin its memory.
func (q *sendQueue) pop() {
	q.msgs[0] = Message{}
	q.msgs = q.msgs[1:]
	q.popped++
	if len(q.msgs) == 0 {
		q.msgs = nil
	}
}

// drain empties the queue and returns what it held.
func (q *sendQueue) drain() []Message {
	m := q.msgs
	q.msgs = nil
	return m
}
