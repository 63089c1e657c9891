package resocket

import (
	"errors"
	"strconv"
	"time"
)

// Action is what the client does after a connection ends or an attempt fails.
type Action int

// The three actions a Policy chooses between.
const (
	Reconnect Action = iota // wait for the backoff, then dial a fresh connection
	Stop                    // end cleanly: Closed.Err == nil
	GiveUp                  // end with an error wrapping ErrGaveUp and the cause
)

// String returns "reconnect", "stop" or "give up".
func (a Action) String() string {
	switch a {
	case Reconnect:
		return "reconnect"
	case Stop:
		return "stop"
	case GiveUp:
		return "give up"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Disconnect describes why a connection ended or an attempt failed. It is
// what a Policy decides on.
type Disconnect struct {
	Code       StatusCode    // close code; StatusAbnormalClosure when no close frame came
	Reason     string        // close reason
	Err        error         // transport, handshake or protocol error, if any
	HTTPStatus int           // handshake refused with this HTTP status (0 otherwise)
	RetryAfter time.Duration // from a Retry-After header on a refused handshake
	Attempt    int           // consecutive failed attempts, this one included
	Uptime     time.Duration // how long the connection was open (0: never opened)
}

// cause is the error that best explains d, for Closed.Err and Dial.
func (d Disconnect) cause() error {
	if d.Err != nil {
		return d.Err
	}
	return CloseError{Code: d.Code, Reason: d.Reason}
}

// Decision is a Policy's answer.
type Decision struct {
	Action   Action
	MinDelay time.Duration // Reconnect only: wait at least this long
}

// Policy decides, from how a connection ended or an attempt failed, whether
// to reconnect, stop or give up. It runs on the client's own goroutine, so
// it must not block; wrap DefaultPolicy to change single codes.
type Policy func(Disconnect) Decision

// tryAgainLaterDelay is the least wait after 1013 Try Again Later: the
// server asked us not to come straight back.
const tryAgainLaterDelay = 5 * time.Second

// DefaultPolicy is the policy used when Config.Policy is nil. It is
// exported so that a custom policy can handle a few cases and defer to it
// for the rest.
//
// Close codes:
//
//	1000                                  Stop
//	1001, 1005, 1006, 1011, 1012, 1014    Reconnect
//	1013                                  Reconnect, at least 5 s later
//	1002 sent by the server               GiveUp
//	1002 found by us (Err != nil)         Reconnect (a frame we could not parse)
//	1003, 1007, 1008, 1009, 1010          GiveUp
//	1015 (TLS certificate rejected)       GiveUp
//	3000, 3003 (unauthorized, forbidden)  GiveUp
//	other 3000–4999                       Reconnect
//	anything else                         Reconnect
//
// Refused handshakes (Disconnect.HTTPStatus != 0):
//
//	429, 503                 Reconnect, no sooner than Retry-After
//	408, other 5xx           Reconnect
//	400, 401, 403, 404, 426  GiveUp
//	anything else            GiveUp (not a WebSocket endpoint)
//
// Network errors (refused, reset, timeout, DNS) arrive as 1006 and
// reconnect. An error wrapping ErrInvalidConfig (a HeaderFunc returning a
// header the handshake sets itself) or ErrResumeUnsupported (Config.Resume
// and a server without the protocol) gives up.
func DefaultPolicy(d Disconnect) Decision {
	if d.HTTPStatus != 0 {
		return handshakePolicy(d)
	}
	if errors.Is(d.Err, ErrInvalidConfig) || errors.Is(d.Err, ErrResumeUnsupported) {
		return Decision{Action: GiveUp} // retrying cannot fix it
	}
	switch c := d.Code; {
	case c == StatusNormalClosure:
		return Decision{Action: Stop}
	case c == StatusTryAgainLater:
		return Decision{Action: Reconnect, MinDelay: max(tryAgainLaterDelay, d.RetryAfter)}
	case c == StatusProtocolError && d.Err != nil:
		return Decision{Action: Reconnect}
	case c == StatusProtocolError, c == StatusUnsupportedData, c == StatusInvalidFramePayloadData,
		c == StatusPolicyViolation, c == StatusMessageTooBig, c == StatusMandatoryExtension,
		c == StatusTLSHandshake, c == 3000, c == 3003:
		return Decision{Action: GiveUp}
	}
	return Decision{Action: Reconnect}
}

func handshakePolicy(d Disconnect) Decision {
	switch s := d.HTTPStatus; {
	case s == 429 || s == 503:
		return Decision{Action: Reconnect, MinDelay: max(d.RetryAfter, 0)}
	case s == 408 || (s >= 500 && s <= 599):
		return Decision{Action: Reconnect}
	}
	return Decision{Action: GiveUp}
}
