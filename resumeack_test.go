package resocket_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// stallingCodec frames acks as "ack:N" text and takes every message from
// the server as data; its first AppendAck stalls until released (or a
// bound passes), so that a second ack can be due while the first one is
// being framed.
type stallingCodec struct {
	entered chan struct{} // closed when the first AppendAck starts
	release chan struct{} // closed by the test
	once    sync.Once
}

func (*stallingCodec) Offer(http.Header, resocket.ResumePoint) {}

func (*stallingCodec) Answer(http.Header) (resocket.ResumeAnswer, error) {
	return resocket.ResumeAnswer{Session: "s", Secret: "x"}, nil
}

func (*stallingCodec) AppendData(dst []byte, _ uint64, typ resocket.MessageType, data []byte) (resocket.MessageType, []byte) {
	return typ, append(dst, data...)
}

func (c *stallingCodec) AppendAck(dst []byte, received uint64) (resocket.MessageType, []byte) {
	first := false
	c.once.Do(func() { first = true })
	if first {
		close(c.entered)
		select {
		case <-c.release:
		case <-time.After(testkit.WaitFor):
		}
	}
	return resocket.MessageText, append(dst, "ack:"+strconv.FormatUint(received, 10)...)
}

func (*stallingCodec) Decode(typ resocket.MessageType, frame []byte) (resocket.ResumeFrame, error) {
	return resocket.ResumeFrame{Type: typ, Data: frame}, nil
}

// TestResumeAcksNeverGoBackwards: the acks a client writes on a connection
// carry counts that never decrease, even when a second batch comes due
// while the first ack is still on its way to the socket. (Two acks in
// flight used to take their counts before queueing for the connection, so
// that the older, smaller one could be written last: seen by the Node
// server of interop/resume_test.go as an ack below one it already had.)
func TestResumeAcksNeverGoBackwards(t *testing.T) {
	codec := &stallingCodec{entered: make(chan struct{}), release: make(chan struct{})}
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.Resume = true
	cfg.ResumeCodec = codec
	cfg.CloseTimeout = testkit.WaitFor // bounds an ack's write, stall included
	_, events, _, conn := connect(t, srv, cfg)

	// One message: its ack comes due after the batching delay, and stalls
	// while it is framed.
	require.NoError(t, conn.SendText(testkit.Payload(1)))
	testkit.WaitClosed(t, codec.entered, testkit.WaitFor, "the first ack")
	// A full batch more: a second ack comes due at once.
	for i := 2; i <= 65; i++ {
		require.NoError(t, conn.SendText(testkit.Payload(i)))
	}
	for range 65 {
		testkit.WaitEvent[resocket.Message](t, events, testkit.WaitFor)
	}
	// Give the second ack its chance to overtake the first: it reaches the
	// server within a few milliseconds if it can be written while the
	// first is stalled.
	var acks []uint64
	_, data, err := conn.Receive(300 * time.Millisecond)
	if err == nil {
		acks = append(acks, parseTestAck(t, data))
	} else {
		require.ErrorIs(t, err, mocks.ErrTimeout)
	}
	close(codec.release)
	for len(acks) == 0 || acks[len(acks)-1] < 65 {
		_, data, err := conn.Receive(testkit.WaitFor)
		require.NoError(t, err, "acks so far: %v", acks)
		acks = append(acks, parseTestAck(t, data))
	}
	for i := 1; i < len(acks); i++ {
		assert.GreaterOrEqual(t, acks[i], acks[i-1], "acks on one connection never go backwards: %v", acks)
	}
}

func parseTestAck(t *testing.T, data []byte) uint64 {
	t.Helper()
	s, ok := strings.CutPrefix(string(data), "ack:")
	require.True(t, ok, "not an ack: %q", data)
	n, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err)
	return n
}
