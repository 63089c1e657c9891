package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/resocket/resocket/bench/internal/harness"
)

// srv is the bench server, a child process shared by every test and
// benchmark of the package.
var srv *harness.Server

func TestMain(m *testing.M) {
	if _, err := harness.RaiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := harness.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	_ = srv.Close()
	os.Exit(code)
}
