package firewall

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// Rule is one rule of nsnet's table, as read back from the kernel.
type Rule struct {
	Chain   string
	Comment string
}

// Rules reads nsnet's table back from the kernel. It returns no rules and no
// error when the table does not exist.
func Rules() ([]Rule, error) {
	if ok, err := Exists(); err != nil || !ok {
		return nil, err
	}
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("open nftables connection: %w", err)
	}
	table, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("read table inet %s: %w", TableName, err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains of inet %s: %w", TableName, err)
	}
	var out []Rule
	for _, ch := range chains {
		if ch.Table.Name != TableName {
			continue
		}
		rules, err := c.GetRules(table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			out = append(out, Rule{Chain: ch.Name, Comment: comment})
		}
	}
	return out, nil
}

// Exists reports whether nsnet's table is present.
func Exists() (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("open nftables connection: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == TableName {
			return true, nil
		}
	}
	return false, nil
}

// ChainRef names a chain as nft does: family, table and chain.
type ChainRef struct{ Family, Table, Chain string }

// String is how messages name the chain: "table ip filter chain FORWARD".
func (c ChainRef) String() string {
	return fmt.Sprintf("table %s %s chain %s", c.Family, c.Table, c.Chain)
}

// Ref is how nft commands name it: "ip filter FORWARD".
func (c ChainRef) Ref() string { return c.Family + " " + c.Table + " " + c.Chain }

// ForwardDrops names the base chains of other tables that drop forwarded
// packets by default (as Docker sets iptables' FORWARD policy to DROP). Such a
// chain drops nsnet's traffic whatever nsnet's own table accepts, and nsnet
// never edits chains it does not own.
func ForwardDrops() ([]ChainRef, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("open nftables connection: %w", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var out []ChainRef
	for _, ch := range chains {
		if ch.Table.Name == TableName || ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward ||
			ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			continue
		}
		out = append(out, ChainRef{Family: familyName(ch.Table.Family), Table: ch.Table.Name, Chain: ch.Name})
	}
	return out, nil
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family-%d", f)
}

// PortCount returns how many published ports the maps of nsnet's table hold
// (0 if the table does not exist).
func PortCount() (int, error) {
	if ok, err := Exists(); err != nil || !ok {
		return 0, err
	}
	c, err := nftables.New()
	if err != nil {
		return 0, fmt.Errorf("open nftables connection: %w", err)
	}
	byIP, anyIP := portMaps()
	n := 0
	for _, s := range []*nftables.Set{byIP, anyIP} {
		elems, err := c.GetSetElements(s)
		if err != nil {
			return 0, fmt.Errorf("list map %s: %w", s.Name, err)
		}
		n += len(elems)
	}
	return n, nil
}
