package link

// The VXLAN device of an overlay network, and its static forwarding: one FDB
// entry (MAC -> remote VTEP) and one neighbour entry (IP -> MAC) per remote
// sandbox. The device neither learns nor floods (nolearning, no all-zeros
// FDB entry), and answers ARP requests from its neighbour table (proxy), so
// no broadcast ever crosses hosts.

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/nsnet/nsnet/internal/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VXLANPort is the IANA VXLAN port every overlay device uses.
const VXLANPort = 4789

// VXLAN is an overlay network's VXLAN device on its bridge.
type VXLAN struct {
	Name   string
	VNI    uint32
	Local  netip.Addr // this host's underlay (advertise) address
	MTU    int
	Bridge string // the master
	Alias  string // the owner mark
	Group  uint32
}

// Peer is a remote sandbox as the device forwards to it.
type Peer struct {
	IP   netip.Addr       // the sandbox's overlay address
	MAC  net.HardwareAddr // its MAC
	VTEP netip.Addr       // the underlay address of its host
}

// EnsureVXLAN makes v, or checks that the device of that name is v (VNI,
// local address, port, no learning, proxy ARP, on its bridge, up), replacing
// it if it is not. It reports whether it made the device.
func (h *Host) EnsureVXLAN(v VXLAN) (made bool, err error) {
	l, err := h.h.LinkByName(v.Name)
	if err == nil {
		if x, ok := l.(*netlink.Vxlan); ok && vxlanMatches(x, v) && l.Attrs().OperState != netlink.OperDown {
			return false, nil
		}
		if err := h.h.LinkDel(l); err != nil && !isNotFound(err) {
			return false, fmt.Errorf("replace VXLAN device %s: %w", v.Name, err)
		}
	} else if !isNotFound(err) {
		return false, fmt.Errorf("look up VXLAN device %s: %w", v.Name, err)
	}
	return true, h.createVXLAN(v)
}

func (h *Host) createVXLAN(v VXLAN) error {
	br, err := h.h.LinkByName(v.Bridge)
	if err != nil {
		return fmt.Errorf("VXLAN device %s: look up its bridge %s: %w", v.Name, v.Bridge, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.Group = v.Name, v.MTU, v.Group
	x := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: int(v.VNI), SrcAddr: net.IP(v.Local.AsSlice()),
		Port: VXLANPort, Learning: false, Proxy: true}
	if err := h.h.LinkAdd(x); err != nil {
		return fmt.Errorf("create VXLAN device %s (VNI %d, local %s): %w", v.Name, v.VNI, v.Local, err)
	}
	if err := h.setLink(x.Attrs().Index, br.Attrs().Index, v.Alias); err != nil {
		h.h.LinkDel(x)
		return fmt.Errorf("attach VXLAN device %s to bridge %s: %w", v.Name, v.Bridge, err)
	}
	return nil
}

func vxlanMatches(x *netlink.Vxlan, v VXLAN) bool {
	local, _ := netip.AddrFromSlice(x.SrcAddr)
	return uint32(x.VxlanId) == v.VNI && local.Unmap() == v.Local && x.Port == VXLANPort && !x.Learning && x.Proxy &&
		x.Attrs().MTU == v.MTU && x.Attrs().Alias == v.Alias && x.Attrs().MasterIndex != 0
}

// Peers returns the static peers programmed on the VXLAN device dev: its
// permanent neighbours joined with its FDB entries by MAC.
func (h *Host) Peers(dev string) ([]Peer, error) {
	l, err := h.h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("look up VXLAN device %s: %w", dev, err)
	}
	idx := l.Attrs().Index
	neighs, err := netlinksafe.Retry(func() ([]netlink.Neigh, error) { return h.h.NeighList(idx, unix.AF_INET) })
	if err != nil {
		return nil, fmt.Errorf("list neighbours of %s: %w", dev, err)
	}
	fdb, err := netlinksafe.Retry(func() ([]netlink.Neigh, error) { return h.h.NeighList(idx, unix.AF_BRIDGE) })
	if err != nil {
		return nil, fmt.Errorf("list FDB of %s: %w", dev, err)
	}
	vtep := map[string]netip.Addr{}
	for _, f := range fdb {
		if a, ok := netip.AddrFromSlice(f.IP); ok && f.Flags&netlink.NTF_SELF != 0 {
			vtep[f.HardwareAddr.String()] = a.Unmap()
		}
	}
	var out []Peer
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		out = append(out, Peer{IP: ip.Unmap(), MAC: n.HardwareAddr, VTEP: vtep[n.HardwareAddr.String()]})
	}
	for mac, a := range vtep { // FDB entries without a neighbour: half-made peers
		if !slices.ContainsFunc(out, func(p Peer) bool { return p.MAC.String() == mac }) {
			m, _ := net.ParseMAC(mac)
			out = append(out, Peer{MAC: m, VTEP: a})
		}
	}
	return out, nil
}

