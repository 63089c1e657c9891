package resocket

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
)

// Defaults applied to zero Config fields.
const (
	DefaultSendBuffer   = 1024             // messages held while not connected
	DefaultEventBuffer  = 128              // capacity of the Events channel
	DefaultPingInterval = 25 * time.Second // between keepalive pings
	DefaultPongTimeout  = 15 * time.Second // after a ping, silence longer than this means dead
	DefaultCloseTimeout = 5 * time.Second  // bound on Close's handshake
	DefaultReadLimit    = 16 << 20         // 16 MiB: the largest message accepted
)

// DefaultStableAfter is how long a connection must stay up, by default,
// before the backoff and the attempt count reset.
const DefaultStableAfter = 5 * time.Second

// Config tunes a Client. The zero value is ready to use: each field's
// comment gives the meaning of its zero value. New copies the Config, so
// changing it afterwards has no effect.
type Config struct {
	// Header is sent on every handshake.
	Header http.Header
	// HeaderFunc, if set, is called before every attempt (to refresh a
	// token, say); what it returns is merged over Header, key by key. An
	// error fails the attempt, and the policy decides what follows.
	HeaderFunc func(ctx context.Context) (http.Header, error)
	// Subprotocols are offered in the handshake, in order of preference.
	Subprotocols []string
	// URLs are more endpoints of the same service. The client starts with
	// the URL given to New and moves to the next one (wrapping around)
	// after a failed attempt or a 1001 Going Away; nil means just the one.
	URLs []string
	// Dialer dials each connection; nil means a copy of
	// websocket.DefaultDialer with a pooled write buffer. The client
	// copies it and, for wss URLs, turns on TLS session resumption when
	// its TLSClientConfig has no ClientSessionCache.
	Dialer *websocket.Dialer
	// Policy decides, after every ended connection and failed attempt,
	// whether to reconnect, stop or give up; nil means DefaultPolicy.
	Policy Policy
	// Backoff builds the client's backoff; it is called once per client.
	// nil means DefaultBackoff. When it returns backoff.Stop the client
	// gives up with the last cause. The wait before a reconnect is its
	// delay, plus the Decision's MinDelay when that is set (so that
	// clients given the same Retry-After still spread out).
	Backoff func() backoff.BackOff
	// SendBuffer is how many messages Send holds while no connection is
	// open; 0 means DefaultSendBuffer, < 0 none (Send returns
	// ErrNotConnected while disconnected).
	SendBuffer int
	// EventBuffer is the capacity of the Events channel; 0 means
	// DefaultEventBuffer.
	EventBuffer int
	// PingInterval is the time between keepalive pings; 0 means
	// DefaultPingInterval, < 0 no keepalive.
	PingInterval time.Duration
	// PongTimeout: if nothing (a pong or any frame) arrives within this
	// long after a ping, the connection is dead: Disconnected with 1006
	// and ErrPongTimeout. 0 means DefaultPongTimeout.
	PongTimeout time.Duration
	// CloseTimeout bounds how long Close waits for the peer's close frame,
	// and for the Events reader to take the last events; 0 means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
	// ReadLimit is the largest message accepted; a larger one closes the
	// connection with 1009. 0 means DefaultReadLimit.
	ReadLimit int64
	// OnConnect, if set, runs on each fresh connection before the
	// messages buffered while disconnected are written; use conn.Send for
	// a handshake of your own (authentication, subscriptions). An error
	// fails the attempt, and the policy decides what follows.
	OnConnect func(ctx context.Context, conn *Conn) error
	// OnEvent, if set, receives every event on the client's own
	// goroutine, in order, instead of the Events channel, which then
	// carries nothing and just closes when the client ends. It saves the
	// goroutine handoff of a channel on every message (lower latency) and
	// lets a client run without a reader goroutine of its own. While it
	// runs nothing is read from the socket, so it must return promptly;
	// it may call any method of the client (see Close for what Close and
	// Terminate do from a callback).
	OnEvent func(Event)
	// Logger receives structured lifecycle logs; nil means silent.
	// Header values are never logged.
	Logger *slog.Logger
	// MaxConnectionAge, if set, replaces a connection older than this,
	// make-before-break: the next one is dialed and OnConnect has run on
	// it before the old one is closed (1000), so a connection is always
	// ready, and nothing sent meanwhile is lost, repeated or reordered.
	// Each age carries ±10 % jitter, so that a fleet does not rotate in
	// step. The new connection is reported by a Connected whose Replaced
	// names the old one; no Disconnected or Reconnecting. A rotation that
	// cannot open its connection keeps the old one and tries again after a
	// tenth of the age (logged, not an event); it never ends the client.
	// Use it to refresh credentials before they expire (HeaderFunc runs
	// for every rotation). 0 means never. With it, each connection is read
	// on a goroutine of its own beside the loop.
	MaxConnectionAge time.Duration
	// MaxBufferAge bounds how long a message may wait in the send buffer
	// (with Resume: in the outbox, until it is first written); 0 means
	// forever. An older one is dropped before it can be written, and
	// reported in an Expired event, never in Closed.Unsent too. The check
	// runs before every attempt, before the buffer is flushed on a fresh
	// connection, and when the client ends. A message already written
	// (with Resume, waiting for its acknowledgement) is never expired: the
	// server may have it.
	MaxBufferAge time.Duration
	// Resume turns on resumable delivery (docs/protocol.md): every data
	// message reaches the other side exactly once and in order, in both
	// directions, across reconnects, as long as the server keeps the
	// session. The server must speak the protocol (the package session
	// does); one that does not fails the attempt with an error wrapping
	// ErrResumeUnsupported, and DefaultPolicy gives up. With Resume,
	// SendBuffer bounds the outbox of unacknowledged messages (it may not
	// be negative), and Send waits for room in it; see Send.
	Resume bool
	// ResumeBufferBytes bounds the bytes held in the outbox with Resume;
	// 0 means DefaultResumeBufferBytes. A single larger message is taken
	// when the outbox is empty.
	ResumeBufferBytes int
	// ResumeCodec frames the resume protocol; nil means the built-in one
	// of docs/protocol.md. Set it to resume with a server that numbers and
	// acknowledges messages its own way. It needs Resume.
	ResumeCodec ResumeCodec
	// StableAfter is how long a connection must stay up before the backoff
	// and the attempt count reset, so that a server that accepts and drops
	// at once gets growing delays, not a tight loop; 0 means
	// DefaultStableAfter.
	StableAfter time.Duration
	// DialLimiter, if set, is waited for before every attempt, after
	// Connecting is reported and before HeaderFunc runs. Share one among
	// many clients (a *rate.Limiter from golang.org/x/time/rate) to cap
	// the dial rate of a whole process, so that a server restart does not
	// bring thousands of dials at once. nil means no limit. See Limiter.
	DialLimiter Limiter
	// Heartbeat, if set, replaces the keepalive's WebSocket pings with a
	// message of the application's own, for servers behind proxies that
	// answer pings themselves or drop them; see Heartbeat. It is sent on
	// the keepalive's schedule, so it needs PingInterval >= 0. nil means
	// WebSocket pings.
	Heartbeat *Heartbeat
}

