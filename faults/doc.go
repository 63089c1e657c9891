// Package faults holds resocket's fault-injection, soak and load tests. It
// is a module of its own (github.com/resocket/resocket/faults) so that
// Toxiproxy and its dependencies never enter the SDK's go.mod.
//
// The tests embed Toxiproxy (github.com/Shopify/toxiproxy/v2) in-process:
// every test starts its own proxy on 127.0.0.1 between a resocket client
// and a local WebSocket server, adds one toxic (latency, bandwidth, slicer,
// timeout, reset_peer, limit_data, slow_close) or stops and starts the
// proxy, and checks what a user of the client relies on: how soon the
// fault is detected, which events arrive with which codes and decisions,
// that the client comes back, what happens to every message given to Send,
// and that no goroutine is left behind.
//
// The soak (reconnect cycles) and the restart storm run in two sizes from
// the same code: short tests that assert their bounds, run with the faults,
// and long benchmarks that print the figures.
//
//	go test -race ./...                      # the faults, short soak and storm (make faults)
//	go test -run '^$' -bench . -benchtime 1x # long soak and storm (make soak)
//
// docs/reliability.md at the repository root states the results.
package faults
