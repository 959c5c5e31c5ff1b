package firewall

import (
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The IPv6 halves of the rules: the table is inet, so each matches
// meta nfproto ipv6 first, then the IPv6 header's fields (source at offset
// 8, destination at 24, 16 bytes each).

var (
	loopback6  = netip.MustParsePrefix("::1/128")
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	multicast6 = netip.MustParsePrefix("ff00::/8")
)

// internal6 are the input rules of an internal dual-stack network: the host
// answers its sandboxes over IPv6 only at the IPv6 gateway, and at its
// link-local and multicast addresses only to ICMPv6 (neighbour discovery).
func internal6(n Network) []rule {
	from := cat(ipv6(), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge))
	return []rule{
		{chainInput, mark(n) + ": internal, only ICMPv6 to the host's link-local addresses",
			cat(from, daddr6In(linkLocal6), l4protoNot(unix.IPPROTO_ICMPV6), drop())},
		{chainInput, mark(n) + ": internal, only ICMPv6 to multicast addresses",
			cat(from, daddr6In(multicast6), l4protoNot(unix.IPPROTO_ICMPV6), drop())},
		{chainInput, mark(n) + ": internal, the host answers only at the IPv6 gateway",
			cat(from, daddr6Not(n.Gateway6), daddr6NotIn(linkLocal6), daddr6NotIn(multicast6), drop())},
	}
}

// l4protoNot matches meta l4proto != p.
func l4protoNot(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{p}},
	}
}

// ipv6 matches IPv6 packets: meta nfproto ipv6.
func ipv6() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	}
}

// saddr6In matches ip6 saddr p; daddr6NotIn matches ip6 daddr != p.
func saddr6In(p netip.Prefix) []expr.Any    { return addr6In(8, expr.CmpOpEq, p) }
func daddr6In(p netip.Prefix) []expr.Any    { return addr6In(24, expr.CmpOpEq, p) }
func daddr6NotIn(p netip.Prefix) []expr.Any { return addr6In(24, expr.CmpOpNeq, p) }

func addr6In(offset uint32, op expr.CmpOp, p netip.Prefix) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 16},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: prefixMask6(p.Bits()), Xor: make([]byte, 16)},
		&expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// daddr6Not matches ip6 daddr != a.
func daddr6Not(a netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: a.AsSlice()},
	}
}

func prefixMask6(bits int) []byte {
	m := make([]byte, 16)
	for i := 0; i < bits; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// notLoopback6 restricts a DNAT rule to IPv6 packets addressed elsewhere
// than ::1, as notLoopback does for IPv4: the host's own traffic to ::1
// reaches the resident's socket (which does not proxy it: the port answers
// on ::1 only where the resident binds it), never a bridge.
func notLoopback6(dnat []expr.Any) []expr.Any {
	return cat(ipv6(), daddr6NotIn(loopback6), dnat)
}

// dnat6ByIP: fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6-by-ip.
// The 16-byte address fills register 1 (32-bit 8 to 11), the protocol and
// port follow in 12 (written as register 2, which the kernel reports it as,
// so that Diff compares equal) and 13; the map's value, address and port,
// comes back in 8 to 12.
func dnat6ByIP() []expr.Any {
	return cat(fibLocal(), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 2},
		&expr.Payload{DestRegister: 13, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapPorts6ByIP},
		dnat6(),
	})
}

// dnat6AnyIP: fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6-any-ip.
func dnat6AnyIP() []expr.Any {
	return cat(fibLocal(), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapPorts6AnyIP},
		dnat6(),
	})
}

func dnat6() expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true}
}
