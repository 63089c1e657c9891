package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/wire"
)

// Acknowledgements of the client's messages are batched like the
// client's: after ackEvery, or ackDelay after the first unacknowledged.
const (
	ackEvery = 64
	ackDelay = 50 * time.Millisecond
)

// errSuperseded ends a connection whose handshake a newer one overtook.
var errSuperseded = errors.New("session: a newer connection took over")

// writeTimeout bounds each write: a client that stops reading is dead.
const writeTimeout = 10 * time.Second

// sconn is one connection of a session. The reader runs on ServeHTTP's
// goroutine, the writer on one of its own; both end with the connection.
type sconn struct {
	ws   *websocket.Conn
	sess *Session

	nextIn  uint64 // the number of the client's next data message (reader)
	nextOut uint64 // the number of the next message to write (writer, under sess.mu)
	ackSent uint64 // the count last acknowledged (writer, under sess.mu)
	// ackSentBytes: sess.receivedBytes when ackSent was acknowledged
	// (writer, under sess.mu)
	ackSentBytes uint64
	// an ack is due after ackEvery messages or ackBytes bytes (0: no
	// bound), from the client's window
	ackEvery, ackBytes uint64
	// batchBytes bounds the batch frames written to the client (0: it
	// takes none, each message is a frame of its own)
	batchBytes int
	// ackArmed: the writer's ack timer runs, so the writer need not be
	// woken for each message received (writer, under sess.mu).
	ackArmed bool
	// writerWaiting: the writer waits for work, with nothing in flight;
	// inlineWriting: a Send is writing its message (writeturn.go). Both
	// under sess.mu.
	writerWaiting, inlineWriting bool
	inlineWrites                 uint64 // messages written by Send (TestEchoStaysOnTheApplicationsGoroutine counts them)

	turn readTurn // who reads the socket (readturn.go; under sess.mu)

	writeMu      sync.Mutex // data frames: the writer, and the close handler's final ack
	closeSent    bool       // a close frame has gone: no data frame may follow (under writeMu)
	closing      bool       // we sent a close frame first (under sess.mu)
	clientClosed bool       // the client sent a close frame first (reader)

	endOnce sync.Once
	ended   chan struct{}
}

// serveConn runs one connection of the session, which req asked for and
// the 101 answered with a, until it ends. It runs on ServeHTTP's
// goroutine, which is its reader.
func (s *Session) serveConn(ws *websocket.Conn, req resumeRequest, a answer) {
	srv := s.srv
	c := &sconn{ws: ws, sess: s, ended: make(chan struct{}),
		ackEvery: wire.AckEvery(req.window, ackEvery), ackBytes: wire.AckBytes(req.windowBytes),
		batchBytes: int(min(req.batch, maxBatchBytes))}
	c.turn.grace = time.NewTimer(time.Hour)
	c.turn.grace.Stop()
	defer c.turn.grace.Stop()
	if !srv.track() {
		s.upgradeFailed()
		c.closeFor(ErrServerClosed)
		return
	}
	defer srv.running.Done()
	if err := s.attach(c, req.received, a.received, a.gen); err != nil {
		c.closeFor(err) // the session ended while the handshake ran
		return
	}
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		c.writeLoop()
	}()
	c.readLoop()
	c.kill()
	writer.Wait()
	s.detach(c)
}

// attach makes c the session's connection, taking over from an older one
// (a half-open link the client has left): that one is cut first, so that
// nothing is written twice. clientReceived is the client's resume point;
// told is what the 101 told the client we have, from which it numbers
// its replay (Receive may have gone further since: the replay's
// duplicates are dropped by number).
//
// gen is the handshake's number (expect): a connection whose handshake
// came before the one attached already is stale, the client has left it
// for the newer one, and it is closed instead. (Handshakes run on
// goroutines of their own, so an older one can reach attach last.)
func (s *Session) attach(c *sconn, clientReceived, told, gen uint64) error {
	s.mu.Lock()
	s.awaiting--
	if err := s.err; err != nil {
		s.mu.Unlock()
		return err
	}
	if gen < s.attached {
		s.idleLocked()
		s.mu.Unlock()
		return errSuperseded
	}
	s.attached = gen
	old := s.conn
	s.conn = c
	c.nextIn = told + 1
	c.nextOut = clientReceived + 1
	c.ackSent = told
	c.ackSentBytes = s.receivedBytes
	ack := clientReceived > s.acked
	s.inbox.DropFront(s.inbox.Len()) // read on the old connection: the client replays it
	s.changedLocked()
	s.mu.Unlock()
	if old != nil {
		old.kill()
	}
	if ack {
		_ = s.clientAcked(clientReceived) // checked against what was sent by expect
	}
	return nil
}

