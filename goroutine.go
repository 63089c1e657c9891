package resocket

import "runtime"

// goroutineID returns the current goroutine's ID. Go offers no API for it,
// so it is read from the first line of runtime.Stack ("goroutine 42 [...").
// It is used only by Close and Terminate, to tell a call from the client's
// own callback (which must not wait for the loop it runs on) from any other.
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	if n <= len(prefix) {
		return 0
	}
	var id uint64
	for _, b := range buf[len(prefix):n] {
		if b < '0' || b > '9' {
			break
		}
		id = id*10 + uint64(b-'0')
	}
	return id
}
