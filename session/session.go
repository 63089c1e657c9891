package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/fifo"
)

// inboxLimit bounds the client's messages read from the socket and not
// yet received by the application; past it, reading waits (TCP
// backpressure).
const inboxLimit = 256

// Session is one client's resumable session. Its methods are safe for
// concurrent use. It outlives connections: a client that reconnects
// resumes it, and Send and Receive go on as if nothing happened.
type Session struct {
	srv        *Server
	id         string
	secretHash []byte
	done       chan struct{}

	mu       sync.Mutex
	err      error  // why the session ended; set when done closes
	conn     *sconn // the current connection, or nil
	awaiting int    // handshakes between find and serveConn
	received uint64 // the client's messages returned by Receive, as stored
	// receivedBytes counts their bytes, since this Server took the session
	// (acks by bytes compare it with itself only)
	receivedBytes uint64
	sent          uint64             // the number of the last message stored by Send
	acked         uint64             // the client has every message up to here
	pending       fifo.Queue[Stored] // numbered acked+1 to sent
	pendingBytes  int
	inbox         fifo.Queue[Stored] // read, not yet received; numbers ascending
	inboxFull     bool               // the reader waits for room in inbox
	inboxCh       chan struct{}      // closed when inbox grows (see inboxGrewLocked)
	taking        uint64             // the message Receive is recording, or 0
	// receiversWaiting: Receives waiting for a message, or for the one
	// taking to finish; sending: a Send is putting its message in the
	// Store.
	receiversWaiting int
	sending          bool
	// inlineWaiting: Receives among receiversWaiting that may read the
	// socket themselves; ackWaiters: Sends and Flushes waiting for the
	// client's acks (readturn.go)
	inlineWaiting, ackWaiters int
	// sendersWaiting: Sends waiting behind another or for room;
	// replyDue: Receive returned a message since a Send last wrote
	// itself (writeturn.go)
	sendersWaiting int
	replyDue       bool
	slab           []byte // where Send copies small messages (copyLocked)
	handshakes     uint64 // handshakes accepted by expect, in order
	attached       uint64 // the number of the newest handshake attached
	changed        chan struct{}
	expiry         *time.Timer
}

func newSession(srv *Server, id string, rec Record) *Session {
	s := &Session{srv: srv, id: id, secretHash: rec.SecretHash, done: make(chan struct{}),
		received: rec.Received, sent: rec.Sent, acked: rec.Acked, pending: fifo.Of(slices.Clone(rec.Pending))}
	for _, m := range rec.Pending {
		s.pendingBytes += len(m.Data)
	}
	return s
}

// ID returns the session's ID: 128 random bits, URL-safe base64. It is
// not a credential: resuming also needs the secret issued with it.
func (s *Session) ID() string { return s.id }

// Done returns a channel closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Send keeps a message for the client and returns nil once it is in the
// Store: it will reach the client exactly once, in order, across
// reconnects and restarts as long as the Store keeps the session. When
// SendBuffer messages (or SendBufferBytes) await the client's
// acknowledgement, Send waits for room, honouring ctx. Sends from several
// goroutines are kept one at a time, each waiting on its own ctx. An
// error means the message was not kept.
//
// The first Send after Receive returned a message, if its ctx can never
// end (context.Background), writes its message to the connection itself
// when nothing else is being written, and returns once it is written
// (or the write failed: the connection then ends, and the client resumes
// and gets the message from the Store). An answer then goes out without
// waking another goroutine; other Sends leave the writing to the
// connection's writer, which batches them.
func (s *Session) Send(ctx context.Context, typ resocket.MessageType, data []byte) error {
	if typ != resocket.MessageText && typ != resocket.MessageBinary {
		return fmt.Errorf("session: invalid message type %d", int(typ))
	}
	mayWrite := ctx.Done() == nil // a write cannot be interrupted: see writeturn.go
	var kept []byte
	if len(data) > slabMax {
		kept = append([]byte(nil), data...) // before the lock: it may be large
	}
	s.mu.Lock()
	// One Send at a time goes to the Store, so that numbers go there in
	// order. A Send behind another waits here, on its own ctx: a mutex
	// held across the other's wait for room could not be interrupted.
	for (s.sending || !s.hasRoomLocked(len(data))) && s.err == nil {
		s.sendersWaiting++
		ok := s.waitAcksLocked(ctx, !s.sending)
		s.sendersWaiting--
		if !ok {
			s.mu.Unlock()
			return ctx.Err()
		}
	}
	if err := s.err; err != nil {
		s.mu.Unlock()
		return err
	}
	if kept == nil {
		kept = s.copyLocked(data)
	}
	seq := s.sent + 1
	m := Stored{Seq: seq, Type: typ, Data: kept}
	if err := s.appendLocked(ctx, m); err != nil {
		s.mu.Unlock()
		return s.storeFailed(err)
	}
	s.sent = seq
	s.pending.Push(m)
	s.pendingBytes += len(m.Data)
	if c := s.conn; mayWrite && s.replyDue && c != nil && c.mayWriteLocked(seq) {
		s.replyDue = false
		if s.sendersWaiting > 0 {
			s.changedLocked()
		}
		c.writeForSend(m)
		s.mu.Unlock()
		return nil
	}
	s.changedLocked()
	s.mu.Unlock()
	return nil
}