// detach is called when c has ended: the session waits ResumeTimeout for
// the client, or ends now if the client closed it.
func (s *Session) detach(c *sconn) {
	s.mu.Lock()
	if s.conn != c {
		s.mu.Unlock()
		return // taken over
	}
	s.conn = nil
	s.changedLocked()
	s.idleLocked()
	s.trimLocked()
	s.mu.Unlock()
	if c.clientClosed {
		s.end(ErrClosed, true) // the client is gone for good
		return
	}
	s.touch()
}

// clientAcked takes in the client's acknowledgement of n messages.
func (s *Session) clientAcked(n uint64) error {
	s.mu.Lock()
	if n > s.sent {
		s.mu.Unlock()
		return errors.New("ack of messages never sent")
	}
	if n <= s.acked {
		s.mu.Unlock()
		return nil
	}
	k := int(n - s.acked) //nolint:gosec // n <= s.sent: at most len(s.pending)
	for i := range k {
		s.pendingBytes -= len(s.pending.At(i).Data)
	}
	s.pending.DropFront(k)
	s.acked = n
	s.changedLocked()
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.store.Ack(ctx, s.id, s.srv.owner, n); err != nil {
		_ = s.storeFailed(err)
	}
	return nil
}

// inbound queues the client's data message seq for Receive, waiting for
// room; it reports false once c no longer serves the session.
func (s *Session) inbound(c *sconn, m Stored) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.err != nil || s.conn != c:
			return false
		case m.Seq <= s.received || (s.inbox.Len() > 0 && m.Seq <= s.inbox.At(s.inbox.Len()-1).Seq):
			return true // received already: a replay
		case s.inbox.Len() < inboxLimit:
			s.inbox.Push(m)
			s.inboxGrewLocked() // Receive's news only: not the writer's
			return true
		}
		s.inboxFull = true // Receive wakes us
		ch := s.changedChLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-c.ended:
		}
		s.mu.Lock()
	}
}

func (c *sconn) readLoop() {
	ws, s := c.ws, c.sess
	live := 2 * s.srv.opts.PingInterval
	ws.SetReadLimit(s.srv.opts.ReadLimit)
	_ = ws.SetReadDeadline(time.Now().Add(live))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(live)) })
	// The client's pings are signs of life too: our own pings may wait
	// behind a large message on a slow link, and their pongs with them.
	ws.SetPingHandler(func(data string) error {
		c.alive(live)
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		// The pong waits for the writer's frame (up to its deadline when
		// the link is slow): time spent here is ours, not the client's
		// silence, so the reader's deadline starts again after it.
		c.alive(live)
		var ne net.Error
		switch {
		case err == nil, errors.Is(err, websocket.ErrCloseSent):
			return nil
		case errors.As(err, &ne) && ne.Timeout():
			return nil // the link is slow, not dead: the deadline decides
		}
		return err
	})
	ws.SetCloseHandler(func(int, string) error {
		received := s.clientClosing(c)
		// Everything the application received is acknowledged before the
		// close, so that the client's Closed.Unsent is exact.
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
		_ = ws.WriteMessage(websocket.BinaryMessage, wire.AppendAck(nil, received))
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = c.writeCloseLocked(msg, time.Now().Add(time.Second))
		return nil
	})
	s.mu.Lock()
	c.turn.live = live // from now on a Receive may read (readturn.go)
	s.mu.Unlock()
	for c.awaitReadTurn() {
		if !c.readOne() {
			return
		}
		c.endReadTurn()
	}
}

