// Package harness starts the bench server (cmd/benchserver) as a child
// process and talks to its control endpoints.
package harness

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a running bench server.
type Server struct {
	WS, WSS string // host:port of the plain and the TLS listener
	RootCAs *x509.CertPool

	cmd   *exec.Cmd
	stdin io.WriteCloser
	dir   string
}

// BuildServer compiles cmd/benchserver into dir and returns its path. It
// must run inside the bench module (go test and go run do). The
// environment variable BENCH_SERVER names a prebuilt binary instead.
func BuildServer(dir string) (string, error) {
	if p := os.Getenv("BENCH_SERVER"); p != "" {
		return p, nil
	}
	bin := filepath.Join(dir, "benchserver")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/resocket/resocket/bench/cmd/benchserver") //nolint:gosec // bin is our temp dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building benchserver: %w", err)
	}
	return bin, nil
}

// Start builds and starts a bench server; Close stops it.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "resocket-bench-")
	if err != nil {
		return nil, err
	}
	bin, err := BuildServer(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s, err := StartBinary(bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// StartBinary starts a built bench server, its certificate written in dir.
func StartBinary(bin, dir string) (*Server, error) {
	certPath := filepath.Join(dir, "cert.pem")
	cmd := exec.Command(bin, "-cert", certPath) //nolint:gosec // the server we built, or BENCH_SERVER
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, stdin: stdin, dir: dir}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("benchserver did not start: %w", err)
	}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "ws":
			s.WS = v
		case "wss":
			s.WSS = v
		}
	}
	pemBytes, err := os.ReadFile(filepath.Clean(certPath))
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.RootCAs = x509.NewCertPool()
	if s.WS == "" || s.WSS == "" || !s.RootCAs.AppendCertsFromPEM(pemBytes) {
		_ = s.Close()
		return nil, fmt.Errorf("benchserver: unexpected start line %q", line)
	}
	return s, nil
}

// URL returns the ws:// (secure false) or wss:// URL of path.
func (s *Server) URL(path string, secure bool) string {
	if secure {
		return "wss://" + s.WSS + path
	}
	return "ws://" + s.WS + path
}

// TLSConfig trusts the server's certificate (nil when secure is false).
func (s *Server) TLSConfig(secure bool) *tls.Config {
	if !secure {
		return nil
	}
	return &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
}

// Pid is the server process's ID.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Storm makes the server send a close frame with code to every /hold
// connection. It returns how many there were and how long writing the
// close frames took.
func (s *Server) Storm(code int) (int, time.Duration, error) {
	body, err := s.get("/storm?code=" + strconv.Itoa(code))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(body)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("storm: %q", body)
	}
	n, _ := strconv.Atoi(f[0])
	us, _ := strconv.Atoi(f[1])
	return n, time.Duration(us) * time.Microsecond, nil
}

// TLSHandshakes returns how many TLS handshakes of upgraded connections
// the server has seen so far, resumed and full.
func (s *Server) TLSHandshakes() (resumed, full int, err error) {
	body, err := s.get("/tls")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(body, &resumed, &full); err != nil {
		return 0, 0, fmt.Errorf("/tls: %q: %w", body, err)
	}
	return resumed, full, nil
}

// Held returns how many /hold connections the server has open.
func (s *Server) Held() (int, error) {
	body, err := s.get("/count")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(body))
}

// WaitHeld waits until the server holds exactly n /hold connections.
func (s *Server) WaitHeld(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := s.Held()
		if err != nil {
			return err
		}
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server holds %d connections, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var control = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (s *Server) get(path string) (string, error) {
	resp, err := control.Get("http://" + s.WS + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", path, resp.Status)
	}
	return string(b), nil
}

// Close stops the server and removes its files.
func (s *Server) Close() error {
	_ = s.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		err = <-done
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // it exits when stdin closes, however it likes
	}
	return err
}

// RaiseFileLimit lifts RLIMIT_NOFILE to its hard limit and returns it.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}

// Mem is the server process's memory, sampled after a collection and
// debug.FreeOSMemory (/mem).
type Mem struct {
	RSS, HeapInuse, StackInuse uint64
	Goroutines                 int
}

// Mem samples the server's memory.
func (s *Server) Mem() (Mem, error) {
	body, err := s.get("/mem")
	if err != nil {
		return Mem{}, err
	}
	var m Mem
	if _, err := fmt.Sscan(body, &m.RSS, &m.HeapInuse, &m.StackInuse, &m.Goroutines); err != nil {
		return Mem{}, fmt.Errorf("/mem: %q: %w", body, err)
	}
	return m, nil
}

// WaitSessions waits until exactly n resumable sessions run on the server
// (/resume-count).
func (s *Server) WaitSessions(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		body, err := s.get("/resume-count")
		if err != nil {
			return err
		}
		got, err := strconv.Atoi(strings.TrimSpace(body))
		if err != nil {
			return err
		}
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server runs %d sessions, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
