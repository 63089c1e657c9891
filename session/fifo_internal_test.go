package session

import "testing"

// The fifo keeps order across every way its array is reused: from the
// start once empty, compacted when the front has freed half, grown
// otherwise; it keeps a large array once emptied, until trimmed.
func TestFifoKeepsOrder(t *testing.T) {
	var f fifo
	next, first := uint64(1), uint64(1) // the next number pushed; the front's
	check := func(what string) {
		t.Helper()
		if f.len() != int(next-first) {
			t.Fatalf("%s: %d held, want %d", what, f.len(), next-first)
		}
		for i := range f.len() {
			if got := f.at(i).Seq; got != first+uint64(i) {
				t.Fatalf("%s: message %d is number %d, want %d", what, i, got, first+uint64(i))
			}
		}
	}
	// Pushes and drops in uneven steps, so that every case comes up.
	for round := range 200 {
		for range round%70 + 1 {
			f.push(Stored{Seq: next})
			next++
		}
		check("after pushes")
		drop := min(f.len(), round%50+round%3)
		if round%7 == 0 {
			drop = f.len() // emptied
		}
		f.dropFront(drop)
		first += uint64(drop)
		check("after drops")
	}
	f.dropFront(f.len())
	for range 4 * fifoKeep {
		f.push(Stored{Seq: next})
		next++
	}
	f.dropFront(f.len())
	if cap(f.buf) < 4*fifoKeep {
		t.Fatalf("an array of %d kept once emptied, want the %d it grew to: the next pushes reuse it", cap(f.buf), 4*fifoKeep)
	}
	f.push(Stored{Seq: next})
	f.trim()
	if f.len() != 1 {
		t.Fatalf("trim dropped a message")
	}
	f.dropFront(1)
	f.trim()
	if f.buf != nil {
		t.Fatalf("an array of %d kept by trim once empty, want none above %d", cap(f.buf), fifoKeep)
	}
}
