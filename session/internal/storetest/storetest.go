// Package storetest is the contract every session.Store meets, as a test
// suite that each implementation's tests run: session's own for
// NewMemoryStore, session/redisstore's for Redis.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
)

// Owners the tests write as; large, so that a Store that keeps them in
// floating point (Lua's numbers) would confuse them.
const (
	ownerA uint64 = 0xfedcba9876543210
	ownerB uint64 = 0xfedcba9876543211
)

// long is a TTL no test outlives; short, one that a test waits out.
const (
	long  = time.Hour
	short = 150 * time.Millisecond
)

// Run runs the contract against the Store newStore returns; each subtest
// gets its own (or one that has none of the others' sessions).
func Run(t *testing.T, newStore func(t *testing.T) session.Store) {
	t.Run("CreateLoad", func(t *testing.T) { testCreateLoad(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore(t)) })
	t.Run("AppendInOrder", func(t *testing.T) { testAppendInOrder(t, newStore(t)) })
	t.Run("AckTrims", func(t *testing.T) { testAckTrims(t, newStore(t)) })
	t.Run("SetReceived", func(t *testing.T) { testSetReceived(t, newStore(t)) })
	t.Run("ClaimMoves", func(t *testing.T) { testClaimMoves(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newStore(t)) })
	t.Run("TouchKeeps", func(t *testing.T) { testTouchKeeps(t, newStore(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { testConcurrentClaims(t, newStore(t)) })
}

// ID returns a new random session ID, as a Server makes them.
func ID(t testing.TB) string {
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// msg is message seq as the tests append it.
func msg(seq uint64) session.Stored {
	typ := resocket.MessageText
	if seq%2 == 0 {
		typ = resocket.MessageBinary
	}
	return session.Stored{Seq: seq, Type: typ, Data: fmt.Appendf(nil, "m%06d\x00\xff", seq)}
}

// create makes a session owned by ownerA with n messages appended.
func create(t *testing.T, s session.Store, ttl time.Duration, n uint64) string {
	t.Helper()
	id := ID(t)
	require.NoError(t, s.Create(ctx(t), id, []byte("hash\x00of the secret"), ownerA, ttl))
	for seq := uint64(1); seq <= n; seq++ {
		require.NoError(t, s.Append(ctx(t), id, ownerA, msg(seq)))
	}
	return id
}

func pending(from, to uint64) []session.Stored {
	var out []session.Stored
	for seq := from; seq <= to; seq++ {
		out = append(out, msg(seq))
	}
	return out
}

func assertRecord(t *testing.T, want, got session.Record) {
	t.Helper()
	if len(want.Pending) == 0 && len(got.Pending) == 0 {
		want.Pending, got.Pending = nil, nil
	}
	assert.Equal(t, want, got)
}

func testCreateLoad(t *testing.T, s session.Store) {
	id := create(t, s, long, 0)
	rec, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	assertRecord(t, session.Record{SecretHash: []byte("hash\x00of the secret"), Owner: ownerA}, rec)
	assert.Error(t, s.Create(ctx(t), id, []byte("other"), ownerB, long), "an ID is created once")
	rec, err = s.Load(ctx(t), id)
	require.NoError(t, err)
	assert.Equal(t, ownerA, rec.Owner, "a refused Create changes nothing")
}

func testNotFound(t *testing.T, s session.Store) {
	id := ID(t)
	_, err := s.Load(ctx(t), id)
	assert.ErrorIs(t, err, session.ErrNotFound)
	_, err = s.Claim(ctx(t), id, ownerA)
	assert.ErrorIs(t, err, session.ErrNotFound)
	assert.ErrorIs(t, s.Append(ctx(t), id, ownerA, msg(1)), session.ErrNotFound)
	assert.ErrorIs(t, s.Ack(ctx(t), id, ownerA, 0), session.ErrNotFound)
	assert.ErrorIs(t, s.SetReceived(ctx(t), id, ownerA, 1), session.ErrNotFound)
	assert.ErrorIs(t, s.Touch(ctx(t), id, ownerA, long), session.ErrNotFound)
	assert.ErrorIs(t, s.Delete(ctx(t), id, ownerA), session.ErrNotFound)
	_, err = s.Load(ctx(t), id)
	assert.ErrorIs(t, err, session.ErrNotFound, "no write creates a session")
}

func testAppendInOrder(t *testing.T, s session.Store) {
	id := create(t, s, long, 3)
	require.NoError(t, s.Append(ctx(t), id, ownerA, msg(4))) // may keep m.Data: see Store.Append
	err := s.Append(ctx(t), id, ownerA, msg(6))
	require.Error(t, err, "a gap in the numbers")
	assert.NotErrorIs(t, err, session.ErrMoved)
	require.Error(t, s.Append(ctx(t), id, ownerA, msg(4)), "a number twice")
	require.Error(t, s.Append(ctx(t), id, ownerA, msg(0)), "a number from the past")
	rec, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), rec.Sent)
	assert.Equal(t, pending(1, 4), rec.Pending, "in order, as appended, refused ones absent")
}

func testAckTrims(t *testing.T, s session.Store) {
	id := create(t, s, long, 10)
	require.NoError(t, s.Ack(ctx(t), id, ownerA, 4))
	rec, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), rec.Acked)
	assert.Equal(t, pending(5, 10), rec.Pending)

	require.NoError(t, s.Ack(ctx(t), id, ownerA, 2), "an old ack does nothing")
	require.NoError(t, s.Ack(ctx(t), id, ownerA, 4), "nor does a repeated one")
	err = s.Ack(ctx(t), id, ownerA, 11)
	require.Error(t, err, "an ack beyond what was sent")
	assert.NotErrorIs(t, err, session.ErrMoved)
	rec, err = s.Load(ctx(t), id)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), rec.Acked)
	assert.Equal(t, pending(5, 10), rec.Pending)

	require.NoError(t, s.Ack(ctx(t), id, ownerA, 10))
	rec, err = s.Load(ctx(t), id)
	require.NoError(t, err)
	assert.Empty(t, rec.Pending)
	require.NoError(t, s.Append(ctx(t), id, ownerA, msg(11)), "numbering goes on after a full ack")
	rec, err = s.Load(ctx(t), id)
	require.NoError(t, err)
	assert.Equal(t, pending(11, 11), rec.Pending)
	assert.Equal(t, uint64(11), rec.Sent)
	assert.Equal(t, uint64(10), rec.Acked)
}

