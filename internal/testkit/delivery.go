package testkit

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/resocket/resocket"
)

// Payload is the text of message number seq: "m" and six or more digits,
// "m000042". Numbered messages let Check tell every message apart.
func Payload(seq int) string { return fmt.Sprintf("m%06d", seq) }

// ParseSeq returns the number of a message built by Payload; ok is false
// for anything else.
func ParseSeq(data []byte) (seq int, ok bool) {
	if len(data) < 7 || data[0] != 'm' {
		return 0, false
	}
	for _, b := range data[1:] {
		if b < '0' || b > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(data[1:]))
	return n, err == nil
}

// Seqs returns the numbers of messages built by Payload, in order, and
// fails t on one that is not.
func Seqs(t testing.TB, datas [][]byte) []int {
	t.Helper()
	out := make([]int, 0, len(datas))
	for _, d := range datas {
		n, ok := ParseSeq(d)
		if !ok {
			t.Fatalf("testkit: message %q is not numbered by Payload", clip(d))
			return nil
		}
		out = append(out, n)
	}
	return out
}

// MessageSeqs is Seqs for messages (Message events, Closed.Unsent).
func MessageSeqs(t testing.TB, msgs []resocket.Message) []int {
	t.Helper()
	datas := make([][]byte, len(msgs))
	for i, m := range msgs {
		datas[i] = m.Data
	}
	return Seqs(t, datas)
}

// Delivery is what became of numbered messages sent one after the other
// through a client: what Send did with each, what the other end got, and
// what the client handed back when it ended.
type Delivery struct {
	// Accepted are the messages Send returned nil for, in the order of
	// the calls.
	Accepted []int
	// Refused are the messages Send returned an error for. A write that
	// failed after its last byte left may still have been received, at
	// most once.
	Refused []int
	// Received are the messages the other end got, in arrival order.
	Received []int
	// Unsent are the messages in Closed.Unsent, in order.
	Unsent []int
}

// Report classifies every message of a Delivery.
type Report struct {
	// Delivered: accepted, received once, not handed back.
	Delivered []int
	// HandedBack: accepted, never received, in Closed.Unsent.
	HandedBack []int
	// Lost: accepted, never received, not handed back: the promise is
	// broken, unless the test allows for writes that returned nil just
	// before the link died (the faults suite bounds those).
	Lost []int
	// RefusedReceived: Send returned an error, yet the message was
	// received (once).
	RefusedReceived []int
	// Violations describe everything that breaks "exactly once, in
	// order" other than Lost: a message received twice or out of order,
	// received and handed back, received or handed back though never
	// sent, handed back though Send refused it, handed back out of order.
	Violations []string
}

// Check classifies the messages of d; see Report. It does not fail
// anything: ExactlyOnceInOrder does, and a suite with a tolerance of its
// own (for Lost) checks the Report itself.
func Check(d Delivery) Report {
	var rep Report
	received := map[int]int{}
	for i, n := range d.Received {
		received[n]++
		if received[n] == 2 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("message %d received more than once", n))
		}
		if i > 0 && n < d.Received[i-1] {
			rep.Violations = append(rep.Violations, fmt.Sprintf("message %d received after message %d", n, d.Received[i-1]))
		}
	}
	unsent := map[int]bool{}
	for i, n := range d.Unsent {
		if i > 0 && n <= d.Unsent[i-1] {
			rep.Violations = append(rep.Violations, fmt.Sprintf("message %d handed back after message %d", n, d.Unsent[i-1]))
		}
		unsent[n] = true
	}
	sent := map[int]bool{}
	for _, n := range d.Accepted {
		sent[n] = true
		switch {
		case received[n] > 0 && unsent[n]:
			rep.Violations = append(rep.Violations, fmt.Sprintf("message %d both received and handed back", n))
		case received[n] > 0:
			rep.Delivered = append(rep.Delivered, n)
		case unsent[n]:
			rep.HandedBack = append(rep.HandedBack, n)
		default:
			rep.Lost = append(rep.Lost, n)
		}
	}
	for _, n := range d.Refused {
		sent[n] = true
		if unsent[n] {
			rep.Violations = append(rep.Violations, fmt.Sprintf("message %d handed back though Send refused it", n))
		}
		if received[n] > 0 {
			rep.RefusedReceived = append(rep.RefusedReceived, n)
		}
	}
	for _, n := range d.Received {
		if !sent[n] && received[n] > 0 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("message %d received but never sent", n))
			received[n] = 0 // report it once
		}
	}
	for _, n := range d.Unsent {
		if !sent[n] {
			rep.Violations = append(rep.Violations, fmt.Sprintf("message %d handed back but never sent", n))
		}
	}
	return rep
}

// ExactlyOnceInOrder checks d and fails t (with Errorf, so every problem
// is listed) for each violation and each lost message: every message Send
// accepted must have been received exactly once, in order, or handed back
// in Closed.Unsent; a message Send refused may have been received at most
// once; nothing else may arrive. It returns the Report.
func ExactlyOnceInOrder(t testing.TB, d Delivery) Report {
	t.Helper()
	rep := Check(d)
	const most = 20 // a broken run can break thousands of messages
	for i, v := range rep.Violations {
		if i == most {
			t.Errorf("testkit: ... and %d more violations", len(rep.Violations)-most)
			break
		}
		t.Errorf("testkit: %s", v)
	}
	if len(rep.Lost) > 0 {
		t.Errorf("testkit: %d messages accepted by Send were never received nor handed back: %v",
			len(rep.Lost), clipInts(rep.Lost, most))
	}
	return rep
}

func clipInts(ns []int, most int) string {
	if len(ns) <= most {
		return fmt.Sprint(ns)
	}
	return fmt.Sprintf("%v and %d more", ns[:most], len(ns)-most)
}
