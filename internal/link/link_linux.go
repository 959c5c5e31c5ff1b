// Package link makes, checks, repairs and removes the kernel's network
// devices for nsnet: bridges, veth pairs, their addresses and routes, and
// overlay networks' VXLAN devices with their FDB and neighbour entries, through
// vishvananda/netlink (which, beside it, only a few other thin wrappers
// import: conntrack, netview, wire). Work inside a sandbox uses a netlink
// handle bound to that namespace: a locked thread enters the namespace only
// while that handle's socket is opened (netlink.NewHandleAt), and no other
// work runs in a switched namespace; dumps are read through netlinksafe.Retry.
//
// Invariants: every creating function either completes or removes what it
// made before returning its error; every removing function treats "already
// gone" as success; Check* functions only read, and Repair* functions change
// only what Check* would report.
package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/nsnet/nsnet/internal/netlinksafe"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// loopbackIndex is the ifindex of lo in every network namespace.
const loopbackIndex = 1

// Host is a netlink handle on the namespace nsnet runs in (the "host").
type Host struct {
	h *netlink.Handle
	// raw carries the requests netlink.Handle has no call for (setLink,
	// ReleaseVeth) on a socket of its own, opened on first use, instead of
	// a new socket for each.
	raw map[int]*nl.SocketHandle
}

// OpenHost opens a netlink handle on the current network namespace.
func OpenHost() (*Host, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return &Host{h: h}, nil
}

// Close releases the handle.
func (h *Host) Close() {
	h.h.Close()
	for _, s := range h.raw {
		s.Socket.Close()
	}
	h.raw = nil
}

// request makes a netlink request to be sent on h's raw socket.
func (h *Host) request(proto, flags int) (*nl.NetlinkRequest, error) {
	if h.raw == nil {
		s, err := nl.GetNetlinkSocketAt(vnetns.None(), vnetns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("open netlink socket: %w", err)
		}
		h.raw = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	}
	req := nl.NewNetlinkRequest(proto, flags)
	req.Sockets = h.raw
	return req, nil
}

// Exists reports whether a link with this name exists in the host.
func (h *Host) Exists(name string) (bool, error) {
	_, err := h.h.LinkByName(name)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return true, nil
}

// Bridge describes a bridge device to create.
type Bridge struct {
	Name    string
	MTU     int
	MAC     net.HardwareAddr
	Alias   string       // owner mark, readable with `ip -d link`
	Group   uint32       // device group, set at creation (the alias cannot be)
	Address netip.Prefix // gateway address with the subnet's prefix length
	// Address6 is the IPv6 gateway address of a dual-stack network, with
	// its prefix length, added without duplicate address detection once
	// BeforeUp has run (which must leave IPv6 on); zero for none.
	Address6 netip.Prefix
	// BeforeUp, if not nil, runs once the bridge exists and before it is
	// brought up (e.g. to set its sysctls).
	BeforeUp func() error
}

// CreateBridge creates the bridge, gives it its address and brings it up.
func (h *Host) CreateBridge(b Bridge) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.HardwareAddr, attrs.Group = b.Name, b.MTU, b.MAC, b.Group
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := h.h.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge %s: %w", b.Name, err)
	}
	if err := h.h.AddrAdd(br, toAddr(b.Address)); err != nil {
		h.h.LinkDel(br) // by index: the one just made, whatever its name
		return fmt.Errorf("add address %s to bridge %s: %w", b.Address, b.Name, err)
	}
	if b.BeforeUp != nil {
		if err := b.BeforeUp(); err != nil {
			h.h.LinkDel(br)
			return err
		}
	}
	if err := ensureAddress(h.h, br, b.Address6); err != nil {
		h.h.LinkDel(br)
		return fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	if err := h.setLink(br.Attrs().Index, 0, b.Alias); err != nil {
		h.h.LinkDel(br)
		return fmt.Errorf("mark bridge %s: %w", b.Name, err)
	}
	return nil
}

// setLink raises a link and sets its master (if not 0) and alias in one
// RTM_SETLINK message: the kernel ignores an alias given at creation.
func (h *Host) setLink(index, master int, alias string) error {
	req, err := h.request(unix.RTM_SETLINK, unix.NLM_F_ACK)
	if err != nil {
		return err
	}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	msg.Change, msg.Flags = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	if master != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	}
	if alias != "" {
		req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	}
	_, err = req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// Mark returns the alias and device group of the named link; ok is false if
