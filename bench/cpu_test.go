package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resocket/resocket"
)

// cpuTime returns the CPU time (user + system) of process pid so far, or
// of this process when pid is 0.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime and stime are
	// the 12th and 13th, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// TestResumeCPUPerMessage measures the CPU time each side spends per 64 B
// message received or sent, plain and with Resume: the client (this
// process) and the bench server (its child process). It only logs: the
// server's clock ticks are 10 ms, so 200,000 messages are timed.
func TestResumeCPUPerMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("measures CPU time: not in -short")
	}
	msg := make([]byte, 64)
	ctx := context.Background()
	const n = 200000
	measure := func(what, path string, resume bool, op func(c *resocket.Client)) {
		c := dialResocket(t, path, resocket.Config{Resume: resume})
		op(c) // warm up (a tenth: op runs n/10)
		c0, s0, w0 := cpuTime(t, 0), cpuTime(t, srv.Pid()), time.Now()
		for range 10 {
			op(c)
		}
		c1, s1, w1 := cpuTime(t, 0), cpuTime(t, srv.Pid()), time.Now()
		t.Logf("%-24s %7.0f ns wall/msg, client CPU %6.0f ns/msg, server CPU %6.0f ns/msg", what,
			float64(w1.Sub(w0).Nanoseconds())/n, float64((c1-c0).Nanoseconds())/n, float64((s1-s0).Nanoseconds())/n)
		c.Terminate()
	}
	recv := func(c *resocket.Client) {
		for range n / 10 {
			nextMessage(t, c)
		}
	}
	send := func(c *resocket.Client) {
		for range n / 10 {
			if err := c.Send(ctx, resocket.MessageBinary, msg); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, c)
	}
	measure("receive, plain", "/stream?size=64", false, recv)
	measure("receive, Resume", "/resume-stream?size=64", true, recv)
	measure("send, plain", "/sink", false, send)
	measure("send, Resume", "/resume-sink", true, send)
}
