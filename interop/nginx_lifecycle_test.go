package interop

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNginxLifecycle stops nginx (and its backend) the ways operators and
// crashes do, with a client connected through it, and checks what the
// client sees and does: that is what docs/reliability.md tells users.
// Each subtest logs a line "observed: ..." with the timings.
func TestNginxLifecycle(t *testing.T) {
	t.Parallel()
	_, backend := startNodeServer(t, 0)

	// nginx -s quit: graceful. nginx stops accepting at once, keeps the
	// upgraded connection working until worker_shutdown_timeout (1 s),
	// then closes it without a close frame.
	t.Run("quit", func(t *testing.T) {
		n := startNginx(t, backend)
		c := proxiedClient(t, n)
		roundTrip(t, c, "before quit")
		quit := time.Now()
		n.signal("quit")
		waitNotListening(t, fmt.Sprintf("127.0.0.1:%d", n.port)) // new connections refused at once,
		roundTrip(t, c, "during graceful shutdown")              // while the tunnel still works
		d := waitFor[resocket.Disconnected](c, within)
		lost := time.Since(quit)
		assertLinkLost(t, d)
		assert.GreaterOrEqual(t, lost, 900*time.Millisecond, "kept until worker_shutdown_timeout")
		refused := waitRefused(t, c)
		n.proc.wait(t, within)
		back := n.restartAndReconnect(t, c)
		t.Logf("observed: quit → new connections refused at once, the open one still echoes → Disconnected %s after %s (decision %s) → DialFailed %s ×%d until restarted → Connected %s after the restart",
			transportError(d.Disconnect.Err), lost.Round(10*time.Millisecond), d.Decision.Action, transportError(refused.Disconnect.Err), countDialFailed(c), back.Round(time.Millisecond))
	})

	// nginx -s reload: new workers take over the listening socket at once;
	// the old ones keep upgraded connections until worker_shutdown_timeout,
	// then close them without a close frame. The client's next attempt
	// reaches a new worker.
	t.Run("reload", func(t *testing.T) {
		n := startNginx(t, backend)
		c := proxiedClient(t, n)
		roundTrip(t, c, "before reload")
		reload := time.Now()
		n.signal("reload")
		roundTrip(t, c, "during reload") // the old worker still proxies
		d := waitFor[resocket.Disconnected](c, within)
		lost := time.Since(reload)
		assertLinkLost(t, d)
		assert.GreaterOrEqual(t, lost, 900*time.Millisecond, "kept until worker_shutdown_timeout")
		var again resocket.Connected
		for again.ConnID == 0 {
			switch e := c.nextSignificant(within).(type) {
			case resocket.Reconnecting:
			case resocket.Connected:
				again = e
			default:
				t.Fatalf("want a reconnect at the first attempt, got %s", testkit.Describe(e))
			}
		}
		roundTrip(t, c, "after reload")
		end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
		assert.NoError(t, end.closed.Err)
		t.Logf("observed: reload → the open connection still echoes → Disconnected %s after %s (decision %s) → Connected at the first attempt (attempt %d), no refusal",
			transportError(d.Disconnect.Err), lost.Round(10*time.Millisecond), d.Decision.Action, again.Attempt)
	})

	// SIGTERM (nginx -s stop): fast shutdown, connections closed at once.
	t.Run("sigterm", func(t *testing.T) {
		n := startNginx(t, backend)
		c := proxiedClient(t, n)
		roundTrip(t, c, "before stop")
		stop := time.Now()
		require.NoError(t, syscall.Kill(n.proc.cmd.Process.Pid, syscall.SIGTERM))
		d := waitFor[resocket.Disconnected](c, within)
		lost := time.Since(stop)
		assertLinkLost(t, d)
		assert.Less(t, lost, 900*time.Millisecond, "no graceful wait")
		refused := waitRefused(t, c)
		n.proc.wait(t, within)
		back := n.restartAndReconnect(t, c)
		t.Logf("observed: SIGTERM → Disconnected %s after %s (decision %s) → DialFailed %s until restarted → Connected %s after the restart",
			transportError(d.Disconnect.Err), lost.Round(time.Millisecond), d.Decision.Action, transportError(refused.Disconnect.Err), back.Round(time.Millisecond))
	})

	// SIGKILL of every nginx process (a crash, the OOM killer, a container
	// killed): the kernel closes the sockets.
	t.Run("sigkill", func(t *testing.T) {
		n := startNginx(t, backend)
		c := proxiedClient(t, n)
		roundTrip(t, c, "before kill")
		kill := time.Now()
		n.proc.killGroup(syscall.SIGKILL)
		d := waitFor[resocket.Disconnected](c, within)
		lost := time.Since(kill)
		assertLinkLost(t, d)
		refused := waitRefused(t, c)
		n.proc.wait(t, within)
		back := n.restartAndReconnect(t, c)
		t.Logf("observed: SIGKILL (all nginx processes) → Disconnected %s after %s (decision %s) → DialFailed %s until restarted → Connected %s after the restart on the same port",
			transportError(d.Disconnect.Err), lost.Round(time.Millisecond), d.Decision.Action, transportError(refused.Disconnect.Err), back.Round(time.Millisecond))
	})

	// SIGKILL of the master alone: its worker lives on, keeps the
	// listening socket and every connection. The client notices nothing
	// until the orphaned worker goes too.
	t.Run("sigkill-master-only", func(t *testing.T) {
		n := startNginx(t, backend)
		c := proxiedClient(t, n)
		roundTrip(t, c, "before kill")
		workers := n.workers()
		require.NotEmpty(t, workers, "nginx workers")
		require.NoError(t, syscall.Kill(n.proc.cmd.Process.Pid, syscall.SIGKILL))
		n.proc.wait(t, within)
		roundTrip(t, c, "after the master died") // same connection, still proxied
		assert.Equal(t, resocket.StateConnected, c.State())
		assert.True(t, dialable(fmt.Sprintf("127.0.0.1:%d", n.port)), "the orphaned worker still accepts")
		for _, pid := range workers {
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		}
		d := waitFor[resocket.Disconnected](c, within)
		assertLinkLost(t, d)
		waitRefused(t, c)
		back := n.restartAndReconnect(t, c)
		t.Logf("observed: SIGKILL of the master only → nothing (the orphaned worker keeps the connection and the port) → killing the worker: Disconnected %s → Connected %s after a restart",
			transportError(d.Disconnect.Err), back.Round(time.Millisecond))
	})

	// The backend dies behind nginx: the client's connection ends, then
	// nginx answers 502 Bad Gateway until the backend is back.
	t.Run("backend-restart", func(t *testing.T) {
		proc, port := startNodeServer(t, 0)
		n := startNginx(t, port)
		c := proxiedClient(t, n)
		roundTrip(t, c, "before the backend dies")
		kill := time.Now()
		proc.killGroup(syscall.SIGKILL)
		d := waitFor[resocket.Disconnected](c, within)
		lost := time.Since(kill)
		assertLinkLost(t, d)
		f := waitFor[resocket.DialFailed](c, within)
		assert.Equal(t, 502, f.Disconnect.HTTPStatus, "nginx answers for the missing backend")
		assert.Equal(t, resocket.Reconnect, f.Decision.Action)
		proc.wait(t, within)
		startNodeServer(t, port) // the same port: nginx's upstream
		restarted := time.Now()
		again := waitFor[resocket.Connected](c, within)
		roundTrip(t, c, "after the backend restart")
		t.Logf("observed: backend killed → Disconnected %s after %s (decision %s) → DialFailed HTTP %d (decision %s) ×%d → Connected (attempt %d) %s after the backend restart",
			transportError(d.Disconnect.Err), lost.Round(time.Millisecond), d.Decision.Action, f.Disconnect.HTTPStatus, f.Decision.Action,
			countDialFailed(c), again.Attempt, time.Since(restarted).Round(time.Millisecond))
		end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
		assert.NoError(t, end.closed.Err)
	})
}

