package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/resocket/resocket/internal/wire"
)

// Defaults applied to zero Options fields.
const (
	DefaultResumeTimeout = 2 * time.Minute
	// DefaultSendBuffer is the window of unacknowledged messages per
	// session. A stream moves at most a window per ack round trip: 4,096
	// small messages per round trip went 25 % faster than 1,024 between
	// two processes on one machine (docs/performance.md, change 12), and
	// a link with 50 ms of round trip carries 80,000 messages a second
	// through it, 20,000 through 1,024. SendBufferBytes bounds large ones.
	DefaultSendBuffer      = 4096
	DefaultSendBufferBytes = 16 << 20 // the window's bytes
	DefaultPingInterval    = 25 * time.Second
	DefaultReadLimit       = 16 << 20
)

// Options tunes a Server. The zero value is ready to use.
type Options struct {
	// Store is where sessions live between connections; nil means a
	// NewMemoryStore of this Server's own.
	Store Store
	// ResumeTimeout is how long a session without a connection is kept
	// before it ends for good; 0 means DefaultResumeTimeout.
	ResumeTimeout time.Duration
	// SendBuffer and SendBufferBytes bound each session's messages not yet
	// acknowledged by the client; Session.Send waits for room. 0 means
	// DefaultSendBuffer and DefaultSendBufferBytes. They are also what a
	// session holds for a client that stops reading (its messages, and
	// 40 bytes each in the Session and again in the memory Store): lower
	// them for many slow clients, raise SendBuffer for a fast stream over
	// a long round trip.
	SendBuffer      int
	SendBufferBytes int
	// PingInterval is the time between pings on each connection; a
	// connection that sends nothing for twice as long is dead. 0 means
	// DefaultPingInterval.
	PingInterval time.Duration
	// ReadLimit is the largest message accepted; 0 means DefaultReadLimit.
	ReadLimit int64
	// Upgrader upgrades each request; nil means one with gorilla's
	// defaults (same-origin only). Its Subprotocols are negotiated as
	// usual.
	Upgrader *websocket.Upgrader
	// Logger receives lifecycle logs; nil means silent. Secrets are never
	// logged.
	Logger *slog.Logger
}

// Server serves resumable sessions over WebSocket: mount it as an
// http.Handler. Each session it takes on runs the serve function given to
// NewServer on a goroutine of its own.
type Server struct {
	opts  Options
	store Store
	// storeInline: the Store never waits (nonBlockingStore), and a
	// Session calls it under its own mutex
	storeInline bool
	owner       uint64 // this Server's name in the Store
	serve       func(*Session)

	mu       sync.Mutex
	sessions map[string]*Session
	shutdown bool
	draining bool           // Drain was called: new handshakes are refused
	running  sync.WaitGroup // serve functions and connections
}