// appendLocked puts m in the Store, with the mutex held (storeLocked);
// sending holds off the Sends behind this one, so that numbers reach the
// Store in order.
func (s *Session) appendLocked(ctx context.Context, m Stored) error {
	return s.storeLocked(func() error { return s.srv.store.Append(ctx, s.id, s.srv.owner, m) },
		func(busy bool) { s.sending = busy })
}

// storeLocked makes call, a Store write for Send or Receive; the caller
// holds the mutex. A Store that never waits is called in the same step;
// another with the mutex released, busy(true) holding off the calls
// behind this one until it returns.
func (s *Session) storeLocked(call func() error, busy func(bool)) error {
	if s.srv.storeInline {
		return call()
	}
	busy(true)
	s.mu.Unlock()
	err := call()
	s.mu.Lock()
	busy(false)
	if err != nil {
		s.changedLocked() // a call behind this one may go on
	}
	return err
}

// Send keeps a copy of each message until the client acknowledges it.
// Small ones are copied into slabs of slabSize bytes, one allocation for
// many messages instead of one each: a slab lives as long as one of its
// messages is kept (by the Session, the Store, or a write in progress).
const (
	slabSize = 4 << 10
	slabMax  = 512
)

// copyLocked copies data, of at most slabMax bytes, into the current
// slab. The copy's capacity ends where it does, so that nothing appended
// to it reaches the next message's bytes.
func (s *Session) copyLocked(data []byte) []byte {
	if len(data) == 0 {
		return nil
	}
	if cap(s.slab)-len(s.slab) < len(data) {
		s.slab = make([]byte, 0, slabSize)
	}
	n := len(s.slab)
	s.slab = append(s.slab, data...)
	return s.slab[n:len(s.slab):len(s.slab)]
}

func (s *Session) hasRoomLocked(n int) bool {
	if s.pending.Len() == 0 {
		return true
	}
	return s.pending.Len() < s.srv.opts.SendBuffer && s.pendingBytes+n <= s.srv.opts.SendBufferBytes
}

