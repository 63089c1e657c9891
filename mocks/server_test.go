package mocks_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket/mocks"
)

const wait = 5 * time.Second

// dialer returns a plain gorilla dialer for srv.
func dialer(srv *mocks.Server) *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: wait, TLSClientConfig: srv.TLSConfig()}
}

// dial opens a client connection to srv and returns it with its server side.
func dial(t *testing.T, srv *mocks.Server) (*websocket.Conn, *mocks.Conn) {
	t.Helper()
	c, resp, err := dialer(srv).Dial(srv.URL(), nil)
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, srv.NextConn(t, wait)
}

// readUntilErr reads (bounded) until the client connection fails and
// returns the error.
func readUntilErr(t *testing.T, c *websocket.Conn) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait)) // a failure shows in the read
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

func closeCode(t *testing.T, err error) int {
	t.Helper()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce, "error %v", err)
	return ce.Code
}

func waitDone(t *testing.T, sc *mocks.Conn) {
	t.Helper()
	select {
	case <-sc.Done():
	case <-time.After(wait):
		t.Fatal("server conn did not end")
	}
}

// recordingConn keeps every byte the client reads from the wire.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recordingConn) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf.Bytes()...)
}

// dialRecording dials srv with a client that records the bytes it reads.
func dialRecording(t *testing.T, srv *mocks.Server) (*websocket.Conn, *mocks.Conn, *recordingConn) {
	t.Helper()
	rec := make(chan *recordingConn, 1)
	d := &websocket.Dialer{
		HandshakeTimeout: wait,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			r := &recordingConn{Conn: c}
			rec <- r
			return r, nil
		},
	}
	c, _, err := d.Dial(srv.URL(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, srv.NextConn(t, wait), <-rec
}

func TestURLAddrLoopback(t *testing.T) {
	srv := mocks.NewServer(t)
	assert.True(t, strings.HasPrefix(srv.URL(), "ws://127.0.0.1:"), srv.URL())
	host, _, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.Nil(t, srv.TLSConfig())
	assert.NotNil(t, srv.Client())

	ss := mocks.NewStallServer(t)
	assert.True(t, strings.HasPrefix(ss.URL(), "ws://127.0.0.1:"), ss.URL())
}

func TestAcceptOrderIDsAndRequest(t *testing.T) {
	srv := mocks.NewServer(t)
	for i := 1; i <= 3; i++ {
		hdr := http.Header{"X-Test": {"v"}}
		c, _, err := dialer(srv).Dial(srv.URL()+"/path?q=1", hdr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		sc := srv.NextConn(t, wait)
		assert.Equal(t, i, sc.ID())
		assert.Equal(t, "/path", sc.Request().URL.Path)
		assert.Equal(t, "q=1", sc.Request().URL.RawQuery)
		assert.Equal(t, "v", sc.Request().Header.Get("X-Test"))
		assert.Equal(t, http.MethodGet, sc.Request().Method)
	}
	assert.Equal(t, 3, srv.OpenConns())
	assert.Len(t, srv.Conns(), 3)
	reqs := srv.Requests()
	require.Len(t, reqs, 3)
	reqs[0].Header.Set("X-Test", "changed") // a copy: the server's is untouched
	assert.Equal(t, "v", srv.Requests()[0].Header.Get("X-Test"))
}

func TestReceiveRecordsWithoutEcho(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)

	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("one")))
	require.NoError(t, c.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}))

	typ, data, err := sc.Receive(wait)
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "one", string(data))
	typ, data, err = sc.Receive(wait)
	require.NoError(t, err)
	assert.Equal(t, websocket.BinaryMessage, typ)
	assert.Equal(t, []byte{0, 1, 2}, data)
	assert.Equal(t, [][]byte{[]byte("one"), {0, 1, 2}}, sc.Received())

	_, _, err = sc.Receive(50 * time.Millisecond)
	assert.ErrorIs(t, err, mocks.ErrTimeout)

	// No echo: the pong to a ping sent after the messages comes first.
	pong := make(chan struct{})
	c.SetPongHandler(func(string) error { close(pong); return nil })
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	got := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		got <- err
	}()
	require.NoError(t, c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(wait)))
	select {
	case <-pong:
	case err := <-got:
		t.Fatalf("client read a message before the pong: %v", err)
	case <-time.After(wait):
		t.Fatal("no pong")
	}
	assert.Equal(t, 1, sc.Pings())
	sc.Drop()
	require.Error(t, <-got)
}

