// Package wire connects throwaway namespaces with configured veth pairs, to
// build the world `nsnet demo` plays in (tests build theirs with iproute2, as
// an independent oracle). nsnet's own sandboxes are made by package link.
package wire

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// End is one end of a point-to-point wire between two namespaces.
type End struct {
	NetNS   string         // namespace path
	Name    string         // interface name in that namespace
	Addrs   []netip.Prefix // addresses on the interface
	LoAddrs []netip.Prefix // extra addresses on lo (e.g. a "public" server address)
	Gateway netip.Addr     // default route, if valid
}

// Wire connects two namespaces with a veth pair and configures both ends.
// It is used to build throwaway worlds (nsnet demo); nsnet's own sandboxes
// use AttachVeth.
func Wire(a, b End) error {
	fa, err := os.Open(a.NetNS)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", a.NetNS, err)
	}
	defer fa.Close()
	fb, err := os.Open(b.NetNS)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", b.NetNS, err)
	}
	defer fb.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.Namespace = a.Name, netlink.NsFd(fa.Fd())
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: b.Name, PeerNamespace: netlink.NsFd(fb.Fd())}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink socket: %w", err)
	}
	defer h.Close()
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s/%s between %s and %s: %w", a.Name, b.Name, a.NetNS, b.NetNS, err)
	}
	if err := configureEnd(a, fa); err != nil {
		return err
	}
	return configureEnd(b, fb)
}

func configureEnd(e End, f *os.File) error {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink socket in %s: %w", e.NetNS, err)
	}
	defer h.Close()
	l, err := h.LinkByName(e.Name)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", e.Name, e.NetNS, err)
	}
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: loopbackIndex}}
	for _, step := range []struct {
		link  netlink.Link
		addrs []netip.Prefix
	}{{l, e.Addrs}, {lo, e.LoAddrs}} {
		for _, p := range step.addrs {
			if err := h.AddrAdd(step.link, toAddr(p)); err != nil {
				return fmt.Errorf("add %s in %s: %w", p, e.NetNS, err)
			}
		}
		if err := h.LinkSetUp(step.link); err != nil {
			return fmt.Errorf("bring up link in %s: %w", e.NetNS, err)
		}
	}
	if !e.Gateway.IsValid() {
		return nil
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: e.Gateway.AsSlice()}); err != nil {
		return fmt.Errorf("add default route via %s in %s: %w", e.Gateway, e.NetNS, err)
	}
	return nil
}

// loopbackIndex is the ifindex of lo in every network namespace.
const loopbackIndex = 1

func toAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
}
