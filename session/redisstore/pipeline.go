package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/resocket/resocket/session"
)

// Pipeline queues writes of a Store for Pipelined, which sends them to
// Redis in one round trip. Its methods only queue: the errors come from
// Pipelined.
type Pipeline struct {
	s    *Store
	ops  []op
	errs []error // of ops that could not be queued
}

// op is one queued write: its script and arguments, and what to call it
// in an error.
type op struct {
	script *redis.Script
	keys   []string
	args   []any
	what   string
	id     string
}

// Append queues Store.Append of m.
func (p *Pipeline) Append(id string, owner uint64, m session.Stored) {
	enc, err := encode(m)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("redisstore: append to %s: %w", id, err))
		return
	}
	p.add(appendScript, "append to", id, fmtOwner(owner), strconv.FormatUint(m.Seq, 10), enc)
}

// Ack queues Store.Ack.
func (p *Pipeline) Ack(id string, owner uint64, n uint64) {
	p.add(ackScript, "ack of", id, fmtOwner(owner), strconv.FormatUint(n, 10))
}

// SetReceived queues Store.SetReceived.
func (p *Pipeline) SetReceived(id string, owner uint64, n uint64) {
	p.add(receivedScript, "received of", id, fmtOwner(owner), strconv.FormatUint(n, 10))
}

func (p *Pipeline) add(script *redis.Script, what, id string, args ...any) {
	p.ops = append(p.ops, op{script: script, keys: p.s.keys(id), args: args, what: what, id: id})
}

// Pipelined calls fn to queue writes, then sends them in one round trip
// and returns the first error among them (nil if all went through), with
// the same meaning as the Store method's. Each write is atomic and they
// are applied in order; the batch as a whole is not a transaction: the
// writes before a failed one stay applied, and a failed Append makes the
// later ones of its session fail too (their numbers no longer follow).
// A server that sends in bursts uses it to make a burst durable at the
// cost of one round trip.
func (s *Store) Pipelined(ctx context.Context, fn func(p *Pipeline)) error {
	p := &Pipeline{s: s}
	fn(p)
	if len(p.errs) > 0 {
		return p.errs[0]
	}
	if len(p.ops) == 0 {
		return nil
	}
	cmds, err := s.exec(ctx, p.ops)
	errs := make([]error, len(cmds))
	noScript := false
	for i, c := range cmds {
		errs[i] = p.ops[i].result(c)
		noScript = noScript || isNoScript(c.Err())
	}
	if err != nil && noScript {
		// Redis lost its script cache (a restart, SCRIPT FLUSH): load the
		// scripts and send every write that failed again, in order. A
		// write that failed did nothing (each script checks before it
		// writes), so nothing is applied twice; an Ack that failed only
		// because the Appends before it met NOSCRIPT now goes through.
		for _, sc := range []*redis.Script{appendScript, ackScript, receivedScript} {
			if lerr := sc.Load(ctx, s.rdb).Err(); lerr != nil {
				return fmt.Errorf("redisstore: load script: %w", lerr)
			}
		}
		var again []op
		var at []int
		for i, e := range errs {
			if e != nil {
				again = append(again, p.ops[i])
				at = append(at, i)
			}
		}
		redo, _ := s.exec(ctx, again)
		for j, i := range at {
			errs[i] = again[j].result(redo[j])
		}
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// result is the outcome of o, sent as c.
func (o op) result(c *redis.Cmd) error {
	res, err := c.Result()
	if err != nil {
		return fmt.Errorf("redisstore: %s %s: %w", o.what, o.id, err)
	}
	return answer(o.what, o.id, o.args, res)
}

// exec sends ops in one pipeline as EVALSHA.
func (s *Store) exec(ctx context.Context, ops []op) ([]*redis.Cmd, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(ops))
	for i, o := range ops {
		cmds[i] = o.script.EvalSha(ctx, pipe, o.keys, o.args...)
	}
	_, err := pipe.Exec(ctx)
	return cmds, err
}

func isNoScript(err error) bool {
	var rerr redis.Error
	return err != nil && errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOSCRIPT")
}