// NewServer returns a Server that calls serve on a goroutine of its own
// once for each session it takes on: a new one, or one resumed from the
// Store that it does not run yet (after a restart of the process, or on
// another node). When serve returns, the session ends for good: call
// Session.Flush first to be sure the client has everything.
func NewServer(opts Options, serve func(*Session)) *Server {
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	opts.ResumeTimeout = orDefault(opts.ResumeTimeout, DefaultResumeTimeout)
	opts.SendBuffer = orDefault(opts.SendBuffer, DefaultSendBuffer)
	opts.SendBufferBytes = orDefault(opts.SendBufferBytes, DefaultSendBufferBytes)
	opts.PingInterval = orDefault(opts.PingInterval, DefaultPingInterval)
	opts.ReadLimit = orDefault(opts.ReadLimit, DefaultReadLimit)
	if opts.Upgrader == nil {
		opts.Upgrader = &websocket.Upgrader{}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	_, inline := opts.Store.(nonBlockingStore)
	return &Server{opts: opts, store: opts.Store, storeInline: inline, owner: binary.BigEndian.Uint64(b[:]),
		serve: serve, sessions: make(map[string]*Session)}
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// resumeRequest is what the client's upgrade request asks for.
type resumeRequest struct {
	id, secret string // empty: a new session
	received   uint64
	// the client's window (0: not said): acks go at least every half of it
	window, windowBytes uint64
	// the largest batch frame the client takes, in bytes (0: none)
	batch uint64
}

// refusal is a handshake refused before the upgrade.
type refusal struct {
	status int
	why    string
}

func (r *refusal) Error() string { return r.why }

func parseRequest(h http.Header) (resumeRequest, *refusal) {
	if v := h.Get(wire.HeaderResume); v != wire.Version {
		return resumeRequest{}, &refusal{http.StatusBadRequest,
			fmt.Sprintf("%s %s required", wire.HeaderResume, wire.Version)}
	}
	req := resumeRequest{id: h.Get(wire.HeaderSession)}
	for name, v := range map[string]*uint64{wire.HeaderWindow: &req.window, wire.HeaderWindowBytes: &req.windowBytes,
		wire.HeaderBatch: &req.batch} {
		n, err := wire.ParseOptionalCount(h.Get(name))
		if err != nil {
			return resumeRequest{}, &refusal{http.StatusBadRequest, name + ": " + err.Error()}
		}
		*v = n
	}
	if req.id == "" {
		return req, nil
	}
	req.secret = h.Get(wire.HeaderSecret)
	if !wire.ValidToken(req.id) || !wire.ValidToken(req.secret) {
		return resumeRequest{}, &refusal{http.StatusBadRequest, "malformed session or secret"}
	}
	n, err := wire.ParseCount(h.Get(wire.HeaderReceived))
	if err != nil {
		return resumeRequest{}, &refusal{http.StatusBadRequest, wire.HeaderReceived + ": " + err.Error()}
	}
	req.received = n
	return req, nil
}

// ServeHTTP upgrades a request that speaks the resume protocol and
// attaches the connection to its session: a new one, the one it resumes,
// or a new one when the Store no longer has the session asked for. It
// refuses with 400 a request without the protocol or with malformed
// values, with 403 a resume whose secret is wrong, and with 503 once
// Shutdown has been called.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, bad := parseRequest(r.Header)
	if bad != nil {
		s.refuse(w, bad)
		return
	}
	sess, answer, bad := s.find(r.Context(), req)
	if bad != nil {
		s.refuse(w, bad)
		return
	}
	header := http.Header{}
	header.Set(wire.HeaderResume, wire.Version)
	header.Set(wire.HeaderSession, sess.id)
	header.Set(wire.HeaderReceived, wire.FormatCount(answer.received))
	header.Set(wire.HeaderWindow, wire.FormatCount(uint64(s.opts.SendBuffer)))           //nolint:gosec // positive: set by NewServer
	header.Set(wire.HeaderWindowBytes, wire.FormatCount(uint64(s.opts.SendBufferBytes))) //nolint:gosec // likewise
	if answer.secret != "" {
		header.Set(wire.HeaderSecret, answer.secret)
		header.Set(wire.HeaderResumed, "0")
	} else {
		header.Set(wire.HeaderResumed, "1")
	}
	ws, err := s.opts.Upgrader.Upgrade(w, r, header)
	if err != nil {
		sess.upgradeFailed()
		return // the Upgrader has answered
	}
	sess.serveConn(ws, req, answer)
}

func (s *Server) refuse(w http.ResponseWriter, bad *refusal) {
	w.Header().Set(wire.HeaderError, bad.why)
	if bad.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, bad.why, bad.status)
	if log := s.opts.Logger; log != nil {
		log.Info("session: handshake refused", "status", bad.status, "why", bad.why)
	}
}

// answer is what the 101 tells the client: the secret of a new session,
// and how many of the client's messages the application has.
type answer struct {
	secret   string
	received uint64
	gen      uint64 // the handshake's place in the session's order (expect)
}

// find returns the session a request names, running it in this Server if
// it was not, or a new one. The session is marked as awaiting a
// connection, so that it does not end before serveConn or upgradeFailed.
func (s *Server) find(ctx context.Context, req resumeRequest) (*Session, answer, *refusal) {
	s.mu.Lock()
	if s.shutdown || s.draining {
		s.mu.Unlock()
		return nil, answer{}, &refusal{http.StatusServiceUnavailable, "server shutting down"}
	}
	sess := s.sessions[req.id]
	s.mu.Unlock()
	if req.id != "" && sess != nil {
		if !sess.secretMatches(req.secret) {
			return nil, answer{}, &refusal{http.StatusForbidden, "wrong secret"}
		}
		// The client may come back from another Server that took the
		// session over while this one had no connection to learn it
		// from: this copy is stale then, and the session is taken from
		// the Store again. Touch tells, and renews the TTL.
		err := s.store.Touch(ctx, req.id, s.owner, s.opts.ResumeTimeout)
		if errors.Is(err, ErrMoved) {
			sess.end(ErrMoved, false)
			return s.takeOn(ctx, req)
		}
		received, gen, bad := sess.expect(req.received)
		return sess, answer{received: received, gen: gen}, bad
	}
	if req.id != "" {
		rec, err := s.store.Load(ctx, req.id)
		switch {
		case err == nil:
			if !secretMatches(rec.SecretHash, req.secret) {
				return nil, answer{}, &refusal{http.StatusForbidden, "wrong secret"}
			}
			return s.takeOn(ctx, req)
		case !errors.Is(err, ErrNotFound):
			return nil, answer{}, &refusal{http.StatusServiceUnavailable, "store: " + err.Error()}
		}
	}
	return s.create(ctx)
}

