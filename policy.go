package resocket

import (
	"errors"
	"net/http"
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

	// FreshHeaders reports that Config.HeaderFunc is set: the next
	// attempt asks it for headers again, so a refusal of the credentials
	// it returned (a token that expired, say) may not repeat.
	FreshHeaders bool
	// Previous is the outcome just before this one in the same row, so
	// that a policy can tell a refusal from a repeated refusal and still
	// be a pure function of its argument. A row ends with a connection
	// that stayed up Config.StableAfter: Previous is nil for the outcome
	// of such a connection, and for the first attempt. Its own Previous
	// is always nil.
	Previous *Disconnect
}

// credentialsRefused reports whether d is a refusal of the credentials
// sent: a handshake refused with 401, or a close with 3000 Unauthorized.
func (d *Disconnect) credentialsRefused() bool {
	return d != nil && (d.HTTPStatus == http.StatusUnauthorized || (d.HTTPStatus == 0 && d.Code == statusUnauthorized))
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
	// Immediate (Reconnect only) dials again at once: no backoff delay
	// and no MinDelay, and the backoff does not advance. Config.DialLimiter,
	// if set, is still waited for. DefaultPolicy sets it for a single
	// retry with fresh credentials; a policy that sets it every time makes
	// a tight loop.
	Immediate bool
}

// Policy decides, from how a connection ended or an attempt failed, whether
// to reconnect, stop or give up. It runs on the client's own goroutine, so
// it must not block; wrap DefaultPolicy to change single codes.
type Policy func(Disconnect) Decision

// statusUnauthorized is 3000, the close code IANA registered for a
// connection refused for want of valid credentials.
const statusUnauthorized StatusCode = 3000

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
//	3000 (unauthorized)                   GiveUp; with fresh credentials, see below
//	3003 (forbidden)                      GiveUp
//	other 3000–4999                       Reconnect
//	anything else                         Reconnect
//
// Refused handshakes (Disconnect.HTTPStatus != 0):
//
//	429, 503                 Reconnect, no sooner than Retry-After
//	408, other 5xx           Reconnect
//	401                      GiveUp; with fresh credentials, see below
//	400, 403, 404, 426       GiveUp
//	anything else            GiveUp (not a WebSocket endpoint)
//
// Fresh credentials: a 401 or a 3000 while Config.HeaderFunc is set
// (Disconnect.FreshHeaders) is retried once, at once (Decision.Immediate):
// the token may just have expired, and the next attempt asks HeaderFunc
// for a new one. If the outcome before it in the row (Disconnect.Previous)
// was already a 401 or a 3000, the fresh credentials were refused too, and
// it gives up. A connection that stayed up StableAfter ends the row.
// Without HeaderFunc, retrying would send the same credentials: GiveUp.
//
// To do the same for a private code, such as 4401, wrap DefaultPolicy:
//
//	func(d resocket.Disconnect) resocket.Decision {
//		if d.Code == 4401 {
//			if d.FreshHeaders && (d.Previous == nil || d.Previous.Code != 4401) {
//				return resocket.Decision{Action: resocket.Reconnect, Immediate: true}
//			}
//			return resocket.Decision{Action: resocket.GiveUp}
//		}
//		return resocket.DefaultPolicy(d)
//	}
//
// Network errors (refused, reset, timeout, DNS) arrive as 1006 and
// reconnect. An error wrapping ErrInvalidConfig (a HeaderFunc returning a
// header the handshake sets itself) or ErrResumeUnsupported (Config.Resume
// and a server without the protocol) gives up.
func DefaultPolicy(d Disconnect) Decision {
	if d.credentialsRefused() {
		if d.FreshHeaders && !d.Previous.credentialsRefused() {
			return Decision{Action: Reconnect, Immediate: true}
		}
		return Decision{Action: GiveUp}
	}
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
		c == StatusTLSHandshake, c == 3003:
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
