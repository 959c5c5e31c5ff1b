package resident

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/nsnet/nsnet/internal/resolver"
)

// TestBookPatch checks, without root, how a patch changes a zone's book: the
// patch's header, the zone's records but those at the patch's addresses, the
// patch's records, by address; a clone is changed, not its original; a patch
// of a zone not served makes one; two records at one address are refused.
func TestBookPatch(t *testing.T) {
	rec := func(addr string, names ...string) resolver.Record {
		return resolver.Record{Addr: netip.MustParseAddr(addr), Names: names}
	}
	up := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
	z := resolver.Zone{Network: "n", Listen: netip.MustParseAddr("10.0.0.1"), Records: []resolver.Record{rec("10.0.0.2", "a"), rec("10.0.0.3", "b"), rec("10.0.0.4", "c")}}
	p := Patch{Zone: resolver.Zone{Network: "n", Listen: netip.MustParseAddr("10.0.0.1"), Internal: true, Upstream: up,
		Records: []resolver.Record{rec("10.0.0.9", "d"), rec("10.0.0.3", "b2")}}, Drop: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}
	b := bookOf(z)
	c := b.clone()
	c.patch(p)
	got := c.full()
	want := []string{"10.0.0.3=[b2]", "10.0.0.4=[c]", "10.0.0.9=[d]"}
	var recs []string
	for _, r := range got.Records {
		recs = append(recs, fmt.Sprintf("%s=%v", r.Addr, r.Names))
	}
	if !slices.Equal(recs, want) || !got.Internal || !slices.Equal(got.Upstream, up) {
		t.Errorf("patched: %+v, records %v; want internal, upstream %v, records %v", got, recs, up, want)
	}
	if orig := b.full(); len(orig.Records) != 3 || orig.Records[0].Names[0] != "a" || orig.Internal {
		t.Errorf("the book cloned was changed: %+v", orig)
	}
	none := bookOf(resolver.Zone{})
	if none.patch(p); len(none.full().Records) != 2 || none.full().Network != "n" {
		t.Errorf("a patch of no zone: %+v", none.full())
	}
	if err := checkRecords("n", []resolver.Record{rec("10.0.0.5", "x"), rec("10.0.0.5", "y")}); err == nil {
		t.Error("checkRecords took two records at one address")
	}
	if err := checkRecords("n", z.Records); err != nil {
		t.Errorf("checkRecords(%v): %v", z.Records, err)
	}
}
