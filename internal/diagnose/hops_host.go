package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/types"
)

// Comments of nsnet's rules that the ways through the host need (see
// package firewall).
const (
	ruleReplies     = "nsnet: replies"
	rulePublished   = "nsnet: published ports"
	rulePortsAny    = "nsnet: published ports on every host address"
	rulePortsByIP   = "nsnet: published ports on one host address"
	chainForward    = "forward"
	chainPostroute  = "postrouting"
	chainPreroute   = "prerouting"
	ruleMasquerade  = ": masquerade"
	ruleHairpin     = ": hairpin to a published port"
	ruleWithin      = ": within the network"
	networkRuleMark = "nsnet network "
)

func networkRule(n types.Network, what string) string { return networkRuleMark + n.Name + what }

// beyond is the way out of the host: the sandbox's side, the host's route
// back to it, forwarding, the host's route, nsnet's rules, other tables'
// chains, the uplink.
func (w *walker) beyond(ep types.Endpoint, n types.Network, dst netip.Addr) []Hop {
	src := ep.Address.Addr()
	hops := append(w.source(ep, n, dst), w.mtuHop(n, segmentEnd{w.sb, w.ns, ep}), w.routeBackHop(w.sb, ep, n))
	route, egress := w.hostRouteHop(dst)
	hops = append(hops, w.forwardingHop(n.Bridge, egress), route, w.masqueradeHop(n, src))
	out, back := w.outLegs(n, ep, dst, egress)
	hops = append(hops, w.foreignHop(n, append(out, back...)))
	if egress != "" {
		hops = append(hops, w.uplinkHop(egress))
	}
	return hops
}

// outLegs are the hooks a packet routed from the sandbox out of egress
// crosses, and those its replies cross.
func (w *walker) outLegs(n types.Network, ep types.Endpoint, dst netip.Addr, egress string) (out, back []leg) {
	t, src := w.q.Target, ep.Address.Addr()
	masq := uplinkAddr(w.s, egress)
	p := packet{iif: n.Bridge, oif: egress, saddr: src, daddr: dst, proto: t.Proto, dport: t.Port, ctState: "new"}
	snat := p
	snat.saddr = masq
	what := fmt.Sprintf("sandbox %s's packets to %s", w.sb.Name, where(dst))
	pre := p
	pre.oif = ""
	out = []leg{
		{class: "netdev", hook: "ingress", dev: ep.HostVeth, before: pre, after: pre, what: what},
		{class: "bridge", hook: "prerouting", before: bridged(pre, ep.HostVeth, ""), after: bridged(pre, ep.HostVeth, ""), what: what},
		{class: "bridge", hook: "input", before: bridged(pre, ep.HostVeth, ""), after: bridged(pre, ep.HostVeth, ""), what: what},
		{class: "ip", hook: "prerouting", before: pre, after: pre, natPrio: prioDNAT, what: what},
		{class: "ip", hook: "forward", before: p, after: p, what: what},
		{class: "ip", hook: "postrouting", before: p, after: snat, natPrio: prioSNAT, what: what},
	}
	r := packet{iif: egress, oif: n.Bridge, saddr: dst, daddr: src, proto: t.Proto, sport: t.Port, ctState: "established"}
	arriving := r
	arriving.daddr, arriving.oif = masq, ""
	what = "the replies from " + where(dst)
	back = []leg{
		{class: "netdev", hook: "ingress", dev: egress, before: arriving, after: arriving, what: what},
		{class: "ip", hook: "prerouting", before: arriving, after: r, natPrio: prioDNAT, what: what},
		{class: "ip", hook: "forward", before: r, after: r, what: what},
		{class: "ip", hook: "postrouting", before: r, after: r, natPrio: prioSNAT, what: what},
		{class: "bridge", hook: "output", before: bridged(r, "", ep.HostVeth), after: bridged(r, "", ep.HostVeth), what: what},
		{class: "bridge", hook: "postrouting", before: bridged(r, "", ep.HostVeth), after: bridged(r, "", ep.HostVeth), what: what},
	}
	return out, back
}

