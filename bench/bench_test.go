package bench

import (
	"testing"

	"github.com/resocket/resocket/bench/internal/clients"
)

// The benchmarks here are for profiling one client at a time:
//
//	go test -run '^$' -bench 'Echo64/impl=resocket$' -cpuprofile cpu.out -memprofile mem.out
//	go tool pprof -top cpu.out
//
// The published figures come from cmd/benchrun, which interleaves the
// clients round by round; go test -count runs each benchmark back to back,
// so its ratios drift with the machine.

var msg64 = make([]byte, 64)

func benchImpls(b *testing.B, names []string, run func(b *testing.B, im clients.Impl)) {
	ims, err := clients.ByName(names...)
	if err != nil {
		b.Fatal(err)
	}
	for _, im := range ims {
		b.Run("impl="+im.Name, func(b *testing.B) { run(b, im) })
	}
}

func benchClient(b *testing.B, names []string, path string, op func(c clients.Client, n int) error) {
	benchImpls(b, names, func(b *testing.B, im clients.Impl) {
		c, err := im.Dial(srv.URL(path, false), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := op(c, 100); err != nil { // warm up
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		if err := op(c, b.N); err != nil {
			b.Fatal(err)
		}
	})
}

var (
	allImpls      = []string{"gorilla", "resocket", "coder", "gws"}
	sendImpls     = []string{"gorilla", "resocket", "resocket-nopool", "coder", "gws"}
	cycleImpls    = []string{"gorilla", "resocket", "coder", "gws"}
	cycleImplsTLS = []string{"gorilla", "resocket", "gorilla-resume", "coder", "gws"}
)

func BenchmarkEcho64(b *testing.B) {
	benchClient(b, sendImpls, "/echo", func(c clients.Client, n int) error { return c.Echo(n, msg64) })
}

func BenchmarkRecv64(b *testing.B) {
	benchClient(b, allImpls, "/stream?size=64", clients.Client.Recv)
}

func BenchmarkRecv4K(b *testing.B) {
	benchClient(b, allImpls, "/stream?size=4096", clients.Client.Recv)
}

func BenchmarkSend64(b *testing.B) {
	benchClient(b, sendImpls, "/sink", func(c clients.Client, n int) error { return c.Send(n, msg64) })
}

func benchCycle(b *testing.B, names []string, tls bool) {
	benchImpls(b, names, func(b *testing.B, im clients.Impl) {
		c, err := im.Cycler(srv.URL("/close1012", tls), srv.TLSConfig(tls))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Cycle(5); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		if err := c.Cycle(b.N); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkReconnectWS(b *testing.B)  { benchCycle(b, cycleImpls, false) }
func BenchmarkReconnectWSS(b *testing.B) { benchCycle(b, cycleImplsTLS, true) }
