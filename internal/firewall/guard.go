package firewall

// Anti-spoofing: the root's bridge table (bridge Name), whose prerouting
// chain sees every frame a sandbox port sends into any bridge, before the
// bridge forwards it to another port or hands it to the host. A guarded port
// forwards only its sandbox's own MAC, addresses and ARP; the sets are keyed
// by port name (the host end of the sandbox's veth), so guarding a sandbox
// adds elements and never rules. A port that goes is not deleted from the
// sets but given a timeout (expireAfter; for a veth released up, blockFor in
// the guarded set, so that it sends nothing), after which the kernel removes
// its elements by itself: a batch that deletes elements makes the next close of
// any nftables socket wait for an RCU grace period (5 to 15 ms here), one
// that changes their timeout does not.

import (
	"net"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

var linkLocal = netip.MustParsePrefix("fe80::/10")

// expireAfter is how long the elements of a port that went stay, inert: its
// veth is gone already, or released.
const expireAfter = time.Second

// blockFor is how long a port that went stays in the guarded set after its
// MAC and addresses expire, so that it sends nothing into any bridge: a
// sandbox's veth released with its namespace stays up, on its bridge, until
// the kernel destroys the namespace, usually within milliseconds (gc deletes
// one still there after a minute).
const blockFor = 10 * time.Minute

// Guard is one guarded sandbox port: the host end of the sandbox's veth, and
// the MAC and addresses (IPv4 and IPv6) the sandbox may send from. A Blocked
// one is the port of a veth released up (BlockGuards): only in the guarded
// set, for blockFor, so that it sends nothing; its MAC and Addrs are unused.
type Guard struct {
	Port    string
	MAC     net.HardwareAddr
	Addrs   []netip.Addr
	Blocked bool
}

// lastingGuards are guards without the blocked ones, whose elements expire
// and which Diff does not compare.
func lastingGuards(guards []Guard) []Guard {
	var out []Guard
	for _, g := range guards {
		if !g.Blocked {
			out = append(out, g)
		}
	}
	return out
}

// Chains of the bridge table.
const (
	chainBridgePre = "prerouting"
	chainFrom      = "from-sandbox"
	chainFromARP   = "from-sandbox-arp"
	chainFromIP    = "from-sandbox-ip"
	chainFromIP6   = "from-sandbox-ip6"
)

// Sets of the bridge table.
const (
	setGuarded = "guarded"    // ifname: the guarded ports
	setMACs    = "guard-mac"  // ifname . ether_addr
	setIPv4    = "guard-ipv4" // ifname . ipv4_addr
	setARP     = "guard-arp"  // ifname . ipv4_addr . ether_addr (sender address and MAC)
	setIPv6    = "guard-ipv6" // ifname . ipv6_addr
)

func (t Table) bridgeTable() *nftables.Table {
	return &nftables.Table{Name: t.Name, Family: nftables.TableFamilyBridge}
}

// bridgeChainDefs are the bridge table's chains: one base chain and the
// regular chains it jumps to.
func bridgeChainDefs() []*nftables.Chain {
	filter := nftables.ChainPriority(-200) // the bridge family's filter priority
	return []*nftables.Chain{
		{Name: chainBridgePre, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: &filter},
		{Name: chainFrom}, {Name: chainFromARP}, {Name: chainFromIP}, {Name: chainFromIP6},
	}
}

// bridgeSetDefs are the bridge table's sets.
func bridgeSetDefs(tab *nftables.Table) []*nftables.Set {
	set := func(name string, types ...nftables.SetDatatype) *nftables.Set {
		return &nftables.Set{Table: tab, Name: name, Concatenation: true, KeyType: nftables.MustConcatSetType(types...), HasTimeout: true}
	}
	return []*nftables.Set{
		{Table: tab, Name: setGuarded, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian, HasTimeout: true},
		set(setMACs, nftables.TypeIFName, nftables.TypeEtherAddr),
		set(setIPv4, nftables.TypeIFName, nftables.TypeIPAddr),
		set(setARP, nftables.TypeIFName, nftables.TypeIPAddr, nftables.TypeEtherAddr),
		set(setIPv6, nftables.TypeIFName, nftables.TypeIP6Addr),
	}
}

// guardElements are the elements of the bridge table's set for guards (a
// blocked guard's port in the guarded set only, expiring after blockFor).
func guardElements(set string, guards []Guard) []nftables.SetElement {
	var out []nftables.SetElement
	add := func(key ...[]byte) { out = append(out, nftables.SetElement{Key: cat4(key...)}) }
	for _, g := range guards {
		port := ifnameBytes(g.Port)
		if g.Blocked {
			if set == setGuarded {
				out = append(out, nftables.SetElement{Key: cat4(port), Timeout: blockFor})
			}
			continue
		}
		switch set {
		case setGuarded:
			add(port)
		case setMACs:
			add(port, g.MAC)
		}
		for _, a := range g.Addrs {
			switch {
			case set == setIPv4 && a.Is4():
				add(port, a.AsSlice())
			case set == setARP && a.Is4():
				add(port, a.AsSlice(), g.MAC)
			case set == setIPv6 && a.Is6() && !a.Is4In6():
				add(port, a.AsSlice())
			}
		}
	}
	return out
}

// cat4 concatenates key fields, each padded to 4 bytes as nftables
// registers are.
func cat4(fields ...[]byte) []byte {
	var out []byte
	for _, f := range fields {
		out = append(out, f...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out
}

// bridgePlan are the bridge table's rules, chain by chain, in order. The
// rules that read addresses repeat the Ethernet type that led to their chain,
// only so that nft prints them as ip saddr, arp saddr ip and so on.
func bridgePlan() []rule {
	return []rule{
		{chainBridgePre, "nsnet: a sandbox port sends only as its sandbox (anti-spoofing)",
			cat(lookupIfname(expr.MetaKeyIIFNAME, setGuarded), verdict(expr.VerdictJump, chainFrom))},

		{chainFrom, "nsnet: only the sandbox's own MAC", cat(lookupConcat(setMACs, true, iifname(), etherSaddr()), drop())},
		{chainFrom, "nsnet: ARP", cat(etherType(unix.ETH_P_ARP), verdict(expr.VerdictGoto, chainFromARP))},
		{chainFrom, "nsnet: IPv4", cat(etherType(unix.ETH_P_IP), verdict(expr.VerdictGoto, chainFromIP))},
		{chainFrom, "nsnet: IPv6", cat(etherType(unix.ETH_P_IPV6), verdict(expr.VerdictGoto, chainFromIP6))},
		{chainFrom, "nsnet: nothing but IPv4, IPv6 and ARP (no VLAN tags, no other protocol)", drop()},

		{chainFromARP, "nsnet: ARP only from the sandbox's own address and MAC",
			cat(etherType(unix.ETH_P_ARP), nhEq(0, []byte{0, 1, 8, 0, 6, 4}), // Ethernet and IPv4
				lookupConcat(setARP, false, iifname(), nh(14, 4), nh(8, 6)), accept())},
		{chainFromARP, "nsnet: no other ARP", drop()},

		{chainFromIP, "nsnet: no ICMP redirects from sandboxes", cat(l4proto(unix.IPPROTO_ICMP), th(0, 1, 5), drop())},
		{chainFromIP, "nsnet: no DHCP server replies from sandboxes", cat(l4proto(unix.IPPROTO_UDP), th(0, 2, 0, 67), drop())},
		{chainFromIP, "nsnet: DHCP requests from the unspecified address",
			cat(etherType(unix.ETH_P_IP), nhEq(12, netip.IPv4Unspecified().AsSlice()), l4proto(unix.IPPROTO_UDP), th(2, 2, 0, 67), accept())},
		{chainFromIP, "nsnet: IPv4 only from the sandbox's own addresses", cat(etherType(unix.ETH_P_IP), lookupConcat(setIPv4, true, iifname(), nh(12, 4)), drop())},

		{chainFromIP6, "nsnet: no router advertisements from sandboxes", cat(l4proto(unix.IPPROTO_ICMPV6), th(0, 1, 134), drop())},
		{chainFromIP6, "nsnet: no ICMPv6 redirects from sandboxes", cat(l4proto(unix.IPPROTO_ICMPV6), th(0, 1, 137), drop())},
		{chainFromIP6, "nsnet: no DHCPv6 server replies from sandboxes", cat(l4proto(unix.IPPROTO_UDP), th(0, 2, 2, 35), drop())},
		{chainFromIP6, "nsnet: the unspecified address (duplicate address detection)",
			cat(etherType(unix.ETH_P_IPV6), nhEq(8, netip.IPv6Unspecified().AsSlice()), accept())},
		{chainFromIP6, "nsnet: link-local addresses (neighbour discovery)",
			cat(etherType(unix.ETH_P_IPV6), []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: net.CIDRMask(linkLocal.Bits(), 128), Xor: make([]byte, 16)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: linkLocal.Addr().AsSlice()},
			}, accept())},
		{chainFromIP6, "nsnet: IPv6 only from the sandbox's own addresses", cat(etherType(unix.ETH_P_IPV6), lookupConcat(setIPv6, true, iifname(), nh(8, 16)), drop())},
	}
}

// field is one field of a concatenated key: how to load it into a register,
// and its length.
type field struct {
	load func(reg uint32) expr.Any
	len  uint32
}

func iifname() field {
	return field{func(reg uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg} }, unix.IFNAMSIZ}
}

