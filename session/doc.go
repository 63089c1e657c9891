// Package session is the server side of resocket's resumable sessions
// (docs/protocol.md): every data message reaches the other side exactly
// once and in order, in both directions, across reconnects, network
// faults and server restarts, as long as the Store keeps the session.
//
// Mount a Server as an http.Handler; it runs a function of yours once for
// each session it takes on:
//
//	srv := session.NewServer(session.Options{}, func(s *session.Session) {
//		for {
//			typ, data, err := s.Receive(context.Background())
//			if err != nil {
//				return // the session ended: the client closed it, it expired, or Shutdown
//			}
//			if err := s.Send(context.Background(), typ, data); err != nil {
//				return
//			}
//		}
//	})
//	http.Handle("/ws", srv)
//
// Clients connect with resocket.Config{Resume: true}.
//
// Goroutines: each connection has a reader (the ServeHTTP goroutine) and
// a writer; each session's serve function runs on a goroutine of its own.
// Shutdown waits for all of them. Send stores a message and wakes the
// writer, which writes whatever has piled up at once: to a client that
// takes batch frames (ours does), several messages to a WebSocket
// message. An answer skips both hand-offs: a Receive whose ctx can never
// end reads the socket itself while the reader stands by, and the Send
// after it writes its message itself when the writer is idle
// (readturn.go, writeturn.go).
package session
