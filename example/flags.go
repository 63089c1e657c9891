package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/resocket/resocket"
)

// options is what the command line asks for.
type options struct {
	url          string
	header       http.Header
	subprotocols []string
	giveUp       codeList
	stop         codeList
	reconnect    codeList
	ping         time.Duration
	json         bool
	maxAttempts  uint
	demoDuration time.Duration
	resume       bool
}

const usageText = `Usage: example [flags]

Without -url, runs a demo: an embedded WebSocket echo server on 127.0.0.1
restarts (close 1012, then refuses handshakes with 503 for a moment) or drops
(no close frame: 1006) each connection a few seconds after it opens, while a
resocket client sends "tick N" every second and prints one line per event on
stdout. Ctrl-C closes with 1000 and exits.

With -resume and no -url, runs the resumable demo: a server built on package
session is dropped and restarted in turn while client and server each send
1200 numbered messages; both sides count what arrived, and the program exits 0
only if every message arrived exactly once, in order.

With -url, works as a reconnecting wscat: each line of stdin is sent as a text
message (held while disconnected, sent on reconnect), received messages are
printed on stdout (binary ones as "<binary N bytes>") and lifecycle events on
stderr. At the end of stdin it waits until everything read has been sent,
closes with 1000 and exits.

Flags:
`

const usageTail = `
Close-code lists (-giveup, -stop, -reconnect) take codes from 1000 to 4999,
comma-separated or by repeating the flag; a code may be in one list only. They
apply to closed connections only; refused handshakes (an HTTP status) and every
other code follow resocket.DefaultPolicy.

With -json every line on stdout is one JSON object: "time", "event"
(connecting, connected, message, disconnected, dial failed, reconnecting,
session lost, closed) and the fields that apply: conn, attempt, subprotocol,
resumed, type, text, data (base64), size, code, reason, err, status,
retry_after_ms, uptime_ms, decision, min_delay_ms, delay_ms, in_doubt, unsent.

Exit status:
  0  stopped cleanly: Ctrl-C or SIGTERM, end of stdin, -demo-duration over,
     or the policy decided to stop (e.g. the server closed with 1000)
  1  gave up (the policy or -max-attempts), or could not start
  2  bad usage: unknown flag, bad close-code list, header or URL
(go run itself exits 1 on any failure or interrupt; build the program to see
these statuses.)

Examples:
  go run ./example
  go run ./example -resume
  go run ./example -url wss://echo.example.com/ws -H "Authorization: Bearer $TOKEN" -subprotocol chat.v2
  printf 'hello\nworld\n' | go run ./example -url ws://127.0.0.1:8080/ws -giveup 4001,4003 -max-attempts 5 -json
`

// parseFlags parses args. On a bad command line it reports the problem on
// stderr and returns an error; for -h it prints the usage and returns
// flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{header: http.Header{}}
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
		fmt.Fprint(stderr, usageTail)
	}
	fs.StringVar(&o.url, "url", "", "server `URL`, ws:// or wss://; without it the demo runs")
	fs.Var((*headerFlag)(&o.header), "H", "request `header` \"Name: value\" sent on every handshake; repeatable")
	fs.Var((*listFlag)(&o.subprotocols), "subprotocol", "subprotocol(s) to offer, in order of preference; repeatable or comma-separated")
	fs.Var(&o.giveUp, "giveup", "close `codes` after which to give up (exit 1), e.g. 4001,4003")
	fs.Var(&o.stop, "stop", "close `codes` after which to stop cleanly (exit 0), e.g. 4000")
	fs.Var(&o.reconnect, "reconnect", "close `codes` after which to reconnect, e.g. 1008")
	fs.DurationVar(&o.ping, "ping", resocket.DefaultPingInterval, "keepalive ping `interval`; negative disables keepalive")
	fs.BoolVar(&o.json, "json", false, "print every event and received message as one JSON object per line on stdout")
	fs.UintVar(&o.maxAttempts, "max-attempts", 0, "give up after `N` consecutive attempts that fail or do not stay up; 0: never")
	fs.BoolVar(&o.resume, "resume", false, "resumable session (Config.Resume): the server must speak docs/protocol.md; without -url, the resumable demo")
	fs.DurationVar(&o.demoDuration, "demo-duration", 0, "demo only: close and exit after this `duration`; 0: run until Ctrl-C")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) (*options, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintf(stderr, "example: %v\nRun with -h for usage.\n", err)
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q (the server URL goes after -url)", fs.Arg(0))
	case o.demoDuration < 0:
		return bad("-demo-duration is %s; want 0 (until Ctrl-C) or more", o.demoDuration)
	case o.demoDuration > 0 && o.url != "":
		return bad("-demo-duration applies to the demo only, not with -url")
	case len(o.subprotocols) > 0 && o.header.Get("Sec-WebSocket-Protocol") != "":
		return bad("use either -subprotocol or -H \"Sec-WebSocket-Protocol: ...\", not both")
	}
	if err := checkOverlap(map[string]codeList{"-giveup": o.giveUp, "-stop": o.stop, "-reconnect": o.reconnect}); err != nil {
		return bad("%v", err)
	}
	return o, nil
}

