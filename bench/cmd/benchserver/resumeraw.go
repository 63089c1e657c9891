package main

import (
	"net/http"
	"strconv"

	"github.com/gorilla/websocket"
)

// resumeRawStream is /resume-raw-stream?size=S: the resume protocol's
// handshake (a new session), then pre-encoded batches of data frames
// (kind byte 0x00 and S bytes each), written as /stream writes plain
// ones; the client's acks are read and dropped. It costs the server
// nothing per message, as /stream does, so a resume client's rate
// against it over a plain client's against /stream is what Resume costs
// the client alone. Not a protocol server: no numbering kept, no replay.
func (s *server) resumeRawStream(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.Atoi(r.URL.Query().Get("size"))
	if err != nil || size < 0 || size > 1<<20 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	h := http.Header{}
	h.Set("Resocket-Resume", "1")
	h.Set("Resocket-Session", "benchSession0000000000")
	h.Set("Resocket-Secret", "benchSecret00000000000000000000000000000000")
	h.Set("Resocket-Resumed", "0")
	h.Set("Resocket-Received", "0")
	ws, err := s.upgrader.Upgrade(w, r, h)
	if err != nil {
		return
	}
	defer ws.Close()
	streamBatches(ws, encodeFrame(websocket.BinaryMessage, append([]byte{0x00}, make([]byte, size)...)))
}
