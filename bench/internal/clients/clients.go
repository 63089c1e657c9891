// Package clients puts the WebSocket clients compared by the benchmarks
// behind one small interface, each used the way its documentation shows:
// gorilla's ReadMessage/WriteMessage, resocket's Events and Send, coder's
// Read/Write, gws's event handler.
package clients

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Client is one connection, open for a throughput benchmark.
type Client interface {
	// Echo does n round trips of msg, one in flight (against /echo).
	Echo(n int, msg []byte) error
	// Recv receives n messages (against /stream).
	Recv(n int) error
	// Send sends n copies of msg (against /sink).
	Send(n int, msg []byte) error
	// Close ends the connection; it is not timed.
	Close()
}

// Cycler runs reconnect cycles against /close1012: the server closes with
// 1012 right after the upgrade, and the client is connected again.
type Cycler interface {
	// Cycle waits for n more connections to open.
	Cycle(n int) error
	Close()
}

// Impl is one client library.
type Impl struct {
	Name string
	// Dial opens a client for a throughput benchmark; tc trusts the
	// server's certificate for wss URLs.
	Dial func(url string, tc *tls.Config) (Client, error)
	// Cycler starts reconnect cycles (nil: not measured).
	Cycler func(url string, tc *tls.Config) (Cycler, error)
	// Idle opens one connection, with whatever goroutines a user of the
	// library needs to notice messages and closes, sends Subscribe on it
	// and leaves it idle (nil: not measured).
	Idle func(url string, tc *tls.Config) (Closer, error)
	// Resume: the client has Config.Resume and runs against the server's
	// resumable endpoints (Path).
	Resume bool
	// Raw: a resume client that runs against the server's raw resume
	// endpoints, which keep and store nothing.
	Raw bool
}

// Path returns the server endpoint this implementation runs a benchmark
// against: path itself, or for a resume client its /resume- counterpart
// ("/echo" is "/resume-echo", "/stream?size=64" "/resume-stream?size=64").
func (im Impl) Path(path string) string {
	if !im.Resume {
		return path
	}
	if im.Raw {
		return "/resume-raw-" + strings.TrimPrefix(path, "/")
	}
	return "/resume-" + strings.TrimPrefix(path, "/")
}

// Subscribe is the one message an idle client sends, the way a client
// subscribes to a stream before it waits. Writing it makes a client that
// owns a write buffer touch it, so the buffer counts in its RSS.
var Subscribe = []byte(`{"subscribe":"prices"}`)

// Closer ends an idle connection.
type Closer interface{ Close() }

// Timeout bounds every dial and wait of the benchmarks.
const Timeout = 10 * time.Second

var errShort = errors.New("short message")

func checkLen(got, want int) error {
	if got != want {
		return fmt.Errorf("%w: %d bytes, want %d", errShort, got, want)
	}
	return nil
}

// All returns the implementations in the order they are reported:
// gorilla first (the floor every ratio divides by), then resocket, then
// the two for context.
func All() []Impl {
	return []Impl{Gorilla(), Resocket(), Coder(), GWS()}
}

// ByName returns the implementations named, in that order.
func ByName(names ...string) ([]Impl, error) {
	all := append(All(), GorillaResume(), ResocketNoPool(), ResocketBare(), ResocketOnEvent(),
		ResocketResume(), ResocketResumeOnEvent(), ResocketResumeRaw())
	var out []Impl
	for _, n := range names {
		found := false
		for _, im := range all {
			if im.Name == n {
				out = append(out, im)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no implementation %q", n)
		}
	}
	return out, nil
}
