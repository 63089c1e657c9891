package session

import (
	"context"
	"errors"
	"time"

	"github.com/resocket/resocket"
)

// Store keeps sessions between connections, and across Server processes
// when they share it. Every write names the owner that makes it: the
// Server that claimed the session last. A write by an earlier owner fails
// with an error wrapping ErrMoved, so that two Servers never number or
// receive for the same session at once. Implementations must be safe for
// concurrent use, and a method that returns nil must have made its write
// durable to the degree the Store promises (NewMemoryStore: this process).
type Store interface {
	// Create stores a new session, owned by owner, kept ttl.
	Create(ctx context.Context, id string, secretHash []byte, owner uint64, ttl time.Duration) error
	// Load returns the session's record; ErrNotFound when the Store does
	// not have it (it never had, it expired, or it was deleted).
	Load(ctx context.Context, id string) (Record, error)
	// Claim makes owner the session's owner and returns its record as of
	// the claim; ErrNotFound as Load.
	Claim(ctx context.Context, id string, owner uint64) (Record, error)
	// Append keeps message m, numbered the next after Record.Sent. It may
	// keep m.Data itself: the caller (a Session) hands over a copy of its
	// own and never modifies it; Load's and Claim's Pending may share it
	// likewise, and must not be modified either.
	Append(ctx context.Context, id string, owner uint64, m Stored) error
	// Ack drops the messages numbered up to n: the client has them.
	Ack(ctx context.Context, id string, owner uint64, n uint64) error
	// SetReceived records that the first n of the client's messages have
	// been received by the application.
	SetReceived(ctx context.Context, id string, owner uint64, n uint64) error
	// Touch keeps the session ttl from now.
	Touch(ctx context.Context, id string, owner uint64, ttl time.Duration) error
	// Delete ends the session for good.
	Delete(ctx context.Context, id string, owner uint64) error
}

// nonBlockingStore is a Store whose calls never wait, neither on I/O nor
// on a Session (NewMemoryStore's): a Session calls it under its own
// mutex, in one step with its own bookkeeping, instead of around it.
type nonBlockingStore interface {
	Store
	nonBlocking()
}

// Record is a session as a Store keeps it.
type Record struct {
	SecretHash []byte // SHA-256 of the secret: the secret itself is never stored
	Owner      uint64
	Received   uint64   // the client's messages received by the application
	Sent       uint64   // the number of the last message appended
	Acked      uint64   // the server's messages the client has acknowledged
	Pending    []Stored // numbered Acked+1 to Sent, in order
}

// Stored is one of the server's messages, kept until the client
// acknowledges it.
type Stored struct {
	Seq  uint64
	Type resocket.MessageType
	Data []byte
}

var (
	// ErrNotFound is returned by a Store for a session it does not have.
	ErrNotFound = errors.New("session: not found")
	// ErrMoved is returned by a Store to an owner that another Server has
	// replaced, and by a Session's methods once that happened.
	ErrMoved = errors.New("session: taken over by another server")
	// ErrClosed is returned by a Session's methods once the session has
	// ended: the client closed it, it expired, or serve returned.
	ErrClosed = errors.New("session: closed")
	// ErrServerClosed is returned by a Session's methods after Shutdown.
	ErrServerClosed = errors.New("session: server shut down")
)
