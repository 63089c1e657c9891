package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nginxConf is the whole configuration: everything nginx writes (pid,
// logs, temp files) stays in the test's temp dir, it runs in the
// foreground under the test's control, and it listens on 127.0.0.1 only.
// Upgraded connections are tunnelled to the backend as bytes: close
// frames, pings and data pass through untouched.
const nginxConf = `# written by resocket's interop suite
daemon off;
master_process on;
worker_processes 1;
pid {{dir}}/nginx.pid;
lock_file {{dir}}/nginx.lock;
error_log {{dir}}/error.log info;
# A graceful stop (nginx -s quit) waits for upgraded connections to end:
# without this bound, a WebSocket kept alive by pings holds it forever.
worker_shutdown_timeout 1s;

events {
	worker_connections 256;
}

http {
	access_log {{dir}}/access.log;
	client_body_temp_path {{dir}}/client_body;
	proxy_temp_path {{dir}}/proxy;
	fastcgi_temp_path {{dir}}/fastcgi;
	uwsgi_temp_path {{dir}}/uwsgi;
	scgi_temp_path {{dir}}/scgi;

	map $http_upgrade $connection_upgrade {
		default upgrade;
		''      close;
	}

	server {
		listen 127.0.0.1:{{port}};

		location / {
			proxy_pass http://127.0.0.1:{{backend}};
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $host;
			proxy_connect_timeout 5s;
			# An idle tunnel is cut after this long; the client's keepalive
			# pings (every 25 s by default) keep it from idling.
			proxy_read_timeout 60s;
			proxy_send_timeout 60s;
			proxy_buffering off;
		}
	}
}
`

// nginx is one nginx, master and worker, reverse-proxying WebSockets to a
// backend on 127.0.0.1.
type nginx struct {
	t    *testing.T
	bin  string
	dir  string
	conf string
	port int
	proc *process
	runs int
}

// startNginx starts nginx on a free port of 127.0.0.1, proxying to the
// backend port.
func startNginx(t *testing.T, backend int) *nginx {
	t.Helper()
	bin := requireNginx(t)
	dir := t.TempDir()
	// Workers drop root for nobody: they must reach their temp paths.
	require.NoError(t, os.Chmod(dir, 0o755))
	n := &nginx{t: t, bin: bin, dir: dir, conf: filepath.Join(dir, "nginx.conf")}
	// The port is chosen, then bound by nginx: another process may take
	// it in between, so a few ports are tried.
	for try := 1; ; try++ {
		n.port = freePort(t)
		conf := strings.NewReplacer("{{dir}}", dir, "{{port}}", fmt.Sprint(n.port), "{{backend}}", fmt.Sprint(backend)).Replace(nginxConf)
		require.NoError(t, os.WriteFile(n.conf, []byte(conf), 0o644))
		out, err := exec.Command(bin, n.args("-t")...).CombinedOutput()
		require.NoError(t, err, "nginx -t: %s", out)
		if n.tryStart() || try == 3 {
			break
		}
	}
	require.NotNil(t, n.proc, "nginx could not bind a port; its log:\n%s", n.errorLog())
	return n
}

func (n *nginx) args(extra ...string) []string {
	// -e: the error log before the configuration is read is ours too.
	return append([]string{"-p", n.dir, "-c", n.conf, "-e", filepath.Join(n.dir, "error.log")}, extra...)
}

// tryStart starts nginx in the foreground and waits until it listens; it
// returns false if nginx exits first (its port was taken).
func (n *nginx) tryStart() bool {
	n.t.Helper()
	n.runs++
	pidFile := filepath.Join(n.dir, "nginx.pid")
	_ = os.Remove(pidFile) // left behind by a killed nginx
	// SIGTERM at the end: the master stops its workers and reaps them.
	p := startDaemon(n.t, fmt.Sprintf("nginx-%d", n.runs), filepath.Join(n.dir, "nginx.out"), syscall.SIGTERM,
		append([]string{n.bin}, n.args()...)...)
	if !listening(p, pidFile, fmt.Sprintf("127.0.0.1:%d", n.port)) {
		return false
	}
	n.proc = p
	return true
}

// restart starts nginx again on the same port, after it has stopped.
func (n *nginx) restart() {
	n.t.Helper()
	require.True(n.t, n.tryStart(), "nginx did not start again on port %d; its log:\n%s", n.port, n.errorLog())
}

// signal runs `nginx -s cmd` (quit, stop, reload, reopen), which signals
// the master named in the pid file.
func (n *nginx) signal(cmd string) {
	n.t.Helper()
	out, err := exec.Command(n.bin, n.args("-s", cmd)...).CombinedOutput()
	require.NoError(n.t, err, "nginx -s %s: %s", cmd, out)
}

// workers returns the pids of the running master's children, read from
// /proc (field 4 of /proc/PID/stat is the parent's pid).
func (n *nginx) workers() []int {
	n.t.Helper()
	master := n.proc.cmd.Process.Pid
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(n.t, err)
	var pids []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(master) {
			pid, _ := strconv.Atoi(strings.Fields(s)[0])
			pids = append(pids, pid)
		}
	}
	return pids
}

func (n *nginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	out, _ := os.ReadFile(filepath.Join(n.dir, "nginx.out"))
	return string(b) + string(out)
}

// listening waits until nginx listens on addr: it has written its pid
// file, which it does once its sockets are bound, and addr accepts
// connections. It returns false if p exits first. The poll is bounded:
// every 10 ms, for at most startWithin.
func listening(p *process, pidFile, addr string) bool {
	deadline := time.Now().Add(startWithin)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if _, err := os.Stat(pidFile); err == nil && dialable(addr) {
			return true
		}
		select {
		case <-p.exited:
			return false
		case <-tick.C:
		}
	}
	return false
}

// nginxPeer names nginx in front of Node's ws, in failures and in
// expectedSkips.
const nginxPeer = "nginx→node-ws"

// newNginxPeer starts a Node ws backend and nginx in front of it.
func newNginxPeer(t *testing.T) *peer {
	t.Helper()
	_, backend := startNodeServer(t, 0)
	n := startNginx(t, backend)
	base := fmt.Sprintf("127.0.0.1:%d", n.port)
	return &peer{
		name: nginxPeer,
		ws:   "ws://" + base,
		http: "http://" + base,
		// nginx has a TCP connection of its own to each side: a reset of
		// the backend's ends the client's with a FIN.
		resetReachesClient: false,
	}
}

// TestNginx runs the scenario set through nginx as a reverse proxy, with
// Node's ws behind it.
func TestNginx(t *testing.T) {
	t.Parallel()
	runScenarios(t, newNginxPeer(t))
}
