package session

import (
	"time"

	"github.com/resocket/resocket"
)

// Who reads a connection. Its reader goroutine does, unless the
// application's Receive calls do: a Receive whose ctx can never end and
// that finds nothing to return reads the socket itself when nobody else
// is reading. A message then goes from the socket to the application on
// one goroutine, where the reader would have handed it over to the
// goroutine waiting in Receive: a wake-up of another thread per message.
// With the writer's hand-off (writeturn.go) that cost an echo through the
// session server about 30 % of its round trip (docs/performance.md,
// change 13).
//
// Only one goroutine reads at a time (gorilla allows one reader): the one
// that holds the turn (readTurn.reading). The reader hands the turn to
// Receive calls once it has read a message for one that can read
// (inlineWaiting), and stands by while they read. It takes the turn back
// when they stop: readerGrace after the last read by a Receive, at once
// when a Send or Flush waits for the client's acks (a Receive may never
// come to read them), and when we have sent a close frame (the reader
// drains the socket until the client's answer). A Receive whose ctx can
// end never reads: a read cannot be interrupted without breaking the
// connection.

// readerGrace is how long the socket may go unread after the last
// Receive that read it returned, before the reader takes the turn back:
// the latency of a client's ping or close frame while the application is
// busy elsewhere.
const readerGrace = 5 * time.Millisecond

// readTurn is a connection's read-turn state, under the session's mutex.
type readTurn struct {
	reading      bool   // a goroutine is reading the socket
	failed       bool   // a read by Receive failed: the connection ends
	receiveReads bool   // Receive calls read; the reader stands by
	inlineReads  uint64 // reads done by Receive calls
	readsAtArm   uint64 // inlineReads when the grace timer was armed
	graceArmed   bool
	grace        *time.Timer   // the reader's; armed under the mutex
	wake         chan struct{} // closed to wake the reader standing by
	live         time.Duration // the read deadline's extent, set before any read
}

// mayReadLocked reports whether a Receive may take the turn and read.
func (c *sconn) mayReadLocked() bool {
	return !c.turn.reading && !c.turn.failed && !c.closing && c.turn.live > 0
}

// readForReceive is a read by Receive, which took the turn (the caller
// holds the session's mutex, released while reading): one message, taken
// in as the reader would. A failed read ends the connection, and no
// Receive reads it again (turn.failed).
func (c *sconn) readForReceive() {
	s := c.sess
	c.turn.reading, c.turn.receiveReads = true, true
	s.mu.Unlock()
	ok := c.readOne()
	if !ok {
		c.kill()
	}
	s.mu.Lock()
	c.turn.reading, c.turn.failed = false, !ok
	c.turn.inlineReads++
	if c.closing || s.ackWaiters > 0 {
		c.wakeReaderLocked()
	} else if !c.turn.graceArmed {
		c.armGraceLocked()
	}
}

// readOne reads one message and takes it in, for the reader or a Receive.
// After our close frame the socket is only drained, until the client's
// close frame or the deadline. False: the connection ends.
func (c *sconn) readOne() bool {
	typ, data, err := c.readMessage(c.turn.live)
	if err != nil {
		return false
	}
	if c.isClosing() {
		return true // the reader drains the socket from now on
	}
	return c.handle(resocket.MessageType(typ), data) || c.isClosing()
}

func (c *sconn) armGraceLocked() {
	c.turn.graceArmed = true
	c.turn.readsAtArm = c.turn.inlineReads
	c.turn.grace.Reset(readerGrace)
}

// wakeReaderLocked wakes the reader if it stands by.
func (c *sconn) wakeReaderLocked() {
	if c.turn.wake != nil {
		close(c.turn.wake)
		c.turn.wake = nil
	}
}

// awaitReadTurn returns once the reader may read, holding the turn; false
// once the connection has ended.
func (c *sconn) awaitReadTurn() bool {
	s := c.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		t := &c.turn
		if !t.reading && (!t.receiveReads || c.closing || s.ackWaiters > 0) {
			t.reading, t.receiveReads = true, false
			return true
		}
		if t.wake == nil {
			t.wake = make(chan struct{})
		}
		wake := t.wake
		s.mu.Unlock()
		select {
		case <-wake:
			s.mu.Lock()
		case <-t.grace.C:
			s.mu.Lock()
			t.graceArmed = false
			switch {
			case t.reading:
				// A Receive is reading; its return arms the timer again.
			case t.inlineReads == t.readsAtArm:
				t.receiveReads = false // Receive calls stopped reading
			default:
				c.armGraceLocked()
			}
		case <-c.ended:
			s.mu.Lock()
			return false
		}
	}
}

// endReadTurn gives the turn back after the reader's read. When a Receive
// that can read waits for the message just read, the reader stands by:
// that Receive's next call reads.
func (c *sconn) endReadTurn() {
	s := c.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	c.turn.reading = false
	if s.inlineWaiting > 0 && s.inbox.Len() > 0 && !c.closing {
		c.turn.receiveReads = true
		if !c.turn.graceArmed {
			c.armGraceLocked()
		}
	}
}
