package resocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
)

// Client keeps one WebSocket connection open at a time, reconnecting as its
// Policy decides, and reports everything that happens on Events.
//
// Concurrency: every method is safe to call from any goroutine, including
// from the client's own callbacks. One goroutine per client, the loop,
// owns the connect loop, the current connection's reading, the attempt
// count and the sending side of Events; it alone closes that channel. It
// runs HeaderFunc, OnConnect, Policy, Backoff and OnEvent, so a callback
// that blocks stalls the client, and a reader of Events that stops reading
// stops reading from the socket too (TCP backpressure), until Close or
// Terminate, which never wait on the reader for longer than CloseTimeout.
// Short-lived helpers: the dial helper (runs the Dialer and its hooks
// while the loop waits), the flusher (writes the send buffer beside the
// reader), the pump (delivers lifecycle events that found Events full),
// with Resume the acker (batched acks, from a timer), and with
// MaxConnectionAge a conn reader per connection, which reads the socket
// and hands each message to the loop so that the loop is free to open
// the next connection.
// Send writes on the caller's goroutine. docs/architecture.md has the
// whole picture.
type Client struct {
	cfg    *settings
	dialer websocket.Dialer // the Config's, with dials tracked and hooks marked as callbacks
	bo     backoff.BackOff
	events emitter
	done   chan struct{} // closed by the loop as its last act

	// ctx is the closing signal: cancelled by the first Close or Terminate
	// (and when the client ends), given to callbacks and dials.
	ctx    context.Context
	cancel context.CancelFunc
	// terminated is closed by Terminate: event delivery stops waiting.
	terminated chan struct{}
	// inCallback counts callbacks running now; limiterWaits counts those
	// of them that are the DialLimiter's Wait. See awaitEnd.
	inCallback   atomic.Int32
	limiterWaits atomic.Int32
	// wake interrupts a backoff wait after ForceReconnect.
	wake     chan struct{}
	counters counters

	mu       sync.Mutex
	state    State         // written only by setStateLocked
	closeReq *closeRequest // set by the first Close or Terminate
	live     *Conn         // the open connection, flushed or not
	ready    *Conn         // live, once the send buffer is flushed: Sends go straight to it
	readyCh  chan struct{} // closed while ready != nil
	dialing  net.Conn      // the raw connection of a handshake under way
	queue    queue         // the send buffer, without Config.Resume
	limit    int           // of the send buffer: most messages held; 0: buffering off
	session  *session      // with Config.Resume: the outbox and the resume point
	progress chan struct{} // closed when acks or the flusher make progress; see progressLocked
	last     Disconnect    // the latest Disconnect, for Dial's error and Stats
	err      error
	forceGen uint64 // counts ForceReconnect calls

	downtime     time.Duration // in total, with no ready connection since the first; see Stats
	unreadySince time.Time     // when the ready connection went; zero before the first

	urlIndex    int       // of cfg.urls: the endpoint of the current or next attempt
	attempts    int       // in total, for Stats
	connects    int       // in total, for Stats
	nextAttempt time.Time // while waiting out a backoff
}

// New checks url and cfg and returns a client that connects in the
// background; it never blocks. Read Events to follow what happens. The url
// must be ws:// or wss:// with a host; a bad url or Config field gives an
// error wrapping ErrInvalidURL or ErrInvalidConfig.
func New(url string, cfg Config) (*Client, error) {
	return newClient(url, cfg, nil)
}

