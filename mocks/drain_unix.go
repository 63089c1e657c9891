//go:build unix

package mocks

import (
	"net"
	"syscall"
)

// drainLimit bounds how much drain discards, against a client that keeps
// sending.
const drainLimit = 16 << 20

// drain discards, without blocking, the bytes already received on conn and
// not yet read, so that closing it sends a FIN rather than a RST.
func drain(conn *net.TCPConn) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	total := 0
	_ = rc.Read(func(fd uintptr) bool {
		for total < drainLimit {
			n, err := syscall.Read(int(fd), buf)
			if n <= 0 || err != nil {
				break // EAGAIN: nothing more is buffered (or EOF, or an error)
			}
			total += n
		}
		return true // never wait for more
	})
}
