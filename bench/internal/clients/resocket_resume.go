package clients

import (
	"context"
	"crypto/tls"

	"github.com/resocket/resocket"
)

// ResocketResume is resocket with Config.Resume, used as Resocket is
// (Events, Send on the caller's goroutine), against the server's
// resumable endpoints: every message numbered into the outbox and
// acknowledged in batches.
func ResocketResume() Impl {
	cfg := func(tc *tls.Config) resocket.Config {
		c := resocketConfig(tc)
		c.Resume = true
		return c
	}
	return Impl{
		Name:   "resocket-resume",
		Resume: true,
		Dial:   func(url string, tc *tls.Config) (Client, error) { return dialResocket(url, cfg(tc)) },
		Idle:   func(url string, tc *tls.Config) (Closer, error) { return idleResocket(url, cfg(tc), true) },
	}
}

// ResocketResumeOnEvent is ResocketOnEvent with Config.Resume.
func ResocketResumeOnEvent() Impl {
	return Impl{
		Name:   "resocket-resume-onevent",
		Resume: true,
		Dial: func(url string, tc *tls.Config) (Client, error) {
			return dialOnEventConfig(url, tc, true)
		},
		Idle: func(url string, tc *tls.Config) (Closer, error) {
			c, err := dialOnEventConfig(url, tc, true)
			if err != nil {
				return nil, err
			}
			if err := c.c.Send(context.Background(), resocket.MessageText, Subscribe); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
}

// ResocketResumeRaw is ResocketResume against the server's raw resume
// endpoints: the handshake and the framing of the resume protocol, and
// acks, but nothing kept or stored; the stream is written as pre-encoded
// batches that cost the server nothing per message, as the plain stream
// does. Its rate over plain resocket's is what Resume costs the client
// alone.
func ResocketResumeRaw() Impl {
	im := ResocketResume()
	im.Name = "resocket-resume-raw"
	im.Raw = true
	im.Idle = nil
	return im
}
