package session_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
)

// A resumable echo server and a client: each message comes back exactly
// once, whatever happens to the connection in between.
func ExampleNewServer() {
	srv := session.NewServer(session.Options{}, func(s *session.Session) {
		ctx := context.Background()
		for {
			typ, data, err := s.Receive(ctx) // each client message once, in order
			if err != nil {
				return // the client closed the session, it expired, or Shutdown
			}
			if err := s.Send(ctx, typ, data); err != nil { // nil: kept until the client has it
				return
			}
		}
	})
	httpSrv := httptest.NewServer(srv)
	defer httpSrv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(httpSrv.URL, "http")
	client, err := resocket.Dial(ctx, url, resocket.Config{Resume: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, text := range []string{"one", "two"} {
		_ = client.SendText(ctx, text)
	}
	_ = client.Flush(ctx) // the server has both
	for got := 0; got < 2; {
		switch ev := (<-client.Events()).(type) {
		case resocket.Connected:
			fmt.Println("connected, resumed:", ev.Resumed)
		case resocket.Message:
			fmt.Println("echo:", string(ev.Data))
			got++
		}
	}
	_ = client.Close(resocket.StatusNormalClosure, "")
	for range client.Events() {
	}
	// Output:
	// connected, resumed: false
	// echo: one
	// echo: two
}
