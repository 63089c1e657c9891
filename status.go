package resocket

import "strconv"

// StatusCode is a WebSocket close code (RFC 6455 §7.4 and the IANA registry).
type StatusCode int

// Close codes defined by RFC 6455 and registered with IANA.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusRcvd            StatusCode = 1005 // never sent on the wire: a close frame came without a code
	StatusAbnormalClosure         StatusCode = 1006 // never sent: connection lost without a close frame
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015 // never sent on the wire
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:           "normal closure",
	StatusGoingAway:               "going away",
	StatusProtocolError:           "protocol error",
	StatusUnsupportedData:         "unsupported data",
	StatusNoStatusRcvd:            "no status received",
	StatusAbnormalClosure:         "abnormal closure",
	StatusInvalidFramePayloadData: "invalid frame payload data",
	StatusPolicyViolation:         "policy violation",
	StatusMessageTooBig:           "message too big",
	StatusMandatoryExtension:      "mandatory extension",
	StatusInternalError:           "internal error",
	StatusServiceRestart:          "service restart",
	StatusTryAgainLater:           "try again later",
	StatusBadGateway:              "bad gateway",
	StatusTLSHandshake:            "TLS handshake",
	3000:                          "unauthorized",
	3003:                          "forbidden",
	3008:                          "timeout",
}

// String returns the code and its registered name, such as
// "1012 (service restart)", or just the number for unnamed codes.
func (c StatusCode) String() string {
	n := strconv.Itoa(int(c))
	if name, ok := statusNames[c]; ok {
		return n + " (" + name + ")"
	}
	switch {
	case c >= 3000 && c <= 3999:
		return n + " (registered)"
	case c >= 4000 && c <= 4999:
		return n + " (private)"
	}
	return n
}

// sendable reports whether an endpoint may put c in a close frame
// (RFC 6455 §7.4.1–2): 1000–1003, 1007–1014 and the 3000–4999 ranges.
func (c StatusCode) sendable() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// MessageType is the type of a data message.
type MessageType int

// Data message types, numbered as on the wire.
const (
	MessageText   MessageType = 1
	MessageBinary MessageType = 2
)

// String returns "text", "binary", or the number for anything else.
func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}
