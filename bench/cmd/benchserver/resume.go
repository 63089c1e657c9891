package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/resocket/resocket"
	"github.com/resocket/resocket/bench/internal/harness"
	"github.com/resocket/resocket/session"
)

// The resume endpoints serve resumable sessions (package session, with
// its in-memory Store) for clients with Config.Resume, doing what the
// plain endpoints do, through Session.Receive and Session.Send:
//
//	/resume-echo           sends back every message received
//	/resume-stream?size=S  sends binary messages of S bytes until the session ends
//	/resume-sink           receives and discards every message
//	/resume-hold           receives until the session ends (an idle session)
//	/resume-count          (plain HTTP) sessions whose serve function runs
//	/mem                   (plain HTTP) after GC and FreeOSMemory: "rss heapInuse stackInuse goroutines"
//
// A session whose client went without a close frame (Terminate) waits
// resumeTimeout for it, then ends.
const resumeTimeout = 10 * time.Second

type resumeEndpoints struct {
	upgrader *websocket.Upgrader
	echo     *session.Server
	sink     *session.Server
	hold     *session.Server
	running  atomic.Int64

	mu      sync.Mutex
	streams map[int]*session.Server // by message size
}

func (s *server) addResume() {
	r := &resumeEndpoints{upgrader: &s.upgrader, streams: make(map[int]*session.Server)}
	r.echo = r.newServer(func(sess *session.Session) {
		ctx := context.Background()
		for {
			typ, data, err := sess.Receive(ctx)
			if err != nil {
				return
			}
			if err := sess.Send(ctx, typ, data); err != nil {
				return
			}
		}
	})
	drain := func(sess *session.Session) {
		for {
			if _, _, err := sess.Receive(context.Background()); err != nil {
				return
			}
		}
	}
	r.sink = r.newServer(drain)
	r.hold = r.newServer(drain)
	s.mux.Handle("/resume-echo", r.echo)
	s.mux.Handle("/resume-sink", r.sink)
	s.mux.Handle("/resume-hold", r.hold)
	s.mux.HandleFunc("/resume-stream", r.stream)
	s.mux.HandleFunc("/resume-count", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, r.running.Load())
	})
	s.mux.HandleFunc("/mem", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintln(w, harness.VMRSS(), ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine())
	})
}

// newServer is a session.Server with the plain endpoints' Upgrader (its
// pooled write buffers), so that the two cost the same per connection
// where they do the same.
func (r *resumeEndpoints) newServer(serve func(*session.Session)) *session.Server {
	return session.NewServer(session.Options{Upgrader: r.upgrader, ResumeTimeout: resumeTimeout},
		func(sess *session.Session) {
			r.running.Add(1)
			defer r.running.Add(-1)
			serve(sess)
		})
}

func (r *resumeEndpoints) stream(w http.ResponseWriter, req *http.Request) {
	size, err := strconv.Atoi(req.URL.Query().Get("size"))
	if err != nil || size < 0 || size > 1<<20 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	srv := r.streams[size]
	if srv == nil {
		msg := make([]byte, size)
		srv = r.newServer(func(sess *session.Session) {
			for {
				if err := sess.Send(context.Background(), resocket.MessageBinary, msg); err != nil {
					return
				}
			}
		})
		r.streams[size] = srv
	}
	r.mu.Unlock()
	srv.ServeHTTP(w, req)
}