// DefaultBackoff returns the backoff used when Config.Backoff is nil:
// 100 ms, plus exponential full jitter from 450 ms, doubling, with the
// interval capped at 15 s. Each delay is 100 ms plus a uniform draw between
// zero and twice the current interval: the first reconnect comes between
// 100 ms and 1 s, the next within 1.9 s, and so on up to 30.1 s, and it
// never gives up. The jitter spreads clients dropped together; the 100 ms
// floor keeps them all from dialing while a restarting server is still
// sending its close frames. Wrap it to limit retries (10 retries: 11
// attempts):
//
//	cfg.Backoff = func() backoff.BackOff {
//		return backoff.WithMaxRetries(resocket.DefaultBackoff(), 10)
//	}
func DefaultBackoff() backoff.BackOff {
	return &floorBackOff{floor: 100 * time.Millisecond, BackOff: backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(450*time.Millisecond),
		backoff.WithRandomizationFactor(1),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(15*time.Second),
		backoff.WithMaxElapsedTime(0),
	)}
}

// floorBackOff adds a fixed floor under another backoff's delays.
type floorBackOff struct {
	backoff.BackOff
	floor time.Duration
}

func (b *floorBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	if d == backoff.Stop {
		return d
	}
	return b.floor + d
}

// settings is a Config resolved: defaults applied, checked, copied. Each
// setting has exactly one field here, and nothing reads Config after New.
// The dialer is not here: it needs the client (see newDialer).
type settings struct {
	urls         []*url.URL // the URL given to New, then Config.URLs
	header       http.Header
	headerFunc   func(ctx context.Context) (http.Header, error)
	subprotocols []string
	policy       Policy
	newBackoff   func() backoff.BackOff
	sendBuffer   int // 0: no buffering
	eventBuffer  int // 0 with onEvent: the channel only closes
	keepalive    bool
	pingInterval time.Duration
	pongTimeout  time.Duration
	closeTimeout time.Duration
	readLimit    int64
	stableAfter  time.Duration
	onConnect    func(ctx context.Context, conn *Conn) error
	onEvent      func(Event)
	logger       *slog.Logger // nil when silent: no log arguments are built at all
	dialLimiter  Limiter
	heartbeat    *Heartbeat // a copy
	// clock and sleepCheck are the keepalive's; tests replace them (see
	// export_test.go).
	clock      clock
	sleepCheck time.Duration

	maxBufferAge      time.Duration
	maxConnectionAge  time.Duration
	resume            bool
	resumeCodec       ResumeCodec
	resumeBufferBytes int
}

