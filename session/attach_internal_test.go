package session

import (
	"errors"
	"testing"
)

// Two handshakes of one session run on goroutines of their own: the
// client's first connection, then, once it has left that one, its
// resume. If the first reaches attach last, it must not take the session
// over from the newer one, which the client uses: the server once did,
// killed the live connection and served the one the client had left
// (found by faults.TestResumeSlowCloseClientCloses: a ForceReconnect
// within a millisecond of the first Connected).
func TestStaleHandshakeDoesNotTakeOver(t *testing.T) {
	srv := NewServer(Options{}, func(*Session) {})
	sess := newSession(srv, "id", Record{})
	_, first, bad := sess.expect(0)
	if bad != nil {
		t.Fatal(bad)
	}
	_, second, bad := sess.expect(0)
	if bad != nil {
		t.Fatal(bad)
	}
	older, newer := &sconn{sess: sess, ended: make(chan struct{})}, &sconn{sess: sess, ended: make(chan struct{})}

	if err := sess.attach(newer, 0, 0, second); err != nil {
		t.Fatalf("the newer handshake attaches: %v", err)
	}
	if err := sess.attach(older, 0, 0, first); !errors.Is(err, errSuperseded) {
		t.Fatalf("the older handshake, attaching last: %v, want errSuperseded", err)
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.conn != newer {
		t.Fatal("the session is served by the older connection")
	}
	if sess.awaiting != 0 {
		t.Fatalf("%d handshakes still awaited", sess.awaiting)
	}
}

// A client that rotates its connection (MaxConnectionAge) or moves
// (Drain) closes the old one with a close frame once the new one's
// handshake has been answered, and that frame can reach the server
// before the new connection attaches. It must not end the session as a
// client leaving would, nor, arriving later, empty the inbox of the
// connection that took over.
func TestCloseOnAReplacedConnectionKeepsTheSession(t *testing.T) {
	srv := NewServer(Options{}, func(*Session) {})
	sess := newSession(srv, "id", Record{})
	_, first, _ := sess.expect(0)
	older, newer := &sconn{sess: sess, ended: make(chan struct{})}, &sconn{sess: sess, ended: make(chan struct{})}
	if err := sess.attach(older, 0, 0, first); err != nil {
		t.Fatal(err)
	}
	_, second, _ := sess.expect(0) // answered, not attached yet

	sess.clientClosing(older)
	if older.clientClosed {
		t.Fatal("a close on the connection being replaced is taken for the client leaving")
	}
	sess.detach(older)
	if err := sess.attach(newer, 0, 0, second); err != nil {
		t.Fatalf("the newer connection attaches: %v", err)
	}

	sess.mu.Lock()
	sess.inbox.Push(Stored{Seq: 1, Data: []byte("read on the newer connection")})
	sess.mu.Unlock()
	sess.clientClosing(older) // again, now that the newer one serves
	sess.mu.Lock()
	kept := sess.inbox.Len()
	sess.mu.Unlock()
	if older.clientClosed || kept != 1 {
		t.Fatalf("a late close on the replaced connection: client left %v, inbox %d, want false, 1", older.clientClosed, kept)
	}

	sess.clientClosing(newer)
	if !newer.clientClosed {
		t.Fatal("a close on the session's own connection is the client leaving")
	}
}
