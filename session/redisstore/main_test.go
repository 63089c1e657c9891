package redisstore_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// srv is the redis-server every test of this package uses, each with keys
// of its own.
var srv *redisServer

// TestMain starts redis-server for the package's tests and stops it after
// them, then checks that no goroutine was left behind. A test binary
// started with FLEET_SERVER set is a fleet server instead (fleet_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(fleetEnv) != "" {
		os.Exit(fleetServerMain())
	}
	var err error
	srv, err = startRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisstore tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	srv.stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