// Receive returns the client's next message, exactly once and in order:
// the Store records that it was received before Receive returns, so no
// Server returns it again. It waits for one, honouring ctx, and returns
// an error once the session has ended. Receives from several goroutines
// each return a different message, each waiting on its own ctx.
//
// A Receive whose ctx can never end (context.Background), with nothing
// to return, reads the connection itself when nobody else does: a
// message then reaches the application without waking another
// goroutine. A read cannot be interrupted, so a Receive whose ctx can
// end waits for the connection's reader instead.
func (s *Session) Receive(ctx context.Context) (resocket.MessageType, []byte, error) {
	mayRead := ctx.Done() == nil // a read cannot be interrupted: see readturn.go
	s.mu.Lock()
	for {
		for s.inbox.Len() > 0 && s.inbox.At(0).Seq <= s.received {
			s.inbox.DropFront(1)
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return 0, nil, err
		}
		// One Receive at a time takes a message (taking), so that each
		// returns the next one; one behind it waits on its own ctx.
		if s.inbox.Len() > 0 && s.taking == 0 {
			break
		}
		if c := s.conn; mayRead && s.inbox.Len() == 0 && c != nil && c.mayReadLocked() {
			c.readForReceive()
			continue
		}
		s.receiversWaiting++
		if mayRead {
			s.inlineWaiting++
		}
		ok := s.waitInboxLocked(ctx)
		s.receiversWaiting--
		if mayRead {
			s.inlineWaiting--
		}
		if !ok {
			s.mu.Unlock()
			return 0, nil, ctx.Err()
		}
	}
	m := s.inbox.At(0)
	if err := s.setReceivedLocked(ctx, m.Seq); err != nil {
		s.mu.Unlock()
		return 0, nil, s.storeFailed(err)
	}
	if m.Seq > s.received {
		s.received = m.Seq
		s.receivedBytes += uint64(len(m.Data))
	}
	if s.inbox.Len() > 0 && s.inbox.At(0).Seq == m.Seq {
		s.inbox.DropFront(1)
	}
	s.replyDue = true
	// Wake only who needs it: the reader if it waits for room, a Receive
	// behind this one, the writer if an ack is to be scheduled or is due.
	// A wake for each message, the writer's mostly to find nothing to do,
	// cost echo a context switch per round trip.
	if c := s.conn; s.inboxFull || s.receiversWaiting > 0 || c == nil || !c.ackArmed || c.ackDueLocked() {
		s.inboxFull = false
		s.changedLocked()
	}
	s.mu.Unlock()
	return m.Type, m.Data, nil
}

// setReceivedLocked records in the Store that the client's message seq
// was received, with the mutex held (storeLocked); taking holds off the
// Receives behind this one.
func (s *Session) setReceivedLocked(ctx context.Context, seq uint64) error {
	return s.storeLocked(func() error { return s.srv.store.SetReceived(ctx, s.id, s.srv.owner, seq) },
		func(busy bool) {
			s.taking = 0
			if busy {
				s.taking = seq
			}
		})
}

// Flush returns once the client has acknowledged every message Send kept
// before the call, or with ctx's error, or with the session's error if it
// ends first. The client acknowledges in batches (docs/protocol.md §3):
// after a few messages, Flush waits for its ack timer, up to 50 ms with
// resocket's client.
func (s *Session) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.sent
	for s.acked < target {
		if s.err != nil {
			return s.err
		}
		if !s.waitAcksLocked(ctx, true) {
			return ctx.Err()
		}
	}
	return nil
}

// waitLocked waits for the next change, or for ctx; it reports false if
// ctx ended. The caller holds mu, which is released while waiting.
func (s *Session) waitLocked(ctx context.Context) bool {
	ch := s.changedChLocked()
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitAcksLocked is waitLocked for a wait that the client's acks may
// end (forAcks): the connection's reader reads now, not only once Receive
// calls have stopped reading (readturn.go).
func (s *Session) waitAcksLocked(ctx context.Context, forAcks bool) bool {
	if !forAcks {
		return s.waitLocked(ctx)
	}
	s.ackWaiters++
	if c := s.conn; c != nil {
		c.wakeReaderLocked()
	}
	ok := s.waitLocked(ctx)
	s.ackWaiters--
	return ok
}

// waitInboxLocked is waitLocked for Receive: it also returns when the
// inbox grows, which wakes nobody else.
func (s *Session) waitInboxLocked(ctx context.Context) bool {
	ch := s.changedChLocked()
	if s.inboxCh == nil {
		s.inboxCh = make(chan struct{})
	}
	in := s.inboxCh
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return true
	case <-in:
		return true
	case <-ctx.Done():
		return false
	}
}

// inboxGrewLocked wakes Receive for a message read. It does not wake the
// writer (nor Send, nor Flush): waking every waiter for each message
// cost echo and the sink a wasted wake-up of the writer per message.
func (s *Session) inboxGrewLocked() {
	if s.inboxCh != nil {
		close(s.inboxCh)
		s.inboxCh = nil
	}
}

