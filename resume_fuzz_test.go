package resocket

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/resocket/resocket/internal/wire"
)

// Fuzz targets for the built-in codec's parsing of what the server sends:
// the 101's headers and every frame. A server controls them all: nothing
// may panic, and what is accepted must be well-formed.

func FuzzResumeAnswer(f *testing.F) {
	f.Add("1", "AAAAAAAAAAAAAAAAAAAAAA", "secret_secret", "0", "0")
	f.Add("1", "AAAAAAAAAAAAAAAAAAAAAA", "", "1", "12")
	f.Add("1", "S", "K", "1", "18446744073709551615")
	f.Add("1", "S", "K", "1", "18446744073709551616")
	f.Add("2", "S", "K", "0", "0")
	f.Add("", "", "", "", "")
	f.Add("1", "", "K", "0", "0")
	f.Add("1", "S 1", "K", "0", "0")
	f.Add("1", "S", "", "0", "0")
	f.Add("1", "S", "K", "yes", "0")
	f.Add("1", "S", "K", "0", "-1")
	f.Add("1", "S", "K", "0", "007")
	f.Fuzz(func(t *testing.T, resume, sess, secret, resumed, received string) {
		h := http.Header{}
		for k, v := range map[string]string{wire.HeaderResume: resume, wire.HeaderSession: sess,
			wire.HeaderSecret: secret, wire.HeaderResumed: resumed, wire.HeaderReceived: received} {
			if v != "" {
				h.Set(k, v)
			}
		}
		a, err := builtinCodec{}.Answer(h)
		if err != nil {
			if resume != wire.Version && !errors.Is(err, ErrResumeUnsupported) {
				t.Fatalf("no protocol, but %v", err)
			}
			return
		}
		if resume != wire.Version || !wire.ValidToken(a.Session) || a.Session != sess {
			t.Fatalf("accepted %+v from %v", a, h)
		}
		if !a.Resumed && !wire.ValidToken(a.Secret) {
			t.Fatalf("a new session without a secret: %+v", a)
		}
		if wire.FormatCount(a.Received) != received {
			t.Fatalf("Received %d from %q", a.Received, received)
		}
	})
}

func FuzzResumeDecode(f *testing.F) {
	f.Add(true, []byte{wire.KindData})
	f.Add(false, []byte("\x00hello"))
	f.Add(true, wire.AppendAck(nil, 3))
	f.Add(false, wire.AppendAck(nil, 3))
	f.Add(true, []byte{})
	f.Add(true, []byte{wire.KindAck, 0})
	f.Add(true, []byte{0x02, 1, 2, 3})
	f.Add(true, append(wire.AppendAck(nil, 1), 9))
	f.Fuzz(func(t *testing.T, binary bool, frame []byte) {
		typ := MessageText
		if binary {
			typ = MessageBinary
		}
		in := bytes.Clone(frame)
		got, err := builtinCodec{}.Decode(typ, frame)
		if !bytes.Equal(in, frame) {
			t.Fatal("Decode changed its input")
		}
		if err != nil {
			return
		}
		switch {
		case got.Ack:
			if !binary || !bytes.Equal(wire.AppendAck(nil, got.Received), frame) {
				t.Fatalf("accepted ack %d from %x (binary %v)", got.Received, frame, binary)
			}
		default:
			if len(frame) == 0 || frame[0] != wire.KindData || !bytes.Equal(got.Data, frame[1:]) || got.Type != typ || got.Seq != 0 {
				t.Fatalf("accepted %+v from %x", got, frame)
			}
		}
	})
}
