package netview

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/nsnet/nsnet/internal/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Device is one link with what `nsnet diagnose` and `nsnet topology` need
// of it: its state, MTU, bridge, veth peer and IPv4 addresses.
type Device struct {
	Index   int
	Name    string
	Kind    string // "bridge", "veth", "device", "dummy", ...
	MAC     string
	MTU     int
	Up      bool   // administratively up (IFF_UP)
	Carrier bool   // the lower layer is up (IFF_LOWER_UP): a veth whose peer is down has none
	Master  string // the bridge this link is a port of, if any
	Alias   string
	// PeerIndex is a veth's peer's ifindex (in PeerNetNSID's namespace, or
	// this one when PeerNetNSID is -1 or unset).
	PeerIndex int
	Addrs     []netip.Prefix
	// Hairpin is set for the bridge ports Observe was asked about.
	Hairpin *bool
}

// Route is one IPv4 route of the main table.
type Route struct {
	Dst      netip.Prefix // 0.0.0.0/0 for the default route
	Gateway  netip.Addr   // invalid for a connected route
	Dev      string
	Src      netip.Addr
	Priority int
	Type     string // "unicast", or "blackhole", "unreachable", "prohibit": dropped
}

// Snapshot is what Observe read of one namespace.
type Snapshot struct {
	Devices []Device
	Routes  []Route
}

// Observe reads the links (with their IPv4 addresses) and the IPv4 routes
// of the main table of the namespace at path ("" for the current one). It
// reads whether hairpin mode is on for the bridge ports named in hairpin. It
// only reads.
func Observe(path string, hairpin ...string) (Snapshot, error) {
	var s Snapshot
	err := withHandle(path, func(h *netlink.Handle) error {
		links, names, err := listLinks(h)
		if err != nil {
			return err
		}
		for _, l := range links {
			d, err := device(h, l, names, hairpin)
			if err != nil {
				return err
			}
			s.Devices = append(s.Devices, d)
		}
		s.Routes, err = routes(h, names)
		return err
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("read the links and routes of namespace %q: %w", path, err)
	}
	sort.Slice(s.Devices, func(i, j int) bool { return s.Devices[i].Name < s.Devices[j].Name })
	return s, nil
}

func device(h *netlink.Handle, l netlink.Link, names map[int]string, hairpin []string) (Device, error) {
	a := l.Attrs()
	d := Device{Index: a.Index, Name: a.Name, Kind: l.Type(), MAC: a.HardwareAddr.String(), MTU: a.MTU,
		Up: a.RawFlags&unix.IFF_UP != 0, Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0, Alias: a.Alias}
	if a.MasterIndex != 0 {
		d.Master = names[a.MasterIndex]
	}
	if _, ok := l.(*netlink.Veth); ok {
		d.PeerIndex = a.ParentIndex
	}
	addrs, err := netlinksafe.Retry(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return Device{}, fmt.Errorf("list addresses of %s: %w", a.Name, err)
	}
	for _, ad := range addrs {
		if p, ok := toPrefix(ad.IPNet); ok {
			d.Addrs = append(d.Addrs, p)
		}
	}
	if d.Master != "" && contains(hairpin, d.Name) {
		pi, err := netlinksafe.Retry(func() (netlink.Protinfo, error) { return h.LinkGetProtinfo(l) })
		if err != nil {
			return Device{}, fmt.Errorf("read the bridge port flags of %s: %w", a.Name, err)
		}
		d.Hairpin = &pi.Hairpin
	}
	return d, nil
}

func routes(h *netlink.Handle, names map[int]string) ([]Route, error) {
	rs, err := netlinksafe.Retry(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, r := range rs {
		rt := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: names[r.LinkIndex], Priority: r.Priority, Type: routeType(r.Type)}
		if r.Dst != nil {
			p, ok := toPrefix(r.Dst)
			if !ok {
				continue
			}
			rt.Dst = p
		}
		rt.Gateway, _ = netip.AddrFromSlice(r.Gw)
		rt.Gateway = rt.Gateway.Unmap()
		rt.Src, _ = netip.AddrFromSlice(r.Src)
		rt.Src = rt.Src.Unmap()
		out = append(out, rt)
	}
	return out, nil
}

func routeType(t int) string {
	switch t {
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	}
	return "unicast"
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
