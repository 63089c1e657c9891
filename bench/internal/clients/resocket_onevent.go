package clients

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"

	"github.com/resocket/resocket"
)

// ResocketOnEvent is resocket with Config.OnEvent: events, messages among
// them, are handed to a callback on the client's own goroutine instead of
// the Events channel, so no handoff between goroutines and no reader
// goroutine. Echo sends the next message from the callback, as a user
// of the callback would.
func ResocketOnEvent() Impl {
	return Impl{
		Name: "resocket-onevent",
		Dial: func(url string, tc *tls.Config) (Client, error) { return dialOnEvent(url, tc) },
		Idle: func(url string, tc *tls.Config) (Closer, error) {
			c, err := dialOnEvent(url, tc)
			if err != nil {
				return nil, err
			}
			if err := c.c.Send(context.Background(), resocket.MessageText, Subscribe); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
}

type onEventClient struct {
	c *resocket.Client
	// left counts the messages still awaited by Echo; done gets
	// the outcome of a run, Echo or Recv. Only the callback decrements it.
	left  atomic.Int64
	echo  atomic.Pointer[[]byte] // non-nil during Echo: the message to send back
	done  chan error
	ended chan struct{}

	// A stream is not read between Recv runs, as gws's handler does not
	// read it either: a message that no Echo run awaits makes the
	// callback wait for the next Recv run's count on want (or for quit,
	// from Close), and while it waits the client reads nothing from the
	// socket. Reading on in the background took CPU from whichever client
	// was being timed, and added 3 allocations per message to the count
	// of whichever client was being counted.
	want      chan int
	quit      chan struct{}
	remaining int // messages left in this Recv run; the callback's own
}

func dialOnEvent(url string, tc *tls.Config) (*onEventClient, error) {
	return dialOnEventConfig(url, tc, false)
}

func dialOnEventConfig(url string, tc *tls.Config, resume bool) (*onEventClient, error) {
	oc := &onEventClient{done: make(chan error, 1), ended: make(chan struct{}),
		want: make(chan int, 1), quit: make(chan struct{})}
	cfg := resocketConfig(tc)
	cfg.OnEvent = oc.onEvent
	cfg.Resume = resume
	rc, err := dialResocket(url, cfg)
	if err != nil {
		return nil, err
	}
	oc.c = rc.c
	return oc, nil
}

func (c *onEventClient) onEvent(ev resocket.Event) {
	switch ev := ev.(type) {
	case resocket.Message:
		if c.echo.Load() == nil {
			c.onStream()
			return
		}
		if c.left.Load() <= 0 {
			return // an echo past the count
		}
		if c.left.Add(-1) == 0 {
			c.done <- nil
			return
		}
		if msg := c.echo.Load(); msg != nil {
			if err := checkLen(len(ev.Data), len(*msg)); err != nil {
				c.done <- err
				return
			}
			if err := c.c.Send(context.Background(), resocket.MessageBinary, *msg); err != nil {
				c.done <- err
			}
		}
	case resocket.Disconnected:
		if c.left.Load() > 0 || c.remaining > 0 {
			c.done <- fmt.Errorf("resocket: disconnected: %+v", ev.Disconnect)
		}
	}
}

// onStream counts a message of a Recv run, and waits for the next run
// once this one is done.
func (c *onEventClient) onStream() {
	if c.remaining == 0 {
		select {
		case c.remaining = <-c.want:
		case <-c.quit:
			return
		}
	}
	c.remaining--
	if c.remaining == 0 {
		c.done <- nil
	}
}

func (c *onEventClient) Echo(n int, msg []byte) error {
	c.echo.Store(&msg)
	defer c.echo.Store(nil)
	c.left.Store(int64(n))
	if err := c.c.Send(context.Background(), resocket.MessageBinary, msg); err != nil {
		return err
	}
	return <-c.done
}

func (c *onEventClient) Recv(n int) error {
	if n <= 0 {
		return nil
	}
	c.want <- n
	return <-c.done
}

func (c *onEventClient) Send(n int, msg []byte) error {
	ctx := context.Background()
	for range n {
		if err := c.c.Send(ctx, resocket.MessageBinary, msg); err != nil {
			return err
		}
	}
	return nil
}

func (c *onEventClient) Close() {
	close(c.quit) // a callback waiting for the next Recv run returns
	c.c.Terminate()
}
