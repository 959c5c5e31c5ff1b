package firewall

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// Rule is one rule of the table, as read back from the kernel.
type Rule struct {
	Chain   string
	Comment string
}

// lookup returns the table as the kernel has it, or nil if it does not exist.
func (t Table) lookup(c *nftables.Conn) (*nftables.Table, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, tab := range tables {
		if tab.Name == t.Name {
			return tab, nil
		}
	}
	return nil, nil
}

// Exists reports whether the table is present.
func (t Table) Exists() (bool, error) {
	c, err := t.connect()
	if err != nil {
		return false, err
	}
	tab, err := t.lookup(c)
	return tab != nil, err
}

// chains returns the table's chains by name.
func (t Table) chains(c *nftables.Conn) (map[string]*nftables.Chain, error) {
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains of inet %s: %w", t.Name, err)
	}
	out := map[string]*nftables.Chain{}
	for _, ch := range all {
		if ch.Table.Name == t.Name {
			out[ch.Name] = ch
		}
	}
	return out, nil
}

// Rules reads the table's rules back from the kernel, chain by chain in the
// order nsnet writes them. It returns nothing when the table does not exist.
func (t Table) Rules() ([]Rule, error) {
	c, err := t.connect()
	if err != nil {
		return nil, err
	}
	tab, err := t.lookup(c)
	if err != nil || tab == nil {
		return nil, err
	}
	chains, err := t.chains(c)
	if err != nil {
		return nil, err
	}
	var out []Rule
	for _, def := range chainDefs() {
		ch := chains[def.Name]
		if ch == nil {
			continue
		}
		rules, err := c.GetRules(tab, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			text, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			out = append(out, Rule{Chain: ch.Name, Comment: text})
		}
	}
	return out, nil
}

// Diff lists how the table in the kernel differs from what Sync(nets, ports)
// would write: chains (hook, priority, policy), every rule's body and
// comment, the sets and every element. It returns nothing when they agree.
func (t Table) Diff(nets []Network, ports []Port) ([]string, error) {
	c, err := t.connect()
	if err != nil {
		return nil, err
	}
	tab, err := t.lookup(c)
	switch {
	case err != nil:
		return nil, err
	case len(nets) == 0 && tab != nil:
		return []string{fmt.Sprintf("table inet %s exists, but no network needs it", t.Name)}, nil
	case len(nets) == 0:
		return nil, nil
	case tab == nil:
		return []string{fmt.Sprintf("table inet %s is missing", t.Name)}, nil
	}
	diffs, err := t.diffChains(c, tab, plan(nets))
	if err != nil {
		return nil, err
	}
	setDiffs, err := t.diffSets(c, tab, nets, ports)
	return append(diffs, setDiffs...), err
}

func (t Table) diffChains(c *nftables.Conn, tab *nftables.Table, want []rule) ([]string, error) {
	have, err := t.chains(c)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, def := range chainDefs() {
		ch := have[def.Name]
		delete(have, def.Name)
		if ch == nil {
			diffs = append(diffs, fmt.Sprintf("chain %s is missing", def.Name))
			continue
		}
		if !sameChain(ch, def) {
			diffs = append(diffs, fmt.Sprintf("chain %s has another type, hook, priority or policy", def.Name))
		}
		rules, err := c.GetRules(tab, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		diffs = append(diffs, diffRules(def.Name, rules, want)...)
	}
	for name := range have {
		diffs = append(diffs, fmt.Sprintf("chain %s is not one nsnet makes", name))
	}
	return diffs, nil
}

func sameChain(ch, def *nftables.Chain) bool {
	policyAccept := ch.Policy == nil || *ch.Policy == nftables.ChainPolicyAccept
	return ch.Type == def.Type && ch.Hooknum != nil && *ch.Hooknum == *def.Hooknum &&
		ch.Priority != nil && *ch.Priority == *def.Priority && policyAccept
}

// diffRules compares a chain's rules, in order, with the plan's for it.
func diffRules(chain string, got []*nftables.Rule, plan []rule) []string {
	var want []rule
	for _, r := range plan {
		if r.chain == chain {
			want = append(want, r)
		}
	}
	if len(got) != len(want) {
		return []string{fmt.Sprintf("chain %s has %d rules, nsnet makes %d", chain, len(got), len(want))}
	}
	var diffs []string
	for i, r := range got {
		text, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		if text != want[i].comment || !bytes.Equal(encode(r.Exprs), encode(want[i].exprs)) {
			diffs = append(diffs, fmt.Sprintf("chain %s rule %d is not %q as nsnet makes it", chain, i+1, want[i].comment))
		}
	}
	return diffs
}

// encode is a rule body in netlink form, with the set IDs that only matter
// inside one batch left out.
func encode(exprs []expr.Any) []byte {
	var out []byte
	for _, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			c := *l
			c.SetID = 0
			e = &c
		}
		b, err := expr.Marshal(byte(nftables.TableFamilyINet), e)
		if err != nil {
			b = []byte(fmt.Sprintf("unencodable %T", e))
		}
		out = append(out, b...)
	}
	return out
}

func (t Table) diffSets(c *nftables.Conn, tab *nftables.Table, nets []Network, ports []Port) ([]string, error) {
	have, err := c.GetSets(tab)
	if err != nil {
		return nil, fmt.Errorf("list sets of inet %s: %w", t.Name, err)
	}
	var diffs []string
	for _, def := range setDefs(tab, dualStack(nets)) {
		i := slices.IndexFunc(have, func(s *nftables.Set) bool { return s.Name == def.Name })
		if i < 0 {
			diffs = append(diffs, fmt.Sprintf("set %s is missing", def.Name))
			continue
		}
		s := have[i]
		have = slices.Delete(have, i, i+1)
		if s.IsMap != def.IsMap || s.KeyType.Name != def.KeyType.Name || s.DataType.Name != def.DataType.Name {
			diffs = append(diffs, fmt.Sprintf("set %s has another type", def.Name))
			continue
		}
		got, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list elements of set %s: %w", s.Name, err)
		}
		if d := diffElements(got, elements(def.Name, nets, ports)); d != "" {
			diffs = append(diffs, fmt.Sprintf("set %s: %s", def.Name, d))
		}
	}
	for _, s := range have {
		diffs = append(diffs, fmt.Sprintf("set %s is not one nsnet makes", s.Name))
	}
	return diffs, nil
}

// diffElements counts the elements missing from got and those it should not
// have; "" when they are the same.
func diffElements(got, want []nftables.SetElement) string {
	count := map[string]int{}
	for _, e := range want {
		count[elementKey(e)]++
	}
	for _, e := range got {
		count[elementKey(e)]--
	}
	missing, extra := 0, 0
	for _, n := range count {
		if n > 0 {
			missing += n
		} else {
			extra -= n
		}
	}
	if missing+extra == 0 {
		return ""
	}
	return fmt.Sprintf("%d elements missing, %d not nsnet's", missing, extra)
}

func elementKey(e nftables.SetElement) string {
	return hex.EncodeToString(e.Key) + ":" + hex.EncodeToString(e.Val)
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
func (t Table) ForwardDrops() ([]ChainRef, error) {
	c, err := t.connect()
	if err != nil {
		return nil, err
	}
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var out []ChainRef
	for _, ch := range chains {
		if ch.Table.Name == t.Name || ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward ||
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
