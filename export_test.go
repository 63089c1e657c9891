package resocket

import (
	"sync/atomic"
	"time"
)

// NewWithWallClockAhead is New with a keepalive whose wall clock runs
// ahead of the system's by *ahead (read at each look) and which looks at
// the clocks every check: a test moves *ahead to make the machine seem to
// have slept, as a suspended machine's wall clock runs on while its
// monotonic clock stops.
func NewWithWallClockAhead(url string, cfg Config, ahead *atomic.Int64, check time.Duration) (*Client, error) {
	return newClient(url, cfg, func(s *settings) {
		s.clock = func() (wall, mono time.Time) {
			now := time.Now()
			return now.Round(0).Add(time.Duration(ahead.Load())), now
		}
		s.sleepCheck = check
	})
}