func newSettings(rawURL string, cfg Config) (*settings, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &settings{
		urls:              []*url.URL{u},
		header:            cfg.Header.Clone(),
		headerFunc:        cfg.HeaderFunc,
		subprotocols:      append([]string(nil), cfg.Subprotocols...),
		policy:            cfg.Policy,
		newBackoff:        cfg.Backoff,
		eventBuffer:       orDefault(cfg.EventBuffer, DefaultEventBuffer),
		keepalive:         cfg.PingInterval >= 0,
		pingInterval:      orDefault(cfg.PingInterval, DefaultPingInterval),
		pongTimeout:       orDefault(cfg.PongTimeout, DefaultPongTimeout),
		closeTimeout:      orDefault(cfg.CloseTimeout, DefaultCloseTimeout),
		readLimit:         orDefault(cfg.ReadLimit, DefaultReadLimit),
		stableAfter:       orDefault(cfg.StableAfter, DefaultStableAfter),
		onConnect:         cfg.OnConnect,
		onEvent:           cfg.OnEvent,
		logger:            cfg.Logger,
		maxBufferAge:      cfg.MaxBufferAge,
		maxConnectionAge:  cfg.MaxConnectionAge,
		resume:            cfg.Resume,
		resumeCodec:       cfg.ResumeCodec,
		resumeBufferBytes: orDefault(cfg.ResumeBufferBytes, DefaultResumeBufferBytes),
		dialLimiter:       cfg.DialLimiter,
		clock:             systemClock,
		sleepCheck:        sleepCheckInterval,
	}
	if s.resume && s.resumeCodec == nil {
		s.resumeCodec = builtinCodec{}
	}
	if hb := cfg.Heartbeat; hb != nil {
		s.heartbeat = &Heartbeat{Type: hb.Type, Data: append([]byte(nil), hb.Data...), IsAnswer: hb.IsAnswer}
	}
	for _, raw := range cfg.URLs {
		extra, err := parseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("Config.URLs: %w", err)
		}
		s.urls = append(s.urls, extra)
	}
	if s.policy == nil {
		s.policy = DefaultPolicy
	}
	if s.newBackoff == nil {
		s.newBackoff = DefaultBackoff
	}
	switch {
	case cfg.SendBuffer == 0:
		s.sendBuffer = DefaultSendBuffer
	case cfg.SendBuffer > 0:
		s.sendBuffer = cfg.SendBuffer
	}
	if s.onEvent != nil {
		s.eventBuffer = 0 // the channel only closes
	}
	return s, nil
}

// anyTLS reports whether any endpoint is wss.
func (s *settings) anyTLS() bool {
	for _, u := range s.urls {
		if u.Scheme == "wss" {
			return true
		}
	}
	return false
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("%w: scheme %q, want ws or wss", ErrInvalidURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, raw)
	}
	return u, nil
}

