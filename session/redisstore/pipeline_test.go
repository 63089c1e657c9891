package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
	"github.com/resocket/resocket/session/internal/storetest"
	"github.com/resocket/resocket/session/redisstore"
)

func stored(seq uint64) session.Stored {
	return session.Stored{Seq: seq, Type: resocket.MessageBinary, Data: fmt.Appendf(nil, "p%d", seq)}
}

// Pipelined applies a batch in order, as the methods one by one would,
// and reports the first failure with the same meaning.
func TestPipelined(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := client(t)
	s := redisstore.New(rdb, redisstore.Options{Prefix: prefix(t)})
	id := storetest.ID(t)
	require.NoError(t, s.Create(ctx, id, []byte("h"), 1, time.Minute))

	// Redis forgets its scripts (a restart would too): the batch loads
	// them and goes through, nothing applied twice.
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	require.NoError(t, s.Pipelined(ctx, func(p *redisstore.Pipeline) {
		for seq := uint64(1); seq <= 5; seq++ {
			p.Append(id, 1, stored(seq))
		}
		p.Ack(id, 1, 3)
		p.SetReceived(id, 1, 9)
	}))
	rec, err := s.Load(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, []session.Stored{stored(4), stored(5)}, rec.Pending)
	assert.Equal(t, uint64(5), rec.Sent)
	assert.Equal(t, uint64(3), rec.Acked)
	assert.Equal(t, uint64(9), rec.Received)

	require.NoError(t, s.Pipelined(ctx, func(*redisstore.Pipeline) {}), "an empty batch")

	err = s.Pipelined(ctx, func(p *redisstore.Pipeline) {
		p.Append(id, 1, stored(6))
		p.Append(id, 1, stored(8)) // a gap: fails, and so does the one after
		p.Append(id, 1, stored(9))
	})
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrMoved)
	rec, err = s.Load(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), rec.Sent, "the writes before the failed one stay")

	_, err = s.Claim(ctx, id, 2)
	require.NoError(t, err)
	err = s.Pipelined(ctx, func(p *redisstore.Pipeline) { p.Append(id, 1, stored(7)) })
	assert.ErrorIs(t, err, session.ErrMoved)
	err = s.Pipelined(ctx, func(p *redisstore.Pipeline) { p.Ack(id, 2, 6) })
	require.NoError(t, err)
	err = s.Pipelined(ctx, func(p *redisstore.Pipeline) { p.Ack(storetest.ID(t), 2, 0) })
	assert.ErrorIs(t, err, session.ErrNotFound)
	err = s.Pipelined(ctx, func(p *redisstore.Pipeline) {
		p.Append(id, 2, session.Stored{Seq: 7, Type: resocket.MessageType(300)})
	})
	assert.Error(t, err, "a message type that is not a byte")
}