// bridged is p as the bridge family sees it: between bridge ports.
func bridged(p packet, iif, oif string) packet {
	p.iif, p.oif = iif, oif
	return p
}

// routeBackHop: the host routes the sandbox's address to its bridge, and
// holds no address of the sandbox's itself.
func (w *walker) routeBackHop(sb types.Sandbox, ep types.Endpoint, n types.Network) Hop {
	a := ep.Address.Addr()
	step := "host route to " + sb.Name
	if d, p, local := localDevice(&w.s.Host, a); local {
		return broken(step, fmt.Sprintf("%s is local on %s", a, d.Name),
			fmt.Sprintf("the host itself holds sandbox %s's address %s (on %s), so it takes the sandbox's packets as its own and keeps the replies to it", sb.Name, a, d.Name),
			fmt.Sprintf("ip addr del %s dev %s", p, d.Name))
	}
	r, found := routeTo(w.s.Host.Routes, a)
	switch {
	case !found:
		return broken(step, "no route to "+a.String(), fmt.Sprintf("the host has no route to sandbox %s's address %s", sb.Name, a), "nsnet gc")
	case r.Dev != n.Bridge:
		cause := fmt.Sprintf("the host routes %s (sandbox %s) via %s, not via bridge %s", a, sb.Name, describeRoute(r), n.Bridge)
		fix := "nsnet gc"
		if d, p, clash := overlapping(&w.s.Host, netip.PrefixFrom(a, 32), n.Bridge); clash {
			cause += fmt.Sprintf(": %s's address %s overlaps network %s's subnet %s", d.Name, p, n.Name, n.Subnet)
			fix = fmt.Sprintf("ip addr del %s dev %s, or move network %s to a subnet that no host interface uses", p, d.Name, n.Name)
		}
		return broken(step, describeRoute(r), cause, fix)
	}
	return ok(step, fmt.Sprintf("%s: %s", a, describeRoute(r)))
}

// forwardingHop: the host forwards IPv4 packets arriving on in (the
// bridge) and, for the replies, on out (the uplink).
func (w *walker) forwardingHop(in, out string) Hop {
	step := "forwarding on the host"
	h := &w.s.Host
	if v, found := h.Sysctl("net.ipv4.ip_forward"); found && v != "1" {
		return broken(step, "net.ipv4.ip_forward = "+v,
			fmt.Sprintf("IPv4 forwarding is off on the host (net.ipv4.ip_forward = %s), so the kernel routes nothing from bridge %s onwards", v, in),
			withGC("sysctl -w net.ipv4.ip_forward=1"))
	}
	for _, dev := range []string{in, out} {
		key := "net.ipv4.conf." + dev + ".forwarding"
		if v, found := h.Sysctl(key); dev != "" && found && v == "0" {
			return broken(step, key+" = 0", fmt.Sprintf("forwarding is off on %s (%s = 0), so the kernel routes nothing that arrives on it", dev, key),
				fmt.Sprintf("sysctl -w %s=1", key))
		}
	}
	detail := "net.ipv4.ip_forward = 1"
	if v, found := h.Sysctl("net.ipv4.conf." + in + ".rp_filter"); found && v != "0" {
		detail += ", rp_filter " + v + " on " + in
	}
	return ok(step, detail)
}

// hostRouteHop: the host has a route to dst; it returns the device the
// packet leaves by.
func (w *walker) hostRouteHop(dst netip.Addr) (Hop, string) {
	step := "route on the host"
	r, found := routeTo(w.s.Host.Routes, dst)
	switch {
	case !found && dst.IsUnspecified():
		return broken(step, "no default route", "the host has no default route, so nothing leaves it for addresses beyond its own networks",
			"ip route add default via ROUTER dev UPLINK (your uplink's router)"), ""
	case !found:
		return broken(step, "no route to "+dst.String(), fmt.Sprintf("the host has no route to %s (it has no default route)", dst),
			"ip route add default via ROUTER dev UPLINK (your uplink's router)"), ""
	case r.Type != "unicast" && r.Type != "":
		return broken(step, describeRoute(r), fmt.Sprintf("the host's route to %s is a %s route: it drops the packet", where(dst), r.Type),
			"ip route del "+describeRoute(r)), ""
	}
	return ok(step, fmt.Sprintf("%s: %s", where(dst), describeRoute(r))), r.Dev
}

