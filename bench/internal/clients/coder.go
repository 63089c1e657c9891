package clients

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/coder/websocket"
)

// Coder is coder/websocket with its defaults (net/http's transport, no
// compression), for context.
func Coder() Impl {
	return Impl{
		Name:   "coder",
		Dial:   func(url string, tc *tls.Config) (Client, error) { return dialCoder(url, tc) },
		Cycler: func(url string, tc *tls.Config) (Cycler, error) { return &coderCycler{url: url, tc: tc}, nil },
		Idle: func(url string, tc *tls.Config) (Closer, error) {
			c, err := dialCoder(url, tc)
			if err != nil {
				return nil, err
			}
			if err := c.ws.Write(context.Background(), websocket.MessageText, Subscribe); err != nil {
				c.Close()
				return nil, err
			}
			go func() {
				for {
					if _, _, err := c.ws.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			return c, nil
		},
	}
}

func coderOptions(tc *tls.Config) *websocket.DialOptions {
	if tc == nil {
		return nil
	}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tc.Clone()}}}
}

type coderClient struct{ ws *websocket.Conn }

func dialCoder(url string, tc *tls.Config) (*coderClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, coderOptions(tc))
	closeBody(resp)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	return &coderClient{ws: ws}, nil
}

func (c *coderClient) Echo(n int, msg []byte) error {
	ctx := context.Background()
	for range n {
		if err := c.ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return err
		}
		_, got, err := c.ws.Read(ctx)
		if err != nil {
			return err
		}
		if err := checkLen(len(got), len(msg)); err != nil {
			return err
		}
	}
	return nil
}

func (c *coderClient) Recv(n int) error {
	ctx := context.Background()
	for range n {
		if _, _, err := c.ws.Read(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (c *coderClient) Send(n int, msg []byte) error {
	ctx := context.Background()
	for range n {
		if err := c.ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return err
		}
	}
	return nil
}

func (c *coderClient) Close() { _ = c.ws.CloseNow() }

type coderCycler struct {
	url string
	tc  *tls.Config
}

func (g *coderCycler) Cycle(n int) error {
	opts := coderOptions(g.tc)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		ws, resp, err := websocket.Dial(ctx, g.url, opts)
		closeBody(resp)
		if err != nil {
			cancel()
			return err
		}
		_, _, err = ws.Read(ctx)
		_ = ws.CloseNow()
		cancel()
		if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
			return fmt.Errorf("coder: want a 1012 close, got %w", err)
		}
	}
	return nil
}

func (g *coderCycler) Close() {}
