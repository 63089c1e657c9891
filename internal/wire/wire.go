// Package wire holds the built-in resume protocol's names and frame
// formats, shared by the client (package resocket) and the server
// (package session). docs/protocol.md is the specification; this package
// is its one implementation in Go.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Handshake headers, on the upgrade request and on the 101 response.
const (
	HeaderResume   = "Resocket-Resume"   // protocol version, both ways
	HeaderSession  = "Resocket-Session"  // session ID
	HeaderSecret   = "Resocket-Secret"   // the secret issued with a new session
	HeaderReceived = "Resocket-Received" // data messages received from the peer
	HeaderResumed  = "Resocket-Resumed"  // response only: "1" resumed, "0" new session
	HeaderError    = "Resocket-Error"    // response to a refused handshake: why

	// Optional, both ways: the sender's window, the data messages (and
	// their bytes) it keeps unacknowledged before it waits; the other side
	// acknowledges at least every half of it (AckEvery, AckBytes).
	HeaderWindow      = "Resocket-Window"
	HeaderWindowBytes = "Resocket-Window-Bytes"

	// Optional, request only: the client takes batch frames (KindBatch)
	// of up to this many bytes.
	HeaderBatch = "Resocket-Batch"
)

// AckEvery is how many data messages a receiver takes in before it
// acknowledges: half the sender's window (at least 1), so that the
// sender never waits for the ack timer, and no more often, since each
// ack is a write; def when the window was not said (0).
func AckEvery(window, def uint64) uint64 {
	if window == 0 {
		return def
	}
	return max(1, window/2)
}

// AckBytes is how many bytes of data messages a receiver takes in before
// it acknowledges: half the sender's window in bytes (at least 1), or 0,
// no bound, when the window was not said.
func AckBytes(windowBytes uint64) uint64 {
	if windowBytes == 0 {
		return 0
	}
	return max(1, windowBytes/2)
}

// Version is the protocol version this package speaks.
const Version = "1"

// Frame kinds: the first byte of every WebSocket data message.
const (
	KindData byte = 0x00 // the rest is one application message, of the frame's WebSocket type
	KindAck  byte = 0x01 // binary; 8 bytes follow: the cumulative count received, big-endian
	KindMove byte = 0x02 // binary, server to client, alone: this server is going away, move now
	// KindBatch: binary, server to client, only to a client that sent
	// HeaderBatch: one or more data messages, each an entry (AppendEntry).
	KindBatch byte = 0x03
)

// AckLen is the length of an ack frame.
const AckLen = 9

// MaxCountLen bounds a decimal count in a header: 2^64-1 has 20 digits.
const MaxCountLen = 20

// ErrMalformed is wrapped by every parse error of this package.
var ErrMalformed = errors.New("malformed")

// AppendAck appends the ack frame for count received messages.
func AppendAck(dst []byte, count uint64) []byte {
	dst = append(dst, KindAck)
	return binary.BigEndian.AppendUint64(dst, count)
}

// ParseAck reads an ack frame (kind byte included).
func ParseAck(frame []byte) (uint64, error) {
	if len(frame) != AckLen || frame[0] != KindAck {
		return 0, fmt.Errorf("%w ack frame of %d bytes", ErrMalformed, len(frame))
	}
	return binary.BigEndian.Uint64(frame[1:]), nil
}

// AppendEntry appends one data message, of WebSocket opcode typ (1 text,
// 2 binary), to a batch frame: typ, the data's length as an unsigned
// LEB128 varint, then the data.
func AppendEntry(dst []byte, typ byte, data []byte) []byte {
	dst = binary.AppendUvarint(append(dst, typ), uint64(len(data)))
	return append(dst, data...)
}

// EntryLen is the length of the entry that carries n bytes of data.
func EntryLen(n int) int {
	return 1 + uvarintLen(uint64(n)) + n //nolint:gosec // a length is never negative
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// NextEntry reads the first entry of a batch frame's entries (the bytes
// after its kind byte) and returns the rest.
func NextEntry(entries []byte) (typ byte, data, rest []byte, err error) {
	if len(entries) == 0 {
		return 0, nil, nil, fmt.Errorf("%w batch entry: none left", ErrMalformed)
	}
	typ = entries[0]
	if typ != 1 && typ != 2 {
		return 0, nil, nil, fmt.Errorf("%w batch entry of type %d", ErrMalformed, typ)
	}
	n, l := binary.Uvarint(entries[1:])
	// l != uvarintLen(n): a padded varint, which AppendEntry never writes.
	if l <= 0 || l != uvarintLen(n) || n > uint64(len(entries)-1-l) { //nolint:gosec // l > 0 and within entries
		return 0, nil, nil, fmt.Errorf("%w batch entry length", ErrMalformed)
	}
	end := 1 + l + int(n) //nolint:gosec // n fits: it is below len(entries)
	return typ, entries[1+l : end], entries[end:], nil
}

// ParseCount reads a decimal count from a header: digits only, no sign, no
// leading zeros beyond "0" itself, at most 2^64-1.
func ParseCount(s string) (uint64, error) {
	if s == "" || len(s) > MaxCountLen || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w count %q", ErrMalformed, clip(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w count %q", ErrMalformed, clip(s))
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w count %q", ErrMalformed, clip(s))
	}
	return n, nil
}

// ParseOptionalCount is ParseCount for a header that may be absent: an
// empty value is 0, not said.
func ParseOptionalCount(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return ParseCount(s)
}

// FormatCount writes a count for a header.
func FormatCount(n uint64) string { return strconv.FormatUint(n, 10) }

// ValidToken reports whether s may be a session ID or secret: 1 to 128
// characters of the URL-safe base64 alphabet.
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
