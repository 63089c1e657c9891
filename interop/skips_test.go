package interop

import (
	"bytes"
	"flag"
	"sort"
	"testing"

	"github.com/resocket/resocket"
)

// What each peer's library answers, in a "REFUSED <words>" message, when
// the scenario asks it for a close code it will not put on the wire.
const (
	wsRefuses         = "ws 8.23.0: First argument must be a valid error code number"
	websocketsRefuses = "websockets 10.4: invalid status code"
)

// forbiddenCloseCodes are the close-codes rows whose code may not be put
// in a close frame: RFC 6455 §7.4.1 says 1005, 1006 and 1015 "MUST NOT be
// set as a status code in a Close control frame by an endpoint", and
// keeps 1004 reserved, with no meaning; both libraries refuse all four.
// 1005 is still covered, by close-without-code.
var forbiddenCloseCodes = []string{"close-codes/1004", "close-codes/1005", "close-codes/1006", "close-codes/1015"}

// expectedSkips is every row (a scenario, or scenario/row) each peer is
// allowed to skip, with the exact words its library refuses it with. It
// is asserted, not advisory: a skip not listed here fails the row, so does
// a listed row that runs instead of being refused, or that is refused in
// other words; and a run of the whole set fails if a listed row was never
// reached. So the list cannot silently rot: when a library changes, the
// table has to change with it.
var expectedSkips = map[string]map[string]string{
	nodePeer:   refusing(wsRefuses, forbiddenCloseCodes...),
	pythonPeer: refusing(websocketsRefuses, forbiddenCloseCodes...),
	// nginx tunnels the refusal of the Node ws server behind it.
	nginxPeer: refusing(wsRefuses, forbiddenCloseCodes...),
}

func refusing(words string, rows ...string) map[string]string {
	m := make(map[string]string, len(rows))
	for _, r := range rows {
		m[r] = words
	}
	return m
}

// skipLedger keeps, for one peer, the rows it is expected to skip and
// the rows reached and skipped so far. Rows of a peer run one after the
// other (only whole peers run in parallel), so it needs no lock.
type skipLedger struct {
	expected map[string]string // row → the refusal's exact words
	reached  map[string]bool
	refused  map[string]bool // the peer refused the row, in whatever words
	skipped  map[string]bool // and the row was skipped for it
}

func newSkipLedger(peer string) *skipLedger {
	return &skipLedger{expected: expectedSkips[peer], reached: map[string]bool{},
		refused: map[string]bool{}, skipped: map[string]bool{}}
}

// enter starts a row: at its end, a skip that did not go through skip
// fails it, and so does an expected skip that did not happen.
func (p *peer) enter(t *testing.T, row string) {
	t.Helper()
	l := p.skips
	l.reached[row] = true
	t.Cleanup(func() {
		_, expected := l.expected[row]
		switch {
		case t.Skipped() && !l.skipped[row]:
			t.Errorf("%s: %q was skipped other than by a refusal from the peer; only the rows of expectedSkips (skips_test.go) may be skipped", p.name, row)
		case expected && !l.refused[row]:
			t.Errorf("%s was expected to refuse %q (%s), but the row ran: remove it from expectedSkips (skips_test.go)", p.name, row, l.expected[row])
		}
	})
}

// refusal returns the words of a peer's "REFUSED <words>" answer.
func refusal(ev resocket.Event) (string, bool) {
	m, ok := ev.(resocket.Message)
	if !ok || !bytes.HasPrefix(m.Data, []byte("REFUSED ")) {
		return "", false
	}
	return string(m.Data[len("REFUSED "):]), true
}

// skip skips row, which the peer refused to express in words; it fails
// the row instead if the row is not in the peer's expected skips, or was
// refused in other words than expected.
func (p *peer) skip(t *testing.T, row, words string) {
	t.Helper()
	p.skips.refused[row] = true
	want, ok := p.skips.expected[row]
	if !ok {
		t.Fatalf("%s refused %q (%s), which is not one of its expected skips (expectedSkips, skips_test.go)", p.name, row, words)
	}
	if words != want {
		t.Fatalf("%s refused %q in other words than expected: got %q, want %q (expectedSkips, skips_test.go)", p.name, row, words, want)
	}
	p.skips.skipped[row] = true
	t.Skipf("%s cannot express %q: %s", p.name, row, words)
}

// checkAllSkipsReached fails t if an expected skip of the peer names a row
// the run of the whole scenario set never reached (a typo, a row renamed
// or removed). With -run, rows left out are not reached on purpose.
func (p *peer) checkAllSkipsReached(t *testing.T) {
	t.Helper()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		return
	}
	var missing []string
	for row := range p.skips.expected {
		if !p.skips.reached[row] {
			missing = append(missing, row)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s: expected skips name rows that never ran: %v (expectedSkips, skips_test.go)", p.name, missing)
	}
}
