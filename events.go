package resocket

import (
	"net/http"
	"strconv"
	"time"
)

// Event is something that happened to the client, delivered in order on
// Client.Events. It is one of Connecting, Connected, Message, Disconnected,
// DialFailed, Reconnecting, Expired, SessionLost or Closed; use a type
// switch.
type Event interface{ isEvent() }

// Connecting reports that an attempt to open a connection to URL is starting. Attempt
// counts the attempts since the last connection that stayed up (1 for the
// first). URL has any password redacted.
type Connecting struct {
	Attempt int
	URL     string
}

// Connected reports that a fresh connection is open and OnConnect has run on it.
// Messages buffered while disconnected are written right after, before any
// later Send. Header holds the server's handshake response headers.
type Connected struct {
	ConnID      uint64
	Attempt     int
	Subprotocol string
	Header      http.Header
	URL         string // the endpoint, with any password redacted
	// Resumed, with Config.Resume, says that this connection continues
	// the previous session: nothing was lost. False on the first
	// connection and after a SessionLost.
	Resumed bool
	// Replaced, with Config.MaxConnectionAge, is the ID of the connection
	// this one replaced: it stayed ready until this one was, and closes
	// now (its last messages may still follow). 0 for a connection that
	// follows a failure or the first one.
	Replaced uint64
}

// Message is a data message received on connection ConnID. Data is the
// receiver's to keep: the client never reuses it.
type Message struct {
	ConnID uint64
	Type   MessageType
	Data   []byte
}

// Disconnected reports that a live connection ended; Decision says what comes next.
type Disconnected struct {
	ConnID     uint64
	Disconnect Disconnect
	Decision   Decision
}

// DialFailed reports that an attempt never opened (refused, unreachable, handshake or
// OnConnect failed); Decision says what comes next.
type DialFailed struct {
	Disconnect Disconnect
	Decision   Decision
}

// Reconnecting reports that the client waits Delay before attempt number Attempt.
type Reconnecting struct {
	Attempt int
	Delay   time.Duration
}

// Closed is the last event: the client has ended. Err is nil after a Stop
// decision, Close or Terminate, and wraps ErrGaveUp and the cause after a
// GiveUp. Unsent holds, in order, what Send had accepted into the send
// buffer but never wrote. The Events channel closes after it.
type Closed struct {
	Err    error
	Unsent []Message
}

// SessionLost reports, with Config.Resume, that the server no longer had
// the session (it expired, or its Store went away). InDoubt holds, in
// order, the messages sent in the lost session that the server never
// acknowledged: some may have been processed. They are not sent again.
// Messages that were never written are not in doubt: they go first in the
// new session. A Connected with Resumed == false follows.
type SessionLost struct {
	InDoubt []Message
}

// Expired reports the messages that waited in the send buffer longer than
// Config.MaxBufferAge and were dropped, in order: one event per check that
// dropped any. They are not written and not in Closed.Unsent.
type Expired struct {
	Messages []Message
}

func (Expired) isEvent()      {}
func (SessionLost) isEvent()  {}
func (Connecting) isEvent()   {}
func (Connected) isEvent()    {}
func (Message) isEvent()      {}
func (Disconnected) isEvent() {}
func (DialFailed) isEvent()   {}
func (Reconnecting) isEvent() {}
func (Closed) isEvent()       {}

// State is where the client is in its life.
type State int

// The client's states, in the order it usually passes through them.
const (
	StateConnecting   State = iota // first attempt under way
	StateConnected                 // a connection is open and the send buffer flushed
	StateReconnecting              // waiting for, or dialing, the next attempt
	StateClosing                   // Close called: closing handshake under way
	StateClosed                    // ended; see Err
)

// String returns the state's name in lower case, such as "connected".
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosing:
		return "closing"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}
