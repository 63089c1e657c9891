package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
)

// Allocation counts are exact, so they are asserted here; rates and memory
// are only measured (cmd/benchrun), never asserted.

// allocsPerOp is testing.AllocsPerRun without the rounding down, for the
// log: the process's mallocs over runs calls of f, after one warm-up call.
func allocsPerOp(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(runs)
}

func dialResocket(t *testing.T, path string, cfg resocket.Config) *resocket.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	c, err := resocket.Dial(ctx, srv.URL(path, false), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Terminate)
	return c
}

func dialGorilla(t *testing.T, path string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(srv.URL(path, false), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// nextMessage returns the next Message event, failing on anything that
// ends the connection.
func nextMessage(t *testing.T, c *resocket.Client) resocket.Message {
	for ev := range c.Events() {
		switch ev := ev.(type) {
		case resocket.Message:
			return ev
		case resocket.Disconnected, resocket.Closed:
			t.Fatalf("connection ended: %#v", ev)
		}
	}
	t.Fatal("events closed")
	return resocket.Message{}
}

// TestResocketReceiveAllocs: a message received through Events costs at
// most 3 allocations on the client (gorilla's message reader, the slice
// handed to the user, the Event interface), whatever its size; gorilla's
// ReadMessage makes about 10 for 4 KiB, growing its buffer.
func TestResocketReceiveAllocs(t *testing.T) {
	for _, size := range []int{64, 4096} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			path := fmt.Sprintf("/stream?size=%d", size)
			c := dialResocket(t, path, resocket.Config{})
			for range 1000 { // the read buffer pool warms up
				nextMessage(t, c)
			}
			var last resocket.Message
			recv := func() { last = nextMessage(t, c) }
			exact := allocsPerOp(20000, recv)
			got := testing.AllocsPerRun(20000, recv)
			if len(last.Data) != size {
				t.Fatalf("message of %d bytes, want %d", len(last.Data), size)
			}

			ws := dialGorilla(t, path)
			read := func() {
				if _, _, err := ws.ReadMessage(); err != nil {
					t.Fatal(err)
				}
			}
			floor := allocsPerOp(20000, read)
			t.Logf("%d B: resocket %.3f allocs per message through Events (AllocsPerRun %.0f); gorilla ReadMessage %.3f",
				size, exact, got, floor)
			if got > 3 {
				t.Errorf("%d B: %.0f allocations per received message, want at most 3", size, got)
			}
		})
	}
}

// TestResocketSendAllocs: Send adds no allocation to gorilla's own
// WriteMessage on a connection dialed the same way: no queue hop, no
// result channel. gorilla makes one allocation per message (its
// messageWriter), and one more with a WriteBufferPool, which resocket's
// default Dialer sets (it boxes a writePoolData on every Put,
// conn.go:548): the price of holding no write buffer while idle, 4 KB per
// connection.
func TestResocketSendAllocs(t *testing.T) {
	msg := make([]byte, 64)
	ctx := context.Background()
	pooled := *websocket.DefaultDialer
	pooled.WriteBufferPool = new(sync.Pool)
	for _, tc := range []struct {
		name   string
		dialer *websocket.Dialer // gorilla's, and resocket's (nil: its default)
		cfg    resocket.Config
	}{
		{name: "default (pooled write buffer)", dialer: &pooled, cfg: resocket.Config{}},
		{name: "dialer without pool", dialer: websocket.DefaultDialer, cfg: resocket.Config{Dialer: websocket.DefaultDialer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, _, err := tc.dialer.Dial(srv.URL("/sink", false), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.Close() })
			floor := testing.AllocsPerRun(5000, func() {
				if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					t.Fatal(err)
				}
			})
			c := dialResocket(t, "/sink", tc.cfg)
			got := testing.AllocsPerRun(5000, func() {
				if err := c.Send(ctx, resocket.MessageBinary, msg); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("resocket Send: %.0f allocs per message; gorilla WriteMessage, dialed the same way: %.0f", got, floor)
			if got > floor {
				t.Errorf("resocket Send makes %.0f allocations per message, gorilla's WriteMessage %.0f", got, floor)
			}
		})
	}
}
