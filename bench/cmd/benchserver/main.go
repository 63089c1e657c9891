// Command benchserver is the gorilla/websocket server every benchmark of
// resocket runs against. The benchmarks start it as a child process, so
// that the allocations and the memory they measure in their own process are
// the client's alone.
//
// It listens on 127.0.0.1 twice, once plain (ws) and once with TLS (wss,
// a self-signed ECDSA certificate made at start for 127.0.0.1 and written
// to -cert as PEM), and prints one line on stdout once both are up:
//
//	ws=127.0.0.1:PORT wss=127.0.0.1:PORT
//
// Endpoints (the same on both listeners):
//
//	/echo           writes back every message
//	/stream?size=S  sends binary messages of S bytes until the client closes
//	/sink           reads and discards every message
//	/close1012      closes every connection with 1012 right after the upgrade
//	/hold           holds the connection open and idle
//	/storm?code=C   (plain HTTP) sends close code C (default 1012) to every
//	                connection held by /hold
//	/count          (plain HTTP) how many /hold connections are open
//	/tls            (plain HTTP) TLS handshakes so far: "resumed full"
//
// and the same served as resumable sessions (resume.go): /resume-echo,
// /resume-stream, /resume-sink, /resume-hold, with /resume-count and /mem;
// and for a resume client, endpoints that speak the protocol's framing but
// keep and store nothing (resumeraw.go), so that a rate measures the
// client alone: /resume-raw-stream, /resume-raw-echo, /resume-raw-sink.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	certPath := flag.String("cert", "", "write the wss certificate here (PEM)")
	flag.Parse()
	raiseFileLimit()

	cert, certPEM, err := selfSigned()
	if err != nil {
		log.Fatal(err)
	}
	if *certPath != "" {
		if err := os.WriteFile(*certPath, certPEM, 0o600); err != nil {
			log.Fatal(err)
		}
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := newServer()
	// TLS 1.3 with Go's default session tickets: a client that keeps a
	// session cache resumes.
	tlsLn := tls.NewListener(secure, &tls.Config{Certificates: []tls.Certificate{cert}})
	// Clients cut connections mid-handshake on purpose (Terminate during a
	// reconnect): the server's error log would only be noise.
	quiet := log.New(io.Discard, "", 0)
	serve := func(ln net.Listener) {
		hs := &http.Server{Handler: s, ErrorLog: quiet, ReadHeaderTimeout: 10 * time.Second}
		log.Fatal(hs.Serve(ln))
	}
	go serve(plain)
	go serve(tlsLn)
	fmt.Printf("ws=%s wss=%s\n", plain.Addr(), secure.Addr())
	// The parent ends us by closing stdin (or by killing us).
	_, _ = io.Copy(io.Discard, os.Stdin)
}

type server struct {
	mux      *http.ServeMux
	upgrader websocket.Upgrader

	mu   sync.Mutex
	held map[*websocket.Conn]struct{}
	// count is len(held), readable without the lock.
	count atomic.Int64
	// TLS handshakes of upgraded connections: resumed and full.
	resumed, full atomic.Int64
}

func newServer() *server {
	s := &server{
		mux:  http.NewServeMux(),
		held: make(map[*websocket.Conn]struct{}),
		upgrader: websocket.Upgrader{
			CheckOrigin: func(*http.Request) bool { return true },
			// 10,000 idle connections held at once: the server's own
			// memory is not what we measure, but it must fit.
			WriteBufferPool: new(sync.Pool),
		},
	}
	s.mux.HandleFunc("/echo", s.echo)
	s.mux.HandleFunc("/stream", s.stream)
	s.mux.HandleFunc("/resume-raw-stream", s.resumeRawStream)
	s.mux.HandleFunc("/resume-raw-echo", s.resumeRawEcho)
	s.mux.HandleFunc("/resume-raw-sink", s.resumeRawSink)
	s.mux.HandleFunc("/sink", s.sink)
	s.mux.HandleFunc("/close1012", s.close1012)
	s.mux.HandleFunc("/hold", s.hold)
	s.mux.HandleFunc("/storm", s.storm)
	s.mux.HandleFunc("/count", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, s.count.Load())
	})
	s.mux.HandleFunc("/tls", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, s.resumed.Load(), s.full.Load())
	})
	s.addResume()
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *server) upgrade(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // Upgrade has answered the client
	}
	if r.TLS != nil {
		if r.TLS.DidResume {
			s.resumed.Add(1)
		} else {
			s.full.Add(1)
		}
	}
	ws.SetReadLimit(1 << 20)
	return ws
}

