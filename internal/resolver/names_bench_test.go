package resolver

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchZone is a zone of n sandboxes, each with its name and short ID.
func benchZone(n int) Zone {
	z := Zone{Network: "bench", Listen: netip.MustParseAddr("10.88.0.1")}
	addr := netip.MustParseAddr("10.88.0.2")
	for i := range n {
		z.Records = append(z.Records, Record{Addr: addr, Sandbox: fmt.Sprintf("%032x", i), Names: []string{fmt.Sprintf("sb%d", i), fmt.Sprintf("%012x", i)}})
		addr = addr.Next()
	}
	return z
}

// BenchmarkSandboxNames is the resolver's cost of one sandbox coming and
// going on a network of n: compile is what an Update of the whole
// configuration costs (twice per op, as the resident did before Patch),
// patch is Patch putting its record and dropping it again.
func BenchmarkSandboxNames(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		z := benchZone(n)
		b.Run(fmt.Sprintf("compile/%d", n), func(b *testing.B) {
			for range b.N {
				for range 2 {
					if _, err := compile([]Zone{z}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(fmt.Sprintf("patch/%d", n), func(b *testing.B) {
			s := &Server{listeners: map[netip.Addr]*listener{}}
			tables, _ := compile([]Zone{z})
			s.members = sandboxMembers(tables)
			for a, t := range tables {
				s.listeners[a] = &listener{s: s, cur: &generation{t: t}}
			}
			header := z
			header.Records = nil
			put := Patch{Zone: header}
			put.Zone.Records = []Record{{Addr: netip.MustParseAddr("10.88.255.254"), Sandbox: "new", Names: []string{"new", "0123456789ab"}}}
			drop := Patch{Zone: header, Drop: []netip.Addr{put.Zone.Records[0].Addr}}
			b.ResetTimer()
			for range b.N {
				for _, p := range []Patch{put, drop} {
					if ok, err := s.Patch([]Patch{p}); !ok || err != nil {
						b.Fatal(ok, err)
					}
				}
			}
		})
	}
}
