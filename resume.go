package resocket

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resocket/resocket/internal/wire"
)

// Resumable delivery, the client's side (Config.Resume): the outbox of
// numbered messages the server has not acknowledged, the count of the
// server's messages handed to the application, and their exchange at each
// handshake. docs/protocol.md is the protocol; the codec frames it.

// Acknowledgements are batched: one after half the window the server told
// at the handshake, in messages or in bytes (ackEvery messages when it
// told none; wire.AckEvery, wire.AckBytes), or ackDelay after the first
// message not yet acknowledged, whichever comes first.
const (
	ackEvery = 256
	ackDelay = 50 * time.Millisecond
)

// maxBatchOffer is the largest batch frame (docs/protocol.md §2) the
// client offers to take: larger ones would save nothing more per message,
// and would not fit the pooled read buffers (maxPooledReadBuf).
const maxBatchOffer = 64 << 10

// DefaultResumeBufferBytes bounds the bytes held in the outbox of
// unacknowledged messages when Config.ResumeBufferBytes is 0.
const DefaultResumeBufferBytes = 16 << 20

// session is the client's half of a resumable session. The client's mutex
// guards every field but received.
type session struct {
	codec      ResumeCodec
	builtin    bool // codec is docs/protocol.md's: unframe decodes data messages itself
	batchBytes int  // the largest batch frame offered (0: none; the built-in codec alone reads them)
	limitMsgs  int
	limitBytes int

	id, secret string
	acked      uint64 // the server has every message numbered up to here
	out        queue  // numbered acked+1, acked+2, ...: sent or not, unacknowledged
	sent       uint64 // the highest number whose write has begun, on any connection
	offered    uint64 // the received count the latest handshake offered

	// received counts the server's data messages handed to the
	// application; the loop writes it, the acker reads it.
	received atomic.Uint64
}

// last is the number of the newest message in the outbox.
func (s *session) last() uint64 { return s.acked + uint64(s.out.len()) } //nolint:gosec // a length is never negative

// hasRoom reports whether a message of n bytes fits; an empty outbox
// takes any message, or one over the byte limit could never be sent.
func (s *session) hasRoom(n int) bool {
	if s.out.len() == 0 {
		return true
	}
	return s.out.len() < s.limitMsgs && s.out.bytes+n <= s.limitBytes
}

// push numbers a copy of data into the outbox and returns its number.
func (s *session) push(typ MessageType, data []byte) uint64 {
	s.out.push(typ, data)
	return s.last()
}

// at returns message number seq, which must be in the outbox.
func (s *session) at(seq uint64) Message { return s.out.at(int(seq - s.acked - 1)) } //nolint:gosec // acked < seq <= last()

// ack drops every message up to n. The caller has checked n <= s.sent.
func (s *session) ack(n uint64) {
	if n <= s.acked {
		return
	}
	s.out.dropFront(int(n - s.acked)) //nolint:gosec // n <= s.sent <= s.last(): at most the outbox's length
	s.acked = n
}

// drain empties the outbox and returns what it held, in order. acked
// stays: what was drained was not acknowledged (a Flush waiting for it
// must not see it as done).
func (s *session) drain() []Message {
	s.acked = s.last()
	return s.out.drain()
}

// expire drops the messages never written that were pushed before cutoff:
// those written may have reached the server, and keep their numbers. The
// ones after them are renumbered, which is safe: none is on the wire yet.
func (s *session) expire(cutoff time.Time) []Message {
	return s.out.expire(int(s.sent-s.acked), cutoff) //nolint:gosec // acked <= sent <= last()
}

// point is what the next handshake asks to resume.
func (s *session) point() ResumePoint {
	return ResumePoint{Session: s.id, Secret: s.secret, Received: s.received.Load(),
		Window: max(1, s.limitMsgs), WindowBytes: s.limitBytes, Batch: s.batchBytes}
}

// errResume marks what the server did wrong in the protocol.
func errResume(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrResumeProtocol, fmt.Sprintf(format, args...))
}

