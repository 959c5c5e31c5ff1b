package link

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/nsnet/nsnet/internal/netlinksafe"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CheckBridge lists how the existing bridge differs from b (down, another
// MTU, another MAC, its address missing, another alias); nothing when it is
// as described.
func (h *Host) CheckBridge(b Bridge) ([]string, error) {
	l, err := h.h.LinkByName(b.Name)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s: %w", b.Name, err)
	}
	var diffs []string
	if l.Type() != "bridge" {
		return []string{fmt.Sprintf("%s is a %s, not a bridge", b.Name, l.Type())}, nil
	}
	diffs = append(diffs, attrDiffs(l.Attrs(), b.MTU, b.Alias)...)
	if mac := l.Attrs().HardwareAddr; b.MAC != nil && !bytes.Equal(mac, b.MAC) {
		diffs = append(diffs, fmt.Sprintf("has MAC %s, not %s", mac, b.MAC))
	}
	for _, a := range []netip.Prefix{b.Address, b.Address6} {
		has, err := hasAddress(h.h, l, a)
		if err != nil {
			return nil, err
		}
		if !has {
			diffs = append(diffs, "lacks address "+a.String())
		}
	}
	return diffs, nil
}

// RepairBridge brings an existing bridge back to b: up, its MTU, its MAC,
// its address and its alias.
func (h *Host) RepairBridge(b Bridge) error {
	l, err := h.h.LinkByName(b.Name)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", b.Name, err)
	}
	if err := h.h.LinkSetMTU(l, b.MTU); err != nil {
		return fmt.Errorf("set MTU of bridge %s: %w", b.Name, err)
	}
	if b.MAC != nil && !bytes.Equal(l.Attrs().HardwareAddr, b.MAC) {
		if err := h.h.LinkSetHardwareAddr(l, b.MAC); err != nil {
			return fmt.Errorf("set MAC of bridge %s: %w", b.Name, err)
		}
	}
	for _, a := range []netip.Prefix{b.Address, b.Address6} {
		if err := ensureAddress(h.h, l, a); err != nil {
			return fmt.Errorf("bridge %s: %w", b.Name, err)
		}
	}
	if err := h.setLink(l.Attrs().Index, 0, b.Alias); err != nil {
		return fmt.Errorf("raise and mark bridge %s: %w", b.Name, err)
	}
	return nil
}

// CheckVeth lists how an existing veth pair differs from v: the host end
// (down, another MTU, not on its bridge, no hairpin, another alias) and the
// peer in the sandbox (missing, down, another MTU or MAC, its address or
// default route missing, lo down). Nothing when it is as described.
func (h *Host) CheckVeth(v Veth) ([]string, error) {
	l, err := h.h.LinkByName(v.HostName)
	if err != nil {
		return nil, fmt.Errorf("look up veth %s: %w", v.HostName, err)
	}
	diffs := attrDiffs(l.Attrs(), v.MTU, v.Alias)
	br, err := h.h.LinkByName(v.Bridge)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s: %w", v.Bridge, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		diffs = append(diffs, "is not a port of bridge "+v.Bridge)
	} else if pi, err := h.h.LinkGetProtinfo(l); err == nil && !pi.Hairpin {
		diffs = append(diffs, "has hairpin mode off")
	}
	peer, err := checkPeer(v)
	return append(diffs, peer...), err
}

// MissingPeer is what CheckVeth reports when no link in the sandbox has the
// peer's name (it was renamed, moved or deleted there): no repair in place
// can bring it back.
func MissingPeer(v Veth) string {
	return fmt.Sprintf("its peer %s is missing from %s", v.PeerName, v.NetNS.Name())
}

func checkPeer(v Veth) ([]string, error) {
	var diffs []string
	err := inNamespace(v.NetNS, func(sb *netlink.Handle) error {
		p, err := sb.LinkByName(v.PeerName)
		if isNotFound(err) {
			diffs = append(diffs, MissingPeer(v))
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
		}
		for _, d := range attrDiffs(p.Attrs(), v.MTU, "") {
			diffs = append(diffs, v.PeerName+" in the sandbox "+d)
		}
		if mac := p.Attrs().HardwareAddr; v.PeerMAC != nil && !bytes.Equal(mac, v.PeerMAC) {
			diffs = append(diffs, fmt.Sprintf("%s in the sandbox has MAC %s, not %s", v.PeerName, mac, v.PeerMAC))
		}
		if lo, err := sb.LinkByIndex(loopbackIndex); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
			diffs = append(diffs, "lo in the sandbox is down")
		}
		for _, a := range []netip.Prefix{v.Address, v.Address6} {
			if has, err := hasAddress(sb, p, a); err != nil || !has {
				diffs = append(diffs, fmt.Sprintf("%s in the sandbox lacks address %s", v.PeerName, a))
			}
		}
		for _, gw := range []netip.Addr{v.Gateway, v.Gateway6} {
			if has, err := hasDefaultRoute(sb, p, gw); err != nil || !has {
				diffs = append(diffs, fmt.Sprintf("the sandbox lacks its default route via %s", gw))
			}
		}
		return nil
	})
	return diffs, err
}

