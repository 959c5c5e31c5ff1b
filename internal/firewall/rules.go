package firewall

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chain names in nsnet's table.
const (
	chainGuard       = "prerouting-guard"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainInput       = "input"
	chainForward     = "forward"
)

// Named maps and sets in nsnet's table.
const (
	mapPortsByIP  = "ports-by-ip"  // ip daddr . l4proto . dport : sandbox ip . port
	mapPortsAnyIP = "ports-any-ip" // l4proto . dport : sandbox ip . port
	setBridges    = "bridges"      // the bridge of every network of the table's root
	setInternal   = "internal"     // the bridges of internal networks
	// Only in a table with a dual-stack network:
	mapPorts6ByIP  = "ports6-by-ip"  // ip6 daddr . l4proto . dport : sandbox ip6 . port
	mapPorts6AnyIP = "ports6-any-ip" // l4proto . dport : sandbox ip6 . port
)

// dualStack reports whether any of nets has IPv6.
func dualStack(nets []Network) bool {
	for _, n := range nets {
		if n.Subnet6.IsValid() {
			return true
		}
	}
	return false
}

// chainDefs are the table's base chains; all accept by default.
func chainDefs() []*nftables.Chain {
	guard := nftables.ChainPriority(-150) // before dstnat (-100): mangle
	return []*nftables.Chain{
		{Name: chainGuard, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: &guard},
		{Name: chainPrerouting, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		{Name: chainOutput, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
		{Name: chainPostrouting, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		{Name: chainInput, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter},
		{Name: chainForward, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
	}
}

// setDefs are the table's named maps and sets; the IPv6 port maps only with
// v6.
func setDefs(tab *nftables.Table, v6 bool) []*nftables.Set {
	val := nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	val6 := nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService)
	// Interface names are host-order strings to nft; without KeyByteOrder it
	// prints them reversed (as "").
	ifnames := func(name string) *nftables.Set {
		return &nftables.Set{Table: tab, Name: name, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	}
	sets := []*nftables.Set{
		{Table: tab, Name: mapPortsByIP, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
			DataType: val},
		{Table: tab, Name: mapPortsAnyIP, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
			DataType: val},
		ifnames(setBridges),
		ifnames(setInternal),
	}
	if !v6 {
		return sets
	}
	return append(sets,
		&nftables.Set{Table: tab, Name: mapPorts6ByIP, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService),
			DataType: val6},
		&nftables.Set{Table: tab, Name: mapPorts6AnyIP, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
			DataType: val6},
	)
}

// elements are the elements of the named set for nets and ports.
func elements(set string, nets []Network, ports []Port) []nftables.SetElement {
	var out []nftables.SetElement
	switch set {
	case mapPortsByIP, mapPortsAnyIP, mapPorts6ByIP, mapPorts6AnyIP:
		for _, p := range ports {
			if e, m := element(p); m == set {
				out = append(out, *e)
			}
		}
	case setBridges, setInternal:
		for _, n := range nets {
			if set == setBridges || n.Internal {
				out = append(out, nftables.SetElement{Key: ifnameBytes(n.Bridge)})
			}
		}
	}
	return out
}

// rule is one rule of the plan: its chain, its comment, and its expressions.
type rule struct {
	chain   string
	comment string
	exprs   []expr.Any
}

// plan returns every rule the table holds for nets, chain by chain, in order.
func plan(nets []Network) []rule {
	rules := []rule{
		{chainGuard, "nsnet: nothing from outside may reach 127.0.0.0/8 (CVE-2020-8558)",
			cat(ipv4(), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, "lo"), daddrIn(loopback), drop())},
		{chainPrerouting, "nsnet: published ports on one host address", notLoopback(dnatByIP())},
		{chainPrerouting, "nsnet: published ports on every host address", notLoopback(dnatAnyIP())},
		{chainOutput, "nsnet: published ports on one host address, from the host", notLoopback(dnatByIP())},
		{chainOutput, "nsnet: published ports on every host address, from the host", notLoopback(dnatAnyIP())},
	}
	if dualStack(nets) {
		rules = append(rules,
			rule{chainPrerouting, "nsnet: published ports on one IPv6 host address", notLoopback6(dnat6ByIP())},
			rule{chainPrerouting, "nsnet: published ports on every IPv6 host address", notLoopback6(dnat6AnyIP())},
			rule{chainOutput, "nsnet: published ports on one IPv6 host address, from the host", notLoopback6(dnat6ByIP())},
			rule{chainOutput, "nsnet: published ports on every IPv6 host address, from the host", notLoopback6(dnat6AnyIP())})
	}
	for _, n := range nets {
		rules = append(rules, postrouting(n)...)
	}
	for _, n := range nets {
		if n.Internal {
			rules = append(rules, rule{chainInput, mark(n) + ": internal, the host answers only at the gateway",
				cat(ipv4(), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), daddrNot(n.Gateway), drop())})
		}
		if n.Internal && n.Subnet6.IsValid() {
			rules = append(rules, internal6(n)...)
		}
	}
	for _, n := range nets {
		if n.NoICC {
			continue // its sandboxes' traffic to each other is dropped as "nothing else enters a network"
		}
		rules = append(rules, rule{chainForward, mark(n) + ": within the network",
			cat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), accept())})
	}
	return append(rules,
		rule{chainForward, "nsnet: internal networks, nothing leaves", cat(lookupIfname(expr.MetaKeyIIFNAME, setInternal), drop())},
		rule{chainForward, "nsnet: internal networks, nothing enters", cat(lookupIfname(expr.MetaKeyOIFNAME, setInternal), drop())},
		rule{chainForward, "nsnet: replies", cat(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())},
		rule{chainForward, "nsnet: published ports", cat(ctStatusDNAT(), accept())},
		rule{chainForward, "nsnet: nothing else enters a network", cat(lookupIfname(expr.MetaKeyOIFNAME, setBridges), drop())},
	)
}