// uplinkHop: the device the packet leaves the host by is up, with carrier
// and an address to masquerade with.
func (w *walker) uplinkHop(dev string) Hop {
	step := "uplink " + dev
	d, found := w.s.Host.Device(dev)
	switch {
	case !found:
		return broken(step, "missing", fmt.Sprintf("the host's route goes via %s, which does not exist", dev), "ip route")
	case !d.Up:
		return broken(step, "down", fmt.Sprintf("the uplink %s is down", dev), "ip link set "+dev+" up")
	case !d.Carrier:
		return broken(step, "up, no carrier", fmt.Sprintf("the uplink %s has no carrier (its cable or its peer is down)", dev), "check the link of "+dev)
	case len(d.Addrs) == 0:
		return broken(step, "up, no address", fmt.Sprintf("the uplink %s has no IPv4 address, so masquerade has no source address to give the sandbox's packets", dev),
			"ip addr add ADDRESS/PREFIX dev "+dev)
	}
	return ok(step, fmt.Sprintf("up, %v", d.Addrs))
}

// tableHop checks the table exists and has the rules (chain, comment) the
// way needs; why says what a missing rule breaks.
func (w *walker) tableHop(step string, need []ruleNeed, okDetail string) Hop {
	t := w.s.Nsnet
	name := "table inet " + w.s.Table
	switch {
	case t.Err != "":
		return Hop{Step: step, Verdict: Warn, Detail: t.Err, Cause: "nsnet's " + name + " cannot be read"}
	case !t.Exists:
		return broken(step, name+" is missing",
			fmt.Sprintf("nsnet's %s is gone (nft flush ruleset removes it), so %s", name, need[0].why),
			or("nsnet firewall reload", "nsnet gc"))
	}
	for _, r := range need {
		if !hasRule(w.s, r.chain, r.comment) {
			return broken(step, fmt.Sprintf("no rule %q in chain %s", r.comment, r.chain),
				fmt.Sprintf("nsnet's rule %q is missing from chain %s of %s, so %s", r.comment, r.chain, name, r.why),
				or("nsnet firewall reload", "nsnet gc"))
		}
	}
	if len(t.Diffs) > 0 {
		return Hop{Step: step, Verdict: Warn, Detail: okDetail,
			Cause: fmt.Sprintf("%s differs from what nsnet's store calls for: %s", name, strings.Join(t.Diffs, "; ")),
			Fix:   or("nsnet firewall reload", "nsnet gc")}
	}
	return ok(step, okDetail)
}

type ruleNeed struct{ chain, comment, why string }

// masqueradeHop: nsnet's table masquerades the network's packets leaving
// the host and lets their replies back in.
func (w *walker) masqueradeHop(n types.Network, src netip.Addr) Hop {
	why := fmt.Sprintf("the sandbox's packets leave with their private source address %s and no reply finds its way back", src)
	return w.tableHop("nsnet rules", []ruleNeed{
		{chainPostroute, networkRule(n, ruleMasquerade), why},
		{chainForward, ruleReplies, fmt.Sprintf("the replies are dropped on their way into bridge %s", n.Bridge)},
	}, fmt.Sprintf("masquerade of %s leaving by any interface but %s; replies let back in", n.Subnet, n.Bridge))
}

