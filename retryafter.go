package resocket

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps a Retry-After so that a hostile or broken header
// cannot overflow a Duration or park the client for years.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads an HTTP Retry-After value (RFC 9110 §10.2.3):
// either whole seconds or an HTTP date, measured from now. It returns 0 for
// an empty, malformed or past value, and at most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange) || (err == nil && secs > uint64(maxRetryAfter/time.Second)):
			return maxRetryAfter
		case err != nil:
			return 0 // digits that are not a plain count, such as "1.5"
		}
		return time.Duration(secs) * time.Second //nolint:gosec // secs ≤ maxRetryAfter in seconds
	}
	when, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := when.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}
