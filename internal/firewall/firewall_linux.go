// Package firewall keeps nsnet's nftables table in the state the networks in
// the store call for: masquerade for traffic leaving a non-internal network,
// and drops for traffic crossing the bridge of an internal one.
//
// It is the only package that imports google/nftables.
//
// Invariants: nsnet's rules live only in its own table (inet nsnet); no other
// table or chain is read or changed. Sync replaces the whole table in one
// atomic batch, so the kernel never holds a half-made ruleset, and a ruleset
// flushed from outside is restored by the next Sync. With no networks, the
// table does not exist.
package firewall

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName is the name of nsnet's nftables table (family inet).
const TableName = "nsnet"

// Network is what the firewall needs to know of a network.
type Network struct {
	Name     string
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
}

// Sync makes nsnet's table hold exactly the rules for nets, atomically.
func Sync(nets []Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	c.AddTable(table) // makes the delete below valid when the table is absent
	c.DelTable(table)
	if len(nets) > 0 {
		build(c, table, nets)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// Expected returns the rules Sync(nets) makes, as Rules reads them back.
func Expected(nets []Network) []Rule {
	var out []Rule
	for _, n := range nets {
		for _, r := range rulesFor(n) {
			out = append(out, Rule{Chain: r.chain, Comment: r.comment})
		}
	}
	return out
}

// Remove deletes nsnet's table if it exists.
func Remove() error { return Sync(nil) }

func build(c *nftables.Conn, table *nftables.Table, nets []Network) {
	c.AddTable(table)
	post := c.AddChain(&nftables.Chain{
		Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	fwd := c.AddChain(&nftables.Chain{
		Name: "forward", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter,
	})
	for _, n := range nets {
		for _, r := range rulesFor(n) {
			chain := post
			if r.chain == chainForward {
				chain = fwd
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: r.exprs, UserData: comment(r.comment)})
		}
	}
}

const (
	chainPostrouting = "postrouting"
	chainForward     = "forward"
)

type rule struct {
	chain   string
	comment string
	exprs   []expr.Any
}

// rulesFor returns the rules one network needs.
func rulesFor(n Network) []rule {
	mark := "nsnet network " + n.Name
	if n.Internal {
		return []rule{
			{chainForward, mark + ": internal, nothing leaves", cat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), drop())},
			{chainForward, mark + ": internal, nothing enters", cat(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, n.Bridge), drop())},
		}
	}
	return []rule{
		{chainPostrouting, mark + ": masquerade", cat(ipv4(), saddrIn(n.Subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), []expr.Any{&expr.Masq{}})},
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

// saddrIn matches an IPv4 source address in p: ip saddr p.
func saddrIn(p netip.Prefix) []expr.Any {
	m := prefixMask(p.Bits())
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
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
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}
}

func drop() []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
}

func comment(s string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, s)
}