// clientClosing takes in the client's close frame on c and returns the
// count to acknowledge before answering it. A close on the session's
// connection, unless we closed first, means the client has left for
// good: what Receive is returning counts as received, and what waits in
// the inbox is never returned (the client hands it back in
// Closed.Unsent). A close on a connection that a newer one has taken
// over, or is about to (its handshake has been answered), is a rotation
// or a move: the session goes on there, and the inbox is not this
// connection's to empty.
func (s *Session) clientClosing(c *sconn) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.clientClosed = !c.closing && s.conn == c && s.awaiting == 0
	if !c.clientClosed {
		return s.received
	}
	s.inbox.DropFront(s.inbox.Len())
	return max(s.received, s.taking)
}

// readChunks holds what readMessage reads into, taken only once a message
// has begun: a chunk kept by each connection was 4 KiB of every idle
// connection's memory.
var readChunks = sync.Pool{New: func() any {
	b := make([]byte, 4<<10)
	return &b
}}

// readMessage reads the client's next message. Every read that brings
// data is a sign of life, not only a whole message: a large message on a
// slow link takes longer than live to arrive.
func (c *sconn) readMessage(live time.Duration) (int, []byte, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	var buf bytes.Buffer // the message's own memory: it goes to the inbox
	chunk := readChunks.Get().(*[]byte)
	defer readChunks.Put(chunk)
	for {
		n, err := r.Read(*chunk)
		if n > 0 {
			buf.Write((*chunk)[:n])
			c.alive(live)
		}
		switch {
		case errors.Is(err, io.EOF):
			return typ, buf.Bytes(), nil
		case err != nil:
			return 0, nil, err
		}
	}
}

// alive pushes the read deadline live from now, unless we have sent a
// close frame: then the client has until the deadline closeWith set.
func (c *sconn) alive(live time.Duration) {
	if !c.isClosing() {
		_ = c.ws.SetReadDeadline(time.Now().Add(live))
	}
}

// handle takes in one message from the client, on the reader.
func (c *sconn) handle(typ resocket.MessageType, frame []byte) bool {
	s := c.sess
	if len(frame) == 0 {
		c.protocolError("empty message")
		return false
	}
	switch frame[0] {
	case wire.KindData:
		seq := c.nextIn
		c.nextIn++
		return s.inbound(c, Stored{Seq: seq, Type: typ, Data: frame[1:]})
	case wire.KindAck:
		n, err := wire.ParseAck(frame)
		if err == nil && typ == resocket.MessageBinary {
			err = s.clientAcked(n)
		}
		if err != nil {
			c.protocolError("bad ack")
			return false
		}
		return true
	}
	c.protocolError("unknown frame kind")
	return false
}

func (c *sconn) protocolError(why string) {
	msg := websocket.FormatCloseMessage(websocket.CloseProtocolError, why)
	_ = c.writeClose(msg, time.Now().Add(time.Second))
	if log := c.sess.srv.opts.Logger; log != nil {
		log.Warn("session: protocol violated", "session", c.sess.id, "why", why)
	}
}