func TestEcho(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	c, sc := dial(t, srv)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))

	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("hello")))
	typ, data, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "hello", string(data))

	require.NoError(t, c.WriteMessage(websocket.BinaryMessage, []byte{9, 8}))
	typ, data, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.BinaryMessage, typ)
	assert.Equal(t, []byte{9, 8}, data)

	assert.Len(t, sc.Received(), 2)
}

func TestSend(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))

	require.NoError(t, sc.SendText("text"))
	require.NoError(t, sc.Send(websocket.BinaryMessage, []byte{1}))
	require.Error(t, sc.Send(websocket.CloseMessage, nil))
	require.Error(t, sc.Send(42, nil))

	typ, data, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.TextMessage, typ)
	assert.Equal(t, "text", string(data))
	typ, data, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, websocket.BinaryMessage, typ)
	assert.Equal(t, []byte{1}, data)
}

// A client that never reads: with the server's buffers pinned small, the
// writes soon block, and SendWithin returns at its deadline with a timeout;
// the connection cannot write after that.
func TestSendWithinBlocksOnAClientThatDoesNotRead(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithSocketBuffers(64<<10))
	_, sc := dial(t, srv) // never read
	msg := make([]byte, 1<<10)
	const most = 16 << 10 // 16 MiB: far beyond any default buffers of a client that never reads
	var err error
	n := 0
	for ; n < most; n++ {
		if err = sc.SendWithin(websocket.BinaryMessage, msg, 200*time.Millisecond); err != nil {
			break
		}
	}
	require.Error(t, err, "%d KiB written to a client that never reads", n)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "%v", err)
	assert.Positive(t, n)
	assert.Error(t, sc.SendText("after"), "a connection whose write timed out cannot write")
}

func TestServerPingCountsPongs(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))

	require.NoError(t, sc.Send(websocket.PingMessage, []byte("hi")))
	require.NoError(t, sc.SendText("after ping"))
	_, data, err := c.ReadMessage() // the client answered the ping on the way
	require.NoError(t, err)
	assert.Equal(t, "after ping", string(data))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("ack")))
	_, data, err = sc.Receive(wait) // read after the pong
	require.NoError(t, err)
	assert.Equal(t, "ack", string(data))
	assert.Equal(t, 1, sc.Pongs())
}

func TestPings(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	pongs := make(chan string, 3)
	c.SetPongHandler(func(s string) error { pongs <- s; return nil })
	readDone := make(chan error, 1)
	go func() { readDone <- readUntilErr(t, c) }()
	for _, p := range []string{"a", "b", "c"} {
		require.NoError(t, c.WriteControl(websocket.PingMessage, []byte(p), time.Now().Add(wait)))
		select {
		case got := <-pongs:
			assert.Equal(t, p, got)
		case <-time.After(wait):
			t.Fatal("no pong")
		}
	}
	assert.Equal(t, 3, sc.Pings())
	sc.Drop()
	<-readDone
}

