package session

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/resocket/resocket/internal/fifo"
)

// NewMemoryStore returns a Store that keeps sessions in this process's
// memory: what a single-node server, or a test, needs. Sessions outlive a
// Server (a restart within the process) but not the process.
func NewMemoryStore() Store {
	return &memoryStore{}
}

// memoryStore keeps each session's record under a lock of its own, found
// in a sync.Map: a session's per-message calls (Append, Ack, SetReceived)
// take no lock that another session's take too. One lock for the whole
// Store serialized every message of every session on the server.
type memoryStore struct {
	sessions sync.Map // session ID → *memRecord

	createMu  sync.Mutex // Creates one at a time: two of one ID cannot both succeed
	sweepMu   sync.Mutex
	lastSweep time.Time
}

type memRecord struct {
	mu      sync.Mutex
	Record  // Pending unused: pending holds the messages
	pending fifo.Queue[Stored]
	expires time.Time
	// gone: deleted, or found expired and taken out of the map; a call
	// that found the record before that finds ErrNotFound
	gone bool
}

func (*memoryStore) nonBlocking() {}

func (m *memoryStore) Create(_ context.Context, id string, secretHash []byte, owner uint64, ttl time.Duration) error {
	m.createMu.Lock()
	defer m.createMu.Unlock()
	now := time.Now()
	m.sweep(now)
	if r, err := m.lock(id, now); err == nil {
		r.mu.Unlock()
		return fmt.Errorf("session: %s exists", id)
	}
	m.sessions.Store(id, &memRecord{Record: Record{SecretHash: slices.Clone(secretHash), Owner: owner},
		expires: now.Add(ttl)})
	return nil
}

// sweep drops expired sessions, at most once a second, so that the map
// does not grow with sessions nobody resumes.
func (m *memoryStore) sweep(now time.Time) {
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	if now.Sub(m.lastSweep) < time.Second {
		return
	}
	m.lastSweep = now
	m.sessions.Range(func(id, v any) bool {
		r := v.(*memRecord)
		r.mu.Lock()
		if !now.Before(r.expires) {
			m.dropLocked(id.(string), r)
		}
		r.mu.Unlock()
		return true
	})
}

// lock returns the live record of id, locked: the caller unlocks it
// (r.mu.Unlock). With a zero now it does not read the clock: the owner's
// per-message calls skip it, which cost a stream 70 ns a message on the
// machine of docs/performance.md. The owner renews the TTL while it
// serves the session, and a call that races the expiry is one that came
// just before it: a later Load finds the record expired all the same.
func (m *memoryStore) lock(id string, now time.Time) (*memRecord, error) {
	v, ok := m.sessions.Load(id)
	if !ok {
		return nil, ErrNotFound
	}
	r := v.(*memRecord)
	r.mu.Lock()
	switch {
	case r.gone:
	case !now.IsZero() && !now.Before(r.expires):
		m.dropLocked(id, r)
	default:
		return r, nil
	}
	r.mu.Unlock()
	return nil, ErrNotFound
}

// dropLocked takes r, locked, out of the Store for good.
func (m *memoryStore) dropLocked(id string, r *memRecord) {
	r.gone = true
	m.sessions.CompareAndDelete(id, r)
}

// owned returns the record of id, locked, if owner still owns it; now as
// for lock.
func (m *memoryStore) owned(id string, owner uint64, now time.Time) (*memRecord, error) {
	r, err := m.lock(id, now)
	if err != nil {
		return nil, err
	}
	if r.Owner != owner {
		r.mu.Unlock()
		return nil, ErrMoved
	}
	return r, nil
}

func (r *memRecord) snapshot() Record {
	out := r.Record
	out.SecretHash = slices.Clone(r.SecretHash)
	out.Pending = slices.Clone(r.pending.Items())
	return out
}

func (m *memoryStore) Load(_ context.Context, id string) (Record, error) {
	r, err := m.lock(id, time.Now())
	if err != nil {
		return Record{}, err
	}
	defer r.mu.Unlock()
	return r.snapshot(), nil
}

func (m *memoryStore) Claim(_ context.Context, id string, owner uint64) (Record, error) {
	r, err := m.lock(id, time.Now())
	if err != nil {
		return Record{}, err
	}
	defer r.mu.Unlock()
	r.Owner = owner
	return r.snapshot(), nil
}

func (m *memoryStore) Append(_ context.Context, id string, owner uint64, s Stored) error {
	r, err := m.owned(id, owner, time.Time{})
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if s.Seq != r.Sent+1 {
		return fmt.Errorf("session: append of %d after %d", s.Seq, r.Sent)
	}
	// Kept as given, not copied: a Session hands the Store a copy of its
	// own, which it never modifies (and Load shares it likewise).
	r.pending.Push(s)
	r.Sent = s.Seq
	return nil
}

func (m *memoryStore) Ack(_ context.Context, id string, owner uint64, n uint64) error {
	r, err := m.owned(id, owner, time.Time{})
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if n > r.Sent {
		return fmt.Errorf("session: ack of %d, %d sent", n, r.Sent)
	}
	if n > r.Acked {
		r.pending.DropFront(int(n - r.Acked)) //nolint:gosec // n <= Sent: at most the messages held
		r.Acked = n
	}
	return nil
}

func (m *memoryStore) SetReceived(_ context.Context, id string, owner uint64, n uint64) error {
	r, err := m.owned(id, owner, time.Time{})
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	r.Received = max(r.Received, n)
	return nil
}

func (m *memoryStore) Touch(_ context.Context, id string, owner uint64, ttl time.Duration) error {
	now := time.Now()
	r, err := m.owned(id, owner, now)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	r.expires = now.Add(ttl)
	r.pending.Trim(queueKeep) // a Touch comes every third of the TTL, and at a disconnect
	return nil
}

func (m *memoryStore) Delete(_ context.Context, id string, owner uint64) error {
	r, err := m.owned(id, owner, time.Now())
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	m.dropLocked(id, r)
	return nil
}