func testSetReceived(t *testing.T, s session.Store) {
	id := create(t, s, long, 0)
	require.NoError(t, s.SetReceived(ctx(t), id, ownerA, 5))
	require.NoError(t, s.SetReceived(ctx(t), id, ownerA, 3), "the watermark never goes back")
	rec, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	assert.Equal(t, uint64(5), rec.Received)
}

func testClaimMoves(t *testing.T, s session.Store) {
	id := create(t, s, long, 3)
	require.NoError(t, s.SetReceived(ctx(t), id, ownerA, 7))
	require.NoError(t, s.Ack(ctx(t), id, ownerA, 1))
	rec, err := s.Claim(ctx(t), id, ownerB)
	require.NoError(t, err)
	assertRecord(t, session.Record{SecretHash: []byte("hash\x00of the secret"), Owner: ownerB,
		Received: 7, Sent: 3, Acked: 1, Pending: pending(2, 3)}, rec)

	// Every write of the owner before fails, and changes nothing.
	assert.ErrorIs(t, s.Append(ctx(t), id, ownerA, msg(4)), session.ErrMoved)
	assert.ErrorIs(t, s.Ack(ctx(t), id, ownerA, 3), session.ErrMoved)
	assert.ErrorIs(t, s.SetReceived(ctx(t), id, ownerA, 9), session.ErrMoved)
	assert.ErrorIs(t, s.Touch(ctx(t), id, ownerA, long), session.ErrMoved)
	assert.ErrorIs(t, s.Delete(ctx(t), id, ownerA), session.ErrMoved)
	after, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	assertRecord(t, rec, after)

	// The new owner's go through.
	require.NoError(t, s.Append(ctx(t), id, ownerB, msg(4)))
	require.NoError(t, s.Ack(ctx(t), id, ownerB, 3))
	require.NoError(t, s.SetReceived(ctx(t), id, ownerB, 9))
	require.NoError(t, s.Touch(ctx(t), id, ownerB, long))
	after, err = s.Load(ctx(t), id)
	require.NoError(t, err)
	assertRecord(t, session.Record{SecretHash: []byte("hash\x00of the secret"), Owner: ownerB,
		Received: 9, Sent: 4, Acked: 3, Pending: pending(4, 4)}, after)

	// Claiming back works the same way round.
	_, err = s.Claim(ctx(t), id, ownerA)
	require.NoError(t, err)
	assert.ErrorIs(t, s.Append(ctx(t), id, ownerB, msg(5)), session.ErrMoved)
	require.NoError(t, s.Append(ctx(t), id, ownerA, msg(5)))
}