// foreignHop runs the legs through every other table's chains: the first
// that drops the packet breaks the way; one that may is a warning.
func (w *walker) foreignHop(n types.Network, legs []leg) Hop {
	step := "other tables"
	var doubt *Hop
	for _, l := range legs {
		o, found := w.eval.cross(l)
		if !found {
			continue
		}
		cause := fmt.Sprintf("%s: %s", l.what, o.describe())
		if o.verdict == "drop" {
			return broken(step, o.chain.Ref().String(), cause, foreignFix(o, l, n))
		}
		if doubt == nil {
			doubt = &Hop{Step: step, Verdict: Warn, Detail: o.chain.Ref().String(), Cause: cause, Fix: foreignFix(o, l, n)}
		}
	}
	if doubt != nil {
		return *doubt
	}
	if len(w.s.LegacyIptables) > 0 {
		return Hop{Step: step, Verdict: Warn, Detail: "legacy iptables: " + strings.Join(w.s.LegacyIptables, ", "),
			Cause: fmt.Sprintf("the legacy iptables tables %s are loaded: nftables cannot show their rules, which may drop the packet", strings.Join(w.s.LegacyIptables, ", ")),
			Fix:   "iptables-legacy-save (to read them)"}
	}
	if w.s.ChainsErr != "" {
		return Hop{Step: step, Verdict: Warn, Detail: w.s.ChainsErr, Cause: "the chains of other tables cannot be read"}
	}
	return ok(step, w.chainsSummary(legs))
}

func (w *walker) chainsSummary(legs []leg) string {
	hooks := map[string]bool{}
	for _, l := range legs {
		hooks[l.class+"/"+l.hook] = true
	}
	var seen []string
	for _, c := range w.s.Chains {
		class := c.Family
		if class == "inet" {
			class = "ip"
		}
		if c.Hook != "" && hooks[class+"/"+c.Hook] {
			seen = append(seen, c.Ref().String())
		}
	}
	if len(seen) == 0 {
		return "no other table has a chain on this way"
	}
	return "let it through: " + strings.Join(seen, ", ")
}

// foreignFix is the rule to insert at the top of the chain that drops the
// packet: nsnet never edits chains it does not own.
func foreignFix(o outcome, l leg, n types.Network) string {
	ref := o.chain.Ref().Ref()
	if l.class == "ip" && l.hook == "forward" {
		return fmt.Sprintf("nft insert rule %s iifname %q accept; nft insert rule %s oifname %q accept", ref, n.Bridge, ref, n.Bridge)
	}
	p := l.before
	if p.iif != "" {
		return fmt.Sprintf("nft insert rule %s iifname %q accept", ref, p.iif)
	}
	return fmt.Sprintf("nft insert rule %s oifname %q accept", ref, p.oif)
}

// isolatedHop: dst is on another network of the root, which the sandbox is
// not on.
func (w *walker) isolatedHop(dst netip.Addr) Hop {
	m, _ := networkHolding(w.s, dst)
	var nets []string
	for _, ep := range w.sb.Endpoints {
		nets = append(nets, ep.Network)
	}
	step := "network " + m.Name
	fix := fmt.Sprintf("nsnet network connect %s %s", m.Name, w.sb.Name)
	if !w.s.Nsnet.Exists {
		return Hop{Step: step, Verdict: Warn, Detail: "isolation lost",
			Cause: fmt.Sprintf("%s is on network %s and sandbox %s is not: nsnet keeps networks apart by design, but its table inet %s, which does so, is gone", dst, m.Name, w.sb.Name, w.s.Table),
			Fix:   or("nsnet firewall reload", "nsnet gc")}
	}
	return Hop{Step: step, Verdict: ByDesign, Detail: "sandbox " + w.sb.Name + " is on " + strings.Join(nets, ", "),
		Cause: fmt.Sprintf("%s is on network %s and sandbox %s is not: nsnet keeps networks apart by design, so their sandboxes meet only through published ports; to join them, connect the sandbox to network %s", dst, m.Name, w.sb.Name, m.Name),
		Fix:   fix}
}

// internalHop: the sandbox is only on internal networks and dst is beyond
// them.
func (w *walker) internalHop(n types.Network, dst netip.Addr) Hop {
	fix := fmt.Sprintf("nsnet network create OTHER && nsnet network connect OTHER %s", w.sb.Name)
	for _, o := range w.s.Networks {
		if !o.Internal && o.Name != n.Name {
			fix = fmt.Sprintf("nsnet network connect %s %s", o.Name, w.sb.Name)
			break
		}
	}
	return Hop{Step: "network " + n.Name, Verdict: ByDesign, Detail: "internal",
		Cause: fmt.Sprintf("network %s is internal: by design its sandboxes reach only each other and its gateway, never %s; connect the sandbox to a network that is not internal to reach beyond it", n.Name, where(dst)),
		Fix:   fix}
}

