package clients

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/lxzan/gws"
)

// GWS is lxzan/gws, for context. Messages arrive on its ReadLoop goroutine
// in a callback, in a pooled buffer that goes back to gws at
// Message.Close: the data is not the user's to keep unless copied.
func GWS() Impl {
	return Impl{
		Name:   "gws",
		Dial:   func(url string, tc *tls.Config) (Client, error) { return dialGWS(url, tc) },
		Cycler: func(url string, tc *tls.Config) (Cycler, error) { return &gwsCycler{url: url, tc: tc}, nil },
		Idle: func(url string, tc *tls.Config) (Closer, error) {
			c, err := dialGWS(url, tc)
			if err != nil {
				return nil, err
			}
			if err := c.ws.WriteMessage(gws.OpcodeText, Subscribe); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
}

func gwsOption(url string, tc *tls.Config) *gws.ClientOption {
	opt := &gws.ClientOption{Addr: url, HandshakeTimeout: Timeout, ReadMaxPayloadSize: 1 << 20}
	if tc != nil {
		opt.TlsConfig = tc.Clone()
	}
	return opt
}

// gwsHandler counts messages on the ReadLoop goroutine. Between runs the
// loop waits in OnMessage for the next run's count, so that a stream is
// not read while nobody times it.
type gwsHandler struct {
	gws.BuiltinEventHandler
	want      chan int      // the next run's message count
	done      chan struct{} // the run's count was reached
	closed    chan struct{} // OnClose ran
	quit      chan struct{} // Close was called
	remaining int
	echo      []byte // in an echo run: what to send back after each reply
	size      int
	err       error
}

func (h *gwsHandler) OnMessage(socket *gws.Conn, m *gws.Message) {
	n := m.Data.Len()
	_ = m.Close()
	if h.remaining == 0 {
		select {
		case h.remaining = <-h.want:
		case <-h.quit:
			return
		}
	}
	if h.size > 0 && n != h.size {
		h.err = fmt.Errorf("gws: %d bytes, want %d", n, h.size)
	}
	h.remaining--
	if h.remaining == 0 {
		select {
		case h.done <- struct{}{}:
		case <-h.quit:
		}
		return
	}
	if h.echo != nil {
		if err := socket.WriteMessage(gws.OpcodeBinary, h.echo); err != nil {
			h.err = err
		}
	}
}

func (h *gwsHandler) OnClose(*gws.Conn, error) {
	select {
	case <-h.closed:
	default:
		close(h.closed)
	}
}

type gwsClient struct {
	ws    *gws.Conn
	h     *gwsHandler
	ended chan struct{}
}

func dialGWS(url string, tc *tls.Config) (*gwsClient, error) {
	h := &gwsHandler{want: make(chan int, 1), done: make(chan struct{}), closed: make(chan struct{}), quit: make(chan struct{})}
	ws, resp, err := gws.NewClient(h, gwsOption(url, tc))
	closeBody(resp)
	if err != nil {
		return nil, err
	}
	c := &gwsClient{ws: ws, h: h, ended: make(chan struct{})}
	go func() {
		defer close(c.ended)
		ws.ReadLoop()
	}()
	return c, nil
}

func (c *gwsClient) run(n int, first []byte) error {
	c.h.want <- n
	if first != nil {
		if err := c.ws.WriteMessage(gws.OpcodeBinary, first); err != nil {
			return err
		}
	}
	select {
	case <-c.h.done:
		return c.h.err
	case <-c.h.closed:
		return errors.New("gws: connection closed")
	}
}

// Echo runs the round trips from the callback, as gws is meant to be used:
// each reply triggers the next message.
func (c *gwsClient) Echo(n int, msg []byte) error {
	c.h.echo, c.h.size = msg, len(msg)
	return c.run(n, msg)
}

func (c *gwsClient) Recv(n int) error {
	c.h.echo, c.h.size = nil, 0
	return c.run(n, nil)
}

func (c *gwsClient) Send(n int, msg []byte) error {
	for range n {
		if err := c.ws.WriteMessage(gws.OpcodeBinary, msg); err != nil {
			return err
		}
	}
	return nil
}

func (c *gwsClient) Close() {
	close(c.h.quit)
	_ = c.ws.NetConn().Close()
	<-c.ended
}

type gwsCycler struct {
	url string
	tc  *tls.Config
}

type gwsCloseHandler struct {
	gws.BuiltinEventHandler
	err error
}

func (h *gwsCloseHandler) OnClose(_ *gws.Conn, err error) { h.err = err }

func (g *gwsCycler) Cycle(n int) error {
	opt := gwsOption(g.url, g.tc)
	for range n {
		h := &gwsCloseHandler{}
		ws, resp, err := gws.NewClient(h, opt)
		closeBody(resp)
		if err != nil {
			return err
		}
		ws.ReadLoop() // returns once the server's close is answered
		var ce *gws.CloseError
		if !errors.As(h.err, &ce) || ce.Code != 1012 {
			return fmt.Errorf("gws: want a 1012 close, got %w", h.err)
		}
	}
	return nil
}

func (g *gwsCycler) Close() {}
