package main

import (
	"encoding/binary"
	"net/http"
	"strconv"

	"github.com/gorilla/websocket"

	"github.com/resocket/resocket/internal/wire"
)

// resumeRawStream is /resume-raw-stream?size=S: the resume protocol's
// handshake (a new session), then pre-encoded batches of data frames
// (kind byte 0x00 and S bytes each), written as /stream writes plain
// ones; the client's acks are read and dropped. To a client that takes
// batch frames, the messages go as session.Server sends a stream, up to
// 256 to a batch frame (rawFrame). It costs the server
// nothing per message, as /stream does, so a resume client's rate
// against it over a plain client's against /stream is what Resume costs
// the client alone. Not a protocol server: no numbering kept, no replay.
func (s *server) resumeRawStream(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.Atoi(r.URL.Query().Get("size"))
	if err != nil || size < 0 || size > 1<<20 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	ws := s.upgradeRaw(w, r)
	if ws == nil {
		return
	}
	defer ws.Close()
	streamBatches(ws, rawFrame(r.Header, size))
}

// rawFrame is what carries messages of size bytes to a resume client that
// sent h: a batch frame of as many as session.Server puts in one (256, and
// no more than the client takes), or a data frame.
func rawFrame(h http.Header, size int) []byte {
	msg := make([]byte, size)
	limit, _ := wire.ParseOptionalCount(h.Get(wire.HeaderBatch))
	n := min(256, (int(min(limit, 64<<10))-1)/wire.EntryLen(size)) //nolint:gosec // at most 64 KiB
	if n < 2 {
		return encodeFrame(websocket.BinaryMessage, append([]byte{wire.KindData}, msg...))
	}
	batch := []byte{wire.KindBatch}
	for range n {
		batch = wire.AppendEntry(batch, byte(websocket.BinaryMessage), msg)
	}
	return encodeFrame(websocket.BinaryMessage, batch)
}

// upgradeRaw answers the handshake of a resume client with a new session.
// It tells the window session.Server tells by default (4,096 messages),
// so that the client acks as often as it would against that server,
// though these endpoints never wait for an ack.
func (s *server) upgradeRaw(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	h := http.Header{}
	h.Set("Resocket-Window", "4096")
	h.Set("Resocket-Resume", "1")
	h.Set("Resocket-Session", "benchSession0000000000")
	h.Set("Resocket-Secret", "benchSecret00000000000000000000000000000000")
	h.Set("Resocket-Resumed", "0")
	h.Set("Resocket-Received", "0")
	ws, err := s.upgrader.Upgrade(w, r, h)
	if err != nil {
		return nil
	}
	return ws
}

// rawAckEvery is how often the raw endpoints acknowledge the client's
// data messages to a client that told no window; to one that did, every
// half of it, as our session server does (wire.AckEvery).
const rawAckEvery = 64

// resumeRawEcho is /resume-raw-echo: /echo for a resume client. Each data
// frame is written back as it came (the kind byte, then the message: a
// valid data frame from the server too), as /echo writes back each
// message, and every half of the client's window of data frames is
// acknowledged (rawAckEvery without one); the
// client's acks are dropped. Nothing kept, nothing stored: what Resume
// costs the client alone on a round trip.
func (s *server) resumeRawEcho(w http.ResponseWriter, r *http.Request) {
	s.resumeRaw(w, r, true)
}

// resumeRawSink is /resume-raw-sink: /sink for a resume client, which
// discards each message and acknowledges every half of the client's
// window of data frames (the client's outbox would fill otherwise), as
// the session server does.
func (s *server) resumeRawSink(w http.ResponseWriter, r *http.Request) {
	s.resumeRaw(w, r, false)
}

func (s *server) resumeRaw(w http.ResponseWriter, r *http.Request, echo bool) {
	ws := s.upgradeRaw(w, r)
	if ws == nil {
		return
	}
	defer ws.Close()
	window, err := wire.ParseOptionalCount(r.Header.Get(wire.HeaderWindow))
	if err != nil {
		return
	}
	ackEvery := wire.AckEvery(window, rawAckEvery)
	var received uint64
	for {
		typ, msg, err := ws.ReadMessage()
		if err != nil || len(msg) == 0 {
			return
		}
		if msg[0] != 0x00 {
			continue // the client's ack
		}
		received++
		if echo {
			if err := ws.WriteMessage(typ, msg); err != nil {
				return
			}
		}
		if received%ackEvery == 0 {
			if err := ws.WriteMessage(websocket.BinaryMessage, binary.BigEndian.AppendUint64([]byte{0x01}, received)); err != nil {
				return
			}
		}
	}
}
