package resocket_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/resocket/resocket"
)

// exampleServer is an echo server on 127.0.0.1 whose first connection the
// server closes with closeFirst (0: never).
func exampleServer(closeFirst int) (url string, stop func()) {
	var up websocket.Upgrader
	var first atomic.Bool
	first.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if closeFirst != 0 && first.Swap(false) {
			msg := websocket.FormatCloseMessage(closeFirst, "restarting")
			_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			_, _, _ = ws.ReadMessage() // wait for the client's answer
			return
		}
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(typ, data); err != nil {
				return
			}
		}
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.Close
}

func ExampleDial() {
	url, stop := exampleServer(0)
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := resocket.Dial(ctx, url, resocket.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(resocket.StatusNormalClosure, "done")

	_ = c.SendText(ctx, "hello")
	for ev := range c.Events() {
		if m, ok := ev.(resocket.Message); ok {
			fmt.Printf("%s\n", m.Data)
			return
		}
	}
	// Output: hello
}

func ExampleClient_Events() {
	// The server closes the first connection with 1012 Service Restart.
	url, stop := exampleServer(int(resocket.StatusServiceRestart))
	defer stop()

	c, err := resocket.New(url, resocket.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev := range c.Events() {
		switch ev := ev.(type) {
		case resocket.Connected:
			fmt.Println("connected, attempt", ev.Attempt)
			if ev.Attempt == 2 {
				_ = c.Close(resocket.StatusNormalClosure, "done")
			}
		case resocket.Disconnected:
			fmt.Println("disconnected:", ev.Disconnect.Code, "->", ev.Decision.Action)
		case resocket.Closed:
			fmt.Println("closed, err:", ev.Err)
		}
	}
	// Output:
	// connected, attempt 1
	// disconnected: 1012 (service restart) -> reconnect
	// connected, attempt 2
	// disconnected: 1000 (normal closure) -> stop
	// closed, err: <nil>
}

func ExampleClient_Close() {
	url, stop := exampleServer(0)
	defer stop()

	c, err := resocket.Dial(context.Background(), url, resocket.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Close(resocket.StatusNormalClosure, "bye"))
	fmt.Println(c.State())
	fmt.Println(errors.Is(c.SendText(context.Background(), "late"), resocket.ErrClosed))
	// Output:
	// <nil>
	// closed
	// true
}

func ExamplePolicy() {
	// Treat the application's 4001 "session moved" as worth a reconnect,
	// give up on 4003, and leave everything else to the default policy.
	// (For a "token expired" code, see DefaultPolicy's fresh credentials.)
	policy := func(d resocket.Disconnect) resocket.Decision {
		switch d.Code {
		case 4001:
			return resocket.Decision{Action: resocket.Reconnect}
		case 4003:
			return resocket.Decision{Action: resocket.GiveUp}
		}
		return resocket.DefaultPolicy(d)
	}
	fmt.Println(policy(resocket.Disconnect{Code: 4003}).Action)
	fmt.Println(policy(resocket.Disconnect{Code: resocket.StatusServiceRestart}).Action)
	fmt.Println(policy(resocket.Disconnect{Code: resocket.StatusNormalClosure}).Action)
	// Output:
	// give up
	// reconnect
	// stop
}

func ExampleDefaultPolicy() {
	d := resocket.DefaultPolicy(resocket.Disconnect{HTTPStatus: 503, RetryAfter: 30 * time.Second})
	fmt.Println(d.Action, d.MinDelay)
	d = resocket.DefaultPolicy(resocket.Disconnect{Code: resocket.StatusTryAgainLater})
	fmt.Println(d.Action, d.MinDelay)
	// Output:
	// reconnect 30s
	// reconnect 5s
}

func ExampleCloseStatus() {
	err := fmt.Errorf("stream ended: %w", resocket.CloseError{Code: resocket.StatusPolicyViolation, Reason: "banned"})
	fmt.Println(resocket.CloseStatus(err))
	fmt.Println(resocket.CloseStatus(errors.New("no close frame here")))
	// Output:
	// 1008 (policy violation)
	// -1
}

func ExampleClient_Err() {
	// A server that refuses every handshake with 403 Forbidden.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()

	c, err := resocket.New("ws"+strings.TrimPrefix(srv.URL, "http"), resocket.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range c.Events() {
	}
	var he *resocket.HandshakeError
	fmt.Println(errors.Is(c.Err(), resocket.ErrGaveUp), errors.As(c.Err(), &he), he.Status)
	// Output: true true 403
}

func ExampleClient_WaitConnected() {
	url, stop := exampleServer(0)
	defer stop()

	c, err := resocket.New(url, resocket.Config{}) // returns at once
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Terminate()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(c.WaitConnected(ctx), c.State())
	// Output: <nil> connected
}

func ExampleClient_ForceReconnect() {
	url, stop := exampleServer(0)
	defer stop()

	c, err := resocket.Dial(context.Background(), url, resocket.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Terminate()
	// After a network change the old link may be dead without knowing it.
	c.ForceReconnect()
	dropped := false
	for ev := range c.Events() {
		switch ev := ev.(type) {
		case resocket.Disconnected:
			dropped = true
			fmt.Println("dropped:", errors.Is(ev.Disconnect.Err, resocket.ErrForcedReconnect), ev.Decision.Action)
		case resocket.Connected:
			if dropped {
				fmt.Println("back on a new connection")
				return
			}
		}
	}
	// Output:
	// dropped: true reconnect
	// back on a new connection
}

func ExampleClient_Stats() {
	url, stop := exampleServer(0)
	defer stop()

	c, err := resocket.Dial(context.Background(), url, resocket.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Terminate()
	_ = c.SendText(context.Background(), "ping")
	<-c.Events() // Connecting
	<-c.Events() // Connected
	<-c.Events() // the echo
	s := c.Stats()
	fmt.Println(s.State, s.Attempts, s.MessagesOut, s.BytesOut, s.MessagesIn, s.NextAttempt.IsZero())
	// Output: connected 1 1 4 1 true
}

func ExampleClient_SendJSON() {
	url, stop := exampleServer(0)
	defer stop()

	c, err := resocket.Dial(context.Background(), url, resocket.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Terminate()
	type subscribe struct {
		Channel string `json:"channel"`
	}
	_ = c.SendJSON(context.Background(), subscribe{Channel: "prices"})
	for ev := range c.Events() {
		if m, ok := ev.(resocket.Message); ok {
			var echo subscribe
			fmt.Println(m.DecodeJSON(&echo), echo.Channel)
			return
		}
	}
	// Output: <nil> prices
}

func ExampleConfig_uRLs() {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	up, stop := exampleServer(0)
	defer stop()

	// The first endpoint refuses; the client moves on to the next one.
	c, err := resocket.Dial(context.Background(), "ws"+strings.TrimPrefix(down.URL, "http"), resocket.Config{
		URLs: []string{up},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Terminate()
	fmt.Println(c.Stats().URL == up, c.Stats().Attempts)
	// Output: true 2
}

// A refused credential with HeaderFunc set is retried once, at once; the
// same refusal again in a row gives up. A custom policy does the same for
// a private code by looking at Previous.
func ExampleDefaultPolicy_freshCredentials() {
	first := resocket.Disconnect{HTTPStatus: http.StatusUnauthorized, FreshHeaders: true}
	again := first
	again.Previous = &first
	fmt.Println(resocket.DefaultPolicy(first))
	fmt.Println(resocket.DefaultPolicy(again).Action)

	expired := func(d resocket.Disconnect) resocket.Decision { // the application's 4401 "token expired"
		if d.Code == 4401 {
			if d.FreshHeaders && (d.Previous == nil || d.Previous.Code != 4401) {
				return resocket.Decision{Action: resocket.Reconnect, Immediate: true}
			}
			return resocket.Decision{Action: resocket.GiveUp}
		}
		return resocket.DefaultPolicy(d)
	}
	fmt.Println(expired(resocket.Disconnect{Code: 4401, FreshHeaders: true}).Action)
	// Output:
	// {reconnect 0s true}
	// give up
	// reconnect
}

// everyTenth is a Limiter that lets one dial through every 10 ms; in a
// real program, share one golang.org/x/time/rate Limiter among clients:
// rate.NewLimiter(1000, 20) lets 1,000 dials a second through.
type everyTenth struct{ tick *time.Ticker }

func (l everyTenth) Wait(ctx context.Context) error {
	select {
	case <-l.tick.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func ExampleLimiter() {
	url, stop := exampleServer(0)
	defer stop()
	lim := everyTenth{tick: time.NewTicker(10 * time.Millisecond)}
	defer lim.tick.Stop()

	// Clients sharing one limiter dial no faster than it allows, together.
	var clients []*resocket.Client
	for range 3 {
		c, err := resocket.Dial(context.Background(), url, resocket.Config{DialLimiter: lim})
		if err != nil {
			fmt.Println(err)
			return
		}
		clients = append(clients, c)
	}
	for _, c := range clients {
		fmt.Println(c.State())
		c.Terminate()
	}
	// Output:
	// connected
	// connected
	// connected
}

// A graphql-ws style keep-alive: the client sends {"type":"ping"}, the
// server answers {"type":"pong"}, and the answers are not delivered as
// events. A proxy that answers WebSocket pings itself can no longer hide
// a dead server.
func ExampleHeartbeat() {
	cfg := resocket.Config{
		PingInterval: 20 * time.Second, // how often the heartbeat goes out
		PongTimeout:  10 * time.Second, // how long an answer may take
		Heartbeat: &resocket.Heartbeat{
			Type: resocket.MessageText,
			Data: []byte(`{"type":"ping"}`),
			IsAnswer: func(m resocket.Message) bool {
				return m.Type == resocket.MessageText && string(m.Data) == `{"type":"pong"}`
			},
		},
	}
	fmt.Println(cfg.Heartbeat.IsAnswer(resocket.Message{Type: resocket.MessageText, Data: []byte(`{"type":"pong"}`)}))
	// Output: true
}
