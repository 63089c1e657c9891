package resocket

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSmoke(t *testing.T) {
	var up websocket.Upgrader
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		n++
		if n == 1 {
			ws.WriteMessage(1, []byte("hello"))
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1012, "restart"), time.Now().Add(time.Second))
			ws.ReadMessage()
			ws.Close()
			return
		}
		for {
			typ, d, err := ws.ReadMessage()
			if err != nil {
				return
			}
			ws.WriteMessage(typ, d)
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c, err := New(url, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.SendText(ctx, "queued")
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			t.Logf("%T %+v", ev, ev)
			if m, ok := ev.(Message); ok && string(m.Data) == "queued" {
				if err := c.Close(1000, "bye"); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok := ev.(Closed); ok {
				return
			}
		case <-timeout:
			t.Fatal("timeout")
		}
	}
}
