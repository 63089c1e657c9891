package resocket

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a client starts must have ended when its tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
