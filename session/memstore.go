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
	return &memoryStore{sessions: make(map[string]*memRecord)}
}

type memoryStore struct {
	mu        sync.Mutex
	sessions  map[string]*memRecord
	lastSweep time.Time
}

func (*memoryStore) nonBlocking() {}

type memRecord struct {
	Record  // Pending unused: pending holds the messages
	pending fifo.Queue[Stored]
	expires time.Time
}

func (m *memoryStore) Create(_ context.Context, id string, secretHash []byte, owner uint64, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.sweepLocked(now)
	if r, ok := m.sessions[id]; ok && now.Before(r.expires) {
		return fmt.Errorf("session: %s exists", id)
	}
	m.sessions[id] = &memRecord{Record: Record{SecretHash: slices.Clone(secretHash), Owner: owner},
		expires: now.Add(ttl)}
	return nil
}

// sweepLocked drops expired sessions, at most once a second, so that the
// map does not grow with sessions nobody resumes.
func (m *memoryStore) sweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < time.Second {
		return
	}
	m.lastSweep = now
	for id, r := range m.sessions {
		if !now.Before(r.expires) {
			delete(m.sessions, id)
		}
	}
}

// get returns the live record of id; the caller holds mu.
func (m *memoryStore) get(id string) (*memRecord, error) {
	r, ok := m.sessions[id]
	if !ok {
		return nil, ErrNotFound
	}
	if !time.Now().Before(r.expires) {
		delete(m.sessions, id)
		return nil, ErrNotFound
	}
	return r, nil
}

// owned returns the record of id if owner still owns it.
func (m *memoryStore) owned(id string, owner uint64) (*memRecord, error) {
	r, err := m.get(id)
	if err != nil {
		return nil, err
	}
	if r.Owner != owner {
		return nil, ErrMoved
	}
	return r, nil
}

// serving returns the record of id for its owner's per-message calls
// (Append, Ack, SetReceived) without reading the clock, which cost a
// stream 70 ns a message on the machine of docs/performance.md. The
// owner renews the TTL while it serves the session, and a call that
// races the expiry is one that came just before it: a later Load finds
// the record expired all the same.
func (m *memoryStore) serving(id string, owner uint64) (*memRecord, error) {
	r, ok := m.sessions[id]
	switch {
	case !ok:
		return nil, ErrNotFound
	case r.Owner != owner:
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
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return Record{}, err
	}
	return r.snapshot(), nil
}

func (m *memoryStore) Claim(_ context.Context, id string, owner uint64) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return Record{}, err
	}
	r.Owner = owner
	return r.snapshot(), nil
}

func (m *memoryStore) Append(_ context.Context, id string, owner uint64, s Stored) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.serving(id, owner)
	if err != nil {
		return err
	}
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
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.serving(id, owner)
	if err != nil {
		return err
	}
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
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.serving(id, owner)
	if err != nil {
		return err
	}
	r.Received = max(r.Received, n)
	return nil
}

func (m *memoryStore) Touch(_ context.Context, id string, owner uint64, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.owned(id, owner)
	if err != nil {
		return err
	}
	r.expires = time.Now().Add(ttl)
	r.pending.Trim(queueKeep) // a Touch comes every third of the TTL, and at a disconnect
	return nil
}

func (m *memoryStore) Delete(_ context.Context, id string, owner uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.owned(id, owner); err != nil {
		return err
	}
	delete(m.sessions, id)
	return nil
}