func (cfg Config) check() error {
	bad := func(field string, v any) error {
		return fmt.Errorf("%w: %s is %v", ErrInvalidConfig, field, v)
	}
	switch {
	case cfg.EventBuffer < 0:
		return bad("EventBuffer", cfg.EventBuffer)
	case cfg.PongTimeout < 0:
		return bad("PongTimeout", cfg.PongTimeout)
	case cfg.CloseTimeout < 0:
		return bad("CloseTimeout", cfg.CloseTimeout)
	case cfg.ReadLimit < 0:
		return bad("ReadLimit", cfg.ReadLimit)
	case cfg.StableAfter < 0:
		return bad("StableAfter", cfg.StableAfter)
	case cfg.MaxConnectionAge < 0:
		return bad("MaxConnectionAge", cfg.MaxConnectionAge)
	case cfg.MaxBufferAge < 0:
		return bad("MaxBufferAge", cfg.MaxBufferAge)
	case cfg.ResumeBufferBytes < 0:
		return bad("ResumeBufferBytes", cfg.ResumeBufferBytes)
	case cfg.Resume && cfg.SendBuffer < 0:
		return fmt.Errorf("%w: Resume needs a send buffer (the outbox); SendBuffer is %d", ErrInvalidConfig, cfg.SendBuffer)
	case cfg.ResumeCodec != nil && !cfg.Resume:
		return fmt.Errorf("%w: ResumeCodec is set without Resume", ErrInvalidConfig)
	case cfg.Heartbeat != nil && cfg.PingInterval < 0:
		return fmt.Errorf("%w: Heartbeat needs the keepalive, but PingInterval is %v", ErrInvalidConfig, cfg.PingInterval)
	case cfg.Heartbeat != nil && cfg.Heartbeat.Type != MessageText && cfg.Heartbeat.Type != MessageBinary:
		return bad("Heartbeat.Type", cfg.Heartbeat.Type)
	case cfg.Heartbeat != nil && cfg.Resume:
		// Its frames would bypass the session's framing; the session's acks
		// do not replace it either: use ping/pong with Resume.
		return fmt.Errorf("%w: Heartbeat with Resume is not supported", ErrInvalidConfig)
	}
	return checkHeader(cfg.Header, len(cfg.Subprotocols) > 0)
}

// checkHeader rejects header names that are not tokens and those the
// handshake sets itself: gorilla would fail every attempt over them.
func checkHeader(h http.Header, subprotocols bool) error {
	for name := range h {
		if !validHeaderName(name) {
			return fmt.Errorf("%w: header name %q", ErrInvalidConfig, name)
		}
		switch canonical := http.CanonicalHeaderKey(name); canonical {
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions":
			return fmt.Errorf("%w: header %s is set by the handshake", ErrInvalidConfig, canonical)
		case "Sec-Websocket-Protocol":
			if subprotocols {
				return fmt.Errorf("%w: header %s conflicts with Subprotocols", ErrInvalidConfig, canonical)
			}
		}
	}
	return nil
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// writeBufferPool is shared by the clients using the default dialer: an
// idle connection then holds no write buffer.
var writeBufferPool = new(sync.Pool)

// newDialer copies the user's dialer (or the default one), with TLS session
// resumption for wss and the subprotocols to offer.
func newDialer(d *websocket.Dialer, tlsURL bool, subprotocols []string) websocket.Dialer {
	var out websocket.Dialer
	if d != nil {
		out = *d
	} else {
		out = *websocket.DefaultDialer
		out.WriteBufferPool = writeBufferPool
	}
	if tlsURL && out.NetDialTLSContext == nil {
		// A reconnecting client dials the same host again and again:
		// resuming the TLS session skips the certificate check (measured
		// about 7 % of a wss reconnect with Go 1.26, whose post-quantum
		// key exchange is repeated either way).
		var tc *tls.Config
		if out.TLSClientConfig != nil {
			tc = out.TLSClientConfig.Clone()
		} else {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if tc.ClientSessionCache == nil {
			tc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		}
		out.TLSClientConfig = tc
	}
	if len(subprotocols) > 0 {
		out.Subprotocols = subprotocols
	}
	return out
}
