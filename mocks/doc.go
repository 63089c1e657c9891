// Package mocks provides test doubles for resocket and for code that uses it:
// a scriptable WebSocket server ([Server]), a server that accepts TCP but never
// answers the handshake ([StallServer]), and a testify mock of
// github.com/cenkalti/backoff/v4's BackOff interface ([BackOff]).
//
// Every listener binds to 127.0.0.1 only. Every server is closed by
// t.Cleanup, closing is idempotent, and Close waits for every goroutine the
// server started, so tests using go.uber.org/goleak stay clean. No call sleeps
// for synchronisation and every blocking wait is bounded.
//
// [Server] lets a test drive each side of a WebSocket conversation from the
// server end: receive and send messages, close with any close code (including
// codes and payloads that RFC 6455 forbids), drop or reset the TCP connection,
// go silent to simulate a half-open link, refuse or stall handshakes, and
// restart. With small socket buffers ([WithSocketBuffers]) and writes bounded
// by a deadline ([Conn.SendWithin]), it shows when a client stops reading.
//
// A typical test:
//
//	func TestReconnect(t *testing.T) {
//		srv := mocks.NewServer(t, mocks.WithEcho())
//
//		// ... start the client under test against srv.URL() ...
//
//		c := srv.NextConn(t, 2*time.Second) // the first accepted connection
//		_, msg, err := c.Receive(2 * time.Second)
//		if err != nil {
//			t.Fatal(err)
//		}
//		_ = msg
//
//		srv.Restart(websocket.CloseServiceRestart, "restarting") // 1012
//		c2 := srv.NextConn(t, 5*time.Second)                      // the client came back
//		if err := c2.SendText("welcome back"); err != nil {
//			t.Fatal(err)
//		}
//	}
package mocks