// resumed takes in the server's answer to a handshake, on the loop. It
// returns the number from which the outbox is replayed on the new
// connection and, when the session asked for was lost, a non-nil list of
// the messages whose fate is unknown (empty when every one was
// acknowledged).
func (c *Client) resumed(a ResumeAnswer) (from uint64, inDoubt []Message, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.session
	switch {
	case a.Resumed && s.id == "":
		return 0, nil, errResume("server resumed a session the client never had")
	case a.Resumed && a.Session != s.id:
		return 0, nil, errResume("server resumed another session")
	case a.Resumed && (a.Received < s.acked || a.Received > s.sent):
		return 0, nil, errResume("server has %d messages; acknowledged %d, sent %d", a.Received, s.acked, s.sent)
	case a.Resumed:
		s.ack(a.Received)
		c.progressedLocked() // the handshake acknowledges too
		return a.Received + 1, nil, nil
	case !a.Resumed && a.Received != 0:
		return 0, nil, errResume("new session that has %d messages already", a.Received)
	}
	// A new session. Messages of the old one that were written may have
	// been processed: they are in doubt. Those never written are not, and
	// go first in the new session.
	if s.id != "" {
		inDoubt = []Message{} // lost, even with nothing in doubt: SessionLost says so
	}
	if s.id != "" && s.sent > s.acked {
		inDoubt = s.out.messages(0, int(s.sent-s.acked)) //nolint:gosec // acked < sent <= last()
		s.ack(s.sent)
	}
	s.id, s.secret = a.Session, a.Secret
	s.acked, s.sent = 0, 0
	s.received.Store(0)
	c.progressedLocked()
	return 1, inDoubt, nil
}

// onAck takes in an acknowledgement from the server, on the loop.
func (c *Client) onAck(n uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.session
	if n > s.sent {
		return errResume("ack of %d messages; %d sent", n, s.sent)
	}
	if n > s.acked {
		s.ack(n)
		c.progressedLocked()
	}
	return nil
}

// progressedLocked wakes whoever waits for the outbox to shrink or for
// the send buffer to be written (Send with a full outbox, Flush).
func (c *Client) progressedLocked() {
	if c.progress != nil {
		close(c.progress)
		c.progress = nil
	}
}

// progressLocked returns a channel closed at the next progress.
func (c *Client) progressLocked() <-chan struct{} {
	if c.progress == nil {
		c.progress = make(chan struct{})
	}
	return c.progress
}

