package resocket

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
)

// Fuzz targets. Their seeds are the files in testdata/fuzz/<FuzzName>/,
// which `go test` runs as ordinary tests; `make fuzz` fuzzes each target
// for FUZZTIME:
//
//	go test -run '^$' -fuzz '^FuzzCloseFrame$' -fuzztime 30s .

// Close-frame payload forms for FuzzCloseFrame.
const (
	closeFormCode  = iota // the 2-byte code, then the reason
	closeFormEmpty        // no payload at all
	closeFormOne          // 1 byte: the code's high byte
	closeForms
)

// fuzzMaxReason bounds the reason a fuzz input can carry: anything past
// 123 bytes is already a protocol error, and the payload travels in the URL.
const fuzzMaxReason = 200

// closeFramePayload builds the close frame's payload for one fuzz input.
func closeFramePayload(code uint16, reason []byte, form uint8) []byte {
	switch form % closeForms {
	case closeFormEmpty:
		return nil
	case closeFormOne:
		return []byte{byte(code >> 8)}
	}
	p := binary.BigEndian.AppendUint16(nil, code)
	return append(p, reason...)
}

// closeFrameServer upgrades every request and writes, as its first frame,
// a close frame whose payload is the hex in the query's p, exactly as
// given (invalid codes, invalid UTF-8, over-long payloads included), then
// waits up to two seconds for the client to answer or go away.
func closeFrameServer(tb testing.TB) *httptest.Server {
	upgrader := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, err := hex.DecodeString(r.URL.Query().Get("p"))
		if err != nil {
			http.Error(w, "bad p", http.StatusBadRequest)
			return
		}
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		// A raw frame: gorilla refuses to write most of these payloads.
		frame := []byte{0x88} // FIN, opcode close; unmasked from a server
		if n := len(payload); n <= 125 {
			frame = append(frame, byte(n))
		} else {
			frame = append(frame, 126, byte(n>>8), byte(n))
		}
		frame = append(frame, payload...)
		conn := ws.NetConn()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write(frame); err != nil {
			return
		}
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// wantClose is what the client must report for a close-frame payload
// (RFC 6455 §5.5.1, §7.4, §8.1): the peer's code and reason when the frame
// is valid, 1005 for an empty payload, and 1002 with Err set (a protocol
// error found by us) for anything else. Two exceptions come from gorilla:
// it reads a 1-byte payload as no status at all, so that is 1005 too (as
// TestServerCloseDecisions states; the decision, Reconnect, is the same as
// for a protocol error); and it rejects 1014, which the client still
// reports as 1014, without the reason.
func wantClose(payload []byte) (code StatusCode, reason string, protocolError bool) {
	if len(payload) < 2 {
		return StatusNoStatusRcvd, "", false
	}
	if len(payload) > 125 {
		return StatusProtocolError, "", true
	}
	c := StatusCode(binary.BigEndian.Uint16(payload))
	if c == StatusBadGateway {
		return c, "", false
	}
	if !c.sendable() || !utf8.Valid(payload[2:]) {
		return StatusProtocolError, "", true
	}
	return c, string(payload[2:]), false
}

// FuzzCloseFrame sends the client a close frame with any code, reason and
// length through a real client and server pair. The client must never
// panic, must report the connection's end with the code the RFC gives it
// and the default policy's decision, and must end cleanly when terminated.
func FuzzCloseFrame(f *testing.F) {
	srv := closeFrameServer(f)
	base := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?p="

	f.Fuzz(func(t *testing.T, code uint16, reason []byte, form uint8) {
		if len(reason) > fuzzMaxReason {
			reason = reason[:fuzzMaxReason]
		}
		payload := closeFramePayload(code, reason, form)
		wantCode, wantReason, wantErr := wantClose(payload)

		c, err := New(base+hex.EncodeToString(payload), Config{
			PingInterval: -1,
			CloseTimeout: time.Second,
			// No second attempt before Terminate: one connection per input.
			Backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) },
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Terminate()
		timeout := time.NewTimer(5 * time.Second)
		defer timeout.Stop()
		var disc Disconnected
	wait:
		for {
			select {
			case ev, ok := <-c.Events():
				if !ok {
					t.Fatal("Events closed before Disconnected")
				}
				switch ev := ev.(type) {
				case Disconnected:
					disc = ev
					break wait
				case DialFailed:
					t.Fatalf("the handshake failed: %v", ev.Disconnect.Err)
				}
			case <-timeout.C:
				t.Fatalf("payload %x: no Disconnected within 5s", payload)
			}
		}

		d, dec := disc.Disconnect, disc.Decision
		if d.Code != wantCode {
			t.Errorf("payload %x: Code %d, want %d (Err %v)", payload, d.Code, wantCode, d.Err)
		}
		if wantErr != (d.Err != nil) {
			t.Errorf("payload %x: Err %v, want an error: %v", payload, d.Err, wantErr)
		}
		if !wantErr && wantCode != StatusBadGateway && d.Reason != wantReason {
			t.Errorf("payload %x: Reason %q, want %q", payload, d.Reason, wantReason)
		}
		if d.HTTPStatus != 0 || d.Attempt != 1 || d.Uptime <= 0 {
			t.Errorf("payload %x: HTTPStatus %d, Attempt %d, Uptime %v; want 0, 1, > 0", payload, d.HTTPStatus, d.Attempt, d.Uptime)
		}
		checkDecision(t, dec)
		if want := DefaultPolicy(d); dec != want {
			t.Errorf("payload %x: decision %+v, DefaultPolicy says %+v", payload, dec, want)
		}

		c.Terminate()
		for ev := range c.Events() { // closes once the client has ended
			if closed, ok := ev.(Closed); ok && dec.Action != GiveUp && closed.Err != nil {
				t.Errorf("payload %x: Closed.Err %v after Terminate", payload, closed.Err)
			}
		}
	})
}

// checkDecision fails t unless dec is one a Policy may return.
func checkDecision(t *testing.T, dec Decision) {
	t.Helper()
	switch dec.Action {
	case Reconnect, Stop, GiveUp:
	default:
		t.Errorf("Action %v is none of Reconnect, Stop, GiveUp", dec.Action)
	}
	if dec.MinDelay < 0 {
		t.Errorf("MinDelay %v < 0", dec.MinDelay)
	}
	if dec.Action != Reconnect && dec.MinDelay != 0 {
		t.Errorf("MinDelay %v with %v: it applies to Reconnect only", dec.MinDelay, dec.Action)
	}
}

// FuzzParseRetryAfter: any header value gives a wait in [0, 24h], never a
// panic; a plain count of seconds up to 86400 is read exactly, a larger one
// is capped; an HTTP date gives the time until it, capped.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d := parseRetryAfter(s, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, %v]", s, d, maxRetryAfter)
		}
		if s != "" && strings.Trim(s, "0123456789") == "" {
			n, err := strconv.ParseUint(s, 10, 64)
			switch {
			case err == nil && n <= uint64(maxRetryAfter/time.Second):
				if want := time.Duration(n) * time.Second; d != want {
					t.Fatalf("parseRetryAfter(%q) = %v, want %v", s, d, want)
				}
			case d != maxRetryAfter: // above the cap, or too long for a uint64
				t.Fatalf("parseRetryAfter(%q) = %v, want the cap %v", s, d, maxRetryAfter)
			}
		}
		if when, err := http.ParseTime(strings.TrimSpace(s)); err == nil {
			want := min(max(when.Sub(now), 0), maxRetryAfter)
			if d != want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v (the date is %v)", s, d, want, when)
			}
		}
	})
}