func TestCloseWith(t *testing.T) {
	for _, tc := range []struct {
		code   int
		reason string
	}{
		{4001, "bye"},
		{websocket.CloseNormalClosure, ""},
		{websocket.CloseServiceRestart, "restart"},
		{3000, "unauthorized"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			srv := mocks.NewServer(t)
			c, sc := dial(t, srv)
			errc := make(chan error, 1)
			go func() { errc <- readUntilErr(t, c) }()
			require.NoError(t, sc.CloseWith(tc.code, tc.reason))
			err := <-errc
			assert.Equal(t, tc.code, closeCode(t, err))
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.reason, ce.Text)

			waitDone(t, sc)
			code, _, ok := sc.CloseReceived()
			assert.True(t, ok)
			assert.Equal(t, tc.code, code) // gorilla's client echoes the code
			assert.Equal(t, 0, srv.OpenConns())
			assert.ErrorIs(t, sc.CloseWith(1000, ""), websocket.ErrCloseSent)
			assert.ErrorIs(t, sc.SendText("late"), websocket.ErrCloseSent)
		})
	}
}

func TestCloseWithInvalidCodesIsRaw(t *testing.T) {
	for _, code := range []int{0, 999, 1004, 1005, 1014, 1016, 2999, 5000} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := mocks.NewServer(t)
			c, sc, rec := dialRecording(t, srv)
			errc := make(chan error, 1)
			go func() { errc <- readUntilErr(t, c) }()
			require.NoError(t, sc.CloseWith(code, "x"))
			err := <-errc
			assert.Contains(t, err.Error(), "bad close code "+strconv.Itoa(code))
			want := []byte{0x88, 3, byte(code >> 8), byte(code), 'x'}
			assert.True(t, bytes.HasSuffix(rec.bytes(), want), "wire % x", rec.bytes())
			code2, _, ok := sc.CloseReceived()
			assert.True(t, ok)
			assert.Equal(t, websocket.CloseProtocolError, code2) // the client's answer
		})
	}
}

func TestCloseWithBadReasons(t *testing.T) {
	t.Run("long reason", func(t *testing.T) {
		srv := mocks.NewServer(t)
		c, sc, rec := dialRecording(t, srv)
		errc := make(chan error, 1)
		go func() { errc <- readUntilErr(t, c) }()
		reason := strings.Repeat("r", 124)
		require.NoError(t, sc.CloseWith(4000, reason))
		err := <-errc
		assert.Contains(t, err.Error(), "125") // gorilla: "len > 125 for control"
		want := append([]byte{0x88, 126, 0, 126, 0x0f, 0xa0}, reason...)
		assert.True(t, bytes.HasSuffix(rec.bytes(), want), "wire % x", rec.bytes())
	})
	t.Run("invalid utf8", func(t *testing.T) {
		srv := mocks.NewServer(t)
		c, sc := dial(t, srv)
		errc := make(chan error, 1)
		go func() { errc <- readUntilErr(t, c) }()
		require.NoError(t, sc.CloseWith(4000, "\xff\xfe"))
		assert.Contains(t, (<-errc).Error(), "invalid utf8")
	})
	t.Run("one byte payload", func(t *testing.T) {
		srv := mocks.NewServer(t)
		c, sc, rec := dialRecording(t, srv)
		errc := make(chan error, 1)
		go func() { errc <- readUntilErr(t, c) }()
		require.NoError(t, sc.CloseWithPayload([]byte{0x03}))
		<-errc
		assert.True(t, bytes.HasSuffix(rec.bytes(), []byte{0x88, 1, 3}), "wire % x", rec.bytes())
	})
}

func TestCloseNoStatus(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	errc := make(chan error, 1)
	go func() { errc <- readUntilErr(t, c) }()
	require.NoError(t, sc.CloseNoStatus())
	assert.Equal(t, websocket.CloseNoStatusReceived, closeCode(t, <-errc))
	code, _, ok := sc.CloseReceived()
	assert.True(t, ok)
	assert.Equal(t, websocket.CloseNoStatusReceived, code)
}

func TestClientClose(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	errc := make(chan error, 1)
	go func() { errc <- readUntilErr(t, c) }()
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "leaving")
	require.NoError(t, c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait)))
	assert.Equal(t, websocket.CloseGoingAway, closeCode(t, <-errc)) // the server's reply
	waitDone(t, sc)
	code, reason, ok := sc.CloseReceived()
	assert.True(t, ok)
	assert.Equal(t, websocket.CloseGoingAway, code)
	assert.Equal(t, "leaving", reason)
	assert.Equal(t, websocket.CloseGoingAway, closeCode(t, sc.Err()))
	_, _, err := sc.Receive(wait)
	assert.ErrorIs(t, err, mocks.ErrClosed)
}

