package resident

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/nsnet/nsnet/internal/resolver"
)

// book is what the resident serves on one network: the zone without its
// records, and its records by address, so that a patch costs what it
// changes, not what the zone holds.
type book struct {
	zone    resolver.Zone // Records is nil
	records map[netip.Addr]resolver.Record
}

func bookOf(z resolver.Zone) *book {
	b := &book{zone: z, records: make(map[netip.Addr]resolver.Record, len(z.Records))}
	b.zone.Records = nil
	for _, r := range z.Records {
		b.records[r.Addr.Unmap()] = r
	}
	return b
}

// full is the zone with its records, by address.
func (b *book) full() resolver.Zone {
	z := b.zone
	for _, a := range slices.SortedFunc(maps.Keys(b.records), netip.Addr.Compare) {
		z.Records = append(z.Records, b.records[a])
	}
	return z
}

// patch changes the book as p says (see Patch).
func (b *book) patch(p Patch) {
	for _, a := range p.Drop {
		delete(b.records, a.Unmap())
	}
	for _, r := range p.Zone.Records {
		b.records[r.Addr.Unmap()] = r
	}
	b.zone = p.Zone
	b.zone.Records = nil
}