// newClient is New; tweak, if set, changes the resolved settings first
// (tests inject a clock with it).
func newClient(url string, cfg Config, tweak func(*settings)) (*Client, error) {
	s, err := newSettings(url, cfg)
	if err != nil {
		return nil, err
	}
	if tweak != nil {
		tweak(s)
	}
	bo := s.newBackoff()
	if bo == nil {
		return nil, fmt.Errorf("%w: Backoff returned nil", ErrInvalidConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:        s,
		bo:         bo,
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		terminated: make(chan struct{}),
		wake:       make(chan struct{}, 1),
		state:      StateConnecting,
		readyCh:    make(chan struct{}),
		limit:      s.sendBuffer,
		queue:      queue{stamp: s.maxBufferAge > 0},
	}
	if s.resume {
		_, builtin := s.resumeCodec.(builtinCodec)
		c.session = &session{codec: s.resumeCodec, builtin: builtin, limitMsgs: s.sendBuffer, limitBytes: s.resumeBufferBytes,
			out: queue{stamp: s.maxBufferAge > 0}}
		if builtin {
			c.session.batchBytes = int(min(s.readLimit, maxBatchOffer))
		}
	}
	c.events = emitter{
		ch:         make(chan Event, s.eventBuffer),
		closing:    ctx.Done(),
		terminated: c.terminated,
		closeBy:    c.closeDeadline,
	}
	if user := s.onEvent; user != nil {
		c.events.onEvent = func(ev Event) { // a callback; not through c.callback: this is the hot path
			c.inCallback.Add(1)
			user(ev)
			c.inCallback.Add(-1)
		}
	}
	c.dialer = newDialer(cfg.Dialer, s.anyTLS(), s.subprotocols)
	trackDials(&c.dialer, c.trackDial, c.callback)
	go c.run()
	return c, nil
}

// Dial is New, then waits until the client is connected: the handshake
// done, OnConnect run and the send buffer flushed. It retries as the policy
// decides until ctx ends. On failure it returns the cause (wrapping ErrGaveUp
// for a GiveUp, or ctx's error and the last attempt's) and leaves nothing
// running. Events seen while waiting stay queued for the Events channel,
// however many attempts it takes.
func Dial(ctx context.Context, url string, cfg Config) (*Client, error) {
	c, err := New(url, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.WaitConnected(ctx); err != nil {
		c.Terminate()
		<-c.done // Terminate returns early while a callback runs; Dial leaves nothing running
		return nil, err
	}
	return c, nil
}

// WaitConnected blocks until the client is connected (OnConnect run and the
// send buffer flushed), and returns nil; or until it has ended, and returns
// Err or an error wrapping ErrClosed; or until ctx ends, and returns an
// error wrapping ctx's and the last attempt's.
func (c *Client) WaitConnected(ctx context.Context) error {
	c.mu.Lock()
	ready := c.readyCh
	c.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-c.done:
		if err := c.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w before connecting", ErrClosed)
	case <-ctx.Done():
		c.mu.Lock()
		last := c.last
		c.mu.Unlock()
		if last.Attempt == 0 {
			return fmt.Errorf("resocket: waiting for a connection: %w", ctx.Err())
		}
		return fmt.Errorf("resocket: waiting for a connection: %w (last attempt: %w)", ctx.Err(), last.cause())
	}
}

// Events returns the channel on which the client reports what happens, in
// order. Closed is the last event; the channel is closed after it. Read it
// until it closes: a reader that falls behind slows the client's reading
// from the socket, and nothing is dropped, except after Close (events not
// taken within CloseTimeout) or Terminate (at once). With Config.OnEvent
// set, the events go to that callback instead, and this channel only
// closes when the client ends.
func (c *Client) Events() <-chan Event { return c.events.ch }

// Done returns a channel that is closed once the client has ended and all
// its goroutines have returned.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns, once Done is closed, why the client ended: nil after a Stop
// decision, Close or Terminate; an error wrapping ErrGaveUp and the cause
// after a GiveUp. Before that it returns nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// State returns where the client is now.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Send writes a data message. While connected it returns once the frame is
// written. If ctx ends first, also while Send waits for another write on
// the connection to finish, Send returns ctx's error and the message is
// dropped; a write cut off half-way drops that connection too, and the
// client reconnects. If the connection closes or fails under the write,
// the frame is incomplete, so the peer cannot have taken it: the message is
// kept for the next connection as if sent while disconnected (or, with
// buffering off, the write's error is returned).
//
// While not connected Send holds the message in the send buffer, to be
// written in order after OnConnect on the next connection, before any later
// Send; it returns ErrBufferFull when the buffer is full and
// ErrNotConnected when buffering is off. After Close, Terminate or a
// GiveUp it returns ErrClosed. Send is safe from many goroutines at once;
// data is not retained after Send returns unless it is buffered (as a
// copy).
//
// With Config.Resume, Send returns nil once the message is numbered into
// the session's outbox (as a copy): written at once when connected,
// replayed after a reconnect, kept until the server acknowledges it. When
// the outbox is full (SendBuffer messages or ResumeBufferBytes) Send waits
// for acknowledgements, honouring ctx: it never fails with ErrBufferFull.
// An error means the message was not taken. Use Flush to wait for the
// server's acknowledgement.
func (c *Client) Send(ctx context.Context, typ MessageType, data []byte) error {
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("%w: %d", ErrInvalidMessageType, int(typ))
	}
	if c.session != nil {
		return c.sendResumable(ctx, typ, data)
	}
	c.mu.Lock()
	conn := c.ready
	for conn != nil && c.closeReq == nil {
		c.mu.Unlock()
		err := conn.write(ctx, typ, data)
		if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// The connection ended while the message waited for it, or under
		// the write. A failed write never completes its frame, so the peer
		// cannot have taken the message: it keeps its place for the next
		// connection. If that one is up already, write it there.
		c.mu.Lock()
		if c.ready == conn || c.ready == nil {
			qerr := c.enqueueLocked(typ, data) // flushed when the next one opens
			c.mu.Unlock()
			if errors.Is(qerr, ErrNotConnected) {
				return err // no buffer to keep it in: hand it back
			}
			return qerr
		}
		conn = c.ready
	}
	err := c.enqueueLocked(typ, data)
	c.mu.Unlock()
	return err
}