// sendResumable is Send with Config.Resume: the message is numbered into
// the outbox and, when a connection is ready, written at once. Numbering
// happens under the connection's write lock, so that messages go on the
// wire in the order of their numbers. It runs on the caller's goroutine.
func (c *Client) sendResumable(ctx context.Context, typ MessageType, data []byte) error {
	for {
		c.mu.Lock()
		if c.closeReq != nil || c.state == StateClosed {
			c.mu.Unlock()
			return ErrClosed
		}
		s := c.session
		if !s.hasRoom(len(data)) {
			progress := c.progressLocked()
			c.mu.Unlock()
			select {
			case <-progress:
				continue
			case <-ctx.Done():
				return ctx.Err()
			case <-c.ctx.Done():
				return ErrClosed
			}
		}
		conn := c.ready
		if conn == nil {
			s.push(typ, data) // replayed once a connection is back
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		if err := conn.lock(ctx); err != nil {
			if errors.Is(err, errConnEnded) {
				continue // it went while we waited: numbered for the next one
			}
			return err
		}
		c.mu.Lock()
		if c.ready != conn || c.closeReq != nil || !s.hasRoom(len(data)) {
			c.mu.Unlock()
			conn.unlock()
			continue
		}
		seq := s.push(typ, data)
		s.sent = seq
		c.mu.Unlock()
		// Numbered: if the write fails, the next connection replays it.
		_ = c.writeData(ctx, conn, seq, typ, data)
		conn.unlock()
		return nil
	}
}

// frameBufs holds the buffers frames are encoded into.
var frameBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// writeData writes data message seq on conn, whose write lock the caller
// holds.
func (c *Client) writeData(ctx context.Context, conn *Conn, seq uint64, typ MessageType, data []byte) error {
	return c.writeFrame(ctx, conn, seq, typ, data, len(data))
}

// writeFrame is writeData counting payload bytes in Stats (none, -1, for
// a stand-in of an acknowledged message).
func (c *Client) writeFrame(ctx context.Context, conn *Conn, seq uint64, typ MessageType, data []byte, payload int) error {
	bp := frameBufs.Get().(*[]byte)
	ftyp, frame := c.session.codec.AppendData((*bp)[:0], seq, typ, data)
	err := conn.writeLocked(ctx, ftyp, frame, payload)
	if cap(frame) <= maxPooledReadBuf {
		*bp = frame[:0]
		frameBufs.Put(bp)
	}
	return err
}

// writeAck acknowledges on conn what the application has received, and
// returns that count. The count is read once the connection is ours, so
// that acks written on a connection never go backwards: one taken earlier
// could otherwise be written after a larger one that overtook it.
func (c *Client) writeAck(ctx context.Context, conn *Conn) (uint64, error) {
	if err := conn.lock(ctx); err != nil {
		return 0, err
	}
	defer conn.unlock()
	n := c.session.received.Load()
	var buf [16]byte
	typ, frame := c.session.codec.AppendAck(buf[:0], n)
	return n, conn.writeLocked(ctx, typ, frame, -1)
}

// flushResumable runs on the flusher: it replays the outbox on a fresh
// connection from number from, then makes the connection ready, unless a
// rotation has replaced it meanwhile.
//
// Every number from from on goes out, in order: the server numbers this
// connection's data frames implicitly, from its handshake's answer. A
// message the server acknowledged since then (it went on reading the old
// connection while this one opened) has left the outbox; an empty data
// frame stands in for it, which the server drops by its number. Skipping
// it instead shifted every later message onto the wrong number.
func (c *Client) flushResumable(conn *Conn, from uint64, wg *sync.WaitGroup) {
	defer wg.Done()
	for seq := from; ; seq++ {
		c.mu.Lock()
		s := c.session
		if c.closeReq != nil || conn.isEnded() || conn.retired {
			c.mu.Unlock()
			return
		}
		if seq > s.last() {
			c.markReadyLocked(conn)
			c.mu.Unlock()
			return
		}
		m := Message{Type: MessageBinary} // acknowledged meanwhile: only its number matters
		payload := -1
		if seq > s.acked {
			m = s.at(seq)
			payload = len(m.Data)
		}
		s.sent = max(s.sent, seq)
		c.mu.Unlock()
		if err := conn.lock(c.ctx); err != nil {
			return
		}
		err := c.writeFrame(c.ctx, conn, seq, m.Type, m.Data, payload)
		conn.unlock()
		if err != nil {
			return
		}
	}
}

// acker acknowledges the server's messages on one connection, in
// batches, from a timer: the loop, which counts them, never writes.
type acker struct {
	c    *Client
	conn *Conn

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	pending sync.WaitGroup
	// armed (the timer will fire) and acked (the count last
	// acknowledged) are written under mu, and read without it by
	// delivered's fast path.
	armed atomic.Bool
	acked atomic.Uint64

	// every and everyBytes: an ack is due after this many messages, or
	// bytes (0: no bound), from the server's window. bytes counts those
	// delivered since the last ack the bytes made due (the loop's).
	every, everyBytes uint64
	bytes             uint64
}

func newAcker(c *Client, conn *Conn) *acker {
	a := &acker{c: c, conn: conn, every: wire.AckEvery(uint64(conn.peerWindow), ackEvery), //nolint:gosec // a window is never negative
		everyBytes: wire.AckBytes(uint64(conn.peerWindowBytes))} //nolint:gosec // likewise
	a.acked.Store(c.session.received.Load())
	a.timer = time.AfterFunc(time.Hour, a.fire)
	a.timer.Stop()
	return a
}

// delivered is called by the loop after each message handed to the
// application, with the count so far and the message's size.
func (a *acker) delivered(n uint64, size int) {
	bytesDue := false
	if a.everyBytes > 0 {
		a.bytes += uint64(size) //nolint:gosec // a length is never negative
		if bytesDue = a.bytes >= a.everyBytes; bytesDue {
			a.bytes = 0
		}
	}
	// Most messages find the timer armed and no ack due: no lock. If fire
	// disarms it meanwhile, fire reads the count after that, so it
	// acknowledges this message (n was counted before armed was read).
	if !bytesDue && a.armed.Load() && n-a.acked.Load() < a.every {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	due := bytesDue || n-a.acked.Load() >= a.every
	if a.armed.Load() {
		if due && a.timer.Stop() {
			a.timer.Reset(0) // still counted in pending from when it was armed
		}
		return
	}
	a.armed.Store(true)
	a.pending.Add(1)
	if due {
		a.timer.Reset(0)
	} else {
		a.timer.Reset(ackDelay)
	}
}

// fire runs on a timer goroutine of its own.
func (a *acker) fire() {
	defer a.pending.Done()
	a.mu.Lock()
	a.armed.Store(false)
	if a.stopped {
		a.mu.Unlock()
		return
	}
	// Counted as acknowledged from now, before the write: the ack about
	// to go covers at least this much, and while it is written the
	// messages that keep coming must not arm one ack after another (a
	// fast stream then paid a write every few messages). If the write
	// fails, the connection is gone and the next handshake says the rest.
	a.acked.Store(max(a.acked.Load(), a.c.session.received.Load()))
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(a.c.ctx, a.c.cfg.closeTimeout)
	defer cancel()
	_, _ = a.c.writeAck(ctx, a.conn)
}

// stop ends the acker and waits for a firing under way; it runs on the
// loop after the connection has been cut.
func (a *acker) stop() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.stopped = true
	if a.armed.Load() && a.timer.Stop() {
		a.armed.Store(false)
		a.pending.Done()
	}
	a.mu.Unlock()
	a.pending.Wait()
}

// Flush returns once every message Send accepted before the call is
// safe: with Config.Resume, acknowledged by the server (a message that a
// SessionLost reported in doubt, or an Expired one, will never be: Flush
// counts it as done, since the event has told its fate); without it,
// written (the send buffer flushed up to them). It returns ctx's error if
// ctx ends first, and an error wrapping ErrClosed if the client ends
// first (the messages are then in Closed.Unsent). The server acknowledges
// in batches (docs/protocol.md §3): after a few messages, Flush waits for
// its ack timer, up to 50 ms with session.Server.
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateClosed {
		return fmt.Errorf("%w before the flush", ErrClosed)
	}
	q := &c.queue
	if c.session != nil {
		q = &c.session.out
	}
	target := q.accepted
	done := func() bool { return q.doneThrough(target) }
	for !done() {
		if c.state == StateClosed {
			return fmt.Errorf("%w before the flush completed", ErrClosed)
		}
		progress := c.progressLocked()
		c.mu.Unlock()
		select {
		case <-progress:
		case <-ctx.Done():
			c.mu.Lock()
			return ctx.Err()
		}
		c.mu.Lock()
	}
	return nil
}

