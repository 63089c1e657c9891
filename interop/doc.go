// Package interop runs resocket against real WebSocket servers: Node's ws,
// Python's websockets, and nginx as a reverse proxy. Each test starts its
// server on 127.0.0.1, drives it per connection through the URL (see
// README.md for the contract the servers share), runs the same scenario
// set as table-driven subtests, and stops the server at the end.
//
// resume_test.go runs the exactly-once scenarios of the resume protocol
// (docs/protocol.md) against node/resume-server.js, a server written from
// that page alone.
//
// It is a module of its own so that the SDK's go.mod stays lean. Run it
// with `make interop` from the repository root, which first installs what
// it needs (`make interop-deps`); a test whose server cannot start fails
// with a message naming that target.
package interop
