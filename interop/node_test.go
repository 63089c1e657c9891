package interop

import (
	"fmt"
	"testing"
)

// nodePeer names Node's ws, in failures and in expectedSkips.
const nodePeer = "node-ws"

// newNodePeer starts Node's ws (interop/node/server.js, ws pinned in
// package-lock.json) on a free port of 127.0.0.1.
func newNodePeer(t *testing.T) *peer {
	t.Helper()
	_, port := startNodeServer(t, 0)
	base := fmt.Sprintf("127.0.0.1:%d", port)
	return &peer{
		name:               nodePeer,
		ws:                 "ws://" + base,
		http:               "http://" + base,
		resetReachesClient: true,
		// ws validates close codes itself: the rows it refuses are in
		// expectedSkips, with ws's own words.
	}
}

// TestNode runs the scenario set against Node's ws.
func TestNode(t *testing.T) {
	t.Parallel()
	runScenarios(t, newNodePeer(t))
}