func TestReceiveDrainsQueueAfterEnd(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("last")))
	require.NoError(t, c.Close()) // no close frame
	waitDone(t, sc)
	_, data, err := sc.Receive(wait)
	require.NoError(t, err)
	assert.Equal(t, "last", string(data))
	_, _, err = sc.Receive(wait)
	assert.ErrorIs(t, err, mocks.ErrClosed)
}

func TestDrop(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	errc := make(chan error, 1)
	go func() { errc <- readUntilErr(t, c) }()
	sc.Drop()
	assert.Equal(t, websocket.CloseAbnormalClosure, closeCode(t, <-errc))
	waitDone(t, sc)
	assert.Equal(t, 0, srv.OpenConns())
	_, _, ok := sc.CloseReceived()
	assert.False(t, ok)
}

func TestReset(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	errc := make(chan error, 1)
	go func() { errc <- readUntilErr(t, c) }()
	sc.Reset()
	err := <-errc
	var ce *websocket.CloseError
	assert.False(t, errors.As(err, &ce), "got a CloseError: %v", err)
	var oe *net.OpError
	assert.True(t, errors.As(err, &oe) || errors.Is(err, syscall.ECONNRESET), "error %T %v", err, err)
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	waitDone(t, sc)
}

func TestGoSilent(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithEcho())
	c, sc := dial(t, srv)
	sc.GoSilent()
	assert.ErrorIs(t, sc.SendText("x"), mocks.ErrSilent)
	assert.ErrorIs(t, sc.WriteRaw([]byte{0x81, 0}), mocks.ErrSilent)

	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	got := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		got <- err
	}()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("echo?")))
	require.NoError(t, c.WriteControl(websocket.PingMessage, nil, time.Now().Add(wait)))
	select {
	case <-pong:
		t.Fatal("a silent conn answered a ping")
	case err := <-got:
		t.Fatalf("a silent conn sent something: %v", err)
	case <-time.After(300 * time.Millisecond): // the half-open link: nothing comes
	}
	assert.Equal(t, 1, srv.OpenConns())
	select {
	case <-sc.Done():
		t.Fatal("a silent conn ended")
	default:
	}
	// Server.Close ends it (and goleak checks its goroutine is gone).
	srv.Close()
	waitDone(t, sc)
	assert.Equal(t, websocket.CloseAbnormalClosure, closeCode(t, <-got))
}

func TestGoSilentThenDrop(t *testing.T) {
	srv := mocks.NewServer(t)
	_, sc := dial(t, srv)
	sc.GoSilent()
	sc.Drop()
	waitDone(t, sc)
	assert.Equal(t, 0, srv.OpenConns())
}

func TestWriteRawFragments(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	require.NoError(t, sc.WriteRaw(mocks.Frame(false, mocks.OpText, []byte("hel"))))
	require.NoError(t, sc.WriteRaw(mocks.Frame(true, mocks.OpContinuation, []byte("lo"))))
	_, data, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "hello", string(data))

	big := bytes.Repeat([]byte{7}, 70000)
	require.NoError(t, sc.WriteRaw(mocks.Frame(true, mocks.OpBinary, big)))
	_, data, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, big, data)
}

func TestRefuse(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "7", 1)
	_, resp, err := dialer(srv).Dial(srv.URL(), nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "7", resp.Header.Get("Retry-After"))
	_ = resp.Body.Close()

	dial(t, srv) // the second one succeeds

	srv.Refuse(http.StatusUnauthorized, "", -1)
	for range 3 {
		_, resp, err := dialer(srv).Dial(srv.URL(), nil)
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		_, has := resp.Header["Retry-After"]
		assert.False(t, has)
		_ = resp.Body.Close()
	}
	srv.Refuse(0, "", 0)
	dial(t, srv)
	assert.Panics(t, func() { srv.Refuse(0, "", 1) })
	assert.Len(t, srv.Requests(), 6)
	assert.Equal(t, 2, srv.OpenConns())
}

