package resident

import (
	"fmt"
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

// clone is a copy of b to change.
func (b *book) clone() *book {
	return &book{zone: b.zone, records: maps.Clone(b.records)}
}

// checkRecords refuses records that put two at one address: a book keeps
// one record per address, where the resolver would refuse the zone.
func checkRecords(network string, records []resolver.Record) error {
	seen := make(map[netip.Addr]bool, len(records))
	for _, r := range records {
		a := r.Addr.Unmap()
		if seen[a] {
			return fmt.Errorf("resolver: network %s: address %s is given to two records: each sandbox has its own address on a network", network, a)
		}
		seen[a] = true
	}
	return nil
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
