package bench

import (
	"testing"

	"github.com/resocket/resocket/bench/internal/clients"
)

// TestWSSResumes checks what the wss reconnect benchmark compares: raw
// gorilla does a full TLS handshake every time, while resocket (and
// gorilla given a session cache) resume the session after the first.
func TestWSSResumes(t *testing.T) {
	for _, tc := range []struct {
		impl   string
		resume bool
	}{{"gorilla", false}, {"resocket", true}, {"gorilla-resume", true}} {
		t.Run(tc.impl, func(t *testing.T) {
			ims, err := clients.ByName(tc.impl)
			if err != nil {
				t.Fatal(err)
			}
			r0, f0, err := srv.TLSHandshakes()
			if err != nil {
				t.Fatal(err)
			}
			c, err := ims[0].Cycler(srv.URL("/close1012", true), srv.TLSConfig(true))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Cycle(10)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			r1, f1, err := srv.TLSHandshakes()
			if err != nil {
				t.Fatal(err)
			}
			resumed, full := r1-r0, f1-f0
			t.Logf("%s: %d resumed, %d full handshakes", tc.impl, resumed, full)
			if tc.resume && (resumed < 9 || full > 2) {
				t.Errorf("%s: %d resumed, %d full handshakes; want all but the first resumed", tc.impl, resumed, full)
			}
			if !tc.resume && resumed != 0 {
				t.Errorf("%s: %d resumed handshakes; want none", tc.impl, resumed)
			}
		})
	}
}
