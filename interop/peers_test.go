package interop

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// depsHint ends every failure caused by something missing on the machine:
// the suite never skips silently for want of a server.
const depsHint = "run `make interop-deps` from the repository root to install the interop suite's servers"

// peer is a real server that speaks the scripting contract of README.md.
type peer struct {
	name string
	ws   string // ws://host:port of the WebSocket endpoint the client uses
	http string // http://host:port where /report is served

	// skips holds the rows this peer is expected to skip (expectedSkips)
	// and those it reached and skipped; set by runScenarios.
	skips *skipLedger
	// resetReachesClient: a TCP reset by the server arrives as a reset at
	// the client (not true behind a proxy, which has its own connection).
	resetReachesClient bool
}

// url builds a WebSocket URL: path with the query given as key, value
// pairs.
func (p *peer) url(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u := p.ws + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// report is what a server recorded of the connections made with one id.
type report struct {
	Connections []struct {
		Received    []string `json:"received"`
		CloseCode   *int     `json:"closeCode"`
		CloseReason *string  `json:"closeReason"`
	} `json:"connections"`
	Restarts int `json:"restarts"`
}

// report fetches what the server recorded for id.
func (p *peer) report(t *testing.T, id string) report {
	t.Helper()
	// No keep-alive: an idle pooled connection would be a leaked goroutine.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: within}
	resp, err := hc.Get(p.http + "/report?" + url.Values{"id": {id}}.Encode())
	require.NoError(t, err, "fetch the report of %s", p.name)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "report of %s", p.name)
	var r report
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return r
}

// reportSettled fetches the report for id once the server has seen the
// end of its connection number n (1-based): a server learns of a close
// after the client has.
func (p *peer) reportSettled(t *testing.T, id string, n int) report {
	t.Helper()
	return p.reportUntil(t, id, fmt.Sprintf("connection %d ended", n), func(r report) bool {
		return len(r.Connections) >= n && r.Connections[n-1].CloseCode != nil
	})
}

// reportUntil polls the report for id until done holds: the server's side
// has no event to wait on. The poll is bounded: every 10 ms, for at most
// `within`; then the test fails.
func (p *peer) reportUntil(t *testing.T, id, what string, done func(report) bool) report {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r := p.report(t, id)
		if done(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s; report: %+v", p.name, within, what, r)
		}
		<-tick.C
	}
}

// requireNode returns the node binary, failing the test if it or the
// pinned ws package is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH: %v; %s", err, depsHint)
	}
	if _, err := os.Stat("node/node_modules/ws/package.json"); err != nil {
		t.Fatalf("the Node ws package is not installed in interop/node/node_modules (%v); %s", err, depsHint)
	}
	return node
}

// debianPython is Debian's Python: the python3 on PATH may be another
// build (pyenv) that cannot see Debian's python3-websockets.
const debianPython = "/usr/bin/python3"

// requirePython returns Debian's python3, failing the test if it or its
// websockets package is missing.
func requirePython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(debianPython, "-c", "import websockets, websockets.legacy.server; print(websockets.__version__)").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import websockets (%v): %s; %s", debianPython, err, out, depsHint)
	}
	t.Logf("Python websockets %s", out)
	return debianPython
}

// requireNginx returns the nginx binary, failing the test if it is
// missing.
func requireNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	// Debian puts it in /usr/sbin, which a non-root PATH may lack.
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatalf("nginx not found on PATH nor in /usr/sbin; %s", depsHint)
	return ""
}

// startNodeServer starts interop/node/server.js on port (0: any free
// one) and returns the process, for tests that stop it, and its port.
func startNodeServer(t *testing.T, port int) (*process, int) {
	t.Helper()
	return startServer(t, "node-ws", requireNode(t), "node/server.js", fmt.Sprint(port))
}
