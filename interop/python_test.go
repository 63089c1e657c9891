package interop

import (
	"fmt"
	"testing"
)

// pythonPeer names Python's websockets, in failures and in expectedSkips.
const pythonPeer = "python-websockets"

// newPythonPeer starts Python's websockets (interop/python/server.py, on
// Debian's python3-websockets) on a free port of 127.0.0.1.
func newPythonPeer(t *testing.T) *peer {
	t.Helper()
	_, port := startServer(t, "python-websockets", requirePython(t), "python/server.py", "0")
	base := fmt.Sprintf("127.0.0.1:%d", port)
	return &peer{
		name:               pythonPeer,
		ws:                 "ws://" + base,
		http:               "http://" + base,
		resetReachesClient: true,
	}
}

// TestPython runs the scenario set against Python's websockets.
func TestPython(t *testing.T) {
	t.Parallel()
	runScenarios(t, newPythonPeer(t))
}
