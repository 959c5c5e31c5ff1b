package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/types"
)

// fromOutside is the way in to each of the sandbox's published ports that
// the target selects, from a client beyond the host.
func (w *walker) fromOutside() []Path {
	ep, publishes := publishing(w.sb)
	first := w.namespaceHop()
	if !publishes {
		return []Path{{Title: "from outside -> " + w.sb.Name, Hops: []Hop{first, {Step: "networks of " + w.sb.Name, Verdict: ByDesign,
			Detail: "no network with a default route", Cause: fmt.Sprintf("sandbox %s is only on internal networks (or none), so by design it cannot publish ports", w.sb.Name),
			Fix: fmt.Sprintf("nsnet network connect NETWORK %s (a network that is not internal)", w.sb.Name)}}}}
	}
	var paths []Path
	var ipv6Only []string
	for _, m := range w.sb.Ports {
		switch {
		case m.HostIP.Is6() && w.selects(m):
			ipv6Only = append(ipv6Only, m.HostAddr()+"/"+m.Proto)
		case w.selects(m):
			paths = append(paths, w.publishedPath(ep, m, first))
		}
	}
	if len(paths) == 0 && len(ipv6Only) > 0 {
		return []Path{{Title: "from outside -> " + w.sb.Name, Hops: []Hop{first, {Step: "published ports of " + w.sb.Name,
			Verdict: Unknown, Detail: strings.Join(ipv6Only, ", "),
			Cause: fmt.Sprintf("sandbox %s publishes%s only on IPv6 host addresses, and diagnose follows IPv4 only", w.sb.Name, w.selection())}}}}
	}
	if len(paths) == 0 {
		spec := "HOSTPORT:PORT"
		if t := w.q.Target; t.Port != 0 {
			spec = fmt.Sprintf("%d:PORT/%s", t.Port, t.Proto)
		}
		return []Path{{Title: "from outside -> " + w.sb.Name, Hops: []Hop{first, broken("published ports of "+w.sb.Name, "none",
			fmt.Sprintf("sandbox %s publishes no port%s, so nothing from outside reaches it", w.sb.Name, w.selection()),
			fmt.Sprintf("nsnet port add %s %s", w.sb.Name, spec))}}}
	}
	return paths
}

// selects reports whether the target picks mapping m: its host port and
// protocol, and its host address, when given.
func (w *walker) selects(m types.Mapping) bool {
	t := w.q.Target
	return (t.Port == 0 || (t.Port == m.HostPort && t.Proto == m.Proto)) &&
		(t.Kind != KindAddress || !m.HostIP.IsValid() || m.HostIP == t.Addr)
}

func (w *walker) selection() string {
	if t := w.q.Target; t.Port != 0 {
		return fmt.Sprintf(" on host port %d/%s", t.Port, t.Proto)
	}
	return ""
}

// publishedPath follows a client's packet to the host port of m, through
// nsnet's translation and the forward chains, into the sandbox, and its
// reply out again; and checks that the host port is held for the sandbox.
func (w *walker) publishedPath(ep types.Endpoint, m types.Mapping, first Hop) Path {
	n, _ := w.s.Network(ep.Network)
	a := ep.Address.Addr()
	p := Path{Title: fmt.Sprintf("from outside -> %s:%d/%s -> %s %s:%d", m.HostIPString(), m.HostPort, m.Proto, w.sb.Name, a, m.CtrPort), Hops: []Hop{first}}
	if first.Verdict != OK {
		return p
	}
	addrHop, in := w.hostAddressHop(m)
	p.Hops = append(p.Hops, addrHop)
	if addrHop.Verdict == ByDesign {
		return p
	}
	if in != "" {
		p.Hops = append(p.Hops, w.uplinkHop(in))
	}
	inbound, outbound := w.inLegs(n, ep, m, in)
	p.Hops = append(p.Hops,
		w.translationHop(m, a),
		w.forwardingHop(in, n.Bridge),
		w.routeBackHop(w.sb, ep, n),
		w.tableHop("nsnet rules", []ruleNeed{
			{chainForward, rulePublished, fmt.Sprintf("its rule \"nothing else enters a network\" drops what is forwarded to %s", n.Bridge)},
			{chainForward, ruleReplies, "the sandbox's replies are not let through"},
		}, "forwarded published ports and replies accepted"),
		w.foreignHop(n, append(inbound, outbound...)),
		w.bridgeHop(n),
		w.vethHop(w.sb, w.ns, ep, n, false),
		w.interfaceHop(w.sb, w.ns, ep),
		w.mtuHop(n, segmentEnd{w.sb, w.ns, ep}),
		listenerHop(w.sb, w.ns, a, m.CtrPort, m.Proto),
		returnRouteHop(w.sb, w.ns, ep, n, netip.IPv4Unspecified()),
		w.heldHop(m),
	)
	return p
}