func testDelete(t *testing.T, s session.Store) {
	id := create(t, s, long, 2)
	require.NoError(t, s.Delete(ctx(t), id, ownerA))
	_, err := s.Load(ctx(t), id)
	assert.ErrorIs(t, err, session.ErrNotFound)
	assert.ErrorIs(t, s.Append(ctx(t), id, ownerA, msg(3)), session.ErrNotFound)
	require.NoError(t, s.Create(ctx(t), id, []byte("new"), ownerB, long), "a deleted ID is free")
	rec, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	assertRecord(t, session.Record{SecretHash: []byte("new"), Owner: ownerB}, rec)
}

// awaitGone waits, bounded, until the Store no longer has id.
func awaitGone(t *testing.T, s session.Store, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := s.Load(ctx(t), id)
		return err != nil
	}, 10*time.Second, 10*time.Millisecond, "session %s never expired", id)
	_, err := s.Load(ctx(t), id)
	require.ErrorIs(t, err, session.ErrNotFound)
}

func testExpiry(t *testing.T, s session.Store) {
	// Appends after Create keep the session's TTL: the messages expire
	// with it, and a new session of the same ID starts empty.
	id := create(t, s, short, 3)
	require.NoError(t, s.Ack(ctx(t), id, ownerA, 3))
	require.NoError(t, s.Append(ctx(t), id, ownerA, msg(4)))
	awaitGone(t, s, id)
	_, err := s.Claim(ctx(t), id, ownerB)
	assert.ErrorIs(t, err, session.ErrNotFound)
	assert.ErrorIs(t, s.Append(ctx(t), id, ownerA, msg(5)), session.ErrNotFound)
	assert.ErrorIs(t, s.Touch(ctx(t), id, ownerA, long), session.ErrNotFound, "Touch does not revive")
	require.NoError(t, s.Create(ctx(t), id, []byte("again"), ownerB, long))
	rec, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	assertRecord(t, session.Record{SecretHash: []byte("again"), Owner: ownerB}, rec)
}

func testTouchKeeps(t *testing.T, s session.Store) {
	kept := create(t, s, short, 2)
	gone := create(t, s, short, 2)
	require.NoError(t, s.Touch(ctx(t), kept, ownerA, long))
	awaitGone(t, s, gone) // created alongside: its TTL has run out
	rec, err := s.Load(ctx(t), kept)
	require.NoError(t, err, "touched: kept from the Touch on")
	assert.Equal(t, pending(1, 2), rec.Pending, "with its messages")
}

// testConcurrentClaims races owners claiming and appending: at any time
// one owner's appends go through, the numbers stay gapless, and every
// append that returned nil is in the record.
func testConcurrentClaims(t *testing.T, s session.Store) {
	id := create(t, s, long, 0)
	owners := []uint64{ownerA, ownerB, ownerB + 1}
	var mu sync.Mutex // serialises each owner's read of Sent with its append
	var appended []uint64
	var wg sync.WaitGroup
	for _, o := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				rec, err := s.Claim(context.Background(), id, o)
				if !assert.NoError(t, err) {
					return
				}
				next := rec.Sent + 1
				for range 3 {
					mu.Lock()
					err := s.Append(context.Background(), id, o, msg(next))
					if err == nil {
						appended = append(appended, next)
					}
					mu.Unlock()
					if err != nil {
						assert.ErrorIs(t, err, session.ErrMoved, "only a claim stops an owner")
						break
					}
					next++
				}
			}
		}()
	}
	wg.Wait()
	rec, err := s.Load(ctx(t), id)
	require.NoError(t, err)
	require.Len(t, rec.Pending, int(rec.Sent)) //nolint:gosec // a few hundred
	assert.Equal(t, pending(1, rec.Sent), rec.Pending, "gapless, in order")
	for i, seq := range appended {
		require.Equal(t, uint64(i+1), seq, "every nil append is kept, once") //nolint:gosec // i >= 0
	}
}
