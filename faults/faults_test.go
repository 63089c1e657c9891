package faults

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// sendEvery is the pace of the test traffic: 200 small messages a second.
const sendEvery = 5 * time.Millisecond

// report logs one line per fault in a fixed form, for docs/reliability.md.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("RESULT %s: %s", t.Name(), fmt.Sprintf(format, args...))
}

// A link that is slow, narrow or chops frames into pieces is not a dead
// link: the connection stays up, the keepalive raises no false alarm, and
// every message comes back intact and in order.
func TestImpairedLinkStaysUp(t *testing.T) {
	cases := []struct {
		name  string
		typ   string
		attrs string
	}{
		// 50±10 ms each way: a round trip of about 100 ms, a third of PongTimeout.
		{"latency", "latency", `{"latency":50,"jitter":10}`},
		// 16 KB/s each way, about six times the test traffic.
		{"bandwidth", "bandwidth", `{"rate":16}`},
		// Every write cut into 1–5 byte segments, 100 µs apart: frames,
		// pings and pongs arrive in pieces.
		{"slicer", "slicer", `{"average_size":3,"size_variation":2,"delay":100}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			srv, l, c, rec := setup(t, faultConfig())
			l.add(t, tc.name+"_up", tc.typ, "upstream", 1, tc.attrs)
			l.add(t, tc.name+"_down", tc.typ, "downstream", 1, tc.attrs)
			s := startSender(t, c, sendEvery)

			// Watch three ping cycles under the toxic (an observation
			// period, not a wait for something to happen).
			time.Sleep(3 * (pingInterval + pongTimeout))
			assert.Empty(t, testkit.Only[resocket.Disconnected](rec.Events()), "the impaired link must stay up:\n%s", rec.History())
			tl := finish(t, srv, c, rec, s)

			assertAccounted(t, tl, 0)
			assert.Equal(t, tl.sent, tl.echoed, "every message comes back: %v", tl)
			conns := srv.Conns()
			require.Len(t, conns, 1)
			assert.GreaterOrEqual(t, conns[0].Pings(), 2, "the keepalive pinged through the toxic")
			report(t, "stayed up; %v; %d pings answered", tl, conns[0].Pings())
		})
	}
}

// Latency whose round trip exceeds PongTimeout is, to the keepalive, a dead
// link: the connection is dropped as 1006 with ErrPongTimeout and the
// client reconnects. PongTimeout must exceed the worst round trip.
//
// The link is quiet when the latency comes (setup waits for the hello's
// echo), so the first ping's pong is the next frame and comes too late.
// The keepalive does not match a pong to its ping: had a frame been in
// flight, its late arrival would have counted as a sign of life, and with
// pings every 300 ms and pongs 400 ms late each check then sees the
// previous ping's pong, and the connection stays up (seen when the hello's
// echo was still on its way as the toxic went in).
func TestLatencyAbovePongTimeout(t *testing.T) {
	checkLeaks(t)
	_, l, _, rec := setup(t, faultConfig())
	first := connectedID(t, rec)

	injected := time.Now()
	l.add(t, "latency_down", "latency", "downstream", 1, `{"latency":400}`)
	_, ev := rec.Await(t, 0, waitFor, isDisconnectedFrom(first))
	detected := ev.At.Sub(injected)
	d := ev.Event.(resocket.Disconnected)
	assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
	assert.ErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	assert.Less(t, detected, detectBound)

	l.remove(t, "latency_down")
	rec.Await(t, 0, waitFor, isConnectedOtherThan(first))
	report(t, "Disconnected 1006 ErrPongTimeout after %v (bound %v), reconnected once the latency went",
		ms(detected), detectBound)
}

// A half-open link (Toxiproxy's timeout toxic with timeout 0: the TCP
// connection stays up, nothing passes either way, no FIN, no RST) is found
// by the keepalive only: 1006 with ErrPongTimeout within a ping cycle.
// Attempts through the still-dead link fail after the dialer's handshake
// timeout and are retried; once the link heals the client is back, and
// what was sent meanwhile is flushed. Messages written with a nil error
// into the dead link before it was found are the ones a nil write does not
// deliver.
func TestHalfOpenLink(t *testing.T) {
	checkLeaks(t)
	srv, l, c, rec := setup(t, faultConfig())
	first := connectedID(t, rec)
	s := startSender(t, c, sendEvery)
	requireEventually(t, waitFor, func() bool { return s.sent() >= 20 }, "traffic flowing")

	injected := time.Now()
	l.add(t, "timeout_up", "timeout", "upstream", 1, `{"timeout":0}`)
	l.add(t, "timeout_down", "timeout", "downstream", 1, `{"timeout":0}`)
	i, ev := rec.Await(t, 0, waitFor, isDisconnectedFrom(first))
	detected := ev.At.Sub(injected)
	d := ev.Event.(resocket.Disconnected)
	assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
	assert.ErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	assert.Less(t, detected, detectBound, "detection within a ping cycle")
	rec.Await(t, i, waitFor, testkit.Is[resocket.Reconnecting])

	// The link is still dead: the next attempt stalls in the handshake
	// until the dialer's timeout, and the policy retries.
	_, ev = rec.Await(t, i, 3*time.Second, testkit.Is[resocket.DialFailed])
	df := ev.Event.(resocket.DialFailed)
	assert.Equal(t, resocket.StatusAbnormalClosure, df.Disconnect.Code)
	assert.Error(t, df.Disconnect.Err)
	assert.Equal(t, resocket.Reconnect, df.Decision.Action)

	healed := time.Now()
	l.remove(t, "timeout_up")
	l.remove(t, "timeout_down")
	_, ev = rec.Await(t, i, waitFor, isConnectedOtherThan(first))
	back := ev.At.Sub(healed)
	requireEventually(t, waitFor, func() bool { return s.sent() >= 20+100 }, "traffic after the heal")
	tl := finish(t, srv, c, rec, s)

	// Found by the keepalive only: what was written in the last ping
	// cycle before the cut is the nil-write window.
	assertAccounted(t, tl, silentWindow)
	assert.NotZero(t, tl.lost, "writes into the silent link return nil and are lost: %v", tl)
	report(t, "Disconnected 1006 ErrPongTimeout after %v (bound %v); DialFailed (handshake timeout) while dead; "+
		"Connected %v after the heal; %v (bound %v)", ms(detected), detectBound, ms(back), tl, silentWindow)
}

// A TCP reset (Toxiproxy's reset_peer: SO_LINGER 0, then close) is found at
// once, without waiting for the keepalive: 1006 with the transport error,
// and a reconnect.
func TestResetPeer(t *testing.T) {
	checkLeaks(t)
	srv, l, c, rec := setup(t, faultConfig())
	// reset_peer arms SO_LINGER 0 only on connections that start while it
	// is present, so it is added dormant (toxicity 0) and the client's
	// connection is replaced to go through it.
	l.add(t, "reset_up", "reset_peer", "upstream", 0, `{"timeout":0}`)
	first := connectedID(t, rec)
	c.ForceReconnect()
	_, ev := rec.Await(t, 0, waitFor, isConnectedOtherThan(first))
	armed := ev.Event.(resocket.Connected).ConnID
	n := rec.Len()
	s := startSender(t, c, sendEvery)
	requireEventually(t, waitFor, func() bool { return s.sent() >= 20 }, "traffic flowing")

	// The next bytes the client sends trigger the reset.
	injected := time.Now()
	l.update(t, "reset_up", 1, `{"timeout":0}`)
	i, ev := rec.Await(t, n, waitFor, isDisconnectedFrom(armed))
	detected := ev.At.Sub(injected)
	l.update(t, "reset_up", 0, `{"timeout":0}`)
	d := ev.Event.(resocket.Disconnected)
	assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
	assert.Error(t, d.Disconnect.Err)
	assert.NotErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout, "a reset needs no keepalive to be found")
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	assert.Less(t, detected, pingInterval+pongTimeout, "found at once, not by a ping cycle")
	rec.Await(t, i, waitFor, isConnectedOtherThan(armed))

	requireEventually(t, waitFor, func() bool { return s.sent() >= 20+100 }, "traffic after the reset")
	tl := finish(t, srv, c, rec, s)
	assertAccounted(t, tl, cutWindow)
	report(t, "Disconnected 1006 (%v) after %v; reconnected; %v (bound %v); server saw %d connections",
		d.Disconnect.Err, ms(detected), tl, cutWindow, len(srv.Conns()))
}

// limit_data closes the link once a number of bytes has passed: the
// connection ends in the middle of the traffic, the client sees the lost
// link at once (1006, no keepalive needed), reconnects, and the same
// happens on each fresh connection. The messages in flight when a link is
// cut are the nil-write window; every other message comes back.
func TestLimitData(t *testing.T) {
	checkLeaks(t)
	// 3000 bytes upstream per connection: the handshake and about 200
	// messages (13 bytes each on the wire).
	srv, l, c, rec := setup(t, faultConfig())
	l.add(t, "limit_up", "limit_data", "upstream", 1, `{"bytes":3000}`)
	// The current connection started before the toxic: replace it.
	c.ForceReconnect()
	s := startSender(t, c, sendEvery)

	const cuts = 3
	var first time.Duration
	from := 0
	for k := range cuts {
		i, ev := rec.Await(t, from, 4*waitFor, func(ev resocket.Event) bool {
			d, ok := ev.(resocket.Disconnected)
			return ok && !errors.Is(d.Disconnect.Err, resocket.ErrForcedReconnect)
		})
		from = i + 1
		d := ev.Event.(resocket.Disconnected)
		assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
		assert.Error(t, d.Disconnect.Err)
		assert.NotErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout, "found by the read, not the keepalive")
		assert.Equal(t, resocket.Reconnect, d.Decision.Action)
		if k == 0 {
			first = d.Disconnect.Uptime
		}
	}
	l.remove(t, "limit_up")
	c.ForceReconnect() // a connection still under the limit would be cut later
	sent := s.sent()
	requireEventually(t, 2*waitFor, func() bool { return s.sent() >= sent+100 }, "traffic after the heal")
	tl := finish(t, srv, c, rec, s)
	assertAccounted(t, tl, cutWindow)
	report(t, "%d cuts, each Disconnected 1006 with the read error and reconnected (first cut after %v of uptime); %v (bound %v); server saw %d connections",
		cuts, ms(first), tl, cutWindow, len(srv.Conns()))
}

// slow_close holds the TCP close (FIN) back for seconds after the last
// byte. The client does not wait for it: a server's close frame is acted on
// at once, and the user's Close ends when the closing handshake is done.
func TestSlowClose(t *testing.T) {
	const hold = 3 * time.Second
	attrs := fmt.Sprintf(`{"delay":%d}`, hold.Milliseconds())

	t.Run("server restarts with 1012", func(t *testing.T) {
		checkLeaks(t, toxiproxyLeaks...)
		srv, l, c, rec := setup(t, faultConfig())
		l.add(t, "slow_close_down", "slow_close", "downstream", 1, attrs)
		l.add(t, "slow_close_up", "slow_close", "upstream", 1, attrs)
		first := connectedID(t, rec)
		c.ForceReconnect() // through the toxic
		_, ev := rec.Await(t, 0, waitFor, isConnectedOtherThan(first))
		live := ev.Event.(resocket.Connected).ConnID
		s := startSender(t, c, sendEvery)
		requireEventually(t, waitFor, func() bool { return s.sent() >= 20 }, "traffic flowing")

		injected := time.Now()
		restarted := make(chan struct{})
		go func() {
			defer close(restarted)
			srv.Restart(1012, "restarting") // waits for the client's reply, then closes TCP
		}()
		i, ev := rec.Await(t, 0, waitFor, isDisconnectedFrom(live))
		<-restarted
		detected := ev.At.Sub(injected)
		d := ev.Event.(resocket.Disconnected)
		assert.Equal(t, resocket.StatusServiceRestart, d.Disconnect.Code)
		assert.Equal(t, "restarting", d.Disconnect.Reason)
		assert.NoError(t, d.Disconnect.Err)
		assert.Equal(t, resocket.Reconnect, d.Decision.Action)
		_, ev = rec.Await(t, i, waitFor, isConnectedOtherThan(live))
		back := ev.At.Sub(injected)
		assert.Less(t, back, hold, "the reconnect does not wait for the held-back FIN")

		requireEventually(t, waitFor, func() bool { return s.sent() >= 20+100 }, "traffic after the restart")
		tl := finish(t, srv, c, rec, s)
		assertAccounted(t, tl, cutWindow)
		report(t, "Disconnected 1012 %q after %v, Connected again after %v (FIN held %v); %v (bound %v)",
			d.Disconnect.Reason, ms(detected), ms(back), hold, tl, cutWindow)
	})

	t.Run("client closes", func(t *testing.T) {
		checkLeaks(t, toxiproxyLeaks...)
		srv, l, c, rec := setup(t, faultConfig())
		l.add(t, "slow_close_down", "slow_close", "downstream", 1, attrs)
		l.add(t, "slow_close_up", "slow_close", "upstream", 1, attrs)
		c.ForceReconnect()
		requireEventually(t, waitFor, func() bool { return len(testkit.Only[resocket.Connected](rec.Events())) == 2 }, "reconnected through the toxic")
		require.Equal(t, resocket.StateConnected, c.State())

		start := time.Now()
		require.NoError(t, c.Close(resocket.StatusNormalClosure, "bye"))
		took := time.Since(start)
		closed := rec.Closed(t, waitFor)
		assert.NoError(t, closed.Err)
		assert.Empty(t, closed.Unsent)
		assert.Less(t, took, time.Second, "Close ends with the closing handshake, not the held-back FIN")
		conns := srv.Conns()
		var code int
		var reason string
		requireEventually(t, waitFor, func() bool {
			var ok bool
			code, reason, ok = conns[len(conns)-1].CloseReceived()
			return ok
		}, "the server got the close frame")
		assert.Equal(t, 1000, code)
		assert.Equal(t, "bye", reason)
		report(t, "Close(1000) returned after %v (FIN held %v); the server got 1000 %q; Closed.Err nil",
			ms(took), hold, reason)
	})
}

// Stopping the proxy closes every connection through it and refuses new
// ones: the client sees the lost link at once (1006), its attempts fail
// with connection refused and are retried, and what is sent meanwhile is
// buffered and flushed in order once the proxy is back.
func TestProxyStopStart(t *testing.T) {
	checkLeaks(t)
	srv, l, c, rec := setup(t, faultConfig())
	first := connectedID(t, rec)
	s := startSender(t, c, sendEvery)
	requireEventually(t, waitFor, func() bool { return s.sent() >= 20 }, "traffic flowing")

	injected := time.Now()
	l.proxy.Stop()
	i, ev := rec.Await(t, 0, waitFor, isDisconnectedFrom(first))
	detected := ev.At.Sub(injected)
	d := ev.Event.(resocket.Disconnected)
	assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code)
	assert.Error(t, d.Disconnect.Err)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
	assert.Less(t, detected, pingInterval+pongTimeout, "a closed link is found at once, not by a ping cycle")

	_, ev = rec.Await(t, i, waitFor, testkit.Is[resocket.DialFailed])
	df := ev.Event.(resocket.DialFailed)
	assert.Equal(t, resocket.StatusAbnormalClosure, df.Disconnect.Code)
	assert.Error(t, df.Disconnect.Err, "connection refused")
	assert.Equal(t, resocket.Reconnect, df.Decision.Action)

	// Down for half a second: about 100 messages go to the send buffer.
	time.Sleep(500 * time.Millisecond)
	restarted := time.Now()
	require.NoError(t, l.proxy.Start())
	_, ev = rec.Await(t, i, waitFor, isConnectedOtherThan(first))
	back := ev.At.Sub(restarted)
	sent := s.sent()
	requireEventually(t, waitFor, func() bool { return s.sent() >= sent+50 }, "traffic after the restart")
	tl := finish(t, srv, c, rec, s)

	assertAccounted(t, tl, cutWindow)
	failed := len(testkit.Only[resocket.DialFailed](rec.Events()))
	report(t, "Disconnected 1006 (%v) after %v; %d DialFailed (refused) while down; Connected %v after the restart; %v (bound %v)",
		d.Disconnect.Err, ms(detected), failed, ms(back), tl, cutWindow)
}

// While the link is down, Send fills the send buffer and then refuses with
// ErrBufferFull; when the client ends before the link is back, everything
// accepted is handed back, in order, in Closed.Unsent.
func TestProxyDownHandsBack(t *testing.T) {
	checkLeaks(t)
	cfg := faultConfig()
	cfg.SendBuffer = 16
	_, l, c, rec := setup(t, cfg)
	first := connectedID(t, rec)

	l.proxy.Stop()
	rec.Await(t, 0, waitFor, isDisconnectedFrom(first))
	var accepted []string
	full := 0
	for seq := range 40 {
		err := c.SendText(t.Context(), testkit.Payload(seq))
		switch {
		case err == nil:
			accepted = append(accepted, testkit.Payload(seq))
		case errors.Is(err, resocket.ErrBufferFull):
			full++
		default:
			t.Fatalf("Send %d: %v", seq, err)
		}
	}
	assert.Len(t, accepted, cfg.SendBuffer)
	assert.Equal(t, 40-cfg.SendBuffer, full)

	c.Terminate()
	testkit.NoClientGoroutines(t, "Terminate returned")
	closed := rec.Closed(t, waitFor)
	assert.NoError(t, closed.Err)
	var unsent []string
	for _, m := range closed.Unsent {
		unsent = append(unsent, string(m.Data))
	}
	assert.Equal(t, accepted, unsent, "everything accepted is handed back, in order")
	assert.ErrorIs(t, c.SendText(t.Context(), "late"), resocket.ErrClosed)
	report(t, "40 Sends while down: %d accepted, %d ErrBufferFull; Terminate: Closed.Unsent holds the %d accepted, in order",
		len(accepted), full, len(unsent))
}

// A message that takes longer than PongTimeout to cross a slow link.
//
// Server to client, the link is alive and says so: the server sends a
// 64 KiB message as sixteen 4 KiB frames (a fragmented message), which at
// 32 KB/s arrive one every ~130 ms, while the pong waits behind them.
// Config.PongTimeout promises that "a pong or any frame" within
// PongTimeout of a ping keeps the connection, and the user relies on the
// message arriving: the connection must stay up and the message arrive.
// (This subtest found the keepalive counting only complete messages and
// pongs, which dropped the connection as dead in the middle of the
// transfer; since e74acf1 every read that brings data is a sign of life.)
//
// Client to server, nothing comes back while the client's own message
// drains (the ping is queued behind it in the same TCP stream), so the
// keepalive cannot tell a slow link from a dead one: PongTimeout must
// exceed the time the largest message takes to drain. Send returns nil
// (the socket buffer takes the message), and the message is echoed or
// lost in the nil-write window of a link found silent, never anything
// else.
func TestSlowLinkLargeMessage(t *testing.T) {
	const (
		size  = 64 << 10 // 2 s at 32 KB/s, four times PingInterval+PongTimeout
		frame = 4 << 10
	)
	big := make([]byte, size)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	isBig := func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && len(m.Data) == size
	}

	t.Run("server to client", func(t *testing.T) {
		checkLeaks(t, toxiproxyLeaks...)
		srv, l, _, rec := setup(t, faultConfig())
		first := connectedID(t, rec)
		sconn := srv.connOf(t, first)
		var fragmented []byte
		for off := 0; off < size; off += frame {
			op := mocks.OpContinuation
			if off == 0 {
				op = mocks.OpBinary
			}
			fragmented = append(fragmented, mocks.Frame(off+frame >= size, op, big[off:off+frame])...)
		}
		l.add(t, "bandwidth_down", "bandwidth", "downstream", 1, `{"rate":32}`)
		start := time.Now()
		require.NoError(t, sconn.WriteRaw(fragmented))
		_, ev := rec.Await(t, 0, 4*time.Second, func(ev resocket.Event) bool {
			return isBig(ev) || isDisconnectedFrom(first)(ev)
		})
		took := time.Since(start)
		if d, ok := ev.Event.(resocket.Disconnected); ok {
			report(t, "BUG: Disconnected 1006 %v after %s, with the message's frames still arriving", d.Disconnect.Err, ms(took))
			t.Fatalf("the connection was dropped as dead (%v) after %v while a %d-byte message was arriving "+
				"in %d-byte frames at 32 KB/s; PongTimeout promises that any frame keeps it alive. Events:\n%s",
				d.Disconnect.Err, took.Round(time.Millisecond), size, frame, rec.History())
		}
		assert.Equal(t, big, ev.Event.(resocket.Message).Data)
		report(t, "the %d-byte message arrived after %s on the same connection", size, ms(took))
	})

	t.Run("client to server", func(t *testing.T) {
		checkLeaks(t, toxiproxyLeaks...)
		srv, l, c, rec := setup(t, faultConfig())
		first := connectedID(t, rec)
		l.add(t, "bandwidth_up", "bandwidth", "upstream", 1, `{"rate":32}`)
		start := time.Now()
		err := c.Send(t.Context(), resocket.MessageBinary, big)
		sent := sendRec{seq: 0, data: string(big), start: start, end: time.Now(), err: err}
		require.NoError(t, err, "the socket buffer takes the message")
		_, ev := rec.Await(t, 0, 4*time.Second, func(ev resocket.Event) bool {
			return isBig(ev) || isDisconnectedFrom(first)(ev)
		})
		took := time.Since(start)
		l.remove(t, "bandwidth_up")
		require.NoError(t, c.Close(resocket.StatusNormalClosure, "done"))
		closed := rec.Closed(t, waitFor)
		tl := reconcile(t, []sendRec{sent}, rec.Stamped(), closed.Unsent, srv.log(t))
		assertAccounted(t, tl, silentWindow)
		if d, dropped := ev.Event.(resocket.Disconnected); dropped {
			assert.ErrorIs(t, d.Disconnect.Err, resocket.ErrPongTimeout)
			report(t, "Send returned nil after %s (the socket buffer took it); Disconnected 1006 %v after %s; %v (bound %v)",
				ms(sent.end.Sub(start)), d.Disconnect.Err, ms(took), tl, silentWindow)
			return
		}
		report(t, "Send returned nil after %s; the echo came after %s; %v", ms(sent.end.Sub(start)), ms(took), tl)
	})
}

// Close on a half-open link: the close frame cannot get through and no
// answer comes, so Close gives up after CloseTimeout and the client ends
// cleanly; it never hangs on a dead link.
func TestCloseOnHalfOpenLink(t *testing.T) {
	checkLeaks(t)
	cfg := faultConfig()
	_, l, c, rec := setup(t, cfg)
	l.add(t, "timeout_up", "timeout", "upstream", 1, `{"timeout":0}`)
	l.add(t, "timeout_down", "timeout", "downstream", 1, `{"timeout":0}`)
	start := time.Now()
	require.NoError(t, c.Close(resocket.StatusNormalClosure, "bye"))
	took := time.Since(start)
	left := testkit.ClientGoroutinesLeft() // at the instant Close returned
	testkit.NoGoroutinesLeft(t, "Close returned", left)
	closed := rec.Closed(t, waitFor)
	assert.NoError(t, closed.Err)
	assert.Less(t, took, cfg.CloseTimeout+time.Second, "Close is bounded by CloseTimeout")
	_, ev := rec.Await(t, 0, waitFor, testkit.Is[resocket.Disconnected])
	assert.Equal(t, resocket.Stop, ev.Event.(resocket.Disconnected).Decision.Action)
	report(t, "Close(1000) returned after %s (CloseTimeout %v); Disconnected with Stop; Closed.Err nil", ms(took), cfg.CloseTimeout)
}