// there is no such link.
//
// It asks for the one link and reads only those two attributes, rather than
// decoding all of them as LinkByName does: every removal asks, and in a
// short-lived command that decoding is cold code (0.2 ms on one machine, over
// 1 ms on another whose page faults cost more).
func (h *Host) Mark(name string) (alias string, group uint32, ok bool, err error) {
	msgs, err := h.getLink(name)
	if isNotFound(err) {
		return "", 0, false, nil
	}
	if err == nil && len(msgs) != 1 {
		err = fmt.Errorf("%d answers", len(msgs))
	}
	if err == nil {
		alias, group, err = aliasAndGroup(msgs[0])
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return alias, group, true, nil
}

// getLink asks the kernel for the link named name (RTM_GETLINK).
func (h *Host) getLink(name string) ([][]byte, error) {
	req, err := h.request(unix.RTM_GETLINK, unix.NLM_F_ACK)
	if err != nil {
		return nil, err
	}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	return req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
}

// aliasAndGroup reads IFLA_IFALIAS and IFLA_GROUP from an RTM_NEWLINK
// message.
func aliasAndGroup(msg []byte) (alias string, group uint32, err error) {
	if len(msg) < unix.SizeofIfInfomsg {
		return "", 0, fmt.Errorf("a link message of %d bytes", len(msg))
	}
	attrs, err := nl.ParseRouteAttr(msg[unix.SizeofIfInfomsg:])
	if err != nil {
		return "", 0, err
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFALIAS:
			alias = string(bytes.TrimRight(a.Value, "\x00"))
		case unix.IFLA_GROUP:
			if len(a.Value) == 4 {
				group = binary.NativeEndian.Uint32(a.Value)
			}
		}
	}
	return alias, group, nil
}

// Listed is a link of the host as List reports it.
type Listed struct {
	Name, Kind, Alias string
}

// List returns the host's links with their kind and alias.
func (h *Host) List() ([]Listed, error) {
	links, err := netlinksafe.Retry(h.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Listed, len(links))
	for i, l := range links {
		out[i] = Listed{Name: l.Attrs().Name, Kind: l.Type(), Alias: l.Attrs().Alias}
	}
	return out, nil
}

// DeleteLink removes a link; a link that does not exist is not an error.
func (h *Host) DeleteLink(name string) error {
	l, err := h.h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := h.h.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// ReleaseVeth sets the host end of a veth pair down and gives it alias, in
// one RTM_SETLINK. Its bridge then disables the port: it forgets the MACs it
// learnt on it (the port's FDB entries are flushed), forwards and floods
// nothing more to it and learns nothing from it, until the link is set up
// again. Unlike deleting the link, this does not wait for an RCU grace period
// (only for an expedited one, under the RTNL lock). A link that is gone is not
// an error.
func (h *Host) ReleaseVeth(name, alias string) error {
	if err := h.setByName(name, alias, true); err != nil {
		return fmt.Errorf("release %s (set it down): %w", name, err)
	}
	return nil
}

// MarkLink gives the named link alias and changes nothing else, in one
// RTM_SETLINK. A link that is gone is not an error.
func (h *Host) MarkLink(name, alias string) error {
	if err := h.setByName(name, alias, false); err != nil {
		return fmt.Errorf("mark %s: %w", name, err)
	}
	return nil
}

// setByName sets the named link's alias, and sets it down if down is set.
func (h *Host) setByName(name, alias string, down bool) error {
	req, err := h.request(unix.RTM_SETLINK, unix.NLM_F_ACK)
	if err != nil {
		return err
	}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	if down {
		msg.Change, msg.Flags = unix.IFF_UP, 0
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// Veth describes a sandbox's attachment to a bridge.
type Veth struct {
	HostName string // host end, enslaved to Bridge
	Bridge   string
	// BridgeOwned, if not nil, tells from the bridge's alias and device
	// group whether it is the caller's: AttachVeth attaches nothing to a
	// bridge it is not (ErrForeignBridge).
	BridgeOwned func(alias string, group uint32) bool
	MTU         int
	Alias       string   // owner mark on the host end
	Group       uint32   // device group of the host end, set at creation
	NetNS       *os.File // the sandbox's namespace, open (checked by the caller)
	PeerName    string   // name inside the sandbox, e.g. eth0
	PeerMAC     net.HardwareAddr
	Address     netip.Prefix // sandbox address with prefix length
	Gateway     netip.Addr   // default route target; zero for none
	// Address6 and Gateway6 are the IPv6 address (added without duplicate
	// address detection, so it is usable at once) and default route on a
	// dual-stack network; zero for none. BeforeUp must leave IPv6 on.
	Address6 netip.Prefix
	Gateway6 netip.Addr
	// HostBeforeUp, if not nil, runs once the pair exists and before the
	// host end is brought up (e.g. to disable IPv6 on it).
	HostBeforeUp func() error
	// BeforeUp, if not nil, runs once the peer is in the namespace and
	// before it is brought up (e.g. to disable IPv6 on it).
	BeforeUp func() error
}

// ErrNoBridge is returned by AttachVeth when the bridge does not exist.
var ErrNoBridge = errors.New("bridge does not exist")

// ErrForeignBridge is returned by AttachVeth when Veth.BridgeOwned says the
// bridge is not the caller's.
var ErrForeignBridge = errors.New("bridge is not ours")

// SetMaster enslaves an existing link to a bridge and brings it up.
func (h *Host) SetMaster(name, bridge string) error {
	l, err := h.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	br, err := h.h.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", bridge, err)
	}
	if err := h.setLink(l.Attrs().Index, br.Attrs().Index, l.Attrs().Alias); err != nil {
		return fmt.Errorf("attach %s to bridge %s: %w", name, bridge, err)
	}
	if err := h.h.LinkSetHairpin(l, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", name, err)
	}
	return nil
}

// AttachVeth creates the veth pair with its peer directly in the sandbox,
// enslaves and raises the host end, and addresses and routes the peer.
func (h *Host) AttachVeth(v Veth) error {
	br, err := h.h.LinkByName(v.Bridge)
	if isNotFound(err) {
		return fmt.Errorf("%w: %s", ErrNoBridge, v.Bridge)
	}
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", v.Bridge, err)
	}
	if a := br.Attrs(); v.BridgeOwned != nil && !v.BridgeOwned(a.Alias, a.Group) {
		return fmt.Errorf("%w: %s (alias %q, device group %d)", ErrForeignBridge, v.Bridge, a.Alias, a.Group)
	}
	host, err := h.createVeth(v, int(v.NetNS.Fd()))
	if err != nil {
		return err
	}
	if err := h.finishVeth(v, host, br); err != nil {
		h.DeleteLink(v.HostName)
		return err
	}
	return nil
}

func (h *Host) createVeth(v Veth, nsFd int) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.Group = v.HostName, v.MTU, v.Group
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         v.PeerName,
		PeerHardwareAddr: v.PeerMAC,
		PeerNamespace:    netlink.NsFd(nsFd),
		PeerMTU:          uint32(v.MTU),
	}
	if err := h.h.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create veth %s: %s or the namespace %s already has an interface named %s: remove it, or use another namespace", v.HostName, v.HostName, v.NetNS.Name(), v.PeerName)
		}
		return nil, fmt.Errorf("create veth %s (peer %s in %s): %w", v.HostName, v.PeerName, v.NetNS.Name(), err)
	}
	return veth, nil
}