func etherSaddr() field { return payload(expr.PayloadBaseLLHeader, 6, 6) }

func nh(offset, n uint32) field { return payload(expr.PayloadBaseNetworkHeader, offset, n) }

func payload(base expr.PayloadBase, offset, n uint32) field {
	return field{func(reg uint32) expr.Any {
		return &expr.Payload{DestRegister: reg, Base: base, Offset: offset, Len: n}
	}, n}
}

// lookupConcat loads the fields into consecutive 4-byte registers from
// NFT_REG32_00 on and matches when their concatenation is in set (f1 . f2
// ... @set), or with invert when it is not (!= @set). A register on a 16-byte boundary goes by its 16-byte
// name (NFT_REG_1 is NFT_REG32_00), as the kernel reads it back.
func lookupConcat(set string, invert bool, fields ...field) []expr.Any {
	var out []expr.Any
	reg32 := uint32(8) // NFT_REG32_00
	for _, f := range fields {
		reg := reg32
		if (reg-8)%4 == 0 {
			reg = (reg-8)/4 + 1
		}
		out = append(out, f.load(reg))
		reg32 += (f.len + 3) / 4
	}
	return append(out, &expr.Lookup{SourceRegister: 1, SetName: set, Invert: invert})
}

// etherType matches the frame's Ethernet type as sent (ether type t): a
// VLAN tag the kernel took off is put back first, so a tagged frame is not t.
func etherType(t uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 12, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(t)},
	}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// th matches len bytes of the transport header at offset.
func th(offset, n uint32, data ...byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: n},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// nhEq matches the network header's bytes at offset.
func nhEq(offset uint32, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(data))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

func verdict(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}
