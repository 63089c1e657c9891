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
	// left counts the messages still awaited by Echo or Recv; done gets
	// the outcome when it reaches zero. Only the callback decrements it.
	left  atomic.Int64
	echo  atomic.Pointer[[]byte] // non-nil during Echo: the message to send back
	done  chan error
	ended chan struct{}
}

func dialOnEvent(url string, tc *tls.Config) (*onEventClient, error) {
	oc := &onEventClient{done: make(chan error, 1), ended: make(chan struct{})}
	cfg := resocketConfig(tc)
	cfg.OnEvent = oc.onEvent
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
		if c.left.Load() <= 0 {
			return // idle, or a stream's message past the count
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
		if c.left.Load() > 0 {
			c.done <- fmt.Errorf("resocket: disconnected: %+v", ev.Disconnect)
		}
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
	c.left.Store(int64(n))
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

func (c *onEventClient) Close() { c.c.Terminate() }