// config turns the options into a resocket.Config.
func (o *options) config() resocket.Config {
	cfg := resocket.Config{
		Subprotocols: o.subprotocols,
		Policy:       codePolicy(o.giveUp, o.stop, o.reconnect),
		Backoff:      backoffFor(o.maxAttempts),
		PingInterval: o.ping,
		Resume:       o.resume,
	}
	if len(o.header) > 0 {
		cfg.Header = o.header
	}
	return cfg
}

// codeList is a flag holding close codes: "4001,4003", repeatable.
type codeList []resocket.StatusCode

func (l *codeList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, c := range *l {
		s[i] = strconv.Itoa(int(c))
	}
	return strings.Join(s, ",")
}

func (l *codeList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("%q is not a close code", f)
		}
		if n < 1000 || n > 4999 {
			return fmt.Errorf("%d is not a close code (1000-4999)", n)
		}
		*l = append(*l, resocket.StatusCode(n))
	}
	return nil
}

// checkOverlap reports a code given to two of the lists.
func checkOverlap(lists map[string]codeList) error {
	seen := map[resocket.StatusCode]string{}
	for _, name := range []string{"-giveup", "-stop", "-reconnect"} {
		for _, c := range lists[name] {
			if other, ok := seen[c]; ok && other != name {
				return fmt.Errorf("close code %d is in both %s and %s", c, other, name)
			}
			seen[c] = name
		}
	}
	return nil
}

// listFlag is a flag holding strings: "a,b", repeatable.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listFlag) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if !isToken(f) {
			return fmt.Errorf("%q is not a valid subprotocol name", f)
		}
		*l = append(*l, f)
	}
	return nil
}

// headerFlag is a repeatable "Name: value" flag.
type headerFlag http.Header

func (h *headerFlag) String() string {
	if h == nil || *h == nil {
		return ""
	}
	var s []string
	for k, vs := range *h {
		for _, v := range vs {
			s = append(s, k+": "+v)
		}
	}
	return strings.Join(s, "; ")
}

func (h *headerFlag) Set(v string) error {
	name, value, err := parseHeader(v)
	if err != nil {
		return err
	}
	if *h == nil {
		*h = headerFlag{}
	}
	http.Header(*h).Add(name, value)
	return nil
}

// reservedHeaders are set by the WebSocket handshake itself: gorilla refuses
// to dial with them, and resocket would retry that refusal forever.
var reservedHeaders = map[string]bool{
	"Upgrade":                  true,
	"Connection":               true,
	"Sec-Websocket-Key":        true,
	"Sec-Websocket-Version":    true,
	"Sec-Websocket-Extensions": true,
}

// parseHeader splits "Name: value" and checks both halves.
func parseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", errors.New(`want "Name: value"`)
	}
	name = strings.TrimSpace(name)
	value = strings.TrimSpace(value)
	if !isToken(name) {
		return "", "", fmt.Errorf("%q is not a valid header name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return "", "", fmt.Errorf("the value of %s holds a line break or NUL", name)
	}
	if reservedHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
		return "", "", fmt.Errorf("%s is set by the WebSocket handshake and cannot be given", name)
	}
	return name, value, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the syntax
// of header names and subprotocols.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
