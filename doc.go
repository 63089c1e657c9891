// Package resocket keeps a WebSocket stream alive.
//
// A Client wraps one live connection at a time. When it ends — the server
// closes, restarts, drops the link or refuses the handshake — a Policy
// decides from the close code (or HTTP status) whether to stop, reconnect
// with backoff, or give up, and the client dials a fresh connection. The
// application sees everything that happens as events on one channel:
//
//	c, err := resocket.Dial(ctx, "wss://example.com/stream", resocket.Config{})
//	if err != nil {
//		return err
//	}
//	defer c.Close(resocket.StatusNormalClosure, "bye")
//	c.SendText(ctx, `{"subscribe":"prices"}`)
//	for ev := range c.Events() {
//		switch ev := ev.(type) {
//		case resocket.Message:
//			handle(ev.Data)
//		case resocket.Disconnected:
//			log.Printf("lost conn %d: %v, %v", ev.ConnID, ev.Disconnect.Code, ev.Decision.Action)
//		case resocket.Closed:
//			return ev.Err
//		}
//	}
//
// # Policy
//
// DefaultPolicy stops on 1000; reconnects on 1001, 1005, 1006 (a lost
// link), 1011, 1012, 1014 and on network errors; waits at least 5 s after
// 1013; gives up on 1002 sent by the server, 1003, 1007–1010, 3000 and
// 3003, and on a rejected TLS certificate; reconnects on other 3000–4999
// codes. A refused handshake gives up on 400, 401, 403, 404 and 426,
// reconnects on 408 and 5xx, and waits for Retry-After on 429 and 503.
// Wrap DefaultPolicy to change single cases.
//
// Reconnects wait for the Backoff (DefaultBackoff: 100 ms plus full jitter
// from 450 ms, doubling to a 15 s cap, forever), plus the Decision's
// MinDelay when the policy set one. The backoff resets only after a connection has stayed up for a
// few seconds, so a server that accepts and drops at once gets no tight
// loop. Every attempt dials a new connection with a new ID; HeaderFunc runs
// before each one and OnConnect on each new connection.
//
// # Control
//
// WaitConnected blocks until a connection is up; ForceReconnect drops the
// current connection (or cuts a backoff wait) and dials now; Stats reports
// counters, the last Disconnect and when the next attempt is due;
// Config.URLs rotates between endpoints; SendJSON and Message.DecodeJSON
// cover the common JSON case. Config.OnEvent delivers events to a callback
// on the client's goroutine instead of the channel: no handoff between
// goroutines per message, and no reader goroutine per client.
//
// # Delivery
//
// A message accepted by Send is written, or kept for the next connection
// when none of it reached the wire, or handed back: as Send's error, or in
// Closed.Unsent when the client ends. A write that returned nil is not
// proof of delivery: a link can die with the message in flight, and only
// an acknowledgement from the server proves it arrived. Received messages
// are never dropped: a slow reader of Events slows reading from the
// socket instead.
//
// # Concurrency
//
// Every method of Client is safe from any goroutine. Send may be called
// from many goroutines at once; a Send waiting for another write on the
// same connection still honours its ctx. Close and Terminate may be called
// from any goroutine, more than once, and from every callback of the
// client's own. HeaderFunc, OnConnect, Policy, Backoff and OnEvent run on
// the client's goroutine, one at a time; the Dialer's hooks on a helper it
// waits for. The contexts callbacks receive end when the client is
// closed. Every goroutine the client starts has ended when Close or
// Terminate returns, and when Done is closed; the one exception is a call
// made while a callback runs, which cannot wait for the goroutine running
// it: it returns once the close is under way, and Done closes once the
// callback has returned. docs/architecture.md describes the goroutines and
// who owns what.
package resocket
