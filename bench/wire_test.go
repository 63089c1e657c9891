package bench

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
)

// countingConn counts the bytes a client's socket writes and reads: what
// went on the wire in each direction, WebSocket framing included, TCP's
// own headers not.
type countingConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

type wireCount struct{ in, out atomic.Int64 }

func (w *wireCount) dialer() *websocket.Dialer {
	d := *websocket.DefaultDialer
	d.WriteBufferPool = nil
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, in: &w.in, out: &w.out}, nil
	}
	return &d
}

// wireBytes runs op on a resocket client (with or without Resume) dialed
// to path, and returns the bytes the client wrote and read while op ran,
// the handshake not counted.
func wireBytes(t *testing.T, path string, resume bool, op func(c *resocket.Client)) (out, in int64) {
	t.Helper()
	var w wireCount
	c := dialResocket(t, path, resocket.Config{Resume: resume, Dialer: w.dialer()})
	out0, in0 := w.out.Load(), w.in.Load()
	op(c)
	return w.out.Load() - out0, w.in.Load() - in0
}

// TestResumeWireBytes measures what Config.Resume adds on the wire per
// 64 B message, against plain resocket on the same server's gorilla
// endpoints: one kind byte in each data frame, and the acks (9 bytes, in a
// frame of 11 from the server and 15, masked, from the client) that come
// after every half of the other side's window or 50 ms. It logs the figures, and fails only
// past a loose bound (3 bytes per message each way) that a change of
// framing or of batching would cross.
func TestResumeWireBytes(t *testing.T) {
	msg := make([]byte, 64)
	ctx := context.Background()
	const bound = 3.0
	type result struct{ out, in int64 }
	check := func(what string, n int, plain, resume result) {
		t.Helper()
		addOut := float64(resume.out-plain.out) / float64(n)
		addIn := float64(resume.in-plain.in) / float64(n)
		t.Logf("%s, %d messages of 64 B: client→server %.2f B/msg plain, %.2f with Resume (+%.2f); "+
			"server→client %.2f plain, %.2f with Resume (+%.2f)", what, n,
			float64(plain.out)/float64(n), float64(resume.out)/float64(n), addOut,
			float64(plain.in)/float64(n), float64(resume.in)/float64(n), addIn)
		if addOut > bound || addIn > bound {
			t.Errorf("%s: Resume adds %.2f B/msg client→server and %.2f server→client; want ≤ %.0f", what, addOut, addIn, bound)
		}
	}

	t.Run("echo", func(t *testing.T) {
		const n = 5000
		run := func(path string, resume bool) result {
			out, in := wireBytes(t, path, resume, func(c *resocket.Client) {
				for range n {
					if err := c.Send(ctx, resocket.MessageBinary, msg); err != nil {
						t.Fatal(err)
					}
					nextMessage(t, c)
				}
				if resume {
					flush(t, c)                        // the server's last ack in
					time.Sleep(100 * time.Millisecond) // and the client's, after ackDelay
				}
			})
			return result{out, in}
		}
		check("echo", n, run("/echo", false), run("/resume-echo", true))
	})

	t.Run("send", func(t *testing.T) {
		const n = 20000
		run := func(path string, resume bool) result {
			out, in := wireBytes(t, path, resume, func(c *resocket.Client) {
				for range n {
					if err := c.Send(ctx, resocket.MessageBinary, msg); err != nil {
						t.Fatal(err)
					}
				}
				flush(t, c) // Resume: acknowledged by the server; plain: written
			})
			return result{out, in}
		}
		check("send", n, run("/sink", false), run("/resume-sink", true))
	})

	// Received bytes are counted as the client reads them from its
	// socket, a buffer at a time: up to a buffer more than the n messages
	// (under 1% of n here). What the client writes, its acks, is exact.
	t.Run("receive", func(t *testing.T) {
		const n = 100000
		run := func(path string, resume bool) result {
			out, in := wireBytes(t, path, resume, func(c *resocket.Client) {
				for range n {
					nextMessage(t, c)
				}
				time.Sleep(100 * time.Millisecond) // the client's last ack, after ackDelay
			})
			return result{out, in}
		}
		check("receive", n, run("/stream?size=64", false), run("/resume-stream?size=64", true))
	})
}

func flush(t *testing.T, c *resocket.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
