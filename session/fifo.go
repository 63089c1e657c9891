package session

// fifo holds numbered messages in order; acknowledged ones leave from the
// front. Its array is reused: from its start again once empty, and
// compacted instead of grown once the front has freed half of it. A
// slice resliced from the front and dropped when empty, as before, grew
// again from nothing after every ack that emptied it: a stream spent a
// sixth of the server's CPU in growslice.
type fifo struct {
	buf  []Stored
	head int
}

// fifoKeep is the largest array trim keeps once the fifo is empty (40
// bytes an entry): an idle session does not hold on to a burst's array.
const fifoKeep = 256

func (f *fifo) len() int { return len(f.buf) - f.head }

// at returns the i-th message from the front.
func (f *fifo) at(i int) Stored { return f.buf[f.head+i] }

// items returns the messages, sharing the fifo's array.
func (f *fifo) items() []Stored { return f.buf[f.head:] }

func (f *fifo) push(m Stored) {
	switch {
	case f.buf == nil:
		f.buf = make([]Stored, 0, 64)
	case len(f.buf) == cap(f.buf) && f.head >= len(f.buf)/2:
		n := copy(f.buf, f.buf[f.head:])
		clear(f.buf[n:])
		f.buf, f.head = f.buf[:n], 0
	}
	f.buf = append(f.buf, m)
}

// dropFront drops the first k messages, which the caller has checked it
// holds. An array emptied is kept for the next pushes, however large: a
// stream empties its fifo at every ack that covers all it sent, and
// letting go of the array then had it grow again from nothing for each
// window (growslice was a tenth of a streaming server's CPU). trim lets
// go of it once the session is idle.
func (f *fifo) dropFront(k int) {
	clear(f.buf[f.head : f.head+k])
	f.head += k
	if f.head == len(f.buf) {
		f.buf, f.head = f.buf[:0], 0
	}
}

// trim lets go of an array larger than fifoKeep if the fifo is empty.
func (f *fifo) trim() {
	if f.len() == 0 && cap(f.buf) > fifoKeep {
		f.buf, f.head = nil, 0
	}
}

// fifoOf returns a fifo holding ms, sharing their array.
func fifoOf(ms []Stored) fifo { return fifo{buf: ms} }
