package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/session"
)

// resumeTiming is the -resume demo's pace; tests shorten it.
var resumeTiming = struct {
	messages     int           // each side sends this many
	every        time.Duration // between two messages of a side
	disturbEvery time.Duration // between two disturbances of the server
}{messages: 1200, every: 5 * time.Millisecond, disturbEvery: time.Second}

// resumeDemo is the -resume demo: a server built on package session,
// whose connections are dropped (no close frame) and which is restarted
// (a new session.Server sharing the Store) in turn, while client and
// server each send numbered messages and count what arrives.
type resumeDemo struct {
	ln    net.Listener
	http  *http.Server
	store session.Store
	cur   atomic.Pointer[session.Server]

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	nextOut  atomic.Int64 // the server's next message number to send
	fromClnt *counter     // what the server application received
}

// counter counts numbered messages as they arrive: how many, how many
// came more than once, how many out of order.
type counter struct {
	mu       sync.Mutex
	seen     map[int]int
	last     int
	outOrder int
	all      chan struct{} // closed once every number up to want has come
	want     int
}

func newCounter(want int) *counter {
	return &counter{seen: make(map[int]int), all: make(chan struct{}), want: want}
}

func (c *counter) add(data []byte) {
	n, err := strconv.Atoi(string(data[strings.IndexByte(string(data), ' ')+1:]))
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[n]++
	if n != c.last+1 && c.seen[n] == 1 {
		c.outOrder++
	}
	c.last = max(c.last, n)
	if len(c.seen) == c.want && c.seen[c.want] == 1 {
		select {
		case <-c.all:
		default:
			close(c.all)
		}
	}
}

// report is "sent S, received R, lost L, repeated D" (and the order).
func (c *counter) report(sent int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	received, repeated := 0, 0
	for _, k := range c.seen {
		received += k
		repeated += k - 1
	}
	lost := sent - len(c.seen)
	line := fmt.Sprintf("sent %d, received %d, lost %d, repeated %d", sent, received, lost, repeated)
	if c.outOrder > 0 {
		line += fmt.Sprintf(", out of order %d", c.outOrder)
	}
	return line, lost == 0 && repeated == 0 && c.outOrder == 0
}

func startResumeDemo() (*resumeDemo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &resumeDemo{ln: ln, store: session.NewMemoryStore(), conns: make(map[net.Conn]struct{}),
		fromClnt: newCounter(resumeTiming.messages)}
	d.nextOut.Store(1)
	d.cur.Store(d.newServer())
	d.http = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.cur.Load().ServeHTTP(w, r) }),
		ReadHeaderTimeout: 5 * time.Second,
		ConnState:         d.track,
	}
	go func() { _ = d.http.Serve(ln) }()
	return d, nil
}

func (d *resumeDemo) URL() string { return "ws://" + d.ln.Addr().String() + "/" }

// track keeps every TCP connection, hijacked ones too, so that drop can
// cut them.
func (d *resumeDemo) track(c net.Conn, state http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch state {
	case http.StateNew:
		d.conns[c] = struct{}{}
	case http.StateClosed:
		delete(d.conns, c)
	}
}

// drop cuts every connection without a close frame: a lost link.
func (d *resumeDemo) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.conns {
		_ = c.Close()
		delete(d.conns, c)
	}
}

// restart replaces the session.Server by a new one sharing the Store, as
// a new process would: clients are told 1012 and resume there.
func (d *resumeDemo) restart(ctx context.Context) error {
	old := d.cur.Swap(d.newServer())
	return old.Shutdown(ctx)
}

func (d *resumeDemo) newServer() *session.Server {
	return session.NewServer(session.Options{Store: d.store}, d.serve)
}

