package resocket

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Sentinel errors. Match them with errors.Is: the client wraps them with
// details.
var (
	// ErrClosed is returned by Send and Close once the client has ended or
	// is closing (Close, Terminate, a Stop or GiveUp decision).
	ErrClosed = errors.New("resocket: client closed")
	// ErrNotConnected is returned by Send while no connection is open and
	// buffering is off (Config.SendBuffer < 0).
	ErrNotConnected = errors.New("resocket: not connected")
	// ErrBufferFull is returned by Send, at once, while no connection is
	// open and the send buffer already holds Config.SendBuffer messages.
	ErrBufferFull = errors.New("resocket: send buffer full")
	// ErrGaveUp is wrapped, together with the cause, by Client.Err and
	// Closed.Err when the policy or the backoff gave up.
	ErrGaveUp = errors.New("resocket: gave up")
	// ErrPongTimeout is the Disconnect.Err of a connection that sent
	// nothing within PongTimeout of a ping: a half-open or dead link. After
	// the machine slept, the ping goes out on waking and the wait is
	// shorter: at most 3 s.
	ErrPongTimeout = errors.New("resocket: no pong within PongTimeout")
	// ErrHeartbeatTimeout is the Disconnect.Err of a connection that,
	// with Config.Heartbeat set, sent no data message within PongTimeout
	// of a heartbeat (or within a few seconds of the one sent on waking
	// from a sleep).
	ErrHeartbeatTimeout = errors.New("resocket: no answer to the heartbeat within PongTimeout")
	// ErrForcedReconnect is the Disconnect.Err of a connection dropped by
	// ForceReconnect.
	ErrForcedReconnect = errors.New("resocket: reconnect forced")
	// ErrInvalidURL is wrapped by New and Dial for an empty URL, one without
	// a host, or a scheme other than ws and wss.
	ErrInvalidURL = errors.New("resocket: invalid URL")
	// ErrInvalidConfig is wrapped by New and Dial for a Config field out of
	// range.
	ErrInvalidConfig = errors.New("resocket: invalid config")
	// ErrInvalidCloseCode is wrapped by Close for a code that may not be
	// sent on the wire (below 1000, 1004–1006, 1015–2999, 5000 and up).
	ErrInvalidCloseCode = errors.New("resocket: close code may not be sent")
	// ErrInvalidReason is wrapped by Close for a reason over 123 bytes (the
	// most a close frame can carry) or one that is not valid UTF-8.
	ErrInvalidReason = errors.New("resocket: invalid close reason")
	// ErrInvalidMessageType is wrapped by Send for a type other than
	// MessageText and MessageBinary.
	ErrInvalidMessageType = errors.New("resocket: invalid message type")
	// ErrResumeUnsupported is wrapped by the Disconnect.Err of an attempt
	// with Config.Resume whose server answered without the resume
	// protocol. DefaultPolicy gives up: the server will not learn it.
	ErrResumeUnsupported = errors.New("resocket: server does not speak the resume protocol")
	// ErrResumeProtocol is wrapped by the Disconnect.Err of a connection
	// whose server broke the resume protocol: an acknowledgement of
	// messages never sent, a resume point in the future, a malformed
	// frame. The connection is closed with 1002.
	ErrResumeProtocol = errors.New("resocket: resume protocol violated")
)

// maxReasonLen is the longest close reason: a control frame carries at most
// 125 bytes, two of which are the code.
const maxReasonLen = 123

// CloseError is the close frame a peer sent; match it with errors.As.
type CloseError struct {
	Code   StatusCode
	Reason string
}

// Error describes the close frame, such as
// `resocket: peer closed with 1012 (service restart): "restarting"`.
func (e CloseError) Error() string {
	s := "resocket: peer closed with " + e.Code.String()
	if e.Reason != "" {
		s += ": " + strconv.Quote(e.Reason)
	}
	return s
}

// CloseStatus returns the code of the CloseError in err's chain (as a value
// or a pointer), or -1 when err holds no CloseError.
func CloseStatus(err error) StatusCode {
	var ce CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var pce *CloseError
	if errors.As(err, &pce) && pce != nil {
		return pce.Code
	}
	return -1
}

// HandshakeError is the Disconnect.Err of an attempt the server refused
// with an HTTP status instead of 101 Switching Protocols. It unwraps to
// websocket.ErrBadHandshake.
type HandshakeError struct {
	Status     int           // the HTTP status the server answered with
	RetryAfter time.Duration // from its Retry-After header; 0 when absent
}

// Error describes the refusal, such as "resocket: handshake refused: HTTP 503 (retry after 7s)".
func (e *HandshakeError) Error() string {
	s := fmt.Sprintf("resocket: handshake refused: HTTP %d", e.Status)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Unwrap returns websocket.ErrBadHandshake.
func (e *HandshakeError) Unwrap() error { return websocket.ErrBadHandshake }

// validateClose checks a code and reason the user wants to send.
func validateClose(code StatusCode, reason string) error {
	if !code.sendable() {
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, int(code))
	}
	if len(reason) > maxReasonLen {
		return fmt.Errorf("%w: %d bytes, at most %d fit in a close frame", ErrInvalidReason, len(reason), maxReasonLen)
	}
	if !utf8.ValidString(reason) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidReason)
	}
	return nil
}
