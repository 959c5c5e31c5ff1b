package diagnose

import (
	"fmt"
	"net/netip"

	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/types"
)

// walker walks the paths of one query over one snapshot.
type walker struct {
	s    *observe.Snapshot
	q    Query
	sb   types.Sandbox      // the sandbox whose namespace the packet leaves (a container: its owner's)
	ns   *observe.Namespace // its namespace as read
	eval evaluator
}

// Analyze walks the paths the query asks about and gives every hop a
// verdict. It fails only when the query makes no sense for the sandbox (one
// in the host's namespace, or not in the snapshot).
func Analyze(s *observe.Snapshot, q Query) (*Report, error) {
	sb, ok := s.Sandbox(q.Sandbox)
	if !ok {
		return nil, fmt.Errorf("sandbox %s is not in the snapshot", q.Sandbox)
	}
	if sb.Mode == types.ModeContainer {
		if sb, ok = s.Sandbox(sb.Container); !ok {
			return nil, fmt.Errorf("sandbox %s shares the namespace of %s, which is gone: run nsnet gc", q.Sandbox, sb.Container)
		}
	}
	if sb.Mode == types.ModeHost {
		return nil, fmt.Errorf("sandbox %s is the host's own namespace (--network host): its packets are the host's, with no bridge or veth of nsnet's to diagnose", sb.Name)
	}
	w := &walker{s: s, q: q, sb: sb, ns: s.Space(sb.Name), eval: evaluator{chains: s.Chains, devices: s.Host.Devices}}
	if w.ns == nil {
		return nil, fmt.Errorf("the namespace of sandbox %s was not read", sb.Name)
	}
	r := &Report{Sandbox: q.Sandbox, Target: q.Target.String()}
	if q.FromOutside {
		r.Target = "its published ports, from outside"
		r.Paths = w.fromOutside()
	} else {
		r.Paths = w.outbound()
	}
	r.finish()
	return r, nil
}

// Needs lists the sandboxes whose namespaces Analyze reads for q: the
// sandbox itself (or the one whose namespace it shares), and the sandbox the
// target names or whose address it is, or that publishes the port of a host
// address it names.
func Needs(nets []types.Network, sbs []types.Sandbox, q Query) []string {
	s := &observe.Snapshot{Networks: nets, Sandboxes: sbs}
	out := []string{q.Sandbox}
	if sb, ok := s.Sandbox(q.Sandbox); ok && sb.Mode == types.ModeContainer {
		out = append(out, sb.Container)
	}
	t := q.Target
	switch {
	case t.Kind == KindSandbox:
		out = append(out, t.Sandbox)
	case t.Kind == KindAddress:
		if n, ok := networkHolding(s, t.Addr); ok {
			if holder, _, ok := sandboxAt(s, n.Name, t.Addr); ok {
				out = append(out, holder.Name)
			}
		}
		for _, sb := range sbs {
			for _, m := range sb.Ports {
				if m.HostPort == t.Port && m.Proto == t.Proto {
					out = append(out, sb.Name)
				}
			}
		}
	case t.Kind == KindName:
		for _, sb := range sbs {
			if matchesName(sb, t.Host) {
				out = append(out, sb.Name)
			}
		}
	}
	return out
}

// outbound is the way from the sandbox to the target.
func (w *walker) outbound() []Path {
	t := w.q.Target
	switch t.Kind {
	case KindName:
		return w.byName()
	case KindSandbox:
		return []Path{w.toSandbox(t.Sandbox)}
	case KindDefault:
		gw := netip.IPv4Unspecified() // "anywhere": only a default route holds it
		if r, ok := defaultRoute(&w.s.Host); ok && r.Gateway.IsValid() {
			gw = r.Gateway
		}
		return []Path{w.toAddress(gw, fmt.Sprintf("%s -> beyond the host (the host's default gateway %s), %s", w.q.Sandbox, orNone(gw), t.Proto))}
	}
	return []Path{w.toAddress(t.Addr, fmt.Sprintf("%s -> %s", w.q.Sandbox, t))}
}

func orNone(a netip.Addr) string {
	if !a.IsUnspecified() {
		return a.String()
	}
	return "none"
}

