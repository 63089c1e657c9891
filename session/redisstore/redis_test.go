package redisstore_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server this test binary started: on 127.0.0.1,
// on a free port, without persistence; stop kills it.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan error
}

// startRedis starts a redis-server and waits, bounded, until it answers
// PING. The port is found free by listening on :0 and closing; another
// process may take it in between, so a failed start is tried again, at
// most three times.
func startRedis() (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (make redis-deps installs it): %w", err)
	}
	var last error
	for range 3 {
		r, err := tryRedis(bin)
		if err == nil {
			return r, nil
		}
		last = err
	}
	return nil, last
}

func tryRedis(bin string) (*redisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir, err := os.MkdirTemp("", "resocket-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port),
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes",
		"--daemonize", "no", "--loglevel", "warning")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd, done: make(chan error, 1)}
	var log strings.Builder
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if log.Len() < 4096 {
				log.WriteString(sc.Text() + "\n")
			}
		}
	}()
	go func() {
		<-logged
		r.done <- cmd.Wait()
		_ = os.RemoveAll(dir)
	}()
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		select {
		case werr := <-r.done:
			return nil, fmt.Errorf("redis-server exited (%w): %s", werr, log.String())
		case <-time.After(20 * time.Millisecond): // the next PING
		}
	}
	r.stop()
	return nil, fmt.Errorf("redis-server on %s did not answer within 10s: %w", r.addr, err)
}

// stop kills the server and waits for it.
func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
	}
}
