package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
	"github.com/resocket/resocket/session/internal/storetest"
	"github.com/resocket/resocket/session/redisstore"
)

// client returns a go-redis client of the test's redis-server, closed
// when the test ends.
func client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// prefix is a key prefix of the test's own.
func prefix(tb testing.TB) string { return "test:" + storetest.ID(tb) + ":" }

// The Store contract, as session's tests run it against NewMemoryStore.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store {
		return redisstore.New(client(t), redisstore.Options{Prefix: prefix(t)})
	})
}

// Every key of a session has the session's TTL, set by each write, and
// Delete removes them all: nothing outlives a session in Redis.
func TestKeysExpireTogether(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := client(t)
	p := prefix(t)
	s := redisstore.New(rdb, redisstore.Options{Prefix: p})
	const owner = 7
	require.NoError(t, s.Create(ctx, "a", []byte("h"), owner, time.Minute))
	for seq := uint64(1); seq <= 3; seq++ {
		require.NoError(t, s.Append(ctx, "a", owner, session.Stored{Seq: seq, Type: resocket.MessageText, Data: []byte("x")}))
	}
	keys, err := rdb.Keys(ctx, p+"*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{p + "{a}:meta", p + "{a}:msgs"}, keys, "two keys, one hash tag")
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, 50*time.Second, k)
	}
	require.NoError(t, s.Touch(ctx, "a", owner, time.Hour))
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, 50*time.Minute, k)
	}
	require.NoError(t, s.Delete(ctx, "a", owner))
	n, err := rdb.Exists(ctx, keys...).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// Errors of Redis itself are neither ErrNotFound nor ErrMoved: a Server
// refuses the handshake (503) instead of starting a new session.
func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: closedPort(t), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstore.New(rdb, redisstore.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.Load(ctx, "x")
	require.Error(t, err)
	assert.False(t, errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrMoved), err)
	err = s.Append(ctx, "x", 1, session.Stored{Seq: 1, Type: resocket.MessageText})
	require.Error(t, err)
	assert.False(t, errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrMoved), err)
}

func Example() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	defer rdb.Close()
	srv := session.NewServer(session.Options{
		Store:         redisstore.New(rdb, redisstore.Options{Prefix: "chat:session:"}),
		ResumeTimeout: time.Minute,
	}, func(s *session.Session) {
		for {
			typ, data, err := s.Receive(context.Background())
			if err != nil {
				return // ended, or taken over by another server of the fleet
			}
			if err := s.Send(context.Background(), typ, data); err != nil {
				return
			}
		}
	})
	_ = srv // mount it: http.Handle("/ws", srv)
}

// BenchmarkStore measures the Store's writes against the test's
// redis-server on loopback: Append then Ack, one message at a time, as a
// Session makes them. Parallel runs many sessions at once over the
// client's pool; Pipelined sends each batch of 64 appends (then one ack)
// in one round trip, with the Store's scripts in a go-redis pipeline.
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	data := []byte(strings.Repeat("x", 64))
	newSession := func(b *testing.B, s *redisstore.Store) string {
		id := storetest.ID(b)
		require.NoError(b, s.Create(ctx, id, []byte("h"), 1, time.Minute))
		return id
	}
	b.Run("AppendAck", func(b *testing.B) {
		s := redisstore.New(client(b), redisstore.Options{Prefix: prefix(b)})
		id := newSession(b, s)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		seq := uint64(0)
		for b.Loop() {
			seq++
			if err := s.Append(ctx, id, 1, session.Stored{Seq: seq, Type: resocket.MessageBinary, Data: data}); err != nil {
				b.Fatal(err)
			}
			if err := s.Ack(ctx, id, 1, seq); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("AppendAckParallel", func(b *testing.B) {
		s := redisstore.New(client(b), redisstore.Options{Prefix: prefix(b)})
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		b.SetParallelism(8) // 16 sessions on 2 cores: go-redis's pool is 10 per core
		b.RunParallel(func(pb *testing.PB) {
			id := newSession(b, s)
			seq := uint64(0)
			for pb.Next() {
				seq++
				if err := s.Append(ctx, id, 1, session.Stored{Seq: seq, Type: resocket.MessageBinary, Data: data}); err != nil {
					b.Error(err)
					return
				}
				if err := s.Ack(ctx, id, 1, seq); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("Pipelined64", func(b *testing.B) {
		rdb := client(b)
		s := redisstore.New(rdb, redisstore.Options{Prefix: prefix(b)})
		id := newSession(b, s)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		const batch = 64
		seq := uint64(0)
		for b.Loop() {
			// b.Loop runs once per message; a batch goes out on its 64th,
			// as one pipeline.
			seq++
			if seq%batch != 0 {
				continue
			}
			if err := s.Pipelined(ctx, func(p *redisstore.Pipeline) {
				for k := seq - batch + 1; k <= seq; k++ {
					p.Append(id, 1, session.Stored{Seq: k, Type: resocket.MessageBinary, Data: data})
				}
				p.Ack(id, 1, seq)
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
