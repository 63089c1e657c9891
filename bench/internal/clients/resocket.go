package clients

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/resocket/resocket"
)

// Resocket is resocket with its default Config: messages through Events,
// Send on the caller's goroutine. For wss the Dialer is websocket's
// default dialer trusting the bench server; resocket then turns on TLS
// session resumption itself.
func Resocket() Impl {
	return Impl{
		Name:   "resocket",
		Dial:   func(url string, tc *tls.Config) (Client, error) { return dialResocket(url, resocketConfig(tc)) },
		Cycler: newResocketCycler,
		Idle: func(url string, tc *tls.Config) (Closer, error) {
			// A user reads Events on a goroutine of their own.
			return idleResocket(url, resocketConfig(tc), true)
		},
	}
}

// ResocketBare is an idle resocket client whose Events nobody reads yet:
// the client's own cost, without the reader a user adds.
func ResocketBare() Impl {
	return Impl{
		Name: "resocket-bare",
		Idle: func(url string, tc *tls.Config) (Closer, error) { return idleResocket(url, resocketConfig(tc), false) },
	}
}

// ResocketNoPool is resocket with a plain copy of websocket.DefaultDialer:
// no pooled write buffer, the way gorilla's default dialer writes.
func ResocketNoPool() Impl {
	cfg := func(tc *tls.Config) resocket.Config {
		d := gorillaDialer(tc, false)
		return resocket.Config{Dialer: d}
	}
	return Impl{
		Name: "resocket-nopool",
		Dial: func(url string, tc *tls.Config) (Client, error) { return dialResocket(url, cfg(tc)) },
		Idle: func(url string, tc *tls.Config) (Closer, error) { return idleResocket(url, cfg(tc), true) },
	}
}

func resocketConfig(tc *tls.Config) resocket.Config {
	if tc == nil {
		return resocket.Config{} // the default Dialer, with its pooled write buffer
	}
	return resocket.Config{Dialer: gorillaDialer(tc, false)}
}

type resocketClient struct{ c *resocket.Client }

func dialResocket(url string, cfg resocket.Config) (*resocketClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, err := resocket.Dial(ctx, url, cfg)
	if err != nil {
		return nil, err
	}
	return &resocketClient{c: c}, nil
}

func idleResocket(url string, cfg resocket.Config, reader bool) (Closer, error) {
	c, err := dialResocket(url, cfg)
	if err != nil {
		return nil, err
	}
	if reader {
		go func() {
			for range c.c.Events() {
			}
		}()
	}
	if err := c.c.Send(context.Background(), resocket.MessageText, Subscribe); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// next returns the next Message, skipping lifecycle events.
func (c *resocketClient) next() (resocket.Message, error) {
	for ev := range c.c.Events() {
		switch ev := ev.(type) {
		case resocket.Message:
			return ev, nil
		case resocket.Disconnected:
			return resocket.Message{}, fmt.Errorf("resocket: disconnected: %+v", ev.Disconnect)
		}
	}
	return resocket.Message{}, fmt.Errorf("resocket: ended: %w", c.c.Err())
}

func (c *resocketClient) Echo(n int, msg []byte) error {
	ctx := context.Background()
	for range n {
		if err := c.c.Send(ctx, resocket.MessageBinary, msg); err != nil {
			return err
		}
		m, err := c.next()
		if err != nil {
			return err
		}
		if err := checkLen(len(m.Data), len(msg)); err != nil {
			return err
		}
	}
	return nil
}

func (c *resocketClient) Recv(n int) error {
	for range n {
		if _, err := c.next(); err != nil {
			return err
		}
	}
	return nil
}

func (c *resocketClient) Send(n int, msg []byte) error {
	ctx := context.Background()
	for range n {
		if err := c.c.Send(ctx, resocket.MessageBinary, msg); err != nil {
			return err
		}
	}
	return nil
}

func (c *resocketClient) Close() { c.c.Terminate() }

// resocketCycler is one client reconnecting with zero backoff: each 1012
// from the server is a Disconnected, then Reconnecting, Connecting,
// Connected. Its backoff says 0 only as many times as Cycle asks for
// reconnects, and otherwise holds the client's loop: a benchmark that
// interleaves clients must not have this one reconnecting in the
// background while another is timed.
type resocketCycler struct {
	c    *resocket.Client
	gate *gatedBackOff
}

func newResocketCycler(url string, tc *tls.Config) (Cycler, error) {
	cfg := resocketConfig(tc)
	gate := newGatedBackOff()
	cfg.Backoff = func() backoff.BackOff { return gate }
	c, err := resocket.New(url, cfg)
	if err != nil {
		return nil, err
	}
	rc := &resocketCycler{c: c, gate: gate}
	if err := rc.await(1); err != nil { // the first connection needs no backoff
		rc.Close()
		return nil, err
	}
	return rc, nil
}

func (r *resocketCycler) Cycle(n int) error {
	r.gate.allow(n)
	return r.await(n)
}

func (r *resocketCycler) await(n int) error {
	for ev := range r.c.Events() {
		switch ev := ev.(type) {
		case resocket.Connected:
			if n--; n == 0 {
				return nil
			}
		case resocket.Disconnected:
			if ev.Disconnect.Code != resocket.StatusServiceRestart {
				return fmt.Errorf("resocket: want a 1012 close, got %+v", ev.Disconnect)
			}
		case resocket.DialFailed:
			return fmt.Errorf("resocket: dial failed: %+v", ev.Disconnect)
		}
	}
	return fmt.Errorf("resocket: ended: %w", r.c.Err())
}

func (r *resocketCycler) Close() {
	r.gate.close()
	r.c.Terminate()
}

// gatedBackOff is a zero backoff that hands out as many zeros as allowed
// and waits for more; closed, it stops.
type gatedBackOff struct {
	mu      sync.Mutex
	cond    sync.Cond
	allowed int
	closed  bool
}

func newGatedBackOff() *gatedBackOff {
	g := &gatedBackOff{}
	g.cond.L = &g.mu
	return g
}

func (g *gatedBackOff) NextBackOff() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.allowed == 0 && !g.closed {
		g.cond.Wait()
	}
	if g.closed {
		return backoff.Stop
	}
	g.allowed--
	return 0
}

func (g *gatedBackOff) Reset() {}

func (g *gatedBackOff) allow(n int) {
	g.mu.Lock()
	g.allowed += n
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gatedBackOff) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.cond.Broadcast()
}
