package resident

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/nsnet/nsnet/internal/resolver"
)

// TestBookMatchesPatched checks, without root, that a book patched in place
// (the resident's fast path) holds the zone patched computes anew from the
// whole zone (the path of requests the resolver leaves to Update).
func TestBookMatchesPatched(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	addr := func() netip.Addr { return netip.MustParseAddr(fmt.Sprintf("10.9.0.%d", 2+rng.IntN(20))) }
	z := resolver.Zone{Network: "n", Listen: netip.MustParseAddr("10.9.0.1")}
	b := bookOf(z)
	for step := range 500 {
		p := Patch{Zone: resolver.Zone{Network: "n", Listen: z.Listen, Internal: rng.IntN(2) == 0}}
		if rng.IntN(2) == 0 {
			p.Zone.Records = []resolver.Record{{Addr: addr(), Names: []string{fmt.Sprint("s", step)}}}
		}
		if rng.IntN(2) == 0 {
			p.Drop = []netip.Addr{addr()}
		}
		z = patched(z, p)
		b.patch(p)
		if got := b.full(); !reflect.DeepEqual(got, z) {
			t.Fatalf("step %d: book has %+v, patched %+v", step, got, z)
		}
		if again := bookOf(z).full(); !reflect.DeepEqual(again, z) {
			t.Fatalf("step %d: bookOf(z).full() = %+v, want %+v", step, again, z)
		}
	}
}