func (h *Host) finishVeth(v Veth, host, br netlink.Link) error {
	if v.HostBeforeUp != nil {
		if err := v.HostBeforeUp(); err != nil {
			return err
		}
	}
	if err := h.finishVethHost(v, host, br); err != nil {
		return err
	}
	return configurePeer(v)
}

// finishVethHost enslaves, marks and raises the host end, with hairpin mode.
func (h *Host) finishVethHost(v Veth, host, br netlink.Link) error {
	if err := h.setLink(host.Attrs().Index, br.Attrs().Index, v.Alias); err != nil {
		return fmt.Errorf("attach %s to bridge %s: %w", v.HostName, v.Bridge, err)
	}
	// Hairpin mode lets a sandbox reach its own published port through a
	// host address: the translated packet leaves by the port it came in.
	if err := h.h.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", v.HostName, err)
	}
	return nil
}

func configurePeer(v Veth) error {
	return inNamespace(v.NetNS, func(sb *netlink.Handle) error {
		peer, err := sb.LinkByName(v.PeerName)
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
		}
		if v.BeforeUp != nil {
			if err := v.BeforeUp(); err != nil {
				return err
			}
		}
		return configureHandle(v, sb, peer)
	})
}

// configureHandle gives the peer its addresses, raises it and lo, and
// routes the default routes via the gateways; each step is a no-op if done
// already.
func configureHandle(v Veth, sb *netlink.Handle, peer netlink.Link) error {
	for _, a := range []netip.Prefix{v.Address, v.Address6} {
		if err := ensureAddress(sb, peer, a); err != nil {
			return fmt.Errorf("%s in %s: %w", v.PeerName, v.NetNS.Name(), err)
		}
	}
	if err := sb.LinkSetUp(peer); err != nil {
		return fmt.Errorf("bring up %s in %s: %w", v.PeerName, v.NetNS.Name(), err)
	}
	if err := setUpLoopback(sb); err != nil {
		return fmt.Errorf("bring up lo in %s: %w", v.NetNS.Name(), err)
	}
	for _, gw := range []netip.Addr{v.Gateway, v.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
		if err := sb.RouteReplace(route); err != nil {
			return fmt.Errorf("add default route via %s in %s: %w", gw, v.NetNS.Name(), err)
		}
	}
	return nil
}

// UpLoopback brings lo up inside the namespace ns.
func (h *Host) UpLoopback(ns *os.File) error { return UpLoopback(ns) }

// UpLoopback brings lo up inside the namespace ns.
func UpLoopback(ns *os.File) error {
	return inNamespace(ns, func(h *netlink.Handle) error {
		if err := setUpLoopback(h); err != nil {
			return fmt.Errorf("bring up lo in %s: %w", ns.Name(), err)
		}
		return nil
	})
}

func setUpLoopback(h *netlink.Handle) error {
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: loopbackIndex}}
	return h.LinkSetUp(lo)
}

// Routes returns the destinations of the host's IPv4 and IPv6 routes in the
// main table, without the default routes.
func (h *Host) Routes() ([]netip.Prefix, error) {
	rs, err := netlinksafe.Retry(func() ([]netlink.Route, error) {
		return h.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		if p, ok := toPrefix(r.Dst); ok && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// toAddr is p as a netlink address; an IPv6 one skips duplicate address
// detection (nsnet allocates its addresses, it does not guess them).
func toAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func toPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}