// resume takes in the server's answer to the handshake on a fresh
// connection, on the loop: it reports a lost session, and sets where the
// replay starts. When the server does not speak the protocol, or breaks
// it, it closes the connection and says why.
func (c *Client) resume(conn *Conn, header http.Header) (Disconnect, bool) {
	answer, err := c.session.codec.Answer(header)
	var inDoubt []Message
	if err == nil {
		conn.replayFrom, inDoubt, err = c.resumed(answer)
	}
	switch {
	case errors.Is(err, ErrResumeUnsupported):
		c.drop(conn, StatusMandatoryExtension, "resume protocol expected", true)
		return Disconnect{Code: StatusMandatoryExtension, Err: err}, false
	case err != nil && !errors.Is(err, ErrResumeProtocol):
		err = fmt.Errorf("%w: %w", ErrResumeProtocol, err)
		fallthrough
	case err != nil:
		c.drop(conn, StatusProtocolError, "resume protocol violated", true)
		return Disconnect{Code: StatusProtocolError, Err: err}, false
	}
	conn.resumed = answer.Resumed
	conn.peerWindow, conn.peerWindowBytes = answer.Window, answer.WindowBytes
	c.mu.Lock()
	if answer.Resumed {
		conn.inSeq = c.session.offered // the server numbers its replay from there
	}
	c.mu.Unlock()
	if inDoubt != nil {
		c.events.lifecycle(SessionLost{InDoubt: inDoubt})
	}
	return Disconnect{}, true
}