func mark(n Network) string { return "nsnet network " + n.Name }

// postrouting are the address translations of a non-internal network, for
// each of its address families: the masquerade of what leaves it (unless it
// is routed) and of its sandboxes' connections to a published port of their
// own network (hairpin).
func postrouting(n Network) []rule {
	if n.Internal {
		return nil
	}
	var rules []rule
	if !n.NoMasquerade {
		rules = append(rules, rule{chainPostrouting, mark(n) + ": masquerade",
			cat(ipv4(), saddrIn(n.Subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), masq())})
	}
	rules = append(rules, rule{chainPostrouting, mark(n) + ": hairpin to a published port",
		cat(ipv4(), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), saddrIn(n.Subnet), ctStatusDNAT(), masq())})
	if !n.Subnet6.IsValid() {
		return rules
	}
	if !n.NoMasquerade {
		rules = append(rules, rule{chainPostrouting, mark(n) + ": masquerade IPv6",
			cat(ipv6(), saddr6In(n.Subnet6), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), masq())})
	}
	return append(rules, rule{chainPostrouting, mark(n) + ": hairpin to a published port over IPv6",
		cat(ipv6(), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), saddr6In(n.Subnet6), ctStatusDNAT(), masq())})
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ipv4 matches IPv4 packets: meta nfproto ipv4.
func ipv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// saddrIn matches ip saddr p; daddrIn matches ip daddr p; daddrNotIn
// matches ip daddr != p.
func saddrIn(p netip.Prefix) []expr.Any    { return addrIn(12, expr.CmpOpEq, p) }
func daddrIn(p netip.Prefix) []expr.Any    { return addrIn(16, expr.CmpOpEq, p) }
func daddrNotIn(p netip.Prefix) []expr.Any { return addrIn(16, expr.CmpOpNeq, p) }

