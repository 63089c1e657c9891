package faults

import (
	"os"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine, the client's, the servers' or
// Toxiproxy's, outlives the tests. Every proxy is stopped by its test's
// Cleanup, so Toxiproxy's link goroutines end with it, except the few
// Toxiproxy leaks by itself (see toxiproxyLeaks).
func TestMain(m *testing.M) {
	// Toxiproxy's bandwidth toxic logs through zerolog's global logger; its
	// proxies get a no-op logger. RESOCKET_FAULTS_LOG=1 shows the logs.
	if os.Getenv("RESOCKET_FAULTS_LOG") == "" {
		zerolog.SetGlobalLevel(zerolog.Disabled)
	}
	goleak.VerifyTestMain(m, toxiproxyLeaks...)
}
