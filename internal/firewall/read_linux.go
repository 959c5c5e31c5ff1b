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

// lookup returns the inet table as the kernel has it, or nil if it does not
// exist.
func (t Table) lookup(c *nftables.Conn) (*nftables.Table, error) {
	return t.lookupFamily(c, nftables.TableFamilyINet)
}

// lookupFamily returns the table of family f as the kernel has it, or nil.
func (t Table) lookupFamily(c *nftables.Conn, f nftables.TableFamily) (*nftables.Table, error) {
	tables, err := c.ListTablesOfFamily(f)
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

// chains returns the inet table's chains by name.
func (t Table) chains(c *nftables.Conn) (map[string]*nftables.Chain, error) {
	return t.chainsOf(c, nftables.TableFamilyINet)
}

// chainsOf returns the chains of the table of family f by name.
func (t Table) chainsOf(c *nftables.Conn, f nftables.TableFamily) (map[string]*nftables.Chain, error) {
	all, err := c.ListChainsOfTableFamily(f)
	if err != nil {
		return nil, fmt.Errorf("list chains of %s %s: %w", familyName(f), t.Name, err)
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

// Diff lists how the tables in the kernel differ from what Sync(nets, ports,
// guards) would write: chains (hook, priority, policy), every rule's body and
// comment, the sets and every element. It returns nothing when they agree.
func (t Table) Diff(nets []Network, ports []Port, guards []Guard) ([]string, error) {
	c, err := t.connect()
	if err != nil {
		return nil, err
	}
	inet := tableDef{table: t.nft(), chains: chainDefs(), sets: setDefs(t.nft(), dualStack(nets)), rules: plan(nets),
		elements: func(set string) []nftables.SetElement { return elements(set, nets, ports) }}
	bridge := tableDef{table: t.bridgeTable(), chains: bridgeChainDefs(), sets: bridgeSetDefs(t.bridgeTable()), rules: bridgePlan(),
		elements: func(set string) []nftables.SetElement { return guardElements(set, lastingGuards(guards)) }}
	var diffs []string
	for _, def := range []tableDef{inet, bridge} {
		d, err := t.diffTable(c, def, len(nets) > 0)
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, d...)
	}
	return diffs, nil
}

// tableDef is one of the tables as Sync writes it.
type tableDef struct {
	table    *nftables.Table
	chains   []*nftables.Chain
	sets     []*nftables.Set
	rules    []rule
	elements func(set string) []nftables.SetElement
}

// diffTable compares one table with def; want says whether it should exist.
func (t Table) diffTable(c *nftables.Conn, def tableDef, want bool) ([]string, error) {
	family := familyName(def.table.Family)
	tab, err := t.lookupFamily(c, def.table.Family)
	switch {
	case err != nil:
		return nil, err
	case !want && tab != nil:
		return []string{fmt.Sprintf("table %s %s exists, but no network needs it", family, t.Name)}, nil
	case !want:
		return nil, nil
	case tab == nil:
		return []string{fmt.Sprintf("table %s %s is missing", family, t.Name)}, nil
	}
	diffs, err := t.diffChains(c, tab, def)
	if err != nil {
		return nil, err
	}
	setDiffs, err := t.diffSets(c, tab, def)
	return append(diffs, setDiffs...), err
}

func (t Table) diffChains(c *nftables.Conn, tab *nftables.Table, def tableDef) ([]string, error) {
	have, err := t.chainsOf(c, tab.Family)
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, chain := range def.chains {
		ch := have[chain.Name]
		delete(have, chain.Name)
		if ch == nil {
			diffs = append(diffs, fmt.Sprintf("chain %s is missing", chain.Name))
			continue
		}
		if !sameChain(ch, chain) {
			diffs = append(diffs, fmt.Sprintf("chain %s has another type, hook, priority or policy", chain.Name))
		}
		rules, err := c.GetRules(tab, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		diffs = append(diffs, diffRules(chain.Name, tab.Family, rules, def.rules)...)
	}
	for name := range have {
		diffs = append(diffs, fmt.Sprintf("chain %s is not one nsnet makes", name))
	}
	return diffs, nil
}

func sameChain(ch, def *nftables.Chain) bool {
	if def.Hooknum == nil { // a regular chain
		return ch.Hooknum == nil
	}
	policyAccept := ch.Policy == nil || *ch.Policy == nftables.ChainPolicyAccept
	return ch.Type == def.Type && ch.Hooknum != nil && *ch.Hooknum == *def.Hooknum &&
		ch.Priority != nil && *ch.Priority == *def.Priority && policyAccept
}

// diffRules compares a chain's rules, in order, with the plan's for it.
func diffRules(chain string, family nftables.TableFamily, got []*nftables.Rule, plan []rule) []string {
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
		if text != want[i].comment || !bytes.Equal(encode(family, r.Exprs), encode(family, want[i].exprs)) {
			diffs = append(diffs, fmt.Sprintf("chain %s rule %d is not %q as nsnet makes it", chain, i+1, want[i].comment))
		}
	}
	return diffs
}

// encode is a rule body in netlink form, with the set IDs that only matter
// inside one batch left out.
func encode(family nftables.TableFamily, exprs []expr.Any) []byte {
	var out []byte
	for _, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			c := *l
			c.SetID = 0
			e = &c
		}
		b, err := expr.Marshal(byte(family), e)
		if err != nil {
			b = []byte(fmt.Sprintf("unencodable %T", e))
		}
		out = append(out, b...)
	}
	return out
}

func (t Table) diffSets(c *nftables.Conn, tab *nftables.Table, def tableDef) ([]string, error) {
	have, err := c.GetSets(tab)
	if err != nil {
		return nil, fmt.Errorf("list sets of %s %s: %w", familyName(tab.Family), t.Name, err)
	}
	var diffs []string
	for _, want := range def.sets {
		i := slices.IndexFunc(have, func(s *nftables.Set) bool { return s.Name == want.Name })
		if i < 0 {
			diffs = append(diffs, fmt.Sprintf("set %s is missing", want.Name))
			continue
		}
		s := have[i]
		have = slices.Delete(have, i, i+1)
		if s.IsMap != want.IsMap || s.KeyType.Name != want.KeyType.Name || s.DataType.Name != want.DataType.Name || s.HasTimeout != want.HasTimeout {
			diffs = append(diffs, fmt.Sprintf("set %s has another type", want.Name))
			continue
		}
		got, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list elements of set %s: %w", s.Name, err)
		}
		if d := diffElements(lasting(got), def.elements(want.Name)); d != "" {
			diffs = append(diffs, fmt.Sprintf("set %s: %s", want.Name, d))
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

// lasting leaves out the elements that expire: those of guarded ports that
// went (ExpireGuards), on their way out.
func lasting(elems []nftables.SetElement) []nftables.SetElement {
	return slices.DeleteFunc(elems, func(e nftables.SetElement) bool { return e.Timeout != 0 })
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
