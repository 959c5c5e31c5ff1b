package engine

import (
	"fmt"
	"os"
	"testing"

	"github.com/nsnet/nsnet/internal/netns"
)

// BenchmarkSandboxAttach measures CreateSandbox + RemoveSandbox of an adopted
// namespace in-process (no process start). It changes the network namespace it
// runs in, so it refuses to run in the machine's own: run it inside a
// throwaway one, e.g.
//
//	ip netns add nsb-host
//	nsenter --net=/run/netns/nsb-host go test -run=^$ -bench=SandboxAttach ./engine/
//	ip netns del nsb-host
func BenchmarkSandboxAttach(b *testing.B) {
	self, _ := os.Readlink("/proc/self/ns/net")
	init, _ := os.Readlink("/proc/1/ns/net")
	if os.Geteuid() != 0 || self == init {
		b.Skip("needs root, inside a throwaway network namespace (see the comment)")
	}
	e, err := Open(Options{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	if _, err := e.CreateNetwork(NetworkSpec{Name: "bench", Subnet: "10.231.0.0/16", Bridge: "nsb-br0"}); err != nil {
		b.Fatal(err)
	}
	defer e.RemoveNetwork("bench")
	target := netns.Path(fmt.Sprintf("nsbench-%d", os.Getpid()))
	if err := netns.Create(target, nil); err != nil {
		b.Fatal(err)
	}
	defer netns.Remove(target)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("nsbench-sb%d", i)
		if _, err := e.CreateSandbox(SandboxSpec{Name: name, Networks: []string{"bench"}, NetNS: target}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := e.RemoveSandbox(name, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
