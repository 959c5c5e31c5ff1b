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
			Subnet6: n.Subnet6, Gateway6: n.Gateway6, Internal: n.Internal, NoMasquerade: n.NoMasquerade}
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

// syncFirewall makes nsnet's table match the store as tx sees it.
func (e *Engine) syncFirewall(tx *store.Tx) error {
	nets, ports, err := firewallState(tx)
	if err != nil {
		return err
	}
	return e.k.fw.Sync(nets, ports)
}

// firewallState is what the store calls for: its networks and every
// published port with the address of the sandbox it goes to.
func firewallState(tx *store.Tx) ([]firewall.Network, []firewall.Port, error) {
	nets, err := tx.Networks()
	if err != nil {
		return nil, nil, err
	}
	sbs, err := tx.Sandboxes()
	if err != nil {
		return nil, nil, err
	}
	var ports []firewall.Port
	for _, s := range sbs {
		ports = append(ports, firewallPorts(&s)...)
	}
	return firewallNetworks(nets), ports, nil
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
