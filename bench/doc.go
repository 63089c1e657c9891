// Package bench holds the performance benchmarks of resocket, side by
// side with raw gorilla/websocket (the floor), coder/websocket and
// lxzan/gws, all against one gorilla server run as a child process
// (cmd/benchserver).
//
//   - cmd/benchrun is the driver behind make bench: it interleaves the
//     clients round by round and prints paired ratios to gorilla.
//   - The tests here assert the exact allocation counts (totals of
//     runtime.MemStats.Mallocs over thousands of messages; make test runs
//     them) and the TLS session resumption the wss figures rely on; the
//     Go benchmarks are for profiling one client.
//
// It is a module of its own, so that its dependencies never enter the
// SDK's go.mod. docs/performance.md has the figures and how they were made.
package bench