// FuzzDefaultPolicy: whatever the Disconnect, DefaultPolicy returns a valid
// decision without panicking, the same one every time, and the one its
// documented table gives for the cases it names.
func FuzzDefaultPolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, code, status int, retryAfterNs int64, attempt int, hasErr bool) {
		d := Disconnect{
			Code:       StatusCode(code),
			HTTPStatus: status,
			RetryAfter: time.Duration(retryAfterNs),
			Attempt:    attempt,
		}
		if hasErr {
			d.Err = errors.New("fuzz")
		}
		dec := DefaultPolicy(d)
		checkDecision(t, dec)
		if again := DefaultPolicy(d); again != dec {
			t.Fatalf("DefaultPolicy(%+v) = %+v, then %+v", d, dec, again)
		}

		want := func(action Action, minDelay time.Duration) {
			t.Helper()
			if dec != (Decision{Action: action, MinDelay: minDelay}) {
				t.Errorf("DefaultPolicy(%+v) = %+v, want %v with MinDelay %v", d, dec, action, minDelay)
			}
		}
		switch {
		case status == 429 || status == 503:
			want(Reconnect, max(d.RetryAfter, 0))
		case status == 408 || status >= 500 && status <= 599:
			want(Reconnect, 0)
		case status != 0:
			want(GiveUp, 0)
		case d.Code == StatusNormalClosure:
			want(Stop, 0)
		case d.Code == StatusTryAgainLater:
			want(Reconnect, max(5*time.Second, d.RetryAfter))
		case d.Code == StatusProtocolError && hasErr:
			want(Reconnect, 0)
		case d.Code == StatusAbnormalClosure, d.Code == StatusServiceRestart, d.Code == StatusBadGateway,
			d.Code == StatusGoingAway, d.Code == StatusNoStatusRcvd, d.Code == StatusInternalError:
			want(Reconnect, 0)
		case d.Code == 3000, d.Code == 3003, d.Code == StatusPolicyViolation, d.Code == StatusTLSHandshake:
			want(GiveUp, 0)
		}
	})
}

