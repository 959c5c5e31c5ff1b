package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/types"
)

// byName is a name lookup at the sandbox's nameserver and, when the
// snapshot tells the answer (a sandbox's name on one of its networks), the
// way to that address.
func (w *walker) byName() []Path {
	name := w.q.Target.Host
	lookup := Path{Title: fmt.Sprintf("%s -> name %s: the lookup", w.q.Sandbox, name)}
	first := w.namespaceHop()
	lookup.Hops = append(lookup.Hops, first)
	if first.Verdict != OK {
		return []Path{lookup}
	}
	if len(w.sb.Endpoints) == 0 {
		return []Path{w.toAddress(netip.IPv4Unspecified(), lookup.Title)}
	}
	if len(w.ns.Nameservers) == 0 {
		lookup.Hops = append(lookup.Hops, broken("resolv.conf of "+w.sb.Name, "no nameserver",
			fmt.Sprintf("sandbox %s's resolv.conf (/etc/netns/%s/resolv.conf) names no nameserver, so its programs cannot look up names", w.sb.Name, w.sb.Name),
			"nsnet gc (it writes the file again)"))
		return []Path{lookup}
	}
	server := w.ns.Nameservers[0]
	n, ours := w.resolverNetwork(server)
	if !ours {
		return w.foreignResolver(server, name)
	}
	ep, _ := endpointOn(w.sb, n.Name)
	lookup.Hops = append(lookup.Hops, w.interfaceHop(w.sb, w.ns, ep), w.routeHop(ep, n, server), w.vethHop(w.sb, w.ns, ep, n, false),
		w.bridgeHop(n), w.routeBackHop(w.sb, ep, n), w.resolverHop(n))
	p := packet{iif: n.Bridge, saddr: ep.Address.Addr(), daddr: server, proto: "udp", dport: 53, ctState: "new"}
	r := packet{oif: n.Bridge, saddr: server, daddr: ep.Address.Addr(), proto: "udp", sport: 53, ctState: "established"}
	what := fmt.Sprintf("sandbox %s's queries to %s:53", w.sb.Name, server)
	lookup.Hops = append(lookup.Hops, w.foreignHop(n, []leg{
		{class: "ip", hook: "prerouting", before: p, after: p, natPrio: prioDNAT, what: what},
		{class: "ip", hook: "input", before: p, after: p, what: what},
		{class: "ip", hook: "output", before: r, after: r, what: "the resolver's answers"},
	}))
	answer, addr := w.answerHop(n, name)
	lookup.Hops = append(lookup.Hops, answer)
	paths := []Path{lookup}
	if addr.IsValid() {
		t := w.q.Target
		paths = append(paths, w.toAddress(addr, fmt.Sprintf("%s -> %s (%s)", w.q.Sandbox, name, Target{Kind: KindAddress, Addr: addr, Port: t.Port, Proto: t.Proto})))
	}
	return paths
}

// resolverNetwork is the user network of the sandbox whose gateway is the
// nameserver: nsnet's resolver for it. (The default network has none.)
func (w *walker) resolverNetwork(server netip.Addr) (types.Network, bool) {
	for _, ep := range w.sb.Endpoints {
		if n, ok := w.s.Network(ep.Network); ok && n.Gateway == server && n.Name != types.ModeBridge {
			return n, true
		}
	}
	return types.Network{}, false
}

// foreignResolver is a lookup at a nameserver that is not nsnet's (the
// host's, or the sandbox's --dns): the way to it, and an answer that needs a
// query.
func (w *walker) foreignResolver(server netip.Addr, name string) []Path {
	saved := w.q.Target
	w.q.Target = Target{Kind: KindAddress, Addr: server, Port: 53, Proto: "udp"}
	p := w.toAddress(server, fmt.Sprintf("%s -> name %s: the lookup at %s:53/udp (not nsnet's resolver)", w.q.Sandbox, name, server))
	w.q.Target = saved
	p.Hops = append(p.Hops, Hop{Step: "name " + name, Verdict: Unknown, Detail: "asked at " + server.String(),
		Cause: fmt.Sprintf("%s is answered by %s, which is not nsnet's: its answer needs a query (--probe asks it)", name, server)})
	return []Path{p}
}