// RequestTimes has one arrival time per request, in order, between the
// moment before the first dial and the moment after the last.
func TestRequestTimes(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.Refuse(http.StatusServiceUnavailable, "", 1)
	before := time.Now()
	_, resp, err := dialer(srv).Dial(srv.URL(), nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	_ = resp.Body.Close()
	between := time.Now()
	dial(t, srv)
	after := time.Now()

	times := srv.RequestTimes()
	require.Len(t, times, len(srv.Requests()))
	require.Len(t, times, 2)
	assert.False(t, times[0].Before(before))
	assert.False(t, times[0].After(between))
	assert.False(t, times[1].Before(between))
	assert.False(t, times[1].After(after))
}

func TestStallHandshakes(t *testing.T) {
	srv := mocks.NewServer(t)
	srv.StallHandshakes(true)
	d := dialer(srv)
	d.HandshakeTimeout = 300 * time.Millisecond
	_, _, err := d.Dial(srv.URL(), nil)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "error %v", err)
	assert.Len(t, srv.Requests(), 1)

	// A held handshake is answered once stalling ends.
	dialed := make(chan error, 1)
	go func() {
		c, _, err := dialer(srv).Dial(srv.URL(), nil)
		if err == nil {
			_ = c.Close()
		}
		dialed <- err
	}()
	require.True(t, srv.WaitRequests(2, wait))
	srv.StallHandshakes(false)
	select {
	case err := <-dialed:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("dial did not complete")
	}

	// Close ends a held handshake without answering it.
	srv.StallHandshakes(true)
	go func() {
		_, _, err := dialer(srv).Dial(srv.URL(), nil)
		dialed <- err
	}()
	require.True(t, srv.WaitRequests(3, wait))
	srv.Close()
	select {
	case err := <-dialed:
		require.Error(t, err)
	case <-time.After(wait):
		t.Fatal("dial did not fail")
	}
}

func TestCloseAllAndRestart(t *testing.T) {
	srv := mocks.NewServer(t)
	c1, _ := dial(t, srv)
	c2, sc2 := dial(t, srv)
	sc2.GoSilent() // even a silent conn gets the close frame
	e1, e2 := make(chan error, 1), make(chan error, 1)
	go func() { e1 <- readUntilErr(t, c1) }()
	go func() { e2 <- readUntilErr(t, c2) }()
	srv.Restart(websocket.CloseServiceRestart, "restart")
	assert.Equal(t, websocket.CloseServiceRestart, closeCode(t, <-e1))
	assert.Equal(t, websocket.CloseServiceRestart, closeCode(t, <-e2))
	assert.Equal(t, 0, srv.OpenConns())

	c3, sc3 := dial(t, srv) // still accepting
	assert.Equal(t, 3, sc3.ID())
	assert.Equal(t, 1, srv.OpenConns())
	e3 := make(chan error, 1)
	go func() { e3 <- readUntilErr(t, c3) }()
	srv.CloseAll(4000, "all")
	assert.Equal(t, 4000, closeCode(t, <-e3))
}

func TestDropAll(t *testing.T) {
	srv := mocks.NewServer(t)
	c1, _ := dial(t, srv)
	c2, _ := dial(t, srv)
	e1, e2 := make(chan error, 1), make(chan error, 1)
	go func() { e1 <- readUntilErr(t, c1) }()
	go func() { e2 <- readUntilErr(t, c2) }()
	srv.DropAll()
	assert.Equal(t, websocket.CloseAbnormalClosure, closeCode(t, <-e1))
	assert.Equal(t, websocket.CloseAbnormalClosure, closeCode(t, <-e2))
	assert.Equal(t, 0, srv.OpenConns())
}

