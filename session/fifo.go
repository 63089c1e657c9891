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

// fifoKeep is the largest array kept once the fifo is empty (40 bytes an
// entry): an idle session does not hold on to a burst's array.
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
// holds.
func (f *fifo) dropFront(k int) {
	clear(f.buf[f.head : f.head+k])
	f.head += k
	if f.head < len(f.buf) {
		return
	}
	f.head = 0
	if cap(f.buf) > fifoKeep {
		f.buf = nil
		return
	}
	f.buf = f.buf[:0]
}

// fifoOf returns a fifo holding ms, sharing their array.
func fifoOf(ms []Stored) fifo { return fifo{buf: ms} }