// resolverHop: the state root's resident runs, serves network n's names and
// listens on its gateway's port 53.
func (w *walker) resolverHop(n types.Network) Hop {
	step := "resolver " + n.Gateway.String() + ":53"
	res := w.s.Resident
	if !res.Alive {
		h := broken(step, "nsnet's resident is not running",
			fmt.Sprintf("nsnet's resident process, which answers the names of network %s at %s:53, is not running, so the sandbox's lookups get no answer", n.Name, n.Gateway),
			"nsnet gc (it starts the resident again)")
		h.listener = true // nothing is bound to the port: the kernel refuses the query
		return h
	}
	z, served := res.Zones[n.Name]
	if !served || z.Listen != n.Gateway {
		return broken(step, fmt.Sprintf("resident (pid %d) does not serve %s", res.PID, n.Name),
			fmt.Sprintf("nsnet's resident (pid %d) does not serve network %s's names", res.PID, n.Name), "nsnet gc")
	}
	for _, so := range w.s.Host.Sockets {
		if so.Proto == "udp" && so.Port == 53 && so.Addr == n.Gateway && so.PID == res.PID {
			return ok(step, fmt.Sprintf("nsnet's resident (pid %d) answers there", res.PID))
		}
	}
	h := broken(step, "no socket", fmt.Sprintf("nsnet's resident (pid %d) serves network %s, but no socket of it is bound to %s:53/udp", res.PID, n.Name, n.Gateway), "nsnet gc")
	h.listener = true
	return h
}

// answerHop says what the resolver of n answers for name, when the store
// tells: the address of a sandbox of one of the sandbox's user networks
// (each resolver answers the names of every network of the asking
// sandbox, as in Docker), or else a name it forwards upstream, or, for an
// internal network, none.
func (w *walker) answerHop(n types.Network, name string) (Hop, netip.Addr) {
	step := "name " + name
	for _, ep := range w.sb.Endpoints {
		if ep.Network == types.ModeBridge {
			continue
		}
		for _, sb := range w.s.Sandboxes {
			tep, on := endpointOn(sb, ep.Network)
			if !on || !matchesName(sb, name, tep) {
				continue
			}
			a := tep.Address.Addr()
			if h, stale := w.staleZone(ep.Network, name, a); stale {
				return h, netip.Addr{}
			}
			return ok(step, fmt.Sprintf("%s is %s (sandbox %s on network %s)", name, a, sb.Name, ep.Network)), a
		}
	}
	if n.Internal {
		return Hop{Step: step, Verdict: ByDesign, Detail: "not a name of network " + n.Name,
			Cause: fmt.Sprintf("%s is not the name of a sandbox of network %s, and an internal network's resolver never forwards: by design it does not resolve", name, n.Name),
			Fix:   fmt.Sprintf("use the name of a sandbox of network %s, or connect sandbox %s to a network that is not internal", n.Name, w.sb.Name)}, netip.Addr{}
	}
	up := "the host's nameservers"
	if z, served := w.s.Resident.Zones[n.Name]; served && len(z.Upstream) > 0 {
		var s []string
		for _, u := range z.Upstream {
			s = append(s, u.String())
		}
		up = strings.Join(s, ", ")
	}
	return Hop{Step: step, Verdict: Unknown, Detail: "forwarded to " + up,
		Cause: fmt.Sprintf("%s is not the name of a sandbox on the networks of %s: the resolver forwards it to %s, whose answer needs a query (--probe asks it)", name, w.sb.Name, up)}, netip.Addr{}
}

// staleZone reports a name the store gives that the resident's zone of the
// network does not hold.
func (w *walker) staleZone(network, name string, a netip.Addr) (Hop, bool) {
	z, served := w.s.Resident.Zones[network]
	if !served {
		return Hop{}, false
	}
	for _, r := range z.Records {
		if r.Addr == a && slices.ContainsFunc(r.Names, func(n string) bool { return sameName(n, name) }) {
			return Hop{}, false
		}
	}
	return broken("name "+name, "not in the resident's zone "+network,
		fmt.Sprintf("nsnet's resident does not know %s (%s) on network %s, though the store does, so it answers that the name does not exist", name, a, network), "nsnet gc"), true
}

// matchesName reports whether name is one of a sandbox's names on its
// endpoint: its name, its short ID or an alias (without case, and without a
// trailing dot). A nil endpoint checks every endpoint's aliases.
func matchesName(sb types.Sandbox, name string, eps ...types.Endpoint) bool {
	if len(eps) == 0 {
		eps = sb.Endpoints
	}
	if sameName(sb.Name, name) || (len(sb.ID) >= 12 && sameName(sb.ID[:12], name)) {
		return true
	}
	for _, ep := range eps {
		if slices.ContainsFunc(ep.Aliases, func(a string) bool { return sameName(a, name) }) {
			return true
		}
	}
	return false
}

func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
