package interop

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a client starts, and every helper of the harness, must
// have ended when the tests end. Nothing is ignored.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
