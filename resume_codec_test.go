package resocket_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// Issue 9, point 8: the machinery (outbox, acks, replay, dedupe) does not
// depend on the wire codec. gwCodec speaks a gateway's JSON protocol of
// its own: every message a JSON text frame, numbered explicitly,
//
//	{"seq":N,"data":"<base64>","binary":false}   a data message
//	{"ack":N}                                     N received, cumulative
//
// and a handshake that resumes with headers of its own: X-Gw-Session,
// X-Gw-Token and X-Gw-Seq (the last message received) on the request;
// X-Gw-Session, X-Gw-Token (a new session's), X-Gw-Resumed and X-Gw-Seq on
// the 101.
type gwCodec struct{}

type gwFrame struct {
	Seq    uint64  `json:"seq,omitempty"`
	Ack    *uint64 `json:"ack,omitempty"`
	Data   []byte  `json:"data,omitempty"`
	Binary bool    `json:"binary,omitempty"`
}

func (gwCodec) Offer(h http.Header, p resocket.ResumePoint) {
	h.Set("X-Gw-Resume", "yes")
	if p.Session == "" {
		return
	}
	h.Set("X-Gw-Session", p.Session)
	h.Set("X-Gw-Token", p.Secret)
	h.Set("X-Gw-Seq", strconv.FormatUint(p.Received, 10))
}

func (gwCodec) Answer(h http.Header) (resocket.ResumeAnswer, error) {
	if h.Get("X-Gw-Session") == "" {
		return resocket.ResumeAnswer{}, fmt.Errorf("%w: no X-Gw-Session", resocket.ErrResumeUnsupported)
	}
	n, err := strconv.ParseUint(h.Get("X-Gw-Seq"), 10, 64)
	if err != nil {
		return resocket.ResumeAnswer{}, fmt.Errorf("X-Gw-Seq: %w", err)
	}
	return resocket.ResumeAnswer{Session: h.Get("X-Gw-Session"), Secret: h.Get("X-Gw-Token"),
		Resumed: h.Get("X-Gw-Resumed") == "true", Received: n}, nil
}

func (gwCodec) AppendData(dst []byte, seq uint64, typ resocket.MessageType, data []byte) (resocket.MessageType, []byte) {
	b, _ := json.Marshal(gwFrame{Seq: seq, Data: data, Binary: typ == resocket.MessageBinary})
	return resocket.MessageText, append(dst, b...)
}

func (gwCodec) AppendAck(dst []byte, received uint64) (resocket.MessageType, []byte) {
	b, _ := json.Marshal(gwFrame{Ack: &received})
	return resocket.MessageText, append(dst, b...)
}

func (gwCodec) Decode(typ resocket.MessageType, frame []byte) (resocket.ResumeFrame, error) {
	var f gwFrame
	if typ != resocket.MessageText {
		return resocket.ResumeFrame{}, errors.New("gateway frames are text")
	}
	if err := json.Unmarshal(frame, &f); err != nil {
		return resocket.ResumeFrame{}, err
	}
	if f.Ack != nil {
		return resocket.ResumeFrame{Ack: true, Received: *f.Ack}, nil
	}
	if f.Seq == 0 {
		return resocket.ResumeFrame{}, errors.New("data without a seq")
	}
	t := resocket.MessageText
	if f.Binary {
		t = resocket.MessageBinary
	}
	return resocket.ResumeFrame{Seq: f.Seq, Type: t, Data: f.Data}, nil
}

// gateway is the scripted server's side of the JSON protocol: what it
// received from the client, by seq.
type gateway struct {
	mu       sync.Mutex
	received []string // by seq: received[i] is seq i+1
	repeats  int      // data frames from the client with a seq already received
}

// read reads the client's frames on conn until it has data message n,
// recording data by seq, and returns the highest ack the client sent.
func (g *gateway) read(t *testing.T, conn *mocks.Conn, n int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		g.mu.Lock()
		have := len(g.received)
		g.mu.Unlock()
		if have >= n {
			return
		}
		typ, data, err := conn.Receive(waitFor)
		require.NoError(t, err)
		require.Equal(t, websocket.TextMessage, typ)
		var f gwFrame
		require.NoError(t, json.Unmarshal(data, &f), "%q", data)
		if f.Ack != nil {
			continue
		}
		g.mu.Lock()
		switch {
		case f.Seq <= uint64(len(g.received)):
			g.repeats++
		case f.Seq == uint64(len(g.received))+1:
			g.received = append(g.received, string(f.Data))
		default:
			g.mu.Unlock()
			t.Fatalf("gateway: seq %d after %d: a gap", f.Seq, len(g.received))
		}
		g.mu.Unlock()
	}
	t.Fatal("gateway: too many frames")
}