func (s *Session) changedChLocked() <-chan struct{} {
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// queueKeep is the largest array an empty queue keeps once trimmed (40
// bytes an entry): an idle session does not hold on to a burst's array.
const queueKeep = 256

// trimLocked lets go of the queues' arrays if they are empty: the queues
// keep them between bursts.
func (s *Session) trimLocked() {
	s.pending.Trim(queueKeep)
	s.inbox.Trim(queueKeep)
	s.slab = nil // kept alive by its messages still held, if any
}

// changedLocked wakes everyone waiting on the session: Send for room,
// Receive for a message, Flush for acks, the writer for work, the reader
// for room in the inbox.
func (s *Session) changedLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// storeFailed turns a Store error into the session's: another Server
// taking the session over ends it here.
func (s *Session) storeFailed(err error) error {
	if errors.Is(err, ErrMoved) {
		s.end(ErrMoved, false)
		return fmt.Errorf("session %s: %w", s.id, ErrMoved)
	}
	return fmt.Errorf("session %s: store: %w", s.id, err)
}

func (s *Session) secretMatches(secret string) bool { return secretMatches(s.secretHash, secret) }

// expect prepares for a connection that resumes from the client's count
// of received messages, and returns the count of the client's messages
// the application has, for the 101, and the handshake's number in the
// session's order of handshakes, for attach.
func (s *Session) expect(clientReceived uint64) (received, gen uint64, bad *refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return 0, 0, &refusal{503, "session ending"}
	case clientReceived < s.acked || clientReceived > s.sent:
		return 0, 0, &refusal{400, fmt.Sprintf("resume point %d outside [%d, %d]", clientReceived, s.acked, s.sent)}
	}
	s.awaiting++
	s.handshakes++
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	return s.received, s.handshakes, nil
}

// upgradeFailed undoes expect when the upgrade failed.
func (s *Session) upgradeFailed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awaiting--
	s.idleLocked()
}

// idleLocked starts the ResumeTimeout once nothing serves the session.
func (s *Session) idleLocked() {
	if s.conn != nil || s.awaiting > 0 || s.err != nil || s.expiry != nil {
		return
	}
	s.expiry = time.AfterFunc(s.srv.opts.ResumeTimeout, s.expire)
}

// expire ends the session once ResumeTimeout has passed without a
// connection: for good, unless the Store says another Server owns it (the
// client resumed there while this one had no connection to learn it
// from). Then it ends here only, with ErrMoved, so that serve does not
// take a session that goes on elsewhere for one that ended.
func (s *Session) expire() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rec, err := s.srv.store.Load(ctx, s.id); err == nil && rec.Owner != s.srv.owner {
		s.end(ErrMoved, false)
		return
	}
	s.end(ErrClosed, true)
}

// touch keeps the session in the Store for ResumeTimeout from now.
func (s *Session) touch() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.store.Touch(ctx, s.id, s.srv.owner, s.srv.opts.ResumeTimeout); err != nil {
		_ = s.storeFailed(err)
	}
}

// askToMove sends the move hint on the session's connection, if any.
func (s *Session) askToMove() {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		conn.writeMove()
	}
}

// waitDetached returns once the session has no connection here.
func (s *Session) waitDetached(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.conn != nil && s.err == nil {
		if !s.waitLocked(ctx) {
			return ctx.Err()
		}
	}
	return nil
}

// served is called when serve has returned: the session ends for good.
func (s *Session) served() { s.end(ErrClosed, true) }

// end ends the session, once: its calls return err from now on, its
// connection is closed (1000 for good, 1012 on Shutdown), and a session
// ended for good leaves the Store; then Done closes.
func (s *Session) end(err error, forever bool) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	conn := s.conn
	code, reason, graceful := closeCode(err)
	if conn != nil && graceful {
		conn.closing = true     // with s.err, in one step: see sendClose
		conn.wakeReaderLocked() // it drains the socket from now on
	}
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.changedLocked()
	s.mu.Unlock()
	// Done closes last: once it has, neither the Store (when the session
	// ended for good) nor this Server has the session any more, and a
	// resume starts a new one instead of meeting one that is ending.
	defer close(s.done)
	switch {
	case conn != nil && graceful:
		conn.sendClose(code, reason) // its reader drains until the client answers
	case conn != nil:
		conn.kill()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch {
	case forever:
		_ = s.srv.store.Delete(ctx, s.id, s.srv.owner)
	case errors.Is(err, ErrServerClosed):
		_ = s.srv.store.Touch(ctx, s.id, s.srv.owner, s.srv.opts.ResumeTimeout)
	}
	s.srv.forget(s)
	if log := s.srv.opts.Logger; log != nil {
		log.Info("session: ended", "session", s.id, "why", err)
	}
}
