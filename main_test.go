package resocket_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a client starts must have ended when its tests end. The
// internal tests (package resocket) share this test binary, and this
// TestMain.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
