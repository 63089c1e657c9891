// Command example shows the resocket client at work.
//
// Without -url it runs a demo: an embedded WebSocket echo server on
// 127.0.0.1 that restarts or drops every connection after a few seconds,
// and a client that sends "tick N" every second and prints one line per
// event. With -url it is a reconnecting wscat: stdin lines go out as text
// messages, received messages come out on stdout, lifecycle events on
// stderr. Run it with -h for the flags and exit statuses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/resocket/resocket"
)

// Exit statuses.
const (
	exitOK    = 0 // stopped cleanly
	exitFail  = 1 // gave up, or could not start
	exitUsage = 2 // bad flags or arguments
)

// tickEvery is how often the demo client sends a message.
const tickEvery = time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first Ctrl-C the program closes cleanly (bounded by the
	// client's CloseTimeout); a second one kills it at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program: it returns the exit status. It closes the
// client with 1000 when ctx ends, when the demo has run for -demo-duration,
// or (with -url) at the end of stdin.
//
// A read from stdin cannot be interrupted, so with -url the goroutine
// reading it may outlive run until stdin reaches EOF; it sends nothing once
// the client has ended.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	demoMode := opts.url == ""
	if demoMode && opts.resume {
		return runResume(ctx, opts, stdout, stderr)
	}
	pr := newPrinter(opts.json, demoMode, stdout, stderr)

	url := opts.url
	if demoMode {
		demo, err := startDemo(demoTiming.lifetime, demoTiming.refuse)
		if err != nil {
			fmt.Fprintf(stderr, "example: starting the demo server: %v\n", err)
			return exitFail
		}
		defer demo.Close() // after the client has ended: run returns only then
		url = demo.URL()
		if !opts.json {
			fmt.Fprintf(stderr, "demo server on %s: each connection is restarted (1012) or dropped (1006) after %s; Ctrl-C to stop\n",
				url, demoTiming.lifetime)
		}
	}

	client, err := resocket.New(url, opts.config())
	if err != nil {
		fmt.Fprintf(stderr, "example: %v\n", err)
		if errors.Is(err, resocket.ErrInvalidURL) || errors.Is(err, resocket.ErrInvalidConfig) {
			return exitUsage
		}
		return exitFail
	}

	var (
		wg      sync.WaitGroup
		end     = make(chan struct{}) // the program's own reason to close
		closing = make(chan struct{}) // closed just before client.Close
	)
	if demoMode {
		if opts.demoDuration > 0 {
			t := time.AfterFunc(opts.demoDuration, func() { close(end) })
			defer t.Stop()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendTicks(ctx, client, tickEvery, closing, pr)
		}()
	} else {
		go pumpStdin(ctx, stdin, client, end, pr)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-end:
			if !demoMode {
				// Closing now would strand the lines held while
				// disconnected: wait until they are written (the client
				// connected with its send buffer flushed), it ends, or
				// ctx ends.
				_ = client.WaitConnected(ctx)
			}
		case <-client.Done():
			return // ended on its own: Stop or GiveUp
		}
		close(closing)
		_ = client.Close(resocket.StatusNormalClosure, "bye")
	}()

	// Read every event until the channel closes after Closed: the client
	// waits for this reader, so it must not stop early.
	for ev := range client.Events() {
		pr.event(ev)
	}
	wg.Wait()

	if err := client.Err(); err != nil {
		return exitFail // wraps resocket.ErrGaveUp; Closed already printed it
	}
	return exitOK
}
