package bench

import (
	"context"
	"testing"

	"github.com/resocket/resocket"
)

// TestResumeAllocs counts, as exactly as the tests above, the allocations
// of Send and of a message received through Events with Config.Resume,
// against the bench server's session endpoints, next to plain resocket's
// on its gorilla endpoints. With Resume each message sent is also copied
// into the outbox (one allocation), and acknowledgements (after 64
// messages or 50 ms, in both directions) cost allocations of their own,
// shared by the messages they acknowledge, and variable: how many
// messages one ack covers depends on the scheduling. So the bound is a
// budget, not a figure: one allocation per message more than plain, plus
// a quarter per message for acks and the outbox's growth.
func TestResumeAllocs(t *testing.T) {
	skipUnderRace(t)
	const n = 10000
	msg := make([]byte, 64)
	ctx := context.Background()

	t.Run("send", func(t *testing.T) {
		count := func(path string, resume bool) uint64 {
			c := dialResocket(t, path, resocket.Config{Resume: resume})
			send := func() {
				if err := c.Send(ctx, resocket.MessageBinary, msg); err != nil {
					t.Fatal(err)
				}
			}
			got := mallocs(n, send)
			for range tries - 1 { // the least count: noise only adds
				got = min(got, mallocs(n, send))
			}
			return got
		}
		plain, resume := count("/sink", false), count("/resume-sink", true)
		t.Logf("Send, 64 B: plain %d allocations for %d messages (%.4f each); Resume %d (%.4f each)",
			plain, n, float64(plain)/n, resume, float64(resume)/n)
		if budget := plain + n + n/4; resume > budget {
			t.Errorf("Send with Resume: %d allocations for %d messages, over the budget of %d", resume, n, budget)
		}
	})

	t.Run("receive", func(t *testing.T) {
		count := func(path string, resume bool) (allocs, msgs uint64) {
			c := dialResocket(t, path, resocket.Config{Resume: resume})
			var taken uint64
			recv := func() {
				nextMessage(t, c)
				taken++
			}
			for range 1000 {
				recv()
			}
			allocs, msgs = receiveMallocs(t, c, n, recv, &taken)
			for try := 2; try <= tries; try++ {
				a, m := receiveMallocs(t, c, n, recv, &taken)
				if a*msgs < allocs*m {
					allocs, msgs = a, m
				}
			}
			return allocs, msgs
		}
		pa, pm := count("/stream?size=64", false)
		ra, rm := count("/resume-stream?size=64", true)
		t.Logf("receive through Events, 64 B: plain %d allocations for %d messages (%.4f each); Resume %d for %d (%.4f each)",
			pa, pm, float64(pa)/float64(pm), ra, rm, float64(ra)/float64(rm))
		if budget := 3*rm + rm/4; ra > budget {
			t.Errorf("receive with Resume: %d allocations for %d messages, over the budget of %d", ra, rm, budget)
		}
	})
}