// sameNetwork is the way within the sandbox's network, across its bridge,
// to the sandbox at dst.
func (w *walker) sameNetwork(ep types.Endpoint, n types.Network, dst netip.Addr) []Hop {
	hops := append(w.source(ep, n, dst), w.bridgedHop(n, ep, dst))
	t, tep, found := sandboxAt(w.s, n.Name, dst)
	if !found && n.Overlay != nil {
		return append(hops, Hop{Step: "address " + dst.String(), Verdict: Unknown, Detail: "not a sandbox of this host",
			Cause: fmt.Sprintf("no sandbox of this host on overlay network %s has address %s: it may be another host's, reached through the VXLAN device %s, which this analysis does not follow (--probe sends traffic)", n.Name, dst, n.Overlay.Device),
			Fix:   "nsnet network inspect " + n.Name + " on the other hosts (their sandboxes and addresses)"})
	}
	if !found {
		return append(hops, Hop{Step: "address " + dst.String(), Verdict: Broken, Detail: "no sandbox",
			Cause: fmt.Sprintf("no sandbox on network %s has address %s", n.Name, dst), Fix: "nsnet network inspect " + n.Name + " (its sandboxes and their addresses)"})
	}
	if t.Name == w.sb.Name {
		return append(hops, ok("sandbox "+t.Name, "its own address"))
	}
	tns := w.s.Space(t.Name)
	first := namespaceOf(t, tns)
	hops = append(hops, first)
	if first.Verdict != OK {
		return hops
	}
	return append(hops,
		w.vethHop(t, tns, tep, n, false),
		w.interfaceHop(t, tns, tep),
		w.mtuHop(n, segmentEnd{w.sb, w.ns, ep}, segmentEnd{t, tns, tep}),
		listenerHop(t, tns, dst, w.q.Target.Port, w.q.Target.Proto),
		returnRouteHop(t, tns, tep, n, ep.Address.Addr()),
	)
}

// bridgedHop: traffic between two ports of a bridge passes the ip hooks
// only with br_netfilter (net.bridge.bridge-nf-call-iptables = 1); then
// nsnet's forward chain must accept it and no other table drop it. The
// bridge family's chains see it anyway.
func (w *walker) bridgedHop(n types.Network, ep types.Endpoint, dst netip.Addr) Hop {
	v, _ := w.s.Host.Sysctl("net.bridge.bridge-nf-call-iptables")
	l3 := v == "1"
	src, t := ep.Address.Addr(), w.q.Target
	tveth := ""
	if _, tep, found := sandboxAt(w.s, n.Name, dst); found {
		tveth = tep.HostVeth
	}
	p := packet{iif: n.Bridge, oif: n.Bridge, saddr: src, daddr: dst, proto: t.Proto, dport: t.Port, ctState: "new"}
	r := packet{iif: n.Bridge, oif: n.Bridge, saddr: dst, daddr: src, proto: t.Proto, sport: t.Port, ctState: "established"}
	what, back := fmt.Sprintf("sandbox %s's packets to %s", w.sb.Name, dst), "the replies from "+dst.String()
	var legs []leg
	for _, hook := range []string{"prerouting", "forward", "postrouting"} {
		legs = append(legs,
			leg{class: "bridge", hook: hook, before: bridged(p, ep.HostVeth, tveth), after: bridged(p, ep.HostVeth, tveth), what: what},
			leg{class: "bridge", hook: hook, before: bridged(r, tveth, ep.HostVeth), after: bridged(r, tveth, ep.HostVeth), what: back})
		if l3 {
			legs = append(legs, leg{class: "ip", hook: hook, before: p, after: p, what: what}, leg{class: "ip", hook: hook, before: r, after: r, what: back})
		}
	}
	h := w.foreignHop(n, legs)
	h.Step = "filtering on " + n.Bridge
	if h.Verdict != OK {
		return h
	}
	if !l3 {
		return ok(h.Step, "bridged frames skip the ip hooks (net.bridge.bridge-nf-call-iptables is not 1); "+h.Detail)
	}
	if w.s.Nsnet.Exists && !hasRule(w.s, chainForward, networkRule(n, ruleWithin)) {
		return broken(h.Step, "br_netfilter on, no rule "+networkRule(n, ruleWithin),
			fmt.Sprintf("br_netfilter passes bridged packets to the forward chains, and nsnet's rule that accepts traffic within network %s is missing, so its rule \"nothing else enters a network\" drops them", n.Name),
			or("nsnet firewall reload", "nsnet gc"))
	}
	return ok(h.Step, "br_netfilter passes bridged IPv4 to the ip hooks: nsnet accepts it within the network; "+h.Detail)
}

