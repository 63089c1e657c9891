package session

import "github.com/resocket/resocket/internal/wire"

// Who writes a data message. The connection's writer does, several at a
// time when they come faster than it writes them, except one kind: the
// answer to a message. A Send whose ctx can never end, the first after a
// Receive returned a message, writes its message itself when the writer
// waits with nothing in flight. The writer would have been woken for it:
// a wake-up of another thread per answer (with the reader's hand-off,
// readturn.go, about 30 % of an echo's round trip through the session
// server: docs/performance.md, change 13). A stream of Sends goes on through the writer,
// which batches it. A Send whose ctx can end never writes: a write cannot
// be interrupted without breaking the connection. Either way the message
// is in the Store before it is written.

// mayWriteLocked reports whether a Send may write message seq itself:
// the writer waits with nothing in flight, and seq is the next message
// the client is to get on this connection.
func (c *sconn) mayWriteLocked(seq uint64) bool {
	return c.writerWaiting && !c.inlineWriting && !c.closing && c.nextOut == seq
}

// writeForSend writes m, which mayWriteLocked allowed (the caller holds
// the session's mutex, released while writing). Meanwhile the writer
// writes no data message, so that messages go out in order; once m is
// out, the writer is woken if more came. A failed write cuts the
// connection: the client resumes and m is replayed from the Store.
func (c *sconn) writeForSend(m Stored) {
	s := c.sess
	c.inlineWriting = true
	c.nextOut++
	s.mu.Unlock()
	ok := c.write(int(m.Type), wire.KindData, m.Data)
	s.mu.Lock()
	c.inlineWriting = false
	c.inlineWrites++
	if !ok || c.nextOut <= s.sent {
		s.changedLocked()
	}
}
