package session_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
)

// BenchmarkMemoryStoreSessions is a server's per-message Store calls
// (Append, then Ack and SetReceived every 64 messages) from many
// sessions at once, one session to each goroutine:
//
//	go test -run '^$' -bench MemoryStoreSessions -cpu 1,2 ./session
//
// With one lock for the whole Store every session's messages went through
// it one at a time; each record has a lock of its own now.
func BenchmarkMemoryStoreSessions(b *testing.B) {
	store := session.NewMemoryStore()
	ctx := context.Background()
	var next atomic.Int64
	data := make([]byte, 64)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("session-%d", next.Add(1))
		if err := store.Create(ctx, id, nil, 1, time.Hour); err != nil {
			b.Error(err)
			return
		}
		var seq uint64
		for pb.Next() {
			seq++
			if err := store.Append(ctx, id, 1, session.Stored{Seq: seq, Type: resocket.MessageBinary, Data: data}); err != nil {
				b.Error(err)
				return
			}
			if seq%64 == 0 {
				if err := store.Ack(ctx, id, 1, seq); err != nil {
					b.Error(err)
					return
				}
				if err := store.SetReceived(ctx, id, 1, seq); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
}
