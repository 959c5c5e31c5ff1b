package engine

// The engine's glue to its firewall: what the store calls for, as the
// firewall package needs it, and the calls that keep the table in step.

import (
	"fmt"

	"github.com/nsnet/nsnet/internal/conntrack"
	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/store"
)

func firewallNetworks(nets []Network) []firewall.Network {
	out := make([]firewall.Network, len(nets))
	for i, n := range nets {
		out[i] = firewall.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway,
			Subnet6: n.Subnet6, Gateway6: n.Gateway6, Internal: n.Internal, NoMasquerade: n.NoMasquerade, NoICC: n.NoICC}
	}
	return out
}

// firewallPorts are sb's published ports as the firewall needs them: to
// its address on the network of its default route. A port on every host
// address goes to the IPv4 and, on a dual-stack network, the IPv6 address;
// one on an IPv6 host address (:: for all of them) to the IPv6 address only,
// and one on an IPv4 host address to the IPv4 address only.
func firewallPorts(sb *Sandbox) []firewall.Port {
	ep, ok := publishingEndpoint(sb)
	if len(sb.Ports) == 0 || !ok {
		return nil
	}
	var out []firewall.Port
	for _, m := range sb.Ports {
		p := firewall.Port{Proto: m.Proto, HostIP: m.HostIP, HostPort: m.HostPort, CtrPort: m.CtrPort}
		if !m.HostIP.Is6() {
			p.CtrIP = ep.Address.Addr()
			out = append(out, p)
		}
		if ep.Address6.IsValid() && (!m.HostIP.IsValid() || m.HostIP.Is6()) {
			p.CtrIP = ep.Address6.Addr()
			out = append(out, p)
		}
	}
	return out
}

// publishingEndpoint is the endpoint that published ports go to, as in
// Docker: the one with the default route, on the sandbox's first non-internal
// network. A sandbox only on internal networks has none.
func publishingEndpoint(sb *Sandbox) (Endpoint, bool) {
	for _, ep := range sb.Endpoints {
		if ep.Gateway.IsValid() {
			return ep, true
		}
	}
	return Endpoint{}, false
}

// firewallGuard is ep's sandbox port as anti-spoofing guards it: its host
// veth may forward only ep's MAC and addresses (IPv4, and IPv6 on a
// dual-stack network). ok is false on a network with anti-spoofing off.
func firewallGuard(n *Network, ep Endpoint) (g firewall.Guard, ok bool) {
	if n.NoAntiSpoof {
		return firewall.Guard{}, false
	}
	mac, _ := parseMAC(ep.MAC)
	return firewall.Guard{Port: ep.HostVeth, MAC: mac, Addrs: endpointAddrs(ep)}, true
}

// fwState is what the store calls for in the firewall.
type fwState struct {
	nets   []firewall.Network
	ports  []firewall.Port
	guards []firewall.Guard
}

// syncFirewall makes nsnet's tables match the store as tx sees it.
func (e *Engine) syncFirewall(tx *store.Tx) error {
	s, err := firewallState(tx)
	if err != nil {
		return err
	}
	return e.k.fw.Sync(s.nets, s.ports, s.guards)
}

// firewallState is what the store calls for: its networks, every published
// port with the address of the sandbox it goes to, and every sandbox port on
// a network with anti-spoofing.
func firewallState(tx *store.Tx) (fwState, error) {
	nets, err := tx.Networks()
	if err != nil {
		return fwState{}, err
	}
	sbs, err := tx.Sandboxes()
	if err != nil {
		return fwState{}, err
	}
	byName := map[string]*Network{}
	for i := range nets {
		byName[nets[i].Name] = &nets[i]
	}
	s := fwState{nets: firewallNetworks(nets), guards: releasedGuards(tx, nets)}
	for _, sb := range sbs {
		s.ports = append(s.ports, firewallPorts(&sb)...)
		for _, ep := range sb.Endpoints {
			if n := byName[ep.Network]; n != nil {
				if g, ok := firewallGuard(n, ep); ok {
					s.guards = append(s.guards, g)
				}
			}
		}
	}
	return s, nil
}

// releasedGuards are the blocked guards of the ports of veths released up
// (with their namespaces) on nets with anti-spoofing, so that a firewall
// rebuilt from the store while the kernel has not destroyed them yet (after
// an outside nft flush ruleset, say) still lets them send nothing.
func releasedGuards(tx *store.Tx, nets []Network) []firewall.Guard {
	var out []firewall.Guard
	for _, n := range nets {
		if n.NoAntiSpoof {
			continue
		}
		for _, veth := range tx.ReleasedVeths(n.Name) {
			out = append(out, firewall.Guard{Port: veth, Blocked: true})
		}
	}
	return out
}

// guard lets ep's port on n forward only ep's MAC and addresses, before its
// veth exists (so it never forwards anything else); if the tables are not as
// the store says, it rebuilds them from the store with ep and the endpoints
// sb has so far in this operation added. Undone by removing the elements.
func (e *Engine) guard(tx *store.Tx, u *undo, sb *Sandbox, n *Network, ep Endpoint) error {
	g, ok := firewallGuard(n, ep)
	if !ok {
		return nil
	}
	if err := e.k.fw.AddGuards([]firewall.Guard{g}); err != nil {
		s, err := firewallState(tx)
		if err != nil {
			return err
		}
		guards := append(s.guards, endpointGuards(tx, sb.Endpoints)...)
		if err := e.k.fw.Sync(s.nets, s.ports, uniqueGuards(append(guards, g))); err != nil {
			return fmt.Errorf("guard sandbox port %s on network %s: %w", ep.HostVeth, n.Name, err)
		}
	}
	u.push(func() error { return e.k.fw.DeleteGuards([]firewall.Guard{g}) })
	return nil
}

