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
	chainForward     = "forward"
)

// Named maps and sets in nsnet's table.
const (
	mapPortsByIP  = "ports-by-ip"  // ip daddr . l4proto . dport : sandbox ip . port
	mapPortsAnyIP = "ports-any-ip" // l4proto . dport : sandbox ip . port
	setBridges    = "bridges"      // every nsnet bridge
)

// rule is one rule of the plan: its chain, its comment (which Rules reads
// back), and its expressions.
type rule struct {
	chain   string
	comment string
	exprs   []expr.Any
}

// plan returns every rule nsnet's table holds for nets, in order.
func plan(nets []Network) []rule {
	rules := []rule{
		{chainGuard, "nsnet: nothing from outside may reach 127.0.0.0/8 (CVE-2020-8558)",
			cat(ipv4(), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, "lo"), daddrIn(loopback), drop())},
		{chainPrerouting, "nsnet: published ports on one host address", dnatByIP()},
		{chainPrerouting, "nsnet: published ports on every host address", dnatAnyIP()},
		{chainOutput, "nsnet: published ports on one host address, from the host", dnatByIP()},
		{chainOutput, "nsnet: published ports on every host address, from the host", dnatAnyIP()},
		{chainForward, "nsnet: replies", cat(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept())},
		{chainForward, "nsnet: published ports", cat(ctStatusDNAT(), accept())},
	}
	for _, n := range nets {
		rules = append(rules, networkRules(n)...)
	}
	return rules
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// networkRules are the rules one network needs.
func networkRules(n Network) []rule {
	mark := "nsnet network " + n.Name
	if n.Internal {
		return []rule{
			{chainForward, mark + ": internal, nothing leaves", cat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), drop())},
			{chainForward, mark + ": internal, nothing enters", cat(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge), drop())},
		}
	}
	return []rule{
		{chainPostrouting, mark + ": masquerade", cat(ipv4(), saddrIn(n.Subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), masq())},
		{chainPostrouting, mark + ": hairpin to a published port", cat(ipv4(), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), saddrIn(n.Subnet), ctStatusDNAT(), masq())},
		{chainPostrouting, mark + ": from the host's 127.0.0.1 to a published port", cat(ipv4(), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), saddrIn(loopback), masq())},
		{chainForward, mark + ": isolated from other networks", cat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), lookupIfname(expr.MetaKeyOIFNAME), drop())},
	}
}

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

// saddrIn matches ip saddr p; daddrIn matches ip daddr p.
func saddrIn(p netip.Prefix) []expr.Any { return addrIn(12, p) }
func daddrIn(p netip.Prefix) []expr.Any { return addrIn(16, p) }

func addrIn(offset uint32, p netip.Prefix) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: prefixMask(p.Bits()), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
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

// lookupIfname matches an interface name in the bridges set: oifname @bridges.
func lookupIfname(key expr.MetaKey) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: setBridges},
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

// dnatByIP: fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports-by-ip
func dnatByIP() []expr.Any {
	return cat(ipv4(), fibLocal(), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
		&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapPortsByIP},
		dnat(),
	})
}

// dnatAnyIP: fib daddr type local dnat ip to meta l4proto . th dport map @ports-any-ip
func dnatAnyIP() []expr.Any {
	return cat(ipv4(), fibLocal(), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: mapPortsAnyIP},
		dnat(),
	})
}

func dnat() expr.Any {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9, Specified: true}
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

func element(p Port) (*nftables.SetElement, string) {
	val := append(p.CtrIP.AsSlice(), portField(p.CtrPort)...)
	key := append([]byte{protoNumber(p.Proto), 0, 0, 0}, portField(p.HostPort)...)
	if !p.HostIP.IsValid() {
		return &nftables.SetElement{Key: key, Val: val}, mapPortsAnyIP
	}
	return &nftables.SetElement{Key: append(p.HostIP.AsSlice(), key...), Val: val}, mapPortsByIP
}

// ipsDstNAT is the conntrack status bit IPS_DST_NAT.
const ipsDstNAT = 1 << 5