// hostAddressHop: the mapping's host address is one of the host's, and not
// loopback (which only the host reaches, by design); it returns the device
// the packet arrives by.
func (w *walker) hostAddressHop(m types.Mapping) (Hop, string) {
	step := "host address " + m.HostIPString()
	switch {
	case !m.HostIP.IsValid():
		in := ""
		if r, found := defaultRoute(&w.s.Host); found {
			in = r.Dev
		}
		return ok(step, "every host address: "+strings.Join(hostAddresses(w.s), ", ")), in
	case m.HostIP.IsLoopback():
		return Hop{Step: step, Verdict: ByDesign, Detail: "loopback",
			Cause: fmt.Sprintf("host port %d/%s is published on %s only: by design only the host itself reaches it (through nsnet's resident), never a client outside", m.HostPort, m.Proto, m.HostIP),
			Fix:   fmt.Sprintf("nsnet port rm %s %d/%s; nsnet port add %s %d:%d/%s", w.sb.Name, m.CtrPort, m.Proto, w.sb.Name, m.HostPort, m.CtrPort, m.Proto)}, ""
	}
	d, _, local := localDevice(&w.s.Host, m.HostIP)
	if !local {
		return broken(step, "on no interface", fmt.Sprintf("no interface of the host holds %s, so nothing arrives for host port %d/%s there", m.HostIP, m.HostPort, m.Proto),
			fmt.Sprintf("ip addr add %s/PREFIX dev UPLINK, or publish on another address (nsnet port rm / port add %s)", m.HostIP, w.sb.Name)), ""
	}
	return ok(step, "on "+d.Name), d.Name
}

// translationHop: nsnet's table translates the host port to the sandbox's
// address and port (its DNAT rules and the map element of the mapping).
func (w *walker) translationHop(m types.Mapping, a netip.Addr) Hop {
	rule, set := rulePortsAny, "ports-any-ip"
	if m.HostIP.IsValid() {
		rule, set = rulePortsByIP, "ports-by-ip"
	}
	why := fmt.Sprintf("packets for host port %d/%s are not translated to the sandbox", m.HostPort, m.Proto)
	h := w.tableHop("nsnet translation", []ruleNeed{{chainPreroute, rule, why}}, "")
	if h.Verdict == Broken || w.s.Nsnet.Err != "" {
		return h
	}
	i := slices.IndexFunc(w.s.Nsnet.Ports, func(p firewall.Port) bool {
		return p.Proto == m.Proto && p.HostPort == m.HostPort && p.HostIP == m.HostIP
	})
	if i < 0 {
		return broken(h.Step, "no element "+m.Key(), fmt.Sprintf("nsnet's map %s has no element for host port %s:%d/%s, so %s", set, m.HostIPString(), m.HostPort, m.Proto, why),
			or("nsnet firewall reload", "nsnet gc"))
	}
	got := w.s.Nsnet.Ports[i]
	if got.CtrIP != a || got.CtrPort != m.CtrPort {
		return broken(h.Step, fmt.Sprintf("to %s:%d", got.CtrIP, got.CtrPort),
			fmt.Sprintf("nsnet's map %s sends host port %d/%s to %s:%d, not to sandbox %s's %s:%d", set, m.HostPort, m.Proto, got.CtrIP, got.CtrPort, w.sb.Name, a, m.CtrPort),
			or("nsnet firewall reload", "nsnet gc"))
	}
	h.Detail = fmt.Sprintf("%s:%d/%s -> %s:%d (map %s)", m.HostIPString(), m.HostPort, m.Proto, a, m.CtrPort, set)
	return h
}

// inLegs are the hooks a client's packet to a published port crosses, and
// those the sandbox's replies cross.
func (w *walker) inLegs(n types.Network, ep types.Endpoint, m types.Mapping, in string) (inbound, outbound []leg) {
	a := ep.Address.Addr()
	host := m.HostIP
	if !host.IsValid() {
		host = uplinkAddr(w.s, in)
	}
	arriving := packet{iif: in, daddr: host, proto: m.Proto, dport: m.HostPort, ctState: "new"}
	p := packet{iif: in, oif: n.Bridge, daddr: a, proto: m.Proto, dport: m.CtrPort, ctState: "new", dnat: true}
	what := fmt.Sprintf("clients' packets to host port %d/%s", m.HostPort, m.Proto)
	translated := p
	translated.oif = ""
	inbound = []leg{
		{class: "netdev", hook: "ingress", dev: in, before: arriving, after: arriving, what: what},
		{class: "ip", hook: "prerouting", before: arriving, after: translated, natPrio: prioDNAT, what: what},
		{class: "ip", hook: "forward", before: p, after: p, what: what},
		{class: "ip", hook: "postrouting", before: p, after: p, natPrio: prioSNAT, what: what},
		{class: "bridge", hook: "output", before: bridged(p, "", ep.HostVeth), after: bridged(p, "", ep.HostVeth), what: what},
	}
	r := packet{iif: n.Bridge, oif: in, saddr: a, proto: m.Proto, sport: m.CtrPort, ctState: "established", dnat: true}
	fromBridge := r
	fromBridge.oif = ""
	back := fmt.Sprintf("sandbox %s's replies", w.sb.Name)
	outbound = []leg{
		{class: "bridge", hook: "prerouting", before: bridged(fromBridge, ep.HostVeth, ""), after: bridged(fromBridge, ep.HostVeth, ""), what: back},
		{class: "ip", hook: "prerouting", before: fromBridge, after: fromBridge, natPrio: prioDNAT, what: back},
		{class: "ip", hook: "forward", before: r, after: r, what: back},
		{class: "ip", hook: "postrouting", before: r, after: r, natPrio: prioSNAT, what: back},
	}
	return inbound, outbound
}

