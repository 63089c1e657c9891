package session_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a Server or a client starts must have ended when the
// tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