func TestServerCloseIdempotent(t *testing.T) {
	srv := mocks.NewServer(t)
	c, sc := dial(t, srv)
	errc := make(chan error, 1)
	go func() { errc <- readUntilErr(t, c) }()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Close()
		}()
	}
	wg.Wait()
	srv.Close()
	assert.Equal(t, websocket.CloseAbnormalClosure, closeCode(t, <-errc))
	waitDone(t, sc)
	assert.Equal(t, 0, srv.OpenConns())
	_, _, err := dialer(srv).Dial(srv.URL(), nil)
	assert.Error(t, err)
}

func TestTLS(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithTLS(), mocks.WithEcho())
	assert.True(t, strings.HasPrefix(srv.URL(), "wss://127.0.0.1:"), srv.URL())
	require.NotNil(t, srv.TLSConfig())
	c, sc := dial(t, srv)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("secure")))
	_, data, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "secure", string(data))

	errc := make(chan error, 1)
	go func() { errc <- readUntilErr(t, c) }()
	require.NoError(t, sc.CloseWith(4002, "tls bye"))
	assert.Equal(t, 4002, closeCode(t, <-errc))
	code, _, ok := sc.CloseReceived()
	assert.True(t, ok)
	assert.Equal(t, 4002, code)

	// Reset on TLS is a TCP reset too.
	c2, sc2 := dial(t, srv)
	go func() { errc <- readUntilErr(t, c2) }()
	sc2.Reset()
	assert.ErrorIs(t, <-errc, syscall.ECONNRESET)

	// Without the server's certificate the handshake fails.
	_, _, err = (&websocket.Dialer{HandshakeTimeout: wait}).Dial(srv.URL(), nil)
	assert.Error(t, err)
}

func TestSubprotocols(t *testing.T) {
	srv := mocks.NewServer(t, mocks.WithSubprotocols("v2", "v1"))
	d := dialer(srv)
	d.Subprotocols = []string{"v1", "v2"}
	c, _, err := d.Dial(srv.URL(), nil)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "v2", c.Subprotocol())
	assert.Equal(t, "v2", srv.NextConn(t, wait).Subprotocol())
}

func TestStallServer(t *testing.T) {
	ss := mocks.NewStallServer(t)
	d := &websocket.Dialer{HandshakeTimeout: 300 * time.Millisecond}
	_, _, err := d.Dial(ss.URL(), nil)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "error %v", err)
	require.True(t, ss.WaitAccepted(1, wait))
	assert.Equal(t, 1, ss.Accepted())

	// A connection still held is closed by Close.
	conn, err := net.DialTimeout("tcp", ss.Addr(), wait)
	require.NoError(t, err)
	defer conn.Close()
	require.True(t, ss.WaitAccepted(2, wait))
	ss.Close()
	ss.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	_, err = conn.Read(make([]byte, 1))
	assert.Error(t, err)
	var ne2 net.Error
	assert.False(t, errors.As(err, &ne2) && ne2.Timeout(), "read timed out instead of seeing the close")
}

func TestBackOffMock(t *testing.T) {
	b := new(mocks.BackOff)
	b.On("NextBackOff").Return(time.Millisecond).Twice()
	b.On("NextBackOff").Return(backoff.Stop).Once()
	b.On("Reset").Return().Once()

	var bo backoff.BackOff = b
	bo.Reset()
	assert.Equal(t, time.Millisecond, bo.NextBackOff())
	assert.Equal(t, time.Millisecond, bo.NextBackOff())
	assert.Equal(t, backoff.Stop, bo.NextBackOff())
	b.AssertExpectations(t)

	calls := 0
	err := backoff.Retry(func() error { calls++; return errors.New("no") }, func() backoff.BackOff {
		m := new(mocks.BackOff)
		m.On("Reset").Return()
		m.On("NextBackOff").Return(func() time.Duration {
			if calls >= 3 {
				return backoff.Stop
			}
			return 0
		})
		return m
	}())
	assert.Error(t, err)
	assert.Equal(t, 3, calls)
}
