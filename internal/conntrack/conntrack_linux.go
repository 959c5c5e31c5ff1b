// Package conntrack removes the host's connection-tracking entries of
// published ports that go away, so that a flow never keeps going to a
// mapping that is gone. It wraps vishvananda/netlink's conntrack calls.
//
// Invariants: it only deletes entries; a flow with no entry is not an error.
package conntrack

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/netlinksafe"
)

// Flow names the translated flows of one published port: protocol number,
// host port, and the sandbox address they were translated to.
type Flow struct {
	Proto    uint8
	HostPort uint16
	CtrIP    netip.Addr
}

// Delete removes the host's connection-tracking entries of the given
// flows, so a flow never keeps going to a mapping that is gone. It reads the
// table once, whatever the number of flows, and returns how many it removed.
func Delete(flows []Flow) (uint, error) {
	if len(flows) == 0 {
		return 0, nil
	}
	filters := make([]netlink.CustomConntrackFilter, 0, len(flows))
	for _, fl := range flows {
		f := &netlink.ConntrackFilter{}
		err := errors.Join(f.AddProtocol(fl.Proto), f.AddPort(netlink.ConntrackOrigDstPort, fl.HostPort),
			f.AddIP(netlink.ConntrackReplySrcIP, fl.CtrIP.AsSlice()))
		if err != nil {
			return 0, fmt.Errorf("conntrack filter for %d/%d: %w", fl.HostPort, fl.Proto, err)
		}
		filters = append(filters, f)
	}
	n, err := netlinksafe.Retry(func() (uint, error) {
		return netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	})
	if err != nil {
		return n, fmt.Errorf("delete conntrack entries of %d published ports: %w", len(flows), err)
	}
	return n, nil
}
