// Package redisstore is a session.Store kept in Redis, so that a fleet of
// session.Servers shares its sessions: a client whose server died resumes
// on another one, with nothing lost and nothing repeated.
//
// It is a module of its own, so that go-redis stays out of the SDK's
// go.mod. Each session is two keys with one hash tag (so a Redis Cluster
// keeps them on one slot): a hash with the session's secret hash, owner
// and counters, and a list of the messages the client has not yet
// acknowledged. Every method is one Lua script, run atomically by Redis:
// the owner check and the write are one step, and every write sets the
// TTL of both keys, so a session Redis no longer has is ErrNotFound
// whichever key went first.
package redisstore