// heldHop: the host port is held by nsnet's resident, so no host process
// can take it.
func (w *walker) heldHop(m types.Mapping) Hop {
	step := fmt.Sprintf("host port %d/%s held", m.HostPort, m.Proto)
	if m.Proto == "sctp" {
		return ok(step, "SCTP ports are not held; the map alone decides")
	}
	res := w.s.Resident
	var holder *Hop
	for _, so := range w.s.Host.Sockets {
		if so.Proto != m.Proto || so.Port != m.HostPort || !(so.Addr.IsUnspecified() || !m.HostIP.IsValid() || so.Addr == m.HostIP) {
			continue
		}
		if res.Alive && so.PID == res.PID {
			return ok(step, fmt.Sprintf("by nsnet's resident (pid %d)", res.PID))
		}
		holder = &Hop{Step: step, Verdict: Warn, Detail: fmt.Sprintf("by %s", process(so)),
			Cause: fmt.Sprintf("host port %s:%d/%s is held by %s, not by nsnet's resident: clients outside still reach the sandbox (their packets are translated before any socket sees them), but the host's own connections to 127.0.0.1:%d reach %s, and nsnet cannot hold the port again until it lets go",
				m.HostIPString(), m.HostPort, m.Proto, process(so), m.HostPort, process(so)),
			Fix: fmt.Sprintf("stop %s, then nsnet gc", process(so))}
	}
	if holder != nil {
		return *holder
	}
	if !res.Alive {
		return Hop{Step: step, Verdict: Warn, Detail: "nsnet's resident is not running",
			Cause: fmt.Sprintf("nsnet's resident process is not running, so host port %d/%s is not held: a host process may take it, and the host's own connections to 127.0.0.1:%d get no answer", m.HostPort, m.Proto, m.HostPort),
			Fix:   "nsnet gc (it starts the resident again)"}
	}
	return Hop{Step: step, Verdict: Warn, Detail: "not held",
		Cause: fmt.Sprintf("nsnet's resident (pid %d) does not hold host port %d/%s, so a host process may take it", res.PID, m.HostPort, m.Proto),
		Fix:   "nsnet gc"}
}

// publishedFromInside is the way from the sandbox to a port another (or
// the same) sandbox publishes, at a host address: translated, routed back
// into a bridge, masqueraded when the two share the bridge (hairpin).
func (w *walker) publishedFromInside(ep types.Endpoint, n types.Network, dst netip.Addr, pub types.Sandbox, m types.Mapping) []Hop {
	pep, ok := publishing(pub)
	pn, _ := w.s.Network(pep.Network)
	if n.Internal {
		return []Hop{{Step: "network " + n.Name, Verdict: ByDesign, Detail: "internal",
			Cause: fmt.Sprintf("network %s is internal: by design its sandboxes reach no published port, at its gateway or any host address", n.Name),
			Fix:   fmt.Sprintf("nsnet network connect %s %s", pn.Name, w.sb.Name)}}
	}
	if !ok {
		return nil
	}
	pa := pep.Address.Addr()
	hops := []Hop{w.translationHop(m, pa), w.forwardingHop(n.Bridge, ""), w.routeBackHop(pub, pep, pn)}
	need := []ruleNeed{{chainForward, rulePublished, fmt.Sprintf("its rule \"nothing else enters a network\" drops what is forwarded to %s", pn.Bridge)}}
	if pn.Name == n.Name {
		need = append(need, ruleNeed{chainPostroute, networkRule(n, ruleHairpin),
			"the published sandbox would answer the sandbox directly, around the translation, and the answer is dropped"})
	}
	hops = append(hops, w.tableHop("nsnet rules", need, "published ports accepted"))
	p := packet{iif: n.Bridge, oif: pn.Bridge, saddr: ep.Address.Addr(), daddr: pa, proto: m.Proto, dport: m.CtrPort, ctState: "new", dnat: true}
	what := fmt.Sprintf("sandbox %s's packets to the published port", w.sb.Name)
	hops = append(hops, w.foreignHop(n, []leg{{class: "ip", hook: "forward", before: p, after: p, what: what}}))
	pns := w.s.Space(pub.Name)
	first := namespaceOf(pub, pns)
	if first.Verdict != OK {
		return append(hops, first)
	}
	return append(hops,
		w.bridgeHop(pn),
		w.vethHop(pub, pns, pep, pn, pub.Name == w.sb.Name),
		w.interfaceHop(pub, pns, pep),
		listenerHop(pub, pns, pa, m.CtrPort, m.Proto),
	)
}