// proxiedClient connects a client to /echo through n, with the default
// policy and a short constant backoff.
func proxiedClient(t *testing.T, n *nginx) *client {
	t.Helper()
	c := newClient(t, fmt.Sprintf("ws://127.0.0.1:%d/echo", n.port), resocket.Config{
		Backoff:     func() backoff.BackOff { return backoff.NewConstantBackOff(50 * time.Millisecond) },
		EventBuffer: 4096,
	})
	waitFor[resocket.Connected](c, within)
	return c
}

// roundTrip sends text and waits for its echo.
func roundTrip(t *testing.T, c *client, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	require.NoError(t, c.SendText(ctx, text))
	for {
		m := waitFor[resocket.Message](c, within)
		if string(m.Data) == text {
			return
		}
	}
}

// waitNotListening waits until addr refuses connections. The poll is
// bounded: every 5 ms, for at most `within`.
func waitNotListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for dialable(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections %s after quit", addr, within)
		}
		<-tick.C
	}
}

// assertLinkLost: a connection that ended without a close frame.
func assertLinkLost(t *testing.T, d resocket.Disconnected) {
	t.Helper()
	assert.Equal(t, resocket.StatusAbnormalClosure, d.Disconnect.Code, "no close frame: 1006")
	assert.Error(t, d.Disconnect.Err)
	assert.Equal(t, resocket.Reconnect, d.Decision.Action)
}

// waitRefused waits for an attempt refused at the TCP level (nothing
// listens), which the client retries.
func waitRefused(t *testing.T, c *client) resocket.DialFailed {
	t.Helper()
	f := waitFor[resocket.DialFailed](c, within)
	assert.ErrorIs(t, f.Disconnect.Err, syscall.ECONNREFUSED)
	assert.Equal(t, resocket.StatusAbnormalClosure, f.Disconnect.Code)
	assert.Zero(t, f.Disconnect.HTTPStatus)
	assert.Equal(t, resocket.Reconnect, f.Decision.Action)
	return f
}

// restartAndReconnect starts nginx again on its port and waits for the
// client to be back; it returns how long that took, and closes the client.
func (n *nginx) restartAndReconnect(t *testing.T, c *client) time.Duration {
	t.Helper()
	n.restart()
	restarted := time.Now()
	waitFor[resocket.Connected](c, within)
	took := time.Since(restarted)
	roundTrip(t, c, "after restart")
	end := c.closeAndDrain(resocket.StatusNormalClosure, "done")
	assert.NoError(t, end.err)
	assert.NoError(t, end.closed.Err)
	return took
}

// countDialFailed counts the DialFailed events the client has shown.
func countDialFailed(c *client) int {
	return len(testkit.Only[resocket.DialFailed](c.rec.Events()))
}
