package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
)

// DefaultPrefix starts every key of a Store whose Options.Prefix is empty.
const DefaultPrefix = "resocket:session:"

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Prefix starts the name of every key the Store writes, so that
	// several applications (or tests) can share one Redis; "" means
	// DefaultPrefix.
	Prefix string
}

// Store is a session.Store kept in Redis; see the package documentation.
// It is safe for concurrent use, and a method that returns nil has had
// its write applied by Redis (durable as far as Redis's own persistence
// settings make it).
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ session.Store = (*Store)(nil)

// New returns a Store that keeps sessions in the Redis rdb reaches: a
// single node, a Sentinel group or a Cluster. The Store does not close
// rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: opts.Prefix}
}

// keys returns the session's hash and message list. The braces are a
// hash tag: Redis Cluster keeps both on the slot of the ID, so that one
// script may touch both.
func (s *Store) keys(id string) []string {
	base := s.prefix + "{" + id + "}"
	return []string{base + ":meta", base + ":msgs"}
}

// Script results of the writes: ok, or why not.
const (
	resOK       = 1
	resNotFound = 0
	resMoved    = -1
	resBadSeq   = -2
)

// The scripts. KEYS[1] is the session's hash (fields secret, owner,
// received, sent, acked; owner as decimal text, since Lua numbers are
// doubles and an owner is 64 random bits), KEYS[2] its list of pending
// messages, each the message type's byte then the data. Counters stay
// exact in Lua up to 2^53 messages.
//
// owned is the prologue of every write: it returns early unless the
// session exists and ARGV[1] owns it.
const owned = `
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if owner ~= ARGV[1] then return -1 end
`

// pexpireBoth gives the list the hash's remaining TTL (the list may have
// just been created, or recreated after a trim emptied it).
const pexpireBoth = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
`

var (
	// ARGV: secret hash, owner, ttl ms. Any list left by an earlier
	// session of the same ID (which cannot outlive its hash unless a
	// write raced its expiry) goes.
	createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'secret', ARGV[1], 'owner', ARGV[2], 'received', 0, 'sent', 0, 'acked', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

	// ARGV: the new owner, or "" to only read. Returns false for a
	// session Redis does not have, else {secret, owner, received, sent,
	// acked, message...}.
	loadScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'secret', 'owner', 'received', 'sent', 'acked')
if not f[2] then return false end
if ARGV[1] ~= '' then
	redis.call('HSET', KEYS[1], 'owner', ARGV[1])
	f[2] = ARGV[1]
end
local msgs = redis.call('LRANGE', KEYS[2], 0, -1)
for i = 1, #msgs do f[5 + i] = msgs[i] end
return f
`)

	// ARGV: owner, seq, message.
	appendScript = redis.NewScript(owned + `
local sent = tonumber(redis.call('HGET', KEYS[1], 'sent'))
if tonumber(ARGV[2]) ~= sent + 1 then return {-2, sent} end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'sent', ARGV[2])
` + pexpireBoth + `
return 1
`)

	// ARGV: owner, n.
	ackScript = redis.NewScript(owned + `
local f = redis.call('HMGET', KEYS[1], 'sent', 'acked')
local sent, acked, n = tonumber(f[1]), tonumber(f[2]), tonumber(ARGV[2])
if n > sent then return {-2, sent} end
if n > acked then
	redis.call('LTRIM', KEYS[2], n - acked, -1)
	redis.call('HSET', KEYS[1], 'acked', ARGV[2])
end
return 1
`)

	// ARGV: owner, n.
	receivedScript = redis.NewScript(owned + `
local received = tonumber(redis.call('HGET', KEYS[1], 'received'))
if tonumber(ARGV[2]) > received then redis.call('HSET', KEYS[1], 'received', ARGV[2]) end
return 1
`)

	// ARGV: owner, ttl ms.
	touchScript = redis.NewScript(owned + `
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

	// ARGV: owner.
	deleteScript = redis.NewScript(owned + `
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)
)

// Create stores a new session owned by owner, kept ttl. It fails if the
// ID is taken.
func (s *Store) Create(ctx context.Context, id string, secretHash []byte, owner uint64, ttl time.Duration) error {
	n, err := createScript.Run(ctx, s.rdb, s.keys(id), secretHash, fmtOwner(owner), ms(ttl)).Int()
	if err != nil {
		return fmt.Errorf("redisstore: create %s: %w", id, err)
	}
	if n != resOK {
		return fmt.Errorf("redisstore: create %s: the session exists", id)
	}
	return nil
}

// Load returns the session's record, or an error wrapping
// session.ErrNotFound.
func (s *Store) Load(ctx context.Context, id string) (session.Record, error) {
	return s.load(ctx, id, "")
}

// Claim makes owner the session's owner and returns its record as of the
// claim, in one step: a write by the owner before fails from then on
// with an error wrapping session.ErrMoved.
func (s *Store) Claim(ctx context.Context, id string, owner uint64) (session.Record, error) {
	return s.load(ctx, id, fmtOwner(owner))
}

func (s *Store) load(ctx context.Context, id, newOwner string) (session.Record, error) {
	vals, err := loadScript.Run(ctx, s.rdb, s.keys(id), newOwner).Slice()
	if errors.Is(err, redis.Nil) {
		return session.Record{}, fmt.Errorf("redisstore: %s: %w", id, session.ErrNotFound)
	}
	if err != nil {
		return session.Record{}, fmt.Errorf("redisstore: load %s: %w", id, err)
	}
	rec, err := parseRecord(vals)
	if err != nil {
		return session.Record{}, fmt.Errorf("redisstore: load %s: %w", id, err)
	}
	return rec, nil
}

