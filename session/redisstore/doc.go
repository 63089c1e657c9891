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
// whichever key went first. Store.Pipelined sends a batch of writes in
// one round trip.
//
// What Redis must keep. Send returns nil once Redis has applied the
// Append: the message survives the server process, not Redis itself
// unless its persistence (appendonly, with appendfsync always for every
// write) says so, nor a failover to a replica that had not yet received
// it. Run it with maxmemory-policy noeviction: every key of a session has
// a TTL, so the volatile-* policies evict them too, and a policy that
// evicts one key of a live session leaves a record the Store refuses to
// load, a session that cannot be resumed.
package redisstore
