package firewall

// What `nsnet diagnose` reads of the nftables ruleset: nsnet's own inet table (its
// rules by comment, its published ports) and the chains of every other table
// that a packet of a sandbox may cross, decoded into plain conditions and
// verdicts as far as they can be followed; nsnet's bridge table (the
// anti-spoofing guard, which a sandbox's own traffic passes) is not among
// them. It only reads.

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// View is nsnet's table as the kernel has it.
type View struct {
	Exists bool
	Rules  []Rule // by chain, in order, with their comments
	Ports  []Port // the elements of ports-by-ip and ports-any-ip
}

// Observe reads the table: whether it exists, its rules' comments and its
// published ports.
func (t Table) Observe() (View, error) {
	c, err := t.connect()
	if err != nil {
		return View{}, err
	}
	tab, err := t.lookup(c)
	if err != nil || tab == nil {
		return View{}, err
	}
	rules, err := t.Rules()
	if err != nil {
		return View{}, err
	}
	v := View{Exists: true, Rules: rules}
	for _, name := range []string{mapPortsByIP, mapPortsAnyIP} {
		ports, err := mapPorts(c, tab, name)
		if err != nil {
			return View{}, err
		}
		v.Ports = append(v.Ports, ports...)
	}
	return v, nil
}

// mapPorts decodes the elements of one of the port maps; a missing map has
// none.
func mapPorts(c *nftables.Conn, tab *nftables.Table, name string) ([]Port, error) {
	s, err := c.GetSetByName(tab, name)
	if err != nil {
		return nil, nil
	}
	elems, err := c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("list elements of map %s of table inet %s: %w", name, tab.Name, err)
	}
	var out []Port
	for _, e := range elems {
		if p, ok := decodePort(name, e); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// decodePort is the inverse of element.
func decodePort(set string, e nftables.SetElement) (Port, bool) {
	key := e.Key
	var p Port
	if set == mapPortsByIP {
		if len(key) < 4 {
			return Port{}, false
		}
		p.HostIP = netip.AddrFrom4([4]byte(key[:4]))
		key = key[4:]
	}
	if len(key) < 8 || len(e.Val) < 8 {
		return Port{}, false
	}
	p.Proto = protoName(key[0])
	p.HostPort = uint16(key[4])<<8 | uint16(key[5])
	p.CtrIP = netip.AddrFrom4([4]byte(e.Val[:4]))
	p.CtrPort = uint16(e.Val[4])<<8 | uint16(e.Val[5])
	return p, true
}

// Chains reads the chains of every other table of the families that IPv4
// packets cross (ip, inet, bridge and netdev), base chains and the chains
// they jump to, with their rules decoded.
func (t Table) Chains() ([]Chain, error) {
	c, err := t.connect()
	if err != nil {
		return nil, err
	}
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	sets := map[*nftables.Table]*setCache{}
	var out []Chain
	for _, ch := range chains {
		fam := familyName(ch.Table.Family)
		own := ch.Table.Name == t.Name && (ch.Table.Family == nftables.TableFamilyINet || ch.Table.Family == nftables.TableFamilyBridge)
		if own || fam == "ip6" {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of table %s %s chain %s: %w", fam, ch.Table.Name, ch.Name, err)
		}
		if sets[ch.Table] == nil {
			sets[ch.Table] = &setCache{c: c, table: ch.Table}
		}
		out = append(out, describeChain(ch, rules, sets[ch.Table]))
	}
	return out, nil
}

func describeChain(ch *nftables.Chain, rules []*nftables.Rule, sets *setCache) Chain {
	out := Chain{Family: familyName(ch.Table.Family), Table: ch.Table.Name, Name: ch.Name, Type: string(ch.Type), Device: ch.Device}
	if ch.Hooknum != nil {
		out.Hook = hookName(ch.Table.Family, *ch.Hooknum)
		out.Policy = "accept"
		if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			out.Policy = "drop"
		}
	}
	if ch.Priority != nil {
		out.Priority = int(*ch.Priority)
	}
	for _, r := range rules {
		out.Rules = append(out.Rules, decodeRule(r.Exprs, sets))
	}
	return out
}

func hookName(f nftables.TableFamily, h nftables.ChainHook) string {
	if f == nftables.TableFamilyNetdev {
		if h == *nftables.ChainHookIngress {
			return "ingress"
		}
		return "egress"
	}
	switch h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return fmt.Sprintf("hook-%d", h)
}

// setCache reads a table's sets on first use, for the lookups of its rules.
type setCache struct {
	c      *nftables.Conn
	table  *nftables.Table
	loaded bool
	sets   map[string]*nftables.Set
}

// values returns the elements of the named set as decodeValue shows them,
// or false when they cannot be read or decoded (maps, intervals,
// concatenations).
func (s *setCache) values(name string) ([]string, bool) {
	if s == nil {
		return nil, false
	}
	if !s.loaded {
		s.loaded, s.sets = true, map[string]*nftables.Set{}
		all, err := s.c.GetSets(s.table)
		if err != nil {
			return nil, false
		}
		for _, set := range all {
			s.sets[set.Name] = set
		}
	}
	set := s.sets[name]
	if set == nil || set.IsMap || set.Interval || set.Concatenation {
		return nil, false
	}
	elems, err := s.c.GetSetElements(set)
	if err != nil {
		return nil, false
	}
	var out []string
	for _, e := range elems {
		v, ok := decodeSetKey(set.KeyType.Name, e.Key)
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, true
}

// Planned lists the rules Sync writes for nets, by chain and comment, as
// Rules reads them back.
func Planned(nets []Network) []Rule {
	var out []Rule
	for _, r := range plan(nets) {
		out = append(out, Rule{Chain: r.chain, Comment: r.comment})
	}
	return out
}