func (s *server) echo(w http.ResponseWriter, r *http.Request) {
	ws := s.upgrade(w, r)
	if ws == nil {
		return
	}
	defer ws.Close()
	for {
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if err := ws.WriteMessage(typ, msg); err != nil {
			return
		}
	}
}

// stream sends binary messages of the requested size until the client
// closes. Frames are encoded once and written in batches of about 64 KiB
// straight to the socket, so that the server writes far faster than any
// client reads: the rate measured is the client's.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.Atoi(r.URL.Query().Get("size"))
	if err != nil || size < 0 || size > 1<<20 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	ws := s.upgrade(w, r)
	if ws == nil {
		return
	}
	defer ws.Close()
	streamBatches(ws, encodeFrame(websocket.BinaryMessage, make([]byte, size)))
}

// streamBatches writes frame over and over, in pre-encoded batches of
// 64 KiB, until the client closes: the server costs nothing per message.
// The reader notices the client's close frame; the writer then stops at a
// batch boundary and answers it, so frames never interleave.
func streamBatches(ws *websocket.Conn, frame []byte) {
	batch := make([]byte, 0, 64<<10+len(frame))
	for len(batch) < 64<<10 {
		batch = append(batch, frame...)
	}
	stop := make(chan struct{})
	ws.SetCloseHandler(func(int, string) error { return nil })
	go func() {
		defer close(stop)
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}()
	nc := ws.NetConn()
	for {
		select {
		case <-stop:
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		default:
		}
		if _, err := nc.Write(batch); err != nil {
			return
		}
	}
}

// encodeFrame encodes one unmasked (server to client) final frame.
func encodeFrame(opcode byte, payload []byte) []byte {
	b := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func (s *server) sink(w http.ResponseWriter, r *http.Request) {
	ws := s.upgrade(w, r)
	if ws == nil {
		return
	}
	defer ws.Close()
	for {
		_, rd, err := ws.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return
		}
	}
}

// close1012 is one reconnect cycle's server side: upgrade, close with 1012
// (service restart), wait briefly for the client's close frame, hang up.
func (s *server) close1012(w http.ResponseWriter, r *http.Request) {
	ws := s.upgrade(w, r)
	if ws == nil {
		return
	}
	defer ws.Close()
	_ = ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseServiceRestart, "restart"), time.Now().Add(time.Second))
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	ws.SetCloseHandler(func(int, string) error { return nil }) // ours went first
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}

func (s *server) hold(w http.ResponseWriter, r *http.Request) {
	ws := s.upgrade(w, r)
	if ws == nil {
		return
	}
	s.mu.Lock()
	s.held[ws] = struct{}{}
	s.count.Store(int64(len(s.held)))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.held, ws)
		s.count.Store(int64(len(s.held)))
		s.mu.Unlock()
		_ = ws.Close()
	}()
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}

// storm sends 1012 (or ?code=) to every held connection at once: one goroutine per
// core writes close frames, so that the last client hears it within a few
// milliseconds of the first. It answers with the number of connections
// and the time it took.
func (s *server) storm(w http.ResponseWriter, r *http.Request) {
	code := websocket.CloseServiceRestart
	if c, err := strconv.Atoi(r.URL.Query().Get("code")); err == nil {
		code = c
	}
	s.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.held))
	for ws := range s.held {
		conns = append(conns, ws)
	}
	s.mu.Unlock()
	start := time.Now()
	msg := websocket.FormatCloseMessage(code, "restart")
	var wg sync.WaitGroup
	const writers = 4
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(conns); j += writers {
				_ = conns[j].WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(w, "%d %d\n", len(conns), time.Since(start).Microseconds())
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// selfSigned makes a certificate for 127.0.0.1, valid for a day.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "resocket benchserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}
