package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netview"
)

// packet is what a chain of another table may look at.
type packet struct {
	iif, oif     string     // interface names ("" when the hook has none)
	saddr, daddr netip.Addr // invalid: unknown (a client outside)
	proto        string     // icmp, tcp, udp
	sport, dport uint16     // 0: unknown or none
	ctState      string     // new or established
	dnat         bool       // its destination was translated
}

// leg is one hook a packet crosses: the chains of that hook of the families
// in class ("ip" takes ip and inet tables; "bridge"; "netdev" ingress on
// dev). A chain whose priority is below natPrio sees before, the others
// after (a destination translated in prerouting, a source masqueraded in
// postrouting).
type leg struct {
	class   string
	hook    string
	dev     string // netdev: the device the chain is bound to
	before  packet
	after   packet
	natPrio int
	what    string // "the sandbox's packets to 198.51.100.7", "the replies"
}

const (
	prioDNAT = -100
	prioSNAT = 100
)

// outcome is what the chains of one hook do with a packet.
type outcome struct {
	verdict string // accept, drop, maybe (a rule nsnet cannot follow may drop it)
	chain   firewall.Chain
	rule    int // index into chain.Rules; -1: the chain's policy
}

// match is a rule's conditions against a packet: yes, no or maybe.
type match int

const (
	no match = iota
	maybe
	yes
)

// evaluator runs packets through the chains of other tables.
type evaluator struct {
	chains  []firewall.Chain
	devices []netview.Device // the host's, to map interface indexes to names
}

// cross runs the packet of one leg through every base chain of its hook,
// and returns the first that drops it (or may), if any.
func (e evaluator) cross(l leg) (outcome, bool) {
	var doubt *outcome
	for _, c := range e.chains {
		if c.Hook != l.hook || !inClass(c, l) {
			continue
		}
		p := l.after
		if c.Priority < l.natPrio {
			p = l.before
		}
		o := e.base(c, p)
		switch o.verdict {
		case "drop":
			return o, true
		case "maybe":
			if doubt == nil {
				doubt = &o
			}
		}
	}
	if doubt != nil {
		return *doubt, true
	}
	return outcome{}, false
}

func inClass(c firewall.Chain, l leg) bool {
	switch l.class {
	case "ip":
		return c.Family == "ip" || c.Family == "inet"
	case "netdev":
		return c.Family == "netdev" && c.Device == l.dev
	}
	return c.Family == l.class
}

// base runs p through a base chain: its rules, then its policy.
func (e evaluator) base(c firewall.Chain, p packet) outcome {
	o, done := e.run(c, p, 0)
	if done {
		return o
	}
	if c.Policy == "drop" {
		if o.verdict == "maybe" {
			return o // an earlier rule may have accepted it
		}
		return outcome{verdict: "drop", chain: c, rule: -1}
	}
	if o.verdict == "maybe" {
		return o
	}
	return outcome{verdict: "accept", chain: c, rule: -1}
}

// run walks the rules of c. done is false when the packet fell through (or
// returned); o.verdict is then "maybe" if a rule it may have matched would
// have ended its way through c. A verdict taken in a chain jumped to names
// that chain's rule.
func (e evaluator) run(c firewall.Chain, p packet, depth int) (o outcome, done bool) {
	var doubt *outcome
	for i, r := range c.Rules {
		m := e.matches(r, p)
		if m == no {
			continue
		}
		here := outcome{verdict: r.Verdict, chain: c, rule: i}
		if r.Verdict == "jump" || r.Verdict == "goto" {
			sub, subDone := e.follow(c, i, p, depth)
			switch {
			case subDone:
				here = sub
			case r.Verdict == "goto" && m == yes:
				return outcome{verdict: doubtVerdict(doubt), chain: c, rule: ruleOf(doubt)}, false
			case sub.verdict == "maybe":
				here = sub
			default:
				continue
			}
		}
		switch v := here.verdict; {
		case v == "" || v == "return" && m == maybe || v == "nat" && m == maybe:
			continue
		case v == "return":
			return outcome{verdict: doubtVerdict(doubt), chain: c, rule: ruleOf(doubt)}, false
		case m == yes && (v == "accept" || v == "drop" || v == "reject" || v == "nat"):
			if doubt != nil && doubt.verdict != plain(v) {
				return *doubt, true
			}
			here.verdict = plain(v)
			return here, true
		default: // a match or a verdict nsnet cannot tell
			if doubt == nil {
				here.verdict = "maybe"
				doubt = &here
			}
		}
	}
	return outcome{verdict: doubtVerdict(doubt), chain: c, rule: ruleOf(doubt)}, false
}

