package harness

import (
	"os"
	"strconv"
	"strings"
)

// VMRSS returns this process's resident set size in bytes, from
// /proc/self/status; 0 where that is not available. Both the bench driver
// (idle clients) and the bench server (idle connections) weigh themselves
// with it.
func VMRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
