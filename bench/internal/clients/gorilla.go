package clients

import (
	"crypto/tls"
	"errors"
	"net/http"

	"github.com/gorilla/websocket"
)

// Gorilla is raw gorilla/websocket with its default dialer: the floor.
func Gorilla() Impl {
	return Impl{
		Name: "gorilla",
		Dial: func(url string, tc *tls.Config) (Client, error) { return dialGorilla(url, gorillaDialer(tc, false)) },
		Cycler: func(url string, tc *tls.Config) (Cycler, error) {
			return &gorillaCycler{url: url, d: gorillaDialer(tc, false)}, nil
		},
		Idle: func(url string, tc *tls.Config) (Closer, error) { return idleGorilla(url, gorillaDialer(tc, false)) },
	}
}

// GorillaResume is raw gorilla with a TLS session cache, the way resocket
// dials wss: it shows how much of resocket's wss cycle is resumption.
func GorillaResume() Impl {
	return Impl{
		Name: "gorilla-resume",
		Cycler: func(url string, tc *tls.Config) (Cycler, error) {
			return &gorillaCycler{url: url, d: gorillaDialer(tc, true)}, nil
		},
	}
}

// gorillaDialer is websocket.DefaultDialer, trusting the bench server.
func gorillaDialer(tc *tls.Config, resume bool) *websocket.Dialer {
	d := *websocket.DefaultDialer
	d.HandshakeTimeout = Timeout
	if tc != nil {
		tc = tc.Clone()
		if resume {
			tc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		}
		d.TLSClientConfig = tc
	}
	return &d
}

type gorillaClient struct{ ws *websocket.Conn }

func dialGorilla(url string, d *websocket.Dialer) (*gorillaClient, error) {
	ws, resp, err := d.Dial(url, nil)
	closeBody(resp)
	if err != nil {
		return nil, err
	}
	return &gorillaClient{ws: ws}, nil
}

// closeBody closes a handshake response's body (gorilla and coder leave it
// to the caller; after a 101 it is empty).
func closeBody(resp *http.Response) {
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
}

func (c *gorillaClient) Echo(n int, msg []byte) error {
	for range n {
		if err := c.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return err
		}
		_, got, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		if err := checkLen(len(got), len(msg)); err != nil {
			return err
		}
	}
	return nil
}

func (c *gorillaClient) Recv(n int) error {
	for range n {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return err
		}
	}
	return nil
}

func (c *gorillaClient) Send(n int, msg []byte) error {
	for range n {
		if err := c.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return err
		}
	}
	return nil
}

func (c *gorillaClient) Close() { _ = c.ws.Close() }

// gorillaCycler is the raw close-and-dial cycle: dial, read until the
// server's 1012 (gorilla answers the close frame), hang up, dial again.
type gorillaCycler struct {
	url string
	d   *websocket.Dialer
}

func (g *gorillaCycler) Cycle(n int) error {
	for range n {
		ws, resp, err := g.d.Dial(g.url, nil)
		closeBody(resp)
		if err != nil {
			return err
		}
		_, _, err = ws.ReadMessage()
		_ = ws.Close()
		if !websocket.IsCloseError(err, websocket.CloseServiceRestart) {
			return errors.Join(errors.New("gorilla: want a 1012 close"), err)
		}
	}
	return nil
}

func (g *gorillaCycler) Close() {}

// idleGorilla is a connection with the one reader goroutine every gorilla
// user needs to process control frames and notice the close.
func idleGorilla(url string, d *websocket.Dialer) (Closer, error) {
	c, err := dialGorilla(url, d)
	if err != nil {
		return nil, err
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, Subscribe); err != nil {
		c.Close()
		return nil, err
	}
	go func() {
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return c, nil
}