// plain is a verdict as it ends a packet's way through a hook: a
// translation goes on as accepted, a rejection is a drop.
func plain(v string) string {
	switch v {
	case "nat":
		return "accept"
	case "reject":
		return "drop"
	}
	return v
}

func doubtVerdict(d *outcome) string {
	if d != nil {
		return "maybe"
	}
	return ""
}

func ruleOf(d *outcome) int {
	if d != nil {
		return d.rule
	}
	return -1
}

// follow runs p through the chain a rule jumps to: its outcome, and
// whether it ended the packet's way (accept or drop).
func (e evaluator) follow(from firewall.Chain, rule int, p packet, depth int) (outcome, bool) {
	target := from.Rules[rule].Target
	i := slices.IndexFunc(e.chains, func(c firewall.Chain) bool {
		return c.Family == from.Family && c.Table == from.Table && c.Name == target
	})
	if i < 0 || depth > 16 {
		return outcome{verdict: "maybe", chain: from, rule: rule}, false
	}
	return e.run(e.chains[i], p, depth+1)
}

// matches reports whether p meets all of r's conditions.
func (e evaluator) matches(r firewall.ChainRule, p packet) match {
	m := yes
	for _, c := range r.Conds {
		m = min(m, e.cond(c, p))
		if m == no {
			return no
		}
	}
	return m
}

func (e evaluator) cond(c firewall.Cond, p packet) match {
	in := e.value(c, p)
	switch {
	case in == maybe || c.Op == "==":
		return in
	case in == yes: // "!=": the opposite
		return no
	}
	return yes
}

// value reports whether p's field is one of c's values.
func (e evaluator) value(c firewall.Cond, p packet) match {
	one := func(f func(string) bool) match {
		if slices.ContainsFunc(c.Values, f) {
			return yes
		}
		return no
	}
	switch c.Field {
	case "iifname", "oifname":
		name := p.iif
		if c.Field == "oifname" {
			name = p.oif
		}
		return one(func(v string) bool { return ifnameMatches(v, name) })
	case "iif", "oif":
		name := p.iif
		if c.Field == "oif" {
			name = p.oif
		}
		return e.index(c.Values, name)
	case "saddr", "daddr":
		a := p.saddr
		if c.Field == "daddr" {
			a = p.daddr
		}
		if !a.IsValid() {
			return maybe
		}
		return one(func(v string) bool { pr, err := netip.ParsePrefix(v); return err == nil && pr.Contains(a) })
	case "l4proto":
		return one(func(v string) bool { return v == p.proto })
	case "nfproto":
		return one(func(v string) bool { return v == "ipv4" })
	case "sport", "dport":
		port := p.sport
		if c.Field == "dport" {
			port = p.dport
		}
		if p.proto == "icmp" {
			return no
		}
		if port == 0 {
			return maybe
		}
		return one(func(v string) bool { return v == strconv.Itoa(int(port)) })
	case "ct-state":
		return one(func(v string) bool { return v == p.ctState })
	case "ct-status":
		return one(func(v string) bool { return v == "dnat" && p.dnat })
	}
	return maybe
}

func ifnameMatches(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}

// index matches an interface by index, through the host's devices.
func (e evaluator) index(values []string, name string) match {
	i := slices.IndexFunc(e.devices, func(d netview.Device) bool { return d.Name == name })
	if name == "" || i < 0 {
		return maybe
	}
	if slices.Contains(values, strconv.Itoa(e.devices[i].Index)) {
		return yes
	}
	return no
}

// describe says what o did, for a cause: which chain, and the rule or the
// policy.
func (o outcome) describe() string {
	ref := o.chain.Ref().String()
	switch {
	case o.verdict == "maybe" && o.rule >= 0:
		return fmt.Sprintf("%s may drop it: its rule %d (%s) depends on something nsnet cannot evaluate", ref, o.rule+1, o.chain.Rules[o.rule])
	case o.verdict == "maybe":
		return fmt.Sprintf("%s may drop it", ref)
	case o.rule < 0:
		return fmt.Sprintf("%s drops it: its policy is drop and none of its rules accepts it", ref)
	}
	return fmt.Sprintf("%s drops it: its rule %d (%s) matches it", ref, o.rule+1, o.chain.Rules[o.rule])
}
