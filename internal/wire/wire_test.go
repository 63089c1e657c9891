package wire_test

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/resocket/resocket/internal/wire"
)

// Fuzz targets for the built-in protocol's parsers; go test runs their
// seeds. A peer controls every byte they read: no input may panic, and
// what they accept must be exactly what their writers produce.

func FuzzParseCount(f *testing.F) {
	for _, s := range []string{"0", "1", "42", "18446744073709551615", "18446744073709551616",
		"", "00", "01", "-1", "+1", " 1", "1 ", "1e3", "0x10", "99999999999999999999", "１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := wire.ParseCount(s)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseCount(%q): %v does not wrap ErrMalformed", s, err)
			}
			if want, perr := strconv.ParseUint(s, 10, 64); perr == nil && strconv.FormatUint(want, 10) == s {
				t.Fatalf("ParseCount(%q) refused a canonical count", s)
			}
			return
		}
		if got := wire.FormatCount(n); got != s {
			t.Fatalf("ParseCount(%q) = %d, which formats as %q: only canonical counts are accepted", s, n, got)
		}
	})
}

func FuzzParseAck(f *testing.F) {
	f.Add(wire.AppendAck(nil, 0))
	f.Add(wire.AppendAck(nil, 1))
	f.Add(wire.AppendAck(nil, ^uint64(0)))
	f.Add([]byte{})
	f.Add([]byte{wire.KindAck})
	f.Add([]byte{wire.KindData, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(append(wire.AppendAck(nil, 5), 0))
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := wire.ParseAck(frame)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseAck(%x): %v does not wrap ErrMalformed", frame, err)
			}
			if len(frame) == wire.AckLen && frame[0] == wire.KindAck {
				t.Fatalf("ParseAck(%x) refused a well-formed ack", frame)
			}
			return
		}
		if !bytes.Equal(wire.AppendAck(nil, n), frame) {
			t.Fatalf("ParseAck(%x) = %d: not the frame AppendAck writes", frame, n)
		}
	})
}

func FuzzValidToken(f *testing.F) {
	for _, s := range []string{"", "a", "AAAAAAAAAAAAAAAAAAAAAA", "a b", "a=", "a+/", "-_", string(make([]byte, 129))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !wire.ValidToken(s) {
			return
		}
		if len(s) == 0 || len(s) > 128 {
			t.Fatalf("ValidToken accepted %d characters", len(s))
		}
		for _, c := range []byte(s) {
			alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
			if !alnum && c != '-' && c != '_' {
				t.Fatalf("ValidToken accepted %q", s)
			}
		}
	})
}

// TestAckInterval: a receiver acknowledges every half of the sender's
// window, so that a sender with a small window never waits for the
// receiver's ack timer, and one with a large window gets fewer acks; a
// window not said leaves the default.
func TestAckInterval(t *testing.T) {
	for _, c := range []struct{ window, def, want uint64 }{
		{0, 256, 256},    // not said: the default
		{1024, 256, 512}, // said: half of it, fewer acks than the default
		{512, 256, 256},
		{100, 256, 50},
		{16, 64, 8},
		{3, 64, 1},
		{1, 64, 1}, // one message at a time: ack each
	} {
		if got := wire.AckEvery(c.window, c.def); got != c.want {
			t.Errorf("AckEvery(%d, %d) = %d, want %d", c.window, c.def, got, c.want)
		}
	}
	for _, c := range []struct{ windowBytes, want uint64 }{
		{0, 0}, // not said: no bound by bytes
		{16 << 20, 8 << 20},
		{1, 1},
	} {
		if got := wire.AckBytes(c.windowBytes); got != c.want {
			t.Errorf("AckBytes(%d) = %d, want %d", c.windowBytes, got, c.want)
		}
	}
}

// FuzzNextEntry: a batch frame's entries are read back exactly as
// AppendEntry wrote them, and nothing else is accepted.
func FuzzNextEntry(f *testing.F) {
	f.Add([]byte{})
	f.Add(wire.AppendEntry(nil, 2, nil))
	f.Add(wire.AppendEntry(wire.AppendEntry(nil, 1, []byte("héllo")), 2, bytes.Repeat([]byte{7}, 300)))
	f.Add([]byte{3, 0})          // no such type
	f.Add([]byte{2, 5, 'a'})     // shorter than said
	f.Add([]byte{2, 0x80, 0x00}) // a padded length
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, entries []byte) {
		var again []byte
		rest := entries
		for range len(entries) + 1 { // each entry takes at least 2 bytes: bounded
			if len(rest) == 0 {
				break
			}
			typ, data, next, err := wire.NextEntry(rest)
			if err != nil {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("NextEntry(% x): %v does not wrap ErrMalformed", rest, err)
				}
				return
			}
			if len(next) >= len(rest) {
				t.Fatalf("NextEntry(% x) did not advance", rest)
			}
			if got := wire.EntryLen(len(data)); got != len(rest)-len(next) {
				t.Fatalf("EntryLen(%d) = %d, the entry took %d bytes", len(data), got, len(rest)-len(next))
			}
			again = wire.AppendEntry(again, typ, data)
			rest = next
		}
		if !bytes.Equal(again, entries) {
			t.Fatalf("entries % x were read as what writes % x", entries, again)
		}
	})
}

func TestEntries(t *testing.T) {
	b := wire.AppendEntry(nil, 1, []byte("a"))
	b = wire.AppendEntry(b, 2, nil)
	b = wire.AppendEntry(b, 2, bytes.Repeat([]byte{9}, 200))
	want := []struct {
		typ  byte
		size int
	}{{1, 1}, {2, 0}, {2, 200}}
	for i, w := range want {
		typ, data, rest, err := wire.NextEntry(b)
		if err != nil || typ != w.typ || len(data) != w.size {
			t.Fatalf("entry %d: type %d, %d bytes, %v; want type %d, %d bytes", i, typ, len(data), err, w.typ, w.size)
		}
		b = rest
	}
	if len(b) != 0 {
		t.Fatalf("% x left after the last entry", b)
	}
	if _, _, _, err := wire.NextEntry(nil); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("NextEntry of nothing: %v, want ErrMalformed", err)
	}
}