// toSandbox is the way to another sandbox: at its address on a network
// both are on, or else at its address on its own (closed by design).
func (w *walker) toSandbox(name string) Path {
	target, _ := w.s.Sandbox(name)
	title := fmt.Sprintf("%s -> sandbox %s", w.q.Sandbox, name)
	if w.q.Target.Port != 0 {
		title += fmt.Sprintf(" port %d/%s", w.q.Target.Port, w.q.Target.Proto)
	}
	for _, ep := range w.sb.Endpoints {
		if tep, ok := endpointOn(target, ep.Network); ok {
			return w.toAddress(tep.Address.Addr(), title+" at "+tep.Address.Addr().String())
		}
	}
	if len(target.Endpoints) == 0 {
		return Path{Title: title, Hops: []Hop{{Step: "sandbox " + name, Verdict: ByDesign,
			Detail: "mode " + target.Mode, Cause: fmt.Sprintf("sandbox %s has no interface on any network (--network %s), so nothing reaches it", name, target.Mode)}}}
	}
	a := target.Endpoints[0].Address.Addr()
	return w.toAddress(a, title+" at "+a.String())
}

// toAddress is the way to an address: within one of the sandbox's
// networks, to the host, into another network, or beyond the host.
func (w *walker) toAddress(dst netip.Addr, title string) Path {
	p := Path{Title: title}
	p.Hops = append(p.Hops, w.namespaceHop())
	if p.Hops[0].Verdict != OK {
		return p
	}
	if w.sb.Mode == types.ModeNone || len(w.sb.Endpoints) == 0 {
		p.Hops = append(p.Hops, Hop{Step: "networks of " + w.sb.Name, Verdict: ByDesign, Detail: "mode none",
			Cause: fmt.Sprintf("sandbox %s has no network (--network none): by design it reaches nothing beyond its own lo", w.sb.Name),
			Fix:   fmt.Sprintf("nsnet sandbox rm %s; nsnet sandbox create --network NETWORK %s", w.sb.Name, w.sb.Name)})
		return p
	}
	ep, n, kind := w.classify(dst)
	p.To, p.MTU = dst, 1500
	if d, found := w.ns.Device(ep.IfName); found {
		p.MTU = d.MTU
	}
	switch kind {
	case "isolated":
		p.Hops = append(p.Hops, w.isolatedHop(dst))
	case "internal":
		p.Hops = append(p.Hops, w.internalHop(n, dst))
	case "same":
		p.Hops = append(p.Hops, w.sameNetwork(ep, n, dst)...)
	case "host":
		p.Hops = append(p.Hops, w.toHost(ep, n, dst)...)
	default:
		p.Hops = append(p.Hops, w.beyond(ep, n, dst)...)
		p.Remote = true
	}
	return p
}

// classify finds the sandbox's endpoint the packet leaves by and the kind
// of way: same (within that endpoint's network), host (to an address of the
// host), isolated (into a network the sandbox is not on), internal (out of
// an internal network), or beyond (routed out of the host).
func (w *walker) classify(dst netip.Addr) (types.Endpoint, types.Network, string) {
	for _, ep := range w.sb.Endpoints {
		if n, ok := w.s.Network(ep.Network); ok && n.Subnet.Contains(dst) {
			if dst == n.Gateway {
				return ep, n, "host"
			}
			return ep, n, "same"
		}
	}
	if n, ok := networkHolding(w.s, dst); ok && dst != n.Gateway {
		return types.Endpoint{}, n, "isolated"
	}
	ep, ok := publishing(w.sb)
	if !ok { // only internal networks: the first one
		ep = w.sb.Endpoints[0]
		n, _ := w.s.Network(ep.Network)
		if _, _, local := localDevice(&w.s.Host, dst); local && dst == n.Gateway {
			return ep, n, "host"
		}
		return ep, n, "internal"
	}
	n, _ := w.s.Network(ep.Network)
	if _, _, local := localDevice(&w.s.Host, dst); local && dst.IsValid() {
		return ep, n, "host"
	}
	return ep, n, "beyond"
}

// source are the hops every way out of the sandbox starts with, by the
// endpoint ep on network n towards dst: its interface, its route, its veth,
// the bridge, the MTU of the segment (more devices given: those of the
// sandbox at the other end).
func (w *walker) source(ep types.Endpoint, n types.Network, dst netip.Addr) []Hop {
	return []Hop{
		w.interfaceHop(w.sb, w.ns, ep),
		w.routeHop(ep, n, dst),
		w.vethHop(w.sb, w.ns, ep, n, false),
		w.bridgeHop(n),
	}
}