// AddPeer programs p on dev: the FDB entry first, then the neighbour entry
// that makes the device answer ARP for it. Both replace what was there.
func (h *Host) AddPeer(dev string, p Peer) error {
	l, err := h.h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("look up VXLAN device %s: %w", dev, err)
	}
	idx := l.Attrs().Index
	fdb := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT | netlink.NUD_NOARP,
		Flags: netlink.NTF_SELF, IP: net.IP(p.VTEP.AsSlice()), HardwareAddr: p.MAC}
	if err := h.h.NeighSet(fdb); err != nil {
		return fmt.Errorf("add FDB entry %s dst %s on %s: %w", p.MAC, p.VTEP, dev, err)
	}
	n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: net.IP(p.IP.AsSlice()), HardwareAddr: p.MAC}
	if err := h.h.NeighSet(n); err != nil {
		h.h.NeighDel(fdb)
		return fmt.Errorf("add neighbour %s lladdr %s on %s: %w", p.IP, p.MAC, dev, err)
	}
	return nil
}

// DeletePeer removes p's entries from dev; entries (or a device) already
// gone are not an error.
func (h *Host) DeletePeer(dev string, p Peer) error {
	l, err := h.h.LinkByName(dev)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up VXLAN device %s: %w", dev, err)
	}
	idx := l.Attrs().Index
	if p.IP.IsValid() {
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, IP: net.IP(p.IP.AsSlice()), HardwareAddr: p.MAC}
		if err := h.h.NeighDel(n); err != nil && !isNotFound(err) && !isNoEnt(err) {
			return fmt.Errorf("delete neighbour %s on %s: %w", p.IP, dev, err)
		}
	}
	fdb := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, IP: net.IP(p.VTEP.AsSlice()), HardwareAddr: p.MAC}
	if err := h.h.NeighDel(fdb); err != nil && !isNotFound(err) && !isNoEnt(err) {
		return fmt.Errorf("delete FDB entry %s on %s: %w", p.MAC, dev, err)
	}
	// The bridge may have learnt the MAC behind the device: forget it, or a
	// sandbox of this host given the same address (and so MAC) next would
	// get nothing from other hosts until it sent a frame itself.
	learnt := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER, HardwareAddr: p.MAC}
	if err := h.h.NeighDel(learnt); err != nil && !isNotFound(err) && !isNoEnt(err) {
		return fmt.Errorf("delete the bridge's FDB entry %s on %s: %w", p.MAC, dev, err)
	}
	return nil
}

// UnderlayMTU returns the MTU of the link that holds address a.
func (h *Host) UnderlayMTU(a netip.Addr) (int, error) {
	addrs, err := netlinksafe.Retry(func() ([]netlink.Addr, error) { return h.h.AddrList(nil, unix.AF_INET) })
	if err != nil {
		return 0, fmt.Errorf("list addresses: %w", err)
	}
	for _, ad := range addrs {
		if x, ok := netip.AddrFromSlice(ad.IP); ok && x.Unmap() == a {
			l, err := h.h.LinkByIndex(ad.LinkIndex)
			if err != nil {
				return 0, fmt.Errorf("look up the link of %s: %w", a, err)
			}
			return l.Attrs().MTU, nil
		}
	}
	return 0, fmt.Errorf("no link of this host has address %s: give --advertise one of the host's addresses", a)
}

func isNoEnt(err error) bool { return err == unix.ENOENT }