// writeLoop writes the session's messages from c.nextOut on, acks, and
// pings, until the connection ends.
func (c *sconn) writeLoop() {
	s := c.sess
	// The Store's TTL runs from the last Touch, at the disconnect (or, for
	// a session claimed from another Server, before): renew it now, not a
	// third of ResumeTimeout from now, by when it may have run out.
	s.touch()
	ping := time.NewTimer(s.srv.opts.PingInterval)
	defer ping.Stop()
	touch := time.NewTimer(s.srv.opts.ResumeTimeout / 3)
	defer touch.Stop()
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	defer ackTimer.Stop()
	ackDue := false
	var batch []Stored
	var buf []byte
	for {
		s.mu.Lock()
		c.writerWaiting = false
		if s.conn != c || c.closing {
			s.mu.Unlock()
			return
		}
		if c.nextOut <= s.sent && !c.inlineWriting {
			// Everything due, up to a batch, goes out in one write: a
			// message at a time, each its own write and syscall, was
			// what bounded a stream of small messages.
			batch = batch[:0]
			size := 0
			for c.nextOut <= s.sent && len(batch) < maxBatch && (len(batch) == 0 || size < maxBatchBytes) {
				// Every number from the handshake's on goes out: the
				// client numbers them implicitly. One it acknowledged
				// since (on its old connection) is gone from pending; an
				// empty data frame stands in, which the client drops.
				m := Stored{Seq: c.nextOut, Type: resocket.MessageBinary}
				if c.nextOut > s.acked {
					m = s.pending.At(int(c.nextOut - s.acked - 1)) //nolint:gosec // acked < nextOut <= sent
				}
				batch = append(batch, m)
				size += len(m.Data)
				c.nextOut++
			}
			s.mu.Unlock()
			if !c.writeBatch(batch, &buf) {
				return
			}
			clear(batch)
			continue
		}
		if unacked := s.received - c.ackSent; unacked > 0 && (ackDue || c.ackDueLocked()) {
			n := s.received
			c.ackSent, c.ackSentBytes = n, s.receivedBytes
			ackDue, c.ackArmed = false, false
			s.mu.Unlock()
			if !c.writeAck(n) {
				return
			}
			continue
		} else if unacked > 0 && !c.ackArmed {
			c.ackArmed = true
			ackTimer.Reset(ackDelay)
		}
		ch := s.changedChLocked()
		c.writerWaiting = true
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ackTimer.C:
			ackDue = true
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)) != nil {
				c.kill()
				return
			}
			ping.Reset(s.srv.opts.PingInterval)
			s.mu.Lock()
			s.trimLocked() // an idle session lets go of a burst's arrays
			s.mu.Unlock()
		case <-touch.C:
			s.touch()
			touch.Reset(s.srv.opts.ResumeTimeout / 3)
		case <-c.ended:
			return
		}
	}
}

// ackDueLocked reports whether the client's messages received since the
// last ack call for one now, by count or by bytes.
func (c *sconn) ackDueLocked() bool {
	s := c.sess
	return s.received-c.ackSent >= c.ackEvery || (c.ackBytes > 0 && s.receivedBytes-c.ackSentBytes >= c.ackBytes)
}

// A batch of data messages written at once holds up to maxBatch messages
// and stops growing past maxBatchBytes of data.
const (
	maxBatch      = 256
	maxBatchBytes = 64 << 10
)

// writeBatch writes data messages. One goes through gorilla's writer; more
// are framed here into *buf and written to the socket in one call, under
// writeMu like every data write. gorilla writes each frame of its own
// (control frames, acks) in one call too, and a net.Conn does not
// interleave calls, so frames never mix. To a client that takes batch
// frames, messages go several to a frame: its reader then pays for one
// WebSocket message where it paid for each.
func (c *sconn) writeBatch(batch []Stored, buf *[]byte) bool {
	if len(batch) == 1 {
		return c.write(int(batch[0].Type), wire.KindData, batch[0].Data)
	}
	b := (*buf)[:0]
	for len(batch) > 0 {
		n, size := c.batchable(batch)
		if n < 2 {
			b = appendFrame(b, int(batch[0].Type), wire.KindData, batch[0].Data)
			batch = batch[1:]
			continue
		}
		b = append(appendHeader(b, websocket.BinaryMessage, size), wire.KindBatch)
		for _, m := range batch[:n] {
			b = wire.AppendEntry(b, byte(m.Type), m.Data) //nolint:gosec // a message type: 1 or 2
		}
		batch = batch[n:]
	}
	if cap(b) <= 2*maxBatchBytes {
		*buf = b // kept for the next batch; a batch of large messages is not
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closeSent {
		return c.wrote(websocket.ErrCloseSent) // what gorilla's writer would say
	}
	nc := c.ws.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := nc.Write(b)
	return c.wrote(err)
}

// batchable says how many of the first messages go in one batch frame to
// the client, and the size of its payload: none when the client takes no
// batch frames.
func (c *sconn) batchable(ms []Stored) (n, size int) {
	if c.batchBytes == 0 {
		return 0, 0
	}
	size = 1 // the kind byte
	for _, m := range ms {
		e := wire.EntryLen(len(m.Data))
		if size+e > c.batchBytes {
			break
		}
		size += e
		n++
	}
	return n, size
}

// writeClose writes a close frame; once it has, writeBatch writes no more.
func (c *sconn) writeClose(msg []byte, deadline time.Time) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeCloseLocked(msg, deadline)
}

