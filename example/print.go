package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/resocket/resocket"
)

// printer writes events as readable lines or as JSON lines. It is safe
// for concurrent use.
type printer struct {
	mu   sync.Mutex
	json bool
	// events receives one line per event. messages, if set, receives the
	// bare text of received messages instead (wscat mode, without -json).
	events, messages io.Writer
	diag             io.Writer // warnings
	now              func() time.Time
}

// newPrinter sets up the output: everything on stdout for the demo and for
// -json; for wscat, messages on stdout and events on stderr.
func newPrinter(jsonOut, demo bool, stdout, stderr io.Writer) *printer {
	p := &printer{json: jsonOut, events: stdout, diag: stderr, now: time.Now}
	if !jsonOut && !demo {
		p.events, p.messages = stderr, stdout
	}
	return p
}

// event prints one event.
func (p *printer) event(ev resocket.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	switch m, isMsg := ev.(resocket.Message); {
	case p.json:
		b, err := json.Marshal(jsonOf(now, ev))
		if err != nil { // cannot happen: every field marshals
			b = []byte(strconv.Quote(err.Error()))
		}
		b = append(b, '\n')
		_, _ = p.events.Write(b)
	case isMsg && p.messages != nil:
		_, _ = io.WriteString(p.messages, bareMessage(m))
	default:
		name, detail := describe(ev)
		_, _ = fmt.Fprintf(p.events, "%s %-15s %s\n", now.Format("15:04:05.000"), name, detail)
	}
}

// warn prints something that went wrong outside the client's events.
func (p *printer) warn(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = fmt.Fprintf(p.diag, "example: "+format+"\n", a...)
}

// bareMessage is a received message as wscat prints it.
func bareMessage(m resocket.Message) string {
	if m.Type == resocket.MessageBinary {
		return fmt.Sprintf("<binary %d bytes>\n", len(m.Data))
	}
	return string(m.Data) + "\n"
}

// eventName is the event's name in both output formats.
func eventName(ev resocket.Event) string {
	switch ev.(type) {
	case resocket.Connecting:
		return "connecting"
	case resocket.Connected:
		return "connected"
	case resocket.Message:
		return "message"
	case resocket.Disconnected:
		return "disconnected"
	case resocket.DialFailed:
		return "dial failed"
	case resocket.Reconnecting:
		return "reconnecting"
	case resocket.Closed:
		return "closed"
	case resocket.SessionLost:
		return "session lost"
	}
	return fmt.Sprintf("%T", ev)
}

// describe returns an event's name and its details as key=value pairs.
func describe(ev resocket.Event) (name, detail string) {
	var f fields
	switch e := ev.(type) {
	case resocket.Connecting:
		f.add("attempt", e.Attempt)
	case resocket.Connected:
		f.add("conn", e.ConnID)
		f.add("attempt", e.Attempt)
		if e.Subprotocol != "" {
			f.add("subprotocol", e.Subprotocol)
		}
		if e.Resumed {
			f.raw("resumed")
		}
	case resocket.SessionLost:
		f.add("in_doubt", len(e.InDoubt))
	case resocket.Message:
		f.add("conn", e.ConnID)
		if e.Type == resocket.MessageBinary {
			f.raw(fmt.Sprintf("binary %d bytes", len(e.Data)))
		} else {
			f.raw("text " + strconv.Quote(string(e.Data)))
		}
	case resocket.Disconnected:
		f.add("conn", e.ConnID)
		f.disconnect(e.Disconnect)
		if e.Disconnect.Uptime > 0 {
			f.add("uptime", roundMS(e.Disconnect.Uptime))
		}
		f.decision(e.Decision)
	case resocket.DialFailed:
		f.add("attempt", e.Disconnect.Attempt)
		f.disconnect(e.Disconnect)
		f.decision(e.Decision)
	case resocket.Reconnecting:
		f.add("attempt", e.Attempt)
		f.add("delay", roundMS(e.Delay))
	case resocket.Closed:
		if e.Err == nil {
			f.raw("err=<nil>")
		} else {
			f.add("err", e.Err.Error())
		}
		f.add("unsent", len(e.Unsent))
	}
	return eventName(ev), f.String()
}

// fields builds "key=value key=value", quoting values that hold spaces.
type fields struct{ b strings.Builder }

func (f *fields) raw(s string) {
	if f.b.Len() > 0 {
		f.b.WriteByte(' ')
	}
	f.b.WriteString(s)
}

func (f *fields) add(key string, v any) {
	s := fmt.Sprint(v)
	if s == "" || strings.IndexFunc(s, needsQuote) >= 0 {
		s = strconv.Quote(s)
	}
	f.raw(key + "=" + s)
}

