package testkit

import (
	"fmt"
	"strings"
	"time"

	"github.com/resocket/resocket"
)

// clipAt is how many bytes of a message's data Describe shows.
const clipAt = 32

// Describe returns a one-line description of an event for a failure
// message: its type and the fields that tell one event from another.
// Message data is cut to its first 32 bytes. Event types it does not know
// are printed with %T%+v.
func Describe(ev resocket.Event) string {
	switch e := ev.(type) {
	case nil:
		return "<nil event>"
	case resocket.Connecting:
		return fmt.Sprintf("Connecting{attempt %d}", e.Attempt)
	case resocket.Connected:
		s := fmt.Sprintf("Connected{conn %d attempt %d", e.ConnID, e.Attempt)
		if e.Subprotocol != "" {
			s += fmt.Sprintf(" subprotocol %q", e.Subprotocol)
		}
		return s + "}"
	case resocket.Message:
		return fmt.Sprintf("Message{conn %d %s %d bytes %q}", e.ConnID, e.Type, len(e.Data), clip(e.Data))
	case resocket.Disconnected:
		return fmt.Sprintf("Disconnected{conn %d %s -> %s}", e.ConnID, DescribeDisconnect(e.Disconnect), DescribeDecision(e.Decision))
	case resocket.DialFailed:
		return fmt.Sprintf("DialFailed{%s -> %s}", DescribeDisconnect(e.Disconnect), DescribeDecision(e.Decision))
	case resocket.Reconnecting:
		return fmt.Sprintf("Reconnecting{attempt %d after %v}", e.Attempt, e.Delay)
	case resocket.Closed:
		return fmt.Sprintf("Closed{err %v, %d unsent}", e.Err, len(e.Unsent))
	}
	return fmt.Sprintf("%T%+v", ev, ev)
}

// DescribeDisconnect describes why a connection or an attempt ended,
// leaving out the fields that are zero (except the code and the attempt).
func DescribeDisconnect(d resocket.Disconnect) string {
	s := "code " + d.Code.String()
	if d.Reason != "" {
		s += fmt.Sprintf(" reason %q", d.Reason)
	}
	if d.HTTPStatus != 0 {
		s += fmt.Sprintf(" http %d", d.HTTPStatus)
	}
	if d.RetryAfter != 0 {
		s += fmt.Sprintf(" retry-after %v", d.RetryAfter)
	}
	if d.Err != nil {
		s += fmt.Sprintf(" err %q", d.Err)
	}
	s += fmt.Sprintf(" attempt %d", d.Attempt)
	if d.Uptime != 0 {
		s += fmt.Sprintf(" uptime %v", d.Uptime.Round(time.Microsecond))
	}
	return s
}

// DescribeDecision describes a policy's decision: its action, and the
// minimum delay when there is one.
func DescribeDecision(d resocket.Decision) string {
	if d.MinDelay != 0 {
		return fmt.Sprintf("%s (at least %v)", d.Action, d.MinDelay)
	}
	return d.Action.String()
}

// DescribeAll describes events one a line, each indented by two spaces.
// Runs of more than five messages show their first two and last two
// around a count of the rest, and only the last 100 lines are kept, so
// that a failure after thousands of messages still prints something
// readable. It returns "  (no events)" for none.
func DescribeAll(evs []resocket.Event) string {
	lines := make([]string, len(evs))
	for i, ev := range evs {
		lines[i] = Describe(ev)
	}
	return joinLines(collapse(evs, lines))
}

// collapse shortens runs of messages in lines, which describe evs one to
// one.
func collapse(evs []resocket.Event, lines []string) []string {
	const keepEachEnd = 2
	var out []string
	for i := 0; i < len(evs); {
		j := i
		for j < len(evs) {
			if _, ok := evs[j].(resocket.Message); !ok {
				break
			}
			j++
		}
		if j-i > 2*keepEachEnd+1 {
			out = append(out, lines[i:i+keepEachEnd]...)
			out = append(out, fmt.Sprintf("... %d more messages ...", j-i-2*keepEachEnd))
			out = append(out, lines[j-keepEachEnd:j]...)
			i = j
			continue
		}
		if j == i {
			j++ // not a message
		}
		out = append(out, lines[i:j]...)
		i = j
	}
	return out
}

// joinLines indents lines and keeps the last 100 of them.
func joinLines(lines []string) string {
	const keep = 100
	if len(lines) == 0 {
		return "  (no events)"
	}
	var b strings.Builder
	if len(lines) > keep {
		fmt.Fprintf(&b, "  ... %d earlier lines ...\n", len(lines)-keep)
		lines = lines[len(lines)-keep:]
	}
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("  ")
		b.WriteString(l)
	}
	return b.String()
}

func clip(data []byte) string {
	if len(data) <= clipAt {
		return string(data)
	}
	return string(data[:clipAt]) + "..."
}

// Types returns each event's type name without the package, such as
// "Connected", in order: for comparing sequences of events.
func Types(evs []resocket.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = strings.TrimPrefix(fmt.Sprintf("%T", ev), "resocket.")
	}
	return out
}

// Only returns the events of type T, in order.
func Only[T resocket.Event](evs []resocket.Event) []T {
	var out []T
	for _, ev := range evs {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// Is reports whether ev is of type T; Is[resocket.Connected] is a match
// function for Recorder.Await and Recorder.Collect.
func Is[T resocket.Event](ev resocket.Event) bool {
	_, ok := ev.(T)
	return ok
}
