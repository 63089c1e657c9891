package session_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/internal/wire"
	"github.com/resocket/resocket/session"
)

// fuzzStore has one session, "known" with secret "secret-1", that sent 3
// messages of which the client acknowledged 1; every other ID is unknown.
type fuzzStore struct{}

const (
	knownID     = "known"
	knownSecret = "secret-1"
)

func (fuzzStore) record() session.Record {
	h := sha256.Sum256([]byte(knownSecret))
	return session.Record{SecretHash: h[:], Sent: 3, Acked: 1, Pending: []session.Stored{
		{Seq: 2, Type: resocket.MessageText, Data: []byte("b")},
		{Seq: 3, Type: resocket.MessageText, Data: []byte("c")}}}
}

func (s fuzzStore) Load(_ context.Context, id string) (session.Record, error) {
	if id != knownID {
		return session.Record{}, session.ErrNotFound
	}
	return s.record(), nil
}

func (s fuzzStore) Claim(ctx context.Context, id string, owner uint64) (session.Record, error) {
	r, err := s.Load(ctx, id)
	r.Owner = owner
	return r, err
}

func (fuzzStore) Create(context.Context, string, []byte, uint64, time.Duration) error { return nil }
func (fuzzStore) Append(context.Context, string, uint64, session.Stored) error        { return nil }
func (fuzzStore) Ack(context.Context, string, uint64, uint64) error                   { return nil }
func (fuzzStore) SetReceived(context.Context, string, uint64, uint64) error           { return nil }
func (fuzzStore) Touch(context.Context, string, uint64, time.Duration) error          { return nil }
func (fuzzStore) Delete(context.Context, string, uint64) error                        { return nil }

// FuzzHandshake feeds ServeHTTP (and so the parsing of the resume
// headers) whatever a client may send, and checks the answer against the
// protocol: 400 for anything malformed or a resume point outside what
// was sent and not acknowledged, 403 for a wrong secret, and otherwise an
// upgrade (which fails here, 500: a recorder cannot be hijacked). Its
// seeds run with go test.
func FuzzHandshake(f *testing.F) {
	f.Add("1", "", "", "")
	f.Add("1", knownID, knownSecret, "1")
	f.Add("1", knownID, knownSecret, "3")
	f.Add("1", knownID, knownSecret, "0")
	f.Add("1", knownID, knownSecret, "4")
	f.Add("1", knownID, knownSecret, "18446744073709551615")
	f.Add("1", knownID, "secret-2", "1")
	f.Add("1", knownID, "", "1")
	f.Add("1", "AAAAAAAAAAAAAAAAAAAAAA", "x", "9")
	f.Add("1", "AAAAAAAAAAAAAAAAAAAAAA", "x", "")
	f.Add("1", "a b", knownSecret, "1")
	f.Add("1", knownID, knownSecret, "01")
	f.Add("1", knownID, knownSecret, "-1")
	f.Add("0", "", "", "")
	f.Add("", knownID, knownSecret, "1")
	f.Fuzz(func(t *testing.T, resume, id, secret, received string) {
		// serve lasts as long as the session: one that returned at once
		// would end it, and a racing handshake would get 503.
		srv := session.NewServer(session.Options{Store: fuzzStore{}}, func(s *session.Session) { <-s.Done() })
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}()
		h := http.Header{}
		for k, v := range map[string]string{"Resocket-Resume": resume, "Resocket-Session": id,
			"Resocket-Secret": secret, "Resocket-Received": received} {
			if v != "" {
				h.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, upgradeRequest(h))

		want := http.StatusInternalServerError // the upgrade was attempted
		n, countErr := wire.ParseCount(received)
		switch {
		case h.Get("Resocket-Resume") != "1":
			want = http.StatusBadRequest
		case h.Get("Resocket-Session") == "":
		case !wire.ValidToken(id) || !wire.ValidToken(secret) || countErr != nil:
			want = http.StatusBadRequest
		case id == knownID && secret != knownSecret:
			want = http.StatusForbidden
		case id == knownID && (n < 1 || n > 3):
			want = http.StatusBadRequest
		}
		if w.Code != want {
			t.Fatalf("resume %q, session %q, secret %q, received %q: status %d, want %d (%s)",
				resume, id, secret, received, w.Code, want, w.Body.String())
		}
		if want != http.StatusInternalServerError && w.Header().Get("Resocket-Error") == "" {
			t.Fatalf("a refusal without Resocket-Error")
		}
	})
}