// unframe decodes a message from the server, on the loop: an ack is taken
// in, a data message already delivered is dropped. deliver says whether
// msg, now the application's message, is new.
func (c *Client) unframe(conn *Conn, msg Message) (_ Message, deliver bool, err error) {
	var f ResumeFrame
	if c.session.builtin && len(msg.Data) > 0 && msg.Data[0] == wire.KindData {
		f = ResumeFrame{Type: msg.Type, Data: msg.Data[1:]} // most messages: no call through the interface
	} else if f, err = c.session.codec.Decode(msg.Type, msg.Data); err != nil {
		return msg, false, fmt.Errorf("%w: %w", ErrResumeProtocol, err)
	}
	if f.Ack {
		return msg, false, c.onAck(f.Received)
	}
	if f.Move {
		conn.moveAsked = true
		return msg, false, nil
	}
	deliver, err = c.numbered(conn, f.Seq)
	if err != nil || !deliver {
		return msg, false, err
	}
	return Message{ConnID: conn.id, Type: f.Type, Data: f.Data}, true, nil
}

// numbered takes in the number of a data message from the server (0: the
// codec numbers implicitly, the next one), on the loop, and reports
// whether the message is new to the application.
func (c *Client) numbered(conn *Conn, seq uint64) (deliver bool, err error) {
	// Implicit numbers count from what this connection's handshake
	// offered: with MaxConnectionAge, an older connection may have
	// delivered more meanwhile, and this one replays it.
	if seq == 0 {
		seq = conn.inSeq + 1
	}
	conn.inSeq = seq
	received := c.session.received.Load()
	switch {
	case seq == received+1:
		return true, nil
	case seq <= received:
		return false, nil // a replay of what the application has: once is enough
	}
	return false, errResume("message %d after %d: a gap", seq, received)
}

// deliverNumbered hands a data message to the application and counts it
// as received, which is what the next ack acknowledges. It runs on the
// loop.
func (c *Client) deliverNumbered(conn *Conn, ev Event, size int, ack *acker) {
	if !c.events.tryMessage(ev) {
		conn.busy.Store(true)
		c.events.message(ev)
		conn.activity.Add(1)
		conn.busy.Store(false)
	}
	n := c.session.received.Add(1)
	ack.delivered(n, size)
}

// protocolError ends a connection whose server broke the resume protocol:
// a close frame with 1002, and the Disconnect that says why.
func (c *Client) protocolError(conn *Conn, err error) Disconnect {
	if c.cfg.logger != nil {
		c.cfg.logger.Warn("resocket: resume protocol violated", "conn", conn.id, "err", err)
	}
	conn.sendClose(StatusProtocolError, "resume protocol violated", time.Now().Add(c.cfg.closeTimeout))
	conn.kill(err)
	return Disconnect{Code: StatusProtocolError, Err: err}
}

// finalAck acknowledges, before Close's close frame, what the application
// has received, so that the server's Flush is not left waiting. It runs
// on Close's caller, bounded by the close deadline.
func (c *Client) finalAck(conn *Conn) {
	ctx, cancel := context.WithDeadline(context.Background(), c.closeDeadline())
	defer cancel()
	_, _ = c.writeAck(ctx, conn)
}