// toHost is the way to an address of the host (the gateway, or another):
// to a port something on the host listens on, or that a sandbox publishes.
func (w *walker) toHost(ep types.Endpoint, n types.Network, dst netip.Addr) []Hop {
	hops := append(w.source(ep, n, dst), w.mtuHop(n, segmentEnd{w.sb, w.ns, ep}), w.routeBackHop(w.sb, ep, n))
	t := w.q.Target
	if pub, m, found := publisherOf(w.s, dst, t.Port, t.Proto); found && !dst.IsLoopback() {
		return append(hops, w.publishedFromInside(ep, n, dst, pub, m)...)
	}
	p := packet{iif: n.Bridge, saddr: ep.Address.Addr(), daddr: dst, proto: t.Proto, dport: t.Port, ctState: "new"}
	r := packet{oif: n.Bridge, saddr: dst, daddr: ep.Address.Addr(), proto: t.Proto, sport: t.Port, ctState: "established"}
	what, back := fmt.Sprintf("sandbox %s's packets to the host's %s", w.sb.Name, dst), "the host's replies"
	legs := []leg{
		{class: "ip", hook: "prerouting", before: p, after: p, natPrio: prioDNAT, what: what},
		{class: "ip", hook: "input", before: p, after: p, what: what},
		{class: "ip", hook: "output", before: r, after: r, what: back},
		{class: "ip", hook: "postrouting", before: r, after: r, natPrio: prioSNAT, what: back},
	}
	hops = append(hops, w.foreignHop(n, legs))
	if t.Port != 0 {
		hops = append(hops, hostListenerHop(w.s, dst, t.Port, t.Proto))
	}
	return hops
}

// publisherOf finds the sandbox publishing port/proto on host address a.
func publisherOf(s *observe.Snapshot, a netip.Addr, port uint16, proto string) (types.Sandbox, types.Mapping, bool) {
	if port == 0 {
		return types.Sandbox{}, types.Mapping{}, false
	}
	for _, sb := range s.Sandboxes {
		for _, m := range sb.Ports {
			if m.Proto == proto && m.HostPort == port && (!m.HostIP.IsValid() || m.HostIP == a) {
				return sb, m, true
			}
		}
	}
	return types.Sandbox{}, types.Mapping{}, false
}

// hostListenerHop: a socket of the host listens on a:port/proto.
func hostListenerHop(s *observe.Snapshot, a netip.Addr, port uint16, proto string) Hop {
	step := fmt.Sprintf("port %d/%s on the host", port, proto)
	for _, so := range s.Host.Sockets {
		if so.Proto == proto && so.Port == port && (so.Addr.IsUnspecified() || so.Addr == a) {
			return ok(step, fmt.Sprintf("%s listens on %s:%d", process(so), so.Addr, port))
		}
	}
	h := broken(step, "nothing listens", fmt.Sprintf("nothing on the host listens on %s:%d/%s, and no sandbox publishes it", a, port, proto),
		"start the service on the host, or publish a sandbox's port there (nsnet port add SANDBOX HOSTPORT:PORT)")
	h.listener = true
	return h
}
