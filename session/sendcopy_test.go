package session_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/session"
)

// Send keeps a copy of the message: the caller may reuse its buffer as
// soon as Send returns. Small messages are copied many to an allocation
// (session.go, copyLocked), so a copy that shared the caller's bytes, or
// ran into the next message's, would show here as a changed message:
// one buffer, overwritten after every Send, with sizes on both sides of
// the small-message limit and enough messages to fill several slabs.
func TestSendKeepsACopy(t *testing.T) {
	const n = 400
	size := func(i int) int { return []int{0, 1, 64, 511, 512, 513, 3000}[i%7] }
	want := func(i int) []byte {
		return bytes.Repeat([]byte{byte('a' + i%26)}, size(i))
	}
	sent := make(chan error, 1)
	ts := newTestServerServe(t, session.Options{}, func(s *session.Session) {
		buf := make([]byte, 0, 4096)
		for i := range n {
			buf = append(buf[:0], want(i)...)
			if err := s.Send(context.Background(), resocket.MessageBinary, buf); err != nil {
				sent <- err
				return
			}
			for j := range buf { // the caller reuses its buffer at once
				buf[j] = '!'
			}
		}
		sent <- nil
		_, _, _ = s.Receive(context.Background()) // until the session ends
	})
	c, err := resocket.New(ts.URL(), quietConfig())
	require.NoError(t, err)
	rec := testkit.Record(t, c)

	var got [][]byte
	rec.Collect(t, 10*time.Second, func(ev resocket.Event) bool {
		if m, ok := ev.(resocket.Message); ok {
			got = append(got, m.Data)
		}
		return len(got) == n
	})
	require.NoError(t, testkit.Receive(t, sent, waitFor, "every Send returns"))
	for i, data := range got {
		require.Equal(t, want(i), data, fmt.Sprintf("message %d (%d bytes)", i, size(i)))
	}
}
