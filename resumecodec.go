package resocket

import (
	"fmt"
	"math"
	"net/http"

	"github.com/resocket/resocket/internal/wire"
)

// ResumeCodec puts a resumable session on the wire: how the handshake
// names the session and its resume point, and how data messages and
// acknowledgements are framed. The client's machinery (numbering, the
// outbox, acknowledgements, replay, deduplication) is the same whatever
// the codec. nil in Config.ResumeCodec means the built-in protocol of
// docs/protocol.md, which the package session serves.
//
// Plug in a codec of your own when your server already numbers and
// acknowledges messages (a gateway that resumes with a session ID and a
// sequence number, say). Its methods run on the client's goroutines, one
// call at a time per connection for Decode; they must not block.
type ResumeCodec interface {
	// Offer adds to the upgrade request's headers what asks the server to
	// resume p, or, when p.Session is empty, to start a new session.
	Offer(h http.Header, p ResumePoint)
	// Answer reads the server's 101 response headers. An error wrapping
	// ErrResumeUnsupported means the server does not speak the protocol;
	// any other error fails the attempt as a protocol error.
	Answer(h http.Header) (ResumeAnswer, error)
	// AppendData appends to dst the frame that carries data message number
	// seq (counted from 1 within the session), and returns the WebSocket
	// message type to send it as. A replay calls it with an empty binary
	// message for a number the server acknowledged while the replay ran:
	// only the number matters, the server drops it.
	AppendData(dst []byte, seq uint64, typ MessageType, data []byte) (MessageType, []byte)
	// AppendAck appends to dst the frame that acknowledges the first
	// received data messages from the server, and returns its type.
	AppendAck(dst []byte, received uint64) (MessageType, []byte)
	// Decode parses one message from the server. The returned frame may
	// share frame's memory, which the client does not reuse.
	Decode(typ MessageType, frame []byte) (ResumeFrame, error)
}

// ResumePoint is what the client asks to resume: the session, its secret,
// and how many of the server's data messages it has handed to the
// application.
type ResumePoint struct {
	Session  string
	Secret   string
	Received uint64
	// Window and WindowBytes bound the client's outbox (Config.SendBuffer
	// and ResumeBufferBytes): told to the server, so that it acknowledges
	// often enough that Send never waits for its ack timer.
	Window, WindowBytes int
	// Batch is the largest batch frame (docs/protocol.md §2), in bytes,
	// that the client takes: several data messages in one WebSocket
	// message. Only the built-in codec reads them; with another, it is 0.
	Batch int
}

// ResumeAnswer is the server's side of the handshake.
type ResumeAnswer struct {
	Session  string // the session now in use
	Secret   string // issued with a new session; empty when resumed
	Resumed  bool   // the session asked for continues; false: a new one
	Received uint64 // how many of the client's data messages the server has
	// Window and WindowBytes bound the server's unacknowledged messages
	// (0: not said); the client acknowledges at least every half of them.
	Window, WindowBytes int
}

// ResumeFrame is one decoded message from the server: an acknowledgement
// (Ack set, Received the cumulative count), or a data message. Seq is the
// data message's number in the session, or 0 when the codec numbers
// implicitly (the next after the last one received).
type ResumeFrame struct {
	Ack      bool
	Move     bool // the server is going away: the client moves to its next URL, make-before-break
	Received uint64
	Seq      uint64
	Type     MessageType
	Data     []byte
}

// builtinCodec is the protocol of docs/protocol.md: headers in the
// handshake, one kind byte in front of every message, implicit numbering.
type builtinCodec struct{}

func (builtinCodec) Offer(h http.Header, p ResumePoint) {
	h.Set(wire.HeaderResume, wire.Version)
	setWindow(h, p.Window, p.WindowBytes)
	if p.Batch > 0 {
		h.Set(wire.HeaderBatch, wire.FormatCount(uint64(p.Batch)))
	}
	if p.Session == "" {
		return
	}
	h.Set(wire.HeaderSession, p.Session)
	h.Set(wire.HeaderSecret, p.Secret)
	h.Set(wire.HeaderReceived, wire.FormatCount(p.Received))
}

func (builtinCodec) Answer(h http.Header) (ResumeAnswer, error) {
	if v := h.Get(wire.HeaderResume); v != wire.Version {
		return ResumeAnswer{}, fmt.Errorf("%w: %s is %q, want %q", ErrResumeUnsupported, wire.HeaderResume, v, wire.Version)
	}
	a := ResumeAnswer{Session: h.Get(wire.HeaderSession), Secret: h.Get(wire.HeaderSecret)}
	if !wire.ValidToken(a.Session) {
		return ResumeAnswer{}, fmt.Errorf("%s missing or malformed", wire.HeaderSession)
	}
	switch h.Get(wire.HeaderResumed) {
	case "1":
		a.Resumed = true
	case "0":
		if !wire.ValidToken(a.Secret) {
			return ResumeAnswer{}, fmt.Errorf("new session without a well-formed %s", wire.HeaderSecret)
		}
	default:
		return ResumeAnswer{}, fmt.Errorf("%s is %q, want 0 or 1", wire.HeaderResumed, h.Get(wire.HeaderResumed))
	}
	n, err := wire.ParseCount(h.Get(wire.HeaderReceived))
	if err != nil {
		return ResumeAnswer{}, fmt.Errorf("%s: %w", wire.HeaderReceived, err)
	}
	a.Received = n
	if a.Window, err = optionalCount(h, wire.HeaderWindow); err != nil {
		return ResumeAnswer{}, err
	}
	if a.WindowBytes, err = optionalCount(h, wire.HeaderWindowBytes); err != nil {
		return ResumeAnswer{}, err
	}
	return a, nil
}

// setWindow tells the other side the window, when there is one.
func setWindow(h http.Header, window, windowBytes int) {
	if window > 0 {
		h.Set(wire.HeaderWindow, wire.FormatCount(uint64(window)))
	}
	if windowBytes > 0 {
		h.Set(wire.HeaderWindowBytes, wire.FormatCount(uint64(windowBytes)))
	}
}

// optionalCount reads a count header that may be absent (0).
func optionalCount(h http.Header, name string) (int, error) {
	n, err := wire.ParseOptionalCount(h.Get(name))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return int(min(n, math.MaxInt32)), nil
}

func (builtinCodec) AppendData(dst []byte, _ uint64, typ MessageType, data []byte) (MessageType, []byte) {
	return typ, append(append(dst, wire.KindData), data...)
}

func (builtinCodec) AppendAck(dst []byte, received uint64) (MessageType, []byte) {
	return MessageBinary, wire.AppendAck(dst, received)
}

func (builtinCodec) Decode(typ MessageType, frame []byte) (ResumeFrame, error) {
	if len(frame) == 0 {
		return ResumeFrame{}, fmt.Errorf("empty message: no frame kind")
	}
	switch frame[0] {
	case wire.KindData:
		return ResumeFrame{Type: typ, Data: frame[1:]}, nil
	case wire.KindMove:
		if typ != MessageBinary || len(frame) != 1 {
			return ResumeFrame{}, fmt.Errorf("malformed move frame")
		}
		return ResumeFrame{Move: true}, nil
	case wire.KindAck:
		if typ != MessageBinary {
			return ResumeFrame{}, fmt.Errorf("ack frame sent as text")
		}
		n, err := wire.ParseAck(frame)
		if err != nil {
			return ResumeFrame{}, err
		}
		return ResumeFrame{Ack: true, Received: n}, nil
	}
	return ResumeFrame{}, fmt.Errorf("unknown frame kind 0x%02x", frame[0])
}
