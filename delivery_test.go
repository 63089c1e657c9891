package resocket_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/testkit"
	"github.com/resocket/resocket/mocks"
)

// Nobody reads Events while Dial waits through many refused attempts: the
// lifecycle events must not stall the loop, and none may be lost.
func TestDialKeepsTryingWhileNobodyReadsEvents(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	const refusals = 20
	srv.Refuse(503, "", refusals)
	cfg := fastConfig()
	cfg.EventBuffer = 1
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := resocket.Dial(ctx, srv.URL(), cfg)
	require.NoError(t, err, "the loop stalled on a full Events channel")
	events := testkit.Read(t, c)

	evs := events.Collect(t, waitFor, testkit.Is[resocket.Connected])
	var want []string
	for range refusals {
		want = append(want, "Connecting", "DialFailed", "Reconnecting")
	}
	want = append(want, "Connecting", "Connected")
	assert.Equal(t, want, testkit.Types(evs), "every event, in order")
	for i, ev := range testkit.Only[resocket.Connecting](evs) {
		assert.Equal(t, i+1, ev.Attempt)
	}
}

// Lifecycle events queued behind a full channel still come before the
// messages that followed them.
func TestBacklogKeepsOrderWithMessages(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	cfg := fastConfig()
	cfg.EventBuffer = 1
	_, events := newClient(t, srv.URL(), cfg)
	sconn := srv.NextConn(t, waitFor)
	const n = 10
	for i := range n {
		require.NoError(t, sconn.SendText(fmt.Sprint(i)))
	}
	evs := events.Collect(t, waitFor, func(ev resocket.Event) bool {
		m, ok := ev.(resocket.Message)
		return ok && string(m.Data) == fmt.Sprint(n-1)
	})
	require.Equal(t, "Connecting", testkit.Types(evs)[0])
	require.Equal(t, "Connected", testkit.Types(evs)[1])
	msgs := testkit.Only[resocket.Message](evs)
	require.Len(t, msgs, n)
	for i, m := range msgs {
		assert.Equal(t, fmt.Sprint(i), string(m.Data))
	}
}

// Terminate with a backlog that nobody will read returns, and leaves no
// pump behind (goleak checks at the end of the package).
func TestTerminateWithUnreadBacklog(t *testing.T) {
	t.Parallel()
	srv := mocks.NewServer(t)
	srv.Refuse(503, "", -1)
	cfg := fastConfig()
	cfg.EventBuffer = 1
	c, _ := newClient(t, srv.URL(), cfg)
	require.True(t, srv.WaitRequests(10, waitFor), "the loop stalled on a full Events channel")
	testkit.ReturnsWithin(t, waitFor, "Terminate", c.Terminate)
	testkit.WaitClosed(t, c.Done(), waitFor, "Done")
}