// takeOn claims a session from the Store and runs it here.
func (s *Server) takeOn(ctx context.Context, req resumeRequest) (*Session, answer, *refusal) {
	rec, err := s.store.Claim(ctx, req.id, s.owner)
	if errors.Is(err, ErrNotFound) {
		return s.create(ctx)
	}
	if err != nil {
		return nil, answer{}, &refusal{http.StatusServiceUnavailable, "store: " + err.Error()}
	}
	sess := newSession(s, req.id, rec)
	if !s.start(sess) {
		return nil, answer{}, &refusal{http.StatusServiceUnavailable, "server shutting down"}
	}
	received, gen, bad := sess.expect(req.received)
	return sess, answer{received: received, gen: gen}, bad
}

// create starts a new session.
func (s *Server) create(ctx context.Context) (*Session, answer, *refusal) {
	id, secret := token(16), token(32)
	hash := sha256.Sum256([]byte(secret))
	if err := s.store.Create(ctx, id, hash[:], s.owner, s.opts.ResumeTimeout); err != nil {
		return nil, answer{}, &refusal{http.StatusServiceUnavailable, "store: " + err.Error()}
	}
	sess := newSession(s, id, Record{SecretHash: hash[:], Owner: s.owner})
	if !s.start(sess) {
		return nil, answer{}, &refusal{http.StatusServiceUnavailable, "server shutting down"}
	}
	_, gen, _ := sess.expect(0)
	return sess, answer{secret: secret, gen: gen}, nil
}

// start runs sess here: serve on its goroutine.
func (s *Server) start(sess *Session) bool {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return false
	}
	old := s.sessions[sess.id]
	s.sessions[sess.id] = sess
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		s.serve(sess)
		sess.served()
	}()
	s.mu.Unlock()
	// A second claim raced this one: the last wins. Ended without s.mu,
	// which end takes (forget).
	if old != nil {
		old.end(ErrMoved, false)
	}
	return true
}

// forget removes sess from the sessions run here, once it has ended.
func (s *Server) forget(sess *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
}

// Shutdown tells every client to come back (close code 1012 Service
// Restart), ends every Session of this Server (their calls return errors
// wrapping ErrServerClosed), and leaves the sessions in the Store, kept
// ResumeTimeout, for the next Server that shares it. New handshakes are
// refused with 503. It returns once every serve function and connection
// has ended, or with ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, sess := range s.refuseNew(&s.shutdown) {
		sess.end(ErrServerClosed, false)
	}
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refuseNew sets flag (shutdown or draining), under the Server's mutex,
// and returns the sessions run here at that moment.
func (s *Server) refuseNew(flag *bool) []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	*flag = true
	sessions := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	return sessions
}

// Drain asks every connected client to move to another server, for a
// rolling restart without a gap: each client receives the move hint
// (docs/protocol.md), dials the next URL of its Config.URLs while this
// connection still serves, resumes its session there (the Store must be
// shared) and then closes this connection. New handshakes are refused
// with 503 from now on. Drain returns once no session here has a
// connection, or with ctx's error; call Shutdown after it for the clients
// that did not move (they are told 1012).
func (s *Server) Drain(ctx context.Context) error {
	sessions := s.refuseNew(&s.draining)
	for _, sess := range sessions {
		sess.askToMove()
	}
	for _, sess := range sessions {
		if err := sess.waitDetached(ctx); err != nil {
			return err
		}
	}
	return nil
}

// token returns n random bytes, URL-safe base64: session IDs (128 bits)
// and secrets (256 bits).
func token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func secretMatches(hash []byte, secret string) bool {
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(hash, got[:]) == 1
}

// track counts a connection in running, unless Shutdown has begun.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.running.Add(1)
	return true
}
