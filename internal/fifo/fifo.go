// Package fifo is the queue both sides of a resumable session keep their
// messages in, in order, until the other side acknowledges them: the
// client's outbox and send buffer (package resocket), the session's
// pending messages and inbox, and the memory Store's records (package
// session).
package fifo

// Queue holds values in order; they leave from the front, in any number
// at once. Its array is reused: from its start again once empty, and
// compacted instead of grown once the front has freed half of it. A
// slice resliced from the front and dropped when empty grew again from
// nothing after every ack that emptied it: a stream spent a sixth of the
// session server's CPU in growslice. Trim lets go of the array.
type Queue[T any] struct {
	buf  []T
	head int
}

// Of returns a queue holding items, sharing their array.
func Of[T any](items []T) Queue[T] { return Queue[T]{buf: items} }

// Len is how many values the queue holds.
func (q *Queue[T]) Len() int { return len(q.buf) - q.head }

// At returns the i-th value from the front.
func (q *Queue[T]) At(i int) T { return q.buf[q.head+i] }

// Items returns the values, front first, sharing the queue's array: valid
// until the queue next changes.
func (q *Queue[T]) Items() []T { return q.buf[q.head:] }

// Push adds v at the back.
func (q *Queue[T]) Push(v T) {
	if len(q.buf) == cap(q.buf) && q.head > 0 && q.head >= len(q.buf)/2 {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, v)
}

// DropFront drops the first k values, which the caller has checked the
// queue holds. An array emptied is kept for the next pushes.
func (q *Queue[T]) DropFront(k int) {
	clear(q.buf[q.head : q.head+k])
	q.head += k
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	}
}

// Remove drops the values from the i-th to before the j-th, keeping the
// order of the rest.
func (q *Queue[T]) Remove(i, j int) {
	items := q.Items()
	n := copy(items[i:], items[j:])
	clear(items[i+n:])
	q.buf = q.buf[:q.head+i+n]
	if q.Len() == 0 {
		q.buf, q.head = q.buf[:0], 0
	}
}

// Trim lets go of the array if the queue is empty and the array holds
// more than keep values: an idle queue does not hold on to a burst's
// memory.
func (q *Queue[T]) Trim(keep int) {
	if q.Len() == 0 && cap(q.buf) > keep {
		q.buf, q.head = nil, 0
	}
}