// serve is the server application: it sends its numbered messages,
// carrying on from the last one a Server kept, and counts the client's.
func (d *resumeDemo) serve(s *session.Session) {
	var receiving sync.WaitGroup
	receiving.Add(1)
	go func() {
		defer receiving.Done()
		for {
			_, data, err := s.Receive(context.Background())
			if err != nil {
				return // ended: Shutdown, or the client closed it
			}
			d.fromClnt.add(data)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.Done()
		cancel()
	}()
	t := time.NewTicker(resumeTiming.every)
	defer t.Stop()
	for n := int(d.nextOut.Load()); n <= resumeTiming.messages; {
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if s.Send(ctx, resocket.MessageText, []byte("server "+strconv.Itoa(n))) == nil {
			n++ // kept in the Store: it will arrive
			d.nextOut.Store(int64(n))
		}
	}
	<-s.Done() // returning would end the session for good
	receiving.Wait()
}

// Close stops the demo server after the client has ended.
func (d *resumeDemo) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.cur.Load().Shutdown(ctx)
	_ = d.http.Shutdown(ctx)
	d.drop()
}

// runResume runs the -resume demo and returns the exit status: 0 when
// both directions delivered every message exactly once and in order.
func runResume(ctx context.Context, opts *options, stdout, stderr io.Writer) int {
	d, err := startResumeDemo()
	if err != nil {
		fmt.Fprintf(stderr, "example: starting the demo server: %v\n", err)
		return exitFail
	}
	defer d.Close()
	pr := newPrinter(opts.json, true, stdout, stderr)
	fmt.Fprintf(stderr, "resumable demo on %s: %d messages each way; the server's connections are dropped or the server restarted every %s\n",
		d.URL(), resumeTiming.messages, resumeTiming.disturbEvery)

	cfg := opts.config()
	cfg.Resume = true
	cfg.Backoff = func() backoff.BackOff { return backoff.NewConstantBackOff(50 * time.Millisecond) }
	client, err := resocket.New(d.URL(), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "example: %v\n", err)
		return exitFail
	}
	fromSrv := newCounter(resumeTiming.messages)
	readerDone := make(chan struct{})
	go func() { // reads Events to the end, as the client needs
		defer close(readerDone)
		for ev := range client.Events() {
			if m, ok := ev.(resocket.Message); ok {
				fromSrv.add(m.Data)
				continue
			}
			pr.event(ev)
		}
	}()

	sent, sendErrs := d.stream(ctx, client, stdout)
	ok := sent == resumeTiming.messages && sendErrs == 0
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Flush(wait); err != nil {
		fmt.Fprintf(stdout, "client flush: %v\n", err)
		ok = false
	}
	select {
	case <-fromSrv.all:
	case <-wait.Done():
	}
	_ = client.Close(resocket.StatusNormalClosure, "done")
	<-readerDone

	up, upOK := d.fromClnt.report(sent)
	down, downOK := fromSrv.report(int(d.nextOut.Load()) - 1)
	fmt.Fprintf(stdout, "client → server: %s\n", up)
	fmt.Fprintf(stdout, "server → client: %s\n", down)
	if !ok || !upOK || !downOK {
		return exitFail
	}
	return exitOK
}

// stream sends the client's numbered messages while the server is
// disturbed in turn; it returns how many Send accepted and how many it
// refused.
func (d *resumeDemo) stream(ctx context.Context, client *resocket.Client, stdout io.Writer) (sent, errs int) {
	send := time.NewTicker(resumeTiming.every)
	defer send.Stop()
	disturb := time.NewTicker(resumeTiming.disturbEvery)
	defer disturb.Stop()
	for i := 0; sent < resumeTiming.messages && ctx.Err() == nil; {
		select {
		case <-send.C:
			if client.SendText(ctx, "client "+strconv.Itoa(sent+1)) == nil {
				sent++
			} else {
				errs++
			}
		case <-disturb.C:
			i++
			if i%2 == 1 {
				fmt.Fprintf(stdout, "demo: dropping every connection (no close frame)\n")
				d.drop()
			} else {
				fmt.Fprintf(stdout, "demo: restarting the server (1012); sessions stay in the store\n")
				_ = d.restart(ctx)
			}
		case <-ctx.Done():
		}
	}
	return sent, errs
}