// guardWhile guards ep's port (guard) on a goroutine of its own while the
// caller makes the port's veth, where the kernel allows it (overlap). The
// function it returns waits for it and returns its error, every time it is
// called: the caller calls it before the veth's host end goes up (a port that
// is down forwards nothing) and before it uses tx or u again.
func (e *Engine) guardWhile(tx *store.Tx, u *undo, sb *Sandbox, n *Network, ep Endpoint) func() error {
	return e.meanwhile(func() error { return e.guard(tx, u, sb, n, ep) })
}

// guardedAlready is guardWhile's wait for a port whose elements are in
// place, or put back by whoever repairs it (gc).
func guardedAlready() error { return nil }

// endpointGuards are the guards of eps on networks with anti-spoofing.
func endpointGuards(tx *store.Tx, eps []Endpoint) []firewall.Guard {
	var out []firewall.Guard
	for _, ep := range eps {
		if n, err := tx.Network(ep.Network); err == nil {
			if g, ok := firewallGuard(n, ep); ok {
				out = append(out, g)
			}
		}
	}
	return out
}

// uniqueGuards keeps the first guard of each port.
func uniqueGuards(guards []firewall.Guard) []firewall.Guard {
	seen := map[string]bool{}
	var out []firewall.Guard
	for _, g := range guards {
		if !seen[g.Port] {
			seen[g.Port] = true
			out = append(out, g)
		}
	}
	return out
}

// unguardEndpoints removes the elements of sandbox ports that are gone
// (their veths deleted or released), or rebuilds the tables from tx, which no
// longer has them, if the elements are not there.
func (e *Engine) unguardEndpoints(tx *store.Tx, eps []Endpoint) error {
	return e.unguardWhile(tx, eps, false)()
}

// unguardWhile is unguardEndpoints with the elements expired on a goroutine
// of its own (meanwhile) while the caller deletes or releases the ports'
// veths: the elements stay for a second (ExpireGuards), so they are there
// until the ports are gone; ports of veths released up (released) stay in
// the guarded set without their MAC and addresses for minutes (BlockGuards),
// and send nothing until the kernel destroys them. The function it returns
// waits for it, rebuilding the tables if need be: the caller calls it before
// it uses tx again.
func (e *Engine) unguardWhile(tx *store.Tx, eps []Endpoint, released bool) func() error {
	guards := endpointGuards(tx, eps)
	if len(guards) == 0 {
		return func() error { return nil }
	}
	expire := e.k.fw.ExpireGuards
	if released {
		expire = e.k.fw.BlockGuards
	}
	expired := e.meanwhile(func() error { return expire(guards) })
	return func() error {
		if err := expired(); err != nil {
			return e.syncFirewall(tx)
		}
		return nil
	}
}

// publish installs ports in the firewall; if the table is not as the store
// says (flushed from outside), it rebuilds it from the store instead.
func (e *Engine) publish(tx *store.Tx, u *undo, ports []firewall.Port) error {
	if len(ports) == 0 {
		return nil
	}
	if err := e.k.fw.AddPorts(ports); err != nil {
		if err := e.syncFirewall(tx); err != nil {
			return err
		}
	}
	u.push(func() error { return e.k.fw.DeletePorts(ports) })
	return nil
}

// unpublish removes ports from the firewall (rebuilding it from tx if the
// elements are not there) and flushes their connection-tracking entries.
func (e *Engine) unpublish(tx *store.Tx, ports []firewall.Port) error {
	if err := e.dropPorts(tx, ports); err != nil {
		return err
	}
	return e.flushFlows(ports)
}

// dropPorts removes ports from the firewall, or rebuilds it from tx if the
// elements are not there.
func (e *Engine) dropPorts(tx *store.Tx, ports []firewall.Port) error {
	if len(ports) == 0 {
		return nil
	}
	if err := e.k.fw.DeletePorts(ports); err != nil {
		return e.syncFirewall(tx)
	}
	return nil
}

// flushFlows deletes the connection-tracking entries of ports.
func (e *Engine) flushFlows(ports []firewall.Port) error {
	if len(ports) == 0 {
		return nil
	}
	flows := make([]conntrack.Flow, len(ports))
	for i, p := range ports {
		flows[i] = conntrack.Flow{Proto: protoNumber(p.Proto), HostPort: p.HostPort, CtrIP: p.CtrIP}
	}
	_, err := e.k.flows.Delete(flows)
	return err
}

func protoNumber(p string) uint8 {
	switch p {
	case "udp":
		return 17
	case "sctp":
		return 132
	}
	return 6
}

// ReloadFirewall rebuilds nsnet's nftables table from the store, e.g. after
// someone ran `nft flush ruleset`.
func (e *Engine) ReloadFirewall() error {
	return e.mutate(func(tx *store.Tx, _ *undo) error { return e.syncFirewall(tx) })
}

// warnForwardDrops tells the user when another table's forward chain drops
// by default, which silently breaks n beyond its bridge.
func (e *Engine) warnForwardDrops(n *Network) {
	drops, err := e.k.fw.ForwardDrops()
	for _, d := range drops {
		e.opts.Warn(fmt.Sprintf("%s drops forwarded packets by default (policy drop), so sandboxes of network %s cannot reach beyond bridge %s "+
			"and its published ports do not answer from outside; nsnet does not edit chains it does not own: let them through, e.g. "+
			"nft insert rule %s iifname %q accept; nft insert rule %s oifname %q accept",
			d, n.Name, n.Bridge, d.Ref(), n.Bridge, d.Ref(), n.Bridge))
	}
	if err != nil {
		e.opts.Warn(fmt.Sprintf("cannot check other tables' forward chains: %v", err))
	}
}