// awaitAck reads the client's frames on conn until it acknowledges n.
func awaitAck(t *testing.T, conn *mocks.Conn, n uint64) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		_, data, err := conn.Receive(waitFor)
		require.NoError(t, err)
		var f gwFrame
		require.NoError(t, json.Unmarshal(data, &f))
		if f.Ack != nil && *f.Ack >= n {
			require.Equal(t, n, *f.Ack, "never an ack beyond what was sent")
			return
		}
	}
	t.Fatal("gateway: no ack")
}

func gwSend(t *testing.T, conn *mocks.Conn, seq uint64, data string) {
	t.Helper()
	b, err := json.Marshal(gwFrame{Seq: seq, Data: []byte(data)})
	require.NoError(t, err)
	require.NoError(t, conn.Send(websocket.TextMessage, b))
}

func gwAck(t *testing.T, conn *mocks.Conn, n uint64) {
	t.Helper()
	b, err := json.Marshal(gwFrame{Ack: &n})
	require.NoError(t, err)
	require.NoError(t, conn.Send(websocket.TextMessage, b))
}

// TestResumeWithACodecOfYourOwn: exactly once, both ways, across a forced
// reconnect, with the JSON gateway protocol: the client resumes with the
// gateway's headers, does not replay what the gateway says it has, and
// drops the gateway's replayed duplicates by seq.
func TestResumeWithACodecOfYourOwn(t *testing.T) {
	var mu sync.Mutex
	var requests []http.Header
	srv := mocks.NewServer(t, mocks.WithUpgradeHeader(func(r *http.Request) http.Header {
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, r.Header.Clone())
		h := http.Header{}
		h.Set("X-Gw-Session", "gw-1")
		if len(requests) == 1 {
			h.Set("X-Gw-Token", "tok")
			h.Set("X-Gw-Resumed", "false")
			h.Set("X-Gw-Seq", "0")
		} else {
			h.Set("X-Gw-Resumed", "true")
			h.Set("X-Gw-Seq", "5") // it has c1..c5, though it acknowledged 3
		}
		return h
	}))
	cfg := resumeConfig()
	cfg.ResumeCodec = gwCodec{}
	c, events := newClient(t, srv.URL(), cfg)
	conn1 := srv.NextConn(t, waitFor)
	first := testkit.WaitEvent[resocket.Connected](t, events, waitFor)
	assert.False(t, first.Resumed)

	g := &gateway{}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for i := 1; i <= 5; i++ {
		require.NoError(t, c.SendText(ctx, fmt.Sprintf("c%d", i)))
	}
	g.read(t, conn1, 5)
	gwAck(t, conn1, 3)
	for i := uint64(1); i <= 3; i++ {
		gwSend(t, conn1, i, fmt.Sprintf("s%d", i))
	}
	awaitAck(t, conn1, 3) // the client's application has s1..s3

	c.ForceReconnect()
	conn2 := srv.NextConn(t, waitFor)
	_, ev := events.Await(t, 0, waitFor, func(ev resocket.Event) bool {
		cn, ok := ev.(resocket.Connected)
		return ok && cn.ConnID != first.ConnID
	})
	assert.True(t, ev.Event.(resocket.Connected).Resumed, events.History())
	mu.Lock()
	second := requests[1]
	mu.Unlock()
	assert.Equal(t, "gw-1", second.Get("X-Gw-Session"))
	assert.Equal(t, "tok", second.Get("X-Gw-Token"))
	assert.Equal(t, "3", second.Get("X-Gw-Seq"), "the client's resume point, in the gateway's headers")
	for _, h := range []string{"Resocket-Resume", "Resocket-Session", "Resocket-Secret"} {
		assert.Empty(t, second.Get(h), "the built-in protocol stays out of it")
	}

	// A gateway that replays more than it needs: s2 and s3 again.
	for i := uint64(2); i <= 5; i++ {
		gwSend(t, conn2, i, fmt.Sprintf("s%d", i))
	}
	for i := 6; i <= 8; i++ {
		require.NoError(t, c.SendText(ctx, fmt.Sprintf("c%d", i)))
	}
	g.read(t, conn2, 8)
	gwAck(t, conn2, 8)
	require.NoError(t, c.Flush(ctx), "Flush returns on the gateway's ack")
	awaitAck(t, conn2, 5)

	got := events.Collect(t, waitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == "s5"
	})
	var fromServer []string
	for _, m := range testkit.Only[resocket.Message](got) {
		fromServer = append(fromServer, string(m.Data))
	}
	assert.Equal(t, []string{"s1", "s2", "s3", "s4", "s5"}, fromServer, "server to client: the gateway's duplicates dropped by seq")
	g.mu.Lock()
	defer g.mu.Unlock()
	assert.Equal(t, []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}, g.received, "client to server: in order")
	assert.Zero(t, g.repeats, "nothing the gateway said it had was sent again")
}