// SendText sends text as a MessageText; see Send.
func (c *Client) SendText(ctx context.Context, text string) error {
	return c.Send(ctx, MessageText, []byte(text))
}

// enqueueLocked buffers a message for the next connection.
func (c *Client) enqueueLocked(typ MessageType, data []byte) error {
	if c.closeReq != nil || c.state == StateClosed {
		return ErrClosed
	}
	if c.limit == 0 {
		return ErrNotConnected
	}
	if c.queue.len() >= c.limit {
		return ErrBufferFull
	}
	c.queue.push(typ, data)
	return nil
}

// Close closes the connection with the closing handshake (code and
// reason, waiting at most CloseTimeout for the peer's close frame), stops
// reconnecting and returns once every goroutine of the client has ended.
// It interrupts a backoff wait or a handshake under way. The Disconnected
// it causes carries Decision{Action: Stop}, and Closed.Err is nil.
//
// A code that may not be sent (below 1000, 1004–1006, 1015–2999, 5000 and
// up) or a reason over 123 bytes or not UTF-8 gives an error wrapping
// ErrInvalidCloseCode or ErrInvalidReason and leaves the client as it was.
// Once the client is closing or has ended, Close waits for the end and
// returns ErrClosed.
//
// Close may be called from any callback of the client's (HeaderFunc,
// OnConnect, Policy, Backoff, OnEvent, Heartbeat.IsAnswer, the Dialer's
// hooks). While one of them is running, from it or from elsewhere, Close
// cannot wait for the goroutine that runs it: it returns once the close is
// under way, and Done closes when the callback has returned and the client
// has ended. The DialLimiter's Wait is the exception: its ctx ends with
// Close, so Close waits for it to return, at most CloseTimeout (which is
// what a Close from inside Wait itself costs).
func (c *Client) Close(code StatusCode, reason string) error {
	if err := validateClose(code, reason); err != nil {
		return err
	}
	first, live := c.requestClose(code, reason, false)
	if first && live != nil {
		if c.session != nil {
			c.finalAck(live)
		}
		live.sendClose(code, reason, c.closeDeadline())
	}
	c.awaitEnd()
	if !first {
		return ErrClosed
	}
	return nil
}

// Terminate drops the connection at once, without a closing handshake,
// stops reconnecting and returns once every goroutine of the client has
// ended (with the same exception as Close while a callback runs). Events
// the reader has not taken may be discarded. It is safe to call more than
// once and from any goroutine, and after Close, which it cuts short.
func (c *Client) Terminate() {
	if _, live := c.requestClose(0, "", true); live != nil {
		live.kill(errTerminated)
	}
	c.awaitEnd()
}

// ForceReconnect drops the current connection, without a closing
// handshake, and dials again at once; while the client waits out a backoff
// it cuts the wait short; during a handshake it does nothing more (the
// connection that opens serves it). It is the hook for network changes the
// application learns of (an interface went down, Wi-Fi switched to
// cellular, a VPN came up): the old connection's route may be gone, and
// the keepalive would take up to PingInterval + PongTimeout to notice.
// A sleep of the machine needs no call: the keepalive notices it and
// checks the link at once. The policy is not consulted for the dropped
// connection: its Disconnected carries ErrForcedReconnect and a Reconnect
// decision. It does nothing once the client is closing or has ended.
func (c *Client) ForceReconnect() {
	c.mu.Lock()
	live := c.live
	ended := c.closeReq != nil || c.state == StateClosed
	if !ended {
		c.forceGen++
	}
	c.mu.Unlock()
	if ended {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default: // one pending wake-up is enough: the loop rereads forceGen
	}
	if live != nil {
		live.kill(ErrForcedReconnect)
	}
}