func addrIn(offset uint32, op expr.CmpOp, p netip.Prefix) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: prefixMask(p.Bits()), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// daddrNot matches ip daddr != a.
func daddrNot(a netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: a.AsSlice()},
	}
}

func prefixMask(bits int) []byte {
	v := ^uint32(0) << (32 - bits)
	if bits == 0 {
		v = 0
	}
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// ifname compares the input or output interface name: iifname/oifname op name.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifnameBytes(name)},
	}
}

func ifnameBytes(name string) []byte {
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	return data
}

// lookupIfname matches an interface name in a set: iifname/oifname @set.
func lookupIfname(key expr.MetaKey, set string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: set},
	}
}

// fibLocal matches packets to one of the host's own addresses:
// fib daddr type local.
func fibLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// dnatByIP, for IPv4 packets: fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports-by-ip
func dnatByIP() []expr.Any {
	return cat(fibLocal(), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
		&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapPortsByIP},
		dnat(),
	})
}

// dnatAnyIP, for IPv4 packets: fib daddr type local dnat ip to meta l4proto . th dport map @ports-any-ip
func dnatAnyIP() []expr.Any {
	return cat(fibLocal(), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapPortsAnyIP},
		dnat(),
	})
}

// notLoopback restricts a DNAT rule to IPv4 packets addressed elsewhere than
// 127.0.0.0/8: meta nfproto ipv4 ip daddr != 127.0.0.0/8. The host's own
// traffic to 127.0.0.1 reaches the port holder's socket, which proxies it, so
// no packet to 127.0.0.0/8 is routed to a bridge (no bridge needs
// route_localnet); and a packet from outside to 127.0.0.0/8 is never
// translated before routing, so the kernel drops it as a martian even
// without the guard.
func notLoopback(dnat []expr.Any) []expr.Any {
	return cat(ipv4(), daddrNotIn(loopback), dnat)
}

func dnat() expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 9, RegProtoMax: 9, Specified: true}
}

// ctStatusDNAT matches connections whose destination was translated.
func ctStatusDNAT() []expr.Any {
	return ctBits(expr.CtKeySTATUS, ipsDstNAT)
}

func ctState(bits uint32) []expr.Any { return ctBits(expr.CtKeySTATE, bits) }

func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func masq() []expr.Any   { return []expr.Any{&expr.Masq{}} }
func drop() []expr.Any   { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }
func accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }

// bindSets fills in the set IDs of lookups, which the kernel needs to find a
// set made in the same batch.
func bindSets(exprs []expr.Any, sets map[string]*nftables.Set) []expr.Any {
	for _, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			l.SetID = sets[l.SetName].ID
		}
	}
	return exprs
}

// Port-map element encodings: each concatenated field is padded to 4 bytes.
func protoNumber(p string) byte {
	switch p {
	case "udp":
		return unix.IPPROTO_UDP
	case "sctp":
		return unix.IPPROTO_SCTP
	}
	return unix.IPPROTO_TCP
}

func portField(p uint16) []byte { return []byte{byte(p >> 8), byte(p), 0, 0} }

// element is p's map element and the map it goes in: by the sandbox
// address's family, and whether p is on one host address.
func element(p Port) (*nftables.SetElement, string) {
	val := append(p.CtrIP.AsSlice(), portField(p.CtrPort)...)
	key := append([]byte{protoNumber(p.Proto), 0, 0, 0}, portField(p.HostPort)...)
	anyIP, byIP := mapPortsAnyIP, mapPortsByIP
	if p.CtrIP.Is6() {
		anyIP, byIP = mapPorts6AnyIP, mapPorts6ByIP
	}
	if !p.HostIP.IsValid() || p.HostIP.IsUnspecified() {
		return &nftables.SetElement{Key: key, Val: val}, anyIP
	}
	return &nftables.SetElement{Key: append(p.HostIP.AsSlice(), key...), Val: val}, byIP
}

// ipsDstNAT is the conntrack status bit IPS_DST_NAT.
const ipsDstNAT = 1 << 5