func (f *fields) String() string { return f.b.String() }

// disconnect adds why a connection ended or an attempt failed.
func (f *fields) disconnect(d resocket.Disconnect) {
	if d.HTTPStatus != 0 {
		f.add("status", d.HTTPStatus)
		if d.RetryAfter > 0 {
			f.add("retry-after", d.RetryAfter)
		}
	} else {
		// The code's name is part of the value: "code=1012 (service restart)".
		f.raw("code=" + d.Code.String())
		if d.Reason != "" {
			f.add("reason", d.Reason)
		}
	}
	var he *resocket.HandshakeError
	if d.Err != nil && !errors.As(d.Err, &he) { // a refusal is already told by status
		f.add("err", d.Err.Error())
	}
}

// decision adds what the client does next.
func (f *fields) decision(dec resocket.Decision) {
	f.add("decision", dec.Action)
	if dec.MinDelay > 0 {
		f.add("min-delay", roundMS(dec.MinDelay))
	}
}

func needsQuote(r rune) bool { return r == ' ' || r == '"' || r == '=' || !unicode.IsPrint(r) }

func roundMS(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// jsonEvent is one line of -json output. Fields that do not apply to an
// event are left out; durations are whole milliseconds.
type jsonEvent struct {
	Time        string  `json:"time"`
	Event       string  `json:"event"`
	Conn        uint64  `json:"conn,omitempty"`
	Attempt     int     `json:"attempt,omitempty"`
	Subprotocol string  `json:"subprotocol,omitempty"`
	Type        string  `json:"type,omitempty"`
	Text        *string `json:"text,omitempty"`
	Data        []byte  `json:"data,omitempty"`
	Size        *int    `json:"size,omitempty"`
	Code        int     `json:"code,omitempty"`
	Reason      string  `json:"reason,omitempty"`
	Err         string  `json:"err,omitempty"`
	HTTPStatus  int     `json:"status,omitempty"`
	RetryAfter  int64   `json:"retry_after_ms,omitempty"`
	Uptime      int64   `json:"uptime_ms,omitempty"`
	Decision    string  `json:"decision,omitempty"`
	MinDelay    int64   `json:"min_delay_ms,omitempty"`
	Delay       *int64  `json:"delay_ms,omitempty"`
	Unsent      *int    `json:"unsent,omitempty"`
	Resumed     bool    `json:"resumed,omitempty"`
	InDoubt     *int    `json:"in_doubt,omitempty"`
}

// jsonOf converts an event for -json.
func jsonOf(now time.Time, ev resocket.Event) jsonEvent {
	j := jsonEvent{Time: now.Format("2006-01-02T15:04:05.000Z07:00"), Event: eventName(ev)}
	switch e := ev.(type) {
	case resocket.Connecting:
		j.Attempt = e.Attempt
	case resocket.Connected:
		j.Conn, j.Attempt, j.Subprotocol, j.Resumed = e.ConnID, e.Attempt, e.Subprotocol, e.Resumed
	case resocket.SessionLost:
		inDoubt := len(e.InDoubt)
		j.InDoubt = &inDoubt
	case resocket.Message:
		j.Conn, j.Type = e.ConnID, e.Type.String()
		size := len(e.Data)
		j.Size = &size
		if e.Type == resocket.MessageBinary {
			j.Data = e.Data
		} else {
			text := string(e.Data)
			j.Text = &text
		}
	case resocket.Disconnected:
		j.Conn = e.ConnID
		j.disconnect(e.Disconnect)
		j.Uptime = e.Disconnect.Uptime.Milliseconds()
		j.decision(e.Decision)
	case resocket.DialFailed:
		j.disconnect(e.Disconnect)
		j.decision(e.Decision)
	case resocket.Reconnecting:
		j.Attempt = e.Attempt
		delay := e.Delay.Milliseconds()
		j.Delay = &delay
	case resocket.Closed:
		if e.Err != nil {
			j.Err = e.Err.Error()
		}
		unsent := len(e.Unsent)
		j.Unsent = &unsent
	}
	return j
}

func (j *jsonEvent) disconnect(d resocket.Disconnect) {
	j.Attempt = d.Attempt
	if d.HTTPStatus != 0 {
		j.HTTPStatus = d.HTTPStatus
		j.RetryAfter = d.RetryAfter.Milliseconds()
	} else {
		j.Code, j.Reason = int(d.Code), d.Reason
	}
	if d.Err != nil {
		j.Err = d.Err.Error()
	}
}

func (j *jsonEvent) decision(dec resocket.Decision) {
	j.Decision = dec.Action.String()
	j.MinDelay = dec.MinDelay.Milliseconds()
}
