// Package netview reads what the kernel shows of a namespace's links,
// addresses, neighbours and routes, for `nsnet demo` to show the reader. It
// only reads.
package netview

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"

	"github.com/nsnet/nsnet/internal/netlinksafe"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Info describes one link as the kernel reports it.
type Info struct {
	Name   string
	Kind   string // "bridge", "veth", "device", ...
	MAC    string
	Up     bool
	Master string // bridge this link is a port of, if any
	Alias  string
	Addrs  []netip.Prefix
}

// Neighbour is one IPv4 neighbour-table entry.
type Neighbour struct {
	IP    netip.Addr
	MAC   string
	Dev   string
	State string
}

// withHandle runs fn with a netlink handle on the namespace at path, or on
// the current namespace if path is empty.
func withHandle(path string, fn func(*netlink.Handle) error) error {
	var h *netlink.Handle
	var err error
	if path == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			defer f.Close()
			h, err = netlink.NewHandleAt(vnetns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
		}
	}
	if err != nil {
		return fmt.Errorf("open netlink socket in %q: %w", path, err)
	}
	defer h.Close()
	return fn(h)
}

// Links lists the links of the namespace at path ("" for the current one),
// sorted by name, with their IPv4 addresses.
func Links(path string) ([]Info, error) {
	var out []Info
	err := withHandle(path, func(h *netlink.Handle) error {
		links, names, err := listLinks(h)
		if err != nil {
			return err
		}
		for _, l := range links {
			info, err := describe(h, l, names)
			if err != nil {
				return err
			}
			out = append(out, info)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// listLinks lists the links of h's namespace, and their names by index.
func listLinks(h *netlink.Handle) ([]netlink.Link, map[int]string, error) {
	links, err := netlinksafe.Retry(h.LinkList)
	if err != nil {
		return nil, nil, fmt.Errorf("list links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	return links, names, nil
}

func describe(h *netlink.Handle, l netlink.Link, names map[int]string) (Info, error) {
	a := l.Attrs()
	info := Info{Name: a.Name, Kind: l.Type(), MAC: a.HardwareAddr.String(), Up: a.Flags&1 != 0, Alias: a.Alias}
	if a.MasterIndex != 0 {
		info.Master = names[a.MasterIndex]
	}
	addrs, err := netlinksafe.Retry(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return Info{}, fmt.Errorf("list addresses of %s: %w", a.Name, err)
	}
	for _, ad := range addrs {
		if p, ok := toPrefix(ad.IPNet); ok {
			info.Addrs = append(info.Addrs, p)
		}
	}
	return info, nil
}

// Neighbours lists the IPv4 neighbour table of the namespace at path.
func Neighbours(path string) ([]Neighbour, error) {
	var out []Neighbour
	err := withHandle(path, func(h *netlink.Handle) error {
		ns, err := netlinksafe.Retry(func() ([]netlink.Neigh, error) { return h.NeighList(0, netlink.FAMILY_V4) })
		if err != nil {
			return fmt.Errorf("list neighbours: %w", err)
		}
		for _, n := range ns {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || n.HardwareAddr == nil {
				continue
			}
			dev := ""
			if l, err := h.LinkByIndex(n.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
			out = append(out, Neighbour{IP: ip.Unmap(), MAC: n.HardwareAddr.String(), Dev: dev, State: neighState(n.State)})
		}
		return nil
	})
	return out, err
}

func neighState(s int) string {
	switch {
	case s&netlink.NUD_REACHABLE != 0:
		return "REACHABLE"
	case s&netlink.NUD_STALE != 0:
		return "STALE"
	case s&netlink.NUD_DELAY != 0:
		return "DELAY"
	case s&netlink.NUD_PERMANENT != 0:
		return "PERMANENT"
	}
	return fmt.Sprintf("0x%x", s)
}

// DefaultGateway returns the gateway of the IPv4 default route in the
// namespace at path, if there is one.
func DefaultGateway(path string) (netip.Addr, error) {
	var gw netip.Addr
	err := withHandle(path, func(h *netlink.Handle) error {
		rs, err := netlinksafe.Retry(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V4) })
		if err != nil {
			return fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				gw, _ = netip.AddrFromSlice(r.Gw)
				gw = gw.Unmap()
			}
		}
		return nil
	})
	return gw, err
}

func toPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
