//go:build !unix

package mocks

import "net"

// drain is a no-op where non-blocking reads of the raw socket are not
// available: a Drop with unread bytes may then reach the client as a RST.
func drain(*net.TCPConn) {}
