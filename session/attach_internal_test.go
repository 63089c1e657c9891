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