// RepairVeth brings an existing veth pair back to v: the host end up, with
// its MTU, on its bridge with hairpin mode, marked; the peer up, with its MTU,
// MAC, address and default route, and lo up.
func (h *Host) RepairVeth(v Veth) error {
	l, err := h.h.LinkByName(v.HostName)
	if err != nil {
		return fmt.Errorf("look up veth %s: %w", v.HostName, err)
	}
	br, err := h.h.LinkByName(v.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", v.Bridge, err)
	}
	if err := h.h.LinkSetMTU(l, v.MTU); err != nil {
		return fmt.Errorf("set MTU of %s: %w", v.HostName, err)
	}
	if err := h.finishVethHost(v, l, br); err != nil {
		return err
	}
	return inNamespace(v.NetNS, func(sb *netlink.Handle) error {
		p, err := sb.LinkByName(v.PeerName)
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
		}
		if err := sb.LinkSetMTU(p, v.MTU); err != nil {
			return fmt.Errorf("set MTU of %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
		}
		if v.PeerMAC != nil && !bytes.Equal(p.Attrs().HardwareAddr, v.PeerMAC) {
			if err := sb.LinkSetHardwareAddr(p, v.PeerMAC); err != nil {
				return fmt.Errorf("set MAC of %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
			}
		}
		return configureHandle(v, sb, p)
	})
}

// DeleteStrayPeer deletes, inside the sandbox, the peer of v left there
// when the pair's host end is not on the host (moved into another namespace
// by hand): a veth with the peer's name and MAC. Deleting it deletes the
// pair, wherever its other end is. Anything else of that name is left.
func (h *Host) DeleteStrayPeer(v Veth) (bool, error) {
	deleted := false
	err := inNamespace(v.NetNS, func(sb *netlink.Handle) error {
		p, err := sb.LinkByName(v.PeerName)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
		}
		if p.Type() != "veth" || !bytes.Equal(p.Attrs().HardwareAddr, v.PeerMAC) {
			return nil
		}
		if err := sb.LinkDel(p); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// attrDiffs compares a link's state, MTU and alias ("" alias: not compared).
func attrDiffs(a *netlink.LinkAttrs, mtu int, alias string) []string {
	var diffs []string
	if a.Flags&net.FlagUp == 0 {
		diffs = append(diffs, "is down")
	}
	if a.MTU != mtu {
		diffs = append(diffs, fmt.Sprintf("has MTU %d, not %d", a.MTU, mtu))
	}
	if alias != "" && a.Alias != alias {
		diffs = append(diffs, fmt.Sprintf("has alias %q, not %q", a.Alias, alias))
	}
	return diffs
}

// hasAddress reports whether l has the address want; an invalid want is
// always there.
func hasAddress(h *netlink.Handle, l netlink.Link, want netip.Prefix) (bool, error) {
	if !want.IsValid() {
		return true, nil
	}
	addrs, err := netlinksafe.Retry(func() ([]netlink.Addr, error) { return h.AddrList(l, family(want.Addr())) })
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
	}
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
		p, ok := toPrefix(a.IPNet)
		return ok && p == want
	}), nil
}

// ensureAddress adds want to l unless it is there; an invalid want is
// nothing to add.
func ensureAddress(h *netlink.Handle, l netlink.Link, want netip.Prefix) error {
	if !want.IsValid() {
		return nil
	}
	err := h.AddrAdd(l, toAddr(want))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s: %w", want, err)
	}
	return nil
}

// hasDefaultRoute reports whether the namespace routes everything via gw
// on l; an invalid gw wants no default route at all.
func hasDefaultRoute(h *netlink.Handle, l netlink.Link, gw netip.Addr) (bool, error) {
	if !gw.IsValid() {
		return true, nil
	}
	routes, err := netlinksafe.Retry(func() ([]netlink.Route, error) { return h.RouteList(nil, family(gw)) })
	if err != nil {
		return false, fmt.Errorf("list routes: %w", err)
	}
	found := false
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
			continue
		}
		got, _ := netip.AddrFromSlice(r.Gw)
		found = found || (r.LinkIndex == l.Attrs().Index && got.Unmap() == gw)
	}
	return found, nil
}

// family is a's netlink address family.
func family(a netip.Addr) int {
	if a.Is6() && !a.Is4In6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// inNamespace runs fn with a netlink handle on the namespace ns.
func inNamespace(ns *os.File, fn func(*netlink.Handle) error) error {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink socket in %s: %w", ns.Name(), err)
	}
	defer h.Close()
	return fn(h)
}
