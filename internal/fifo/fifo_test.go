package fifo

import (
	"slices"
	"testing"
)

// The queue keeps order across every way its array is reused: from the
// start once empty, compacted when the front has freed half, grown
// otherwise, values removed from the middle; it keeps a large array once
// emptied, until trimmed.
func TestQueueKeepsOrder(t *testing.T) {
	var q Queue[int]
	var want []int // what q must hold, front first
	next := 1
	check := func(what string) {
		t.Helper()
		if !slices.Equal(q.Items(), want) || q.Len() != len(want) {
			t.Fatalf("%s: holds %v, want %v", what, q.Items(), want)
		}
		for i, v := range want {
			if q.At(i) != v {
				t.Fatalf("%s: At(%d) = %d, want %d", what, i, q.At(i), v)
			}
		}
	}
	// Pushes, drops and removals in uneven steps, so that every case comes up.
	for round := range 200 {
		for range round%70 + 1 {
			q.Push(next)
			want = append(want, next)
			next++
		}
		check("after pushes")
		drop := min(len(want), round%50+round%3)
		if round%7 == 0 {
			drop = len(want) // emptied
		}
		q.DropFront(drop)
		want = want[drop:]
		check("after drops")
		if round%5 == 0 && len(want) > 2 {
			i, j := len(want)/3, len(want)/2
			q.Remove(i, j)
			want = slices.Delete(slices.Clone(want), i, j)
			check("after a removal")
		}
	}
	const keep = 256
	q.DropFront(q.Len())
	for range 4 * keep {
		q.Push(next)
		next++
	}
	q.DropFront(q.Len())
	if cap(q.buf) < 4*keep {
		t.Fatalf("an array of %d kept once emptied, want the %d it grew to: the next pushes reuse it", cap(q.buf), 4*keep)
	}
	q.Push(next)
	q.Trim(keep)
	if q.Len() != 1 {
		t.Fatalf("Trim dropped a value")
	}
	q.Remove(0, 1)
	q.Trim(keep)
	if q.buf != nil {
		t.Fatalf("an array of %d kept by Trim once empty, want none above %d", cap(q.buf), keep)
	}
}