func (c *sconn) writeCloseLocked(msg []byte, deadline time.Time) error {
	c.closeSent = true
	return c.ws.WriteControl(websocket.CloseMessage, msg, deadline)
}

// appendFrame appends one final, unmasked (server to client) frame of
// opcode typ whose payload is kind then data (RFC 6455, section 5.2).
func appendFrame(b []byte, typ int, kind byte, data []byte) []byte {
	b = appendHeader(b, typ, 1+len(data))
	return append(append(b, kind), data...)
}

// appendHeader appends the header of a final, unmasked frame of opcode
// typ and a payload of n bytes.
func appendHeader(b []byte, typ, n int) []byte {
	b = append(b, 0x80|byte(typ)) //nolint:gosec // an opcode: 1 (text) or 2 (binary)
	switch {
	case n < 126:
		return append(b, byte(n)) //nolint:gosec // n < 126
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

func (c *sconn) write(typ int, kind byte, data []byte) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	w, err := c.ws.NextWriter(typ)
	if err == nil {
		_, err = w.Write([]byte{kind})
		if err == nil {
			_, err = w.Write(data)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	return c.wrote(err)
}

func (c *sconn) writeAck(n uint64) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.wrote(c.ws.WriteMessage(websocket.BinaryMessage, wire.AppendAck(nil, n)))
}

// writeMove sends the move hint: this server is going away.
func (c *sconn) writeMove() {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	c.wrote(c.ws.WriteMessage(websocket.BinaryMessage, []byte{wire.KindMove}))
}

// wrote reports whether a write succeeded. A failed one cuts the
// connection, except after our close frame: then the reader drains the
// socket until the client answers (see isClosing).
func (c *sconn) wrote(err error) bool {
	if err == nil {
		return true
	}
	if !errors.Is(err, websocket.ErrCloseSent) {
		c.kill()
	}
	return false
}

// closeWith sends a close frame and gives the client a second to answer
// before the reader's deadline cuts the connection.
func (c *sconn) closeWith(code resocket.StatusCode, reason string) {
	s := c.sess
	s.mu.Lock()
	c.closing = true
	c.wakeReaderLocked() // it drains the socket from now on
	s.changedLocked()
	s.mu.Unlock()
	c.sendClose(code, reason)
}

// sendClose writes the close frame; the caller has set closing, under the
// session's mutex, in the same step that made the reader's and the
// writer's next check fail, so that neither cuts the connection before
// the client has read the frame.
func (c *sconn) sendClose(code resocket.StatusCode, reason string) {
	msg := websocket.FormatCloseMessage(int(code), reason)
	err := c.writeClose(msg, time.Now().Add(writeTimeout))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		c.kill()
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(time.Second))
}

// isClosing reports whether we have sent a close frame: from then on the
// reader drains the socket until the client answers, so that closing it
// does not reset the connection before the client has read our frame.
func (c *sconn) isClosing() bool {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.closing
}

// closeCode is the close frame for a session that ended with err: it
// tells the client what to do (1012: come back; 1000: stop). ok is false
// after a takeover: the client is on another connection already.
func closeCode(err error) (code resocket.StatusCode, reason string, ok bool) {
	switch {
	case errors.Is(err, ErrServerClosed):
		return resocket.StatusServiceRestart, "server restarting", true
	case errors.Is(err, ErrMoved), errors.Is(err, errSuperseded):
		return 0, "", false
	}
	return resocket.StatusNormalClosure, "session ended", true
}

// closeFor closes a connection that never served the session, which
// ended with err meanwhile.
func (c *sconn) closeFor(err error) {
	code, reason, ok := closeCode(err)
	if !ok {
		c.kill()
		return
	}
	c.closeWith(code, reason)
	for { // drain until the client's close frame: see isClosing
		if _, _, err := c.ws.ReadMessage(); err != nil {
			break
		}
	}
	c.kill()
}

func (c *sconn) kill() {
	c.endOnce.Do(func() { close(c.ended) })
	_ = c.ws.NetConn().Close()
}
