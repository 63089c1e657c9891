package main

import (
	"github.com/cenkalti/backoff/v4"
	"github.com/resocket/resocket"
)

// codePolicy returns a Policy that decides the close codes in the three
// lists itself and leaves everything else, refused handshakes included, to
// resocket.DefaultPolicy. A code in reconnect keeps the default's MinDelay
// when the default reconnects too (1013 waits at least 5 s).
func codePolicy(giveUp, stop, reconnect []resocket.StatusCode) resocket.Policy {
	actions := make(map[resocket.StatusCode]resocket.Action)
	for _, c := range giveUp {
		actions[c] = resocket.GiveUp
	}
	for _, c := range stop {
		actions[c] = resocket.Stop
	}
	for _, c := range reconnect {
		actions[c] = resocket.Reconnect
	}
	return func(d resocket.Disconnect) resocket.Decision {
		def := resocket.DefaultPolicy(d)
		if d.HTTPStatus != 0 {
			return def
		}
		a, ok := actions[d.Code]
		if !ok || a == def.Action {
			return def
		}
		return resocket.Decision{Action: a}
	}
}

// backoffFor returns the Config.Backoff for -max-attempts: the default
// backoff, stopped after n consecutive attempts that failed or did not stay
// up; nil (the default, never stopping) for 0.
func backoffFor(n uint) func() backoff.BackOff {
	if n == 0 {
		return nil
	}
	// The client asks the backoff for a delay after each failed attempt,
	// so n attempts mean n-1 retries: the n-th failure gets backoff.Stop
	// and the client gives up. WithMaxRetries(b, 0) stops at once.
	return func() backoff.BackOff {
		return backoff.WithMaxRetries(resocket.DefaultBackoff(), uint64(n-1))
	}
}