// parseRecord reads loadScript's answer.
func parseRecord(vals []any) (session.Record, error) {
	if len(vals) < 5 {
		return session.Record{}, fmt.Errorf("record of %d fields", len(vals))
	}
	str := make([]string, 5)
	for i := range str {
		v, ok := vals[i].(string)
		if !ok {
			return session.Record{}, fmt.Errorf("field %d is %T", i, vals[i])
		}
		str[i] = v
	}
	var rec session.Record
	rec.SecretHash = []byte(str[0])
	nums := []*uint64{&rec.Owner, &rec.Received, &rec.Sent, &rec.Acked}
	for i, p := range nums {
		n, err := strconv.ParseUint(str[i+1], 10, 64)
		if err != nil {
			return session.Record{}, fmt.Errorf("field %d: %w", i+1, err)
		}
		*p = n
	}
	msgs := vals[5:]
	if uint64(len(msgs)) != rec.Sent-rec.Acked {
		return session.Record{}, fmt.Errorf("%d pending messages, want %d", len(msgs), rec.Sent-rec.Acked)
	}
	if len(msgs) > 0 {
		rec.Pending = make([]session.Stored, len(msgs))
	}
	for i, v := range msgs {
		m, ok := v.(string)
		if !ok || m == "" {
			return session.Record{}, fmt.Errorf("malformed message %d", i)
		}
		rec.Pending[i] = session.Stored{Seq: rec.Acked + uint64(i) + 1, //nolint:gosec // i >= 0
			Type: resocket.MessageType(m[0]), Data: []byte(m[1:])}
	}
	return rec, nil
}

// Append keeps message m, which must be numbered Sent+1, and gives the
// session's keys their TTL again (the message list may be new).
func (s *Store) Append(ctx context.Context, id string, owner uint64, m session.Stored) error {
	enc, err := encode(m)
	if err != nil {
		return fmt.Errorf("redisstore: append to %s: %w", id, err)
	}
	return s.write(ctx, "append to", id, appendScript, fmtOwner(owner), strconv.FormatUint(m.Seq, 10), enc)
}

// Ack drops the messages numbered up to n. An n beyond the last message
// appended is an error; one at or below the last ack does nothing.
func (s *Store) Ack(ctx context.Context, id string, owner uint64, n uint64) error {
	return s.write(ctx, "ack of", id, ackScript, fmtOwner(owner), strconv.FormatUint(n, 10))
}

// SetReceived records that the application has the client's first n
// messages; a lower n than recorded does nothing.
func (s *Store) SetReceived(ctx context.Context, id string, owner uint64, n uint64) error {
	return s.write(ctx, "received of", id, receivedScript, fmtOwner(owner), strconv.FormatUint(n, 10))
}

// Touch keeps the session ttl from now.
func (s *Store) Touch(ctx context.Context, id string, owner uint64, ttl time.Duration) error {
	return s.write(ctx, "touch of", id, touchScript, fmtOwner(owner), ms(ttl))
}

// Delete ends the session for good: both its keys go.
func (s *Store) Delete(ctx context.Context, id string, owner uint64) error {
	return s.write(ctx, "delete of", id, deleteScript, fmtOwner(owner))
}

// write runs one of the owner-checked scripts and turns its answer into
// an error: session.ErrNotFound, session.ErrMoved, or a numbering error.
func (s *Store) write(ctx context.Context, what, id string, script *redis.Script, args ...any) error {
	res, err := script.Run(ctx, s.rdb, s.keys(id), args...).Result()
	if err != nil {
		return fmt.Errorf("redisstore: %s %s: %w", what, id, err)
	}
	return answer(what, id, args, res)
}

// answer turns an owner-checked script's answer into an error:
// session.ErrNotFound, session.ErrMoved, or a numbering error.
func answer(what, id string, args []any, res any) error {
	switch v := res.(type) {
	case int64:
		switch v {
		case resOK:
			return nil
		case resNotFound:
			return fmt.Errorf("redisstore: %s %s: %w", what, id, session.ErrNotFound)
		case resMoved:
			return fmt.Errorf("redisstore: %s %s: %w", what, id, session.ErrMoved)
		}
	case []any:
		if len(v) == 2 && v[0] == int64(resBadSeq) {
			return fmt.Errorf("redisstore: %s %s: %v with %v sent", what, id, args[1], v[1])
		}
	}
	return fmt.Errorf("redisstore: %s %s: unexpected answer %v", what, id, res)
}

func fmtOwner(owner uint64) string { return strconv.FormatUint(owner, 10) }

// ms is a TTL in whole milliseconds, at least one: PEXPIRE with 0 would
// delete the key at once.
func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// encode is a message as the list keeps it: its type's byte, then its
// data.
func encode(m session.Stored) ([]byte, error) {
	if m.Type < 0 || m.Type > 255 {
		return nil, fmt.Errorf("message type %d", int(m.Type))
	}
	enc := make([]byte, 1+len(m.Data))
	enc[0] = byte(m.Type)
	copy(enc[1:], m.Data)
	return enc, nil
}