// FuzzDefaultPolicyFreshCredentials: FreshHeaders and Previous change the
// decision for a refused credential (401, 3000) only, and there as the
// documented rule says: one retry at once with HeaderFunc set, none
// after a refused credential, none without HeaderFunc. For everything
// else the decision is the one without them.
func FuzzDefaultPolicyFreshCredentials(f *testing.F) {
	f.Add(0, 401, true, false, 0, 0)
	f.Add(0, 401, true, true, 0, 401)
	f.Add(3000, 0, true, true, 3000, 0)
	f.Add(3000, 0, true, true, 1006, 0)
	f.Add(3000, 0, false, false, 0, 0)
	f.Add(1006, 0, true, true, 3000, 0)
	f.Add(4401, 0, true, true, 4401, 0)
	f.Add(3000, 503, true, false, 0, 0)
	f.Fuzz(func(t *testing.T, code, status int, fresh, hasPrev bool, prevCode, prevStatus int) {
		d := Disconnect{Code: StatusCode(code), HTTPStatus: status, FreshHeaders: fresh}
		prevRefused := false
		if hasPrev {
			d.Previous = &Disconnect{Code: StatusCode(prevCode), HTTPStatus: prevStatus}
			prevRefused = prevStatus == 401 || (prevStatus == 0 && prevCode == 3000)
		}
		dec := DefaultPolicy(d)
		checkDecision(t, dec)
		if dec.Immediate && dec.Action != Reconnect {
			t.Fatalf("DefaultPolicy(%+v) = %+v: Immediate without Reconnect", d, dec)
		}
		refused := status == 401 || (status == 0 && code == 3000)
		switch {
		case refused && fresh && !prevRefused:
			if dec != (Decision{Action: Reconnect, Immediate: true}) {
				t.Fatalf("DefaultPolicy(%+v) = %+v, want one retry at once", d, dec)
			}
		case refused:
			if dec != (Decision{Action: GiveUp}) {
				t.Fatalf("DefaultPolicy(%+v) = %+v, want GiveUp", d, dec)
			}
		default:
			if plain := DefaultPolicy(Disconnect{Code: d.Code, HTTPStatus: status}); dec != plain {
				t.Fatalf("DefaultPolicy(%+v) = %+v, but %+v without FreshHeaders and Previous", d, dec, plain)
			}
		}
	})
}
