package engine

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/validate"
)

// ConnectSpec attaches a sandbox, while it runs, to one more network.
type ConnectSpec struct {
	Network string   // name, ID or unique ID prefix
	Sandbox string   // name, ID or unique ID prefix
	IP      string   // static address on the network (default: the next free one, round-robin)
	IP6     string   // static IPv6 address on a dual-stack network (default: the next free one, round-robin)
	Aliases []string // more names of the sandbox on this network, for its resolver
	MAC     string   // static MAC (default: derived from the address)
	IfName  string   // the interface's name in the sandbox (default: the lowest free ethN)
}

// connectPlan is a checked ConnectSpec.
type connectPlan struct {
	ip      netip.Addr
	ip6     netip.Addr
	mac     net.HardwareAddr
	aliases []string // sorted, without repeats
	ifName  string
}

// Connect adds the sandbox's next free interface (eth1, eth2, ...) on the
// network, with its address and, if the sandbox has no default route yet and
// the network is not internal, the default route; names follow. As in Docker,
// sandboxes in host, none or container: mode cannot be connected, nor one
// already on the network.
func (e *Engine) Connect(spec ConnectSpec) (*Sandbox, error) {
	c, err := parseConnect(spec)
	if err != nil {
		return nil, err
	}
	var out *Sandbox
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		sb, n, err := connectable(tx, spec.Sandbox, spec.Network)
		if err != nil {
			return err
		}
		out = sb
		return e.connect(tx, u, sb, n, c)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// connect attaches sb to n as c asks, in tx and the kernel.
func (e *Engine) connect(tx *store.Tx, u *undo, sb *Sandbox, n *Network, c connectPlan) error {
	ep := Endpoint{Network: n.Name, IfName: c.ifName, HostVeth: hostVethName(sb.ID, n.Name)}
	if ep.IfName == "" {
		ep.IfName = nextIfName(sb)
	} else if other := endpointNamed(sb, ep.IfName); other != nil {
		return fmt.Errorf("sandbox %s has an interface %s already, on network %s: choose another interface name", sb.Name, ep.IfName, other.Network)
	}
	if n.Name != DefaultNetwork {
		ep.Aliases = c.aliases
	}
	if err := addressEndpoint(tx, n, &ep, c.ip, c.mac); err != nil {
		return err
	}
	if err := addressEndpoint6(tx, n, &ep, c.ip6); err != nil {
		return err
	}
	if _, routed := publishingEndpoint(sb); !routed && !n.Internal {
		routeVia(&ep, n)
	}
	if err := e.intend(u, &journal.Intent{Op: journal.OpNetworkConnect, Name: sb.Name, ObjectID: sb.ID,
		Networks: []string{n.Name}, Links: []string{ep.HostVeth}}); err != nil {
		return err
	}
	if err := e.attachTo(tx, u, sb, n, ep); err != nil {
		return err
	}
	e.checkpoint("network-connect:after-veth")
	sb.Endpoints = append(sb.Endpoints, ep)
	if err := tx.PutSandbox(sb); err != nil {
		return err
	}
	if err := e.syncResident(tx, u, sb); err != nil {
		return err
	}
	return e.writeEtcOfShared(tx, u, sb)
}

func parseConnect(spec ConnectSpec) (c connectPlan, err error) {
	if spec.IP != "" {
		if c.ip, err = validate.IPv4(spec.IP); err != nil {
			return c, err
		}
	}
	if spec.IP6 != "" {
		if c.ip6, err = validate.IPv6(spec.IP6); err != nil {
			return c, fmt.Errorf("--ip6: %w", err)
		}
	}
	if spec.MAC != "" {
		if c.mac, err = validate.MAC(spec.MAC); err != nil {
			return c, err
		}
	}
	if spec.IfName != "" {
		if err := validIfName(spec.IfName); err != nil {
			return c, fmt.Errorf("sandbox %s: %w", spec.Sandbox, err)
		}
	}
	for _, a := range spec.Aliases {
		if err := validate.Name("alias", a); err != nil {
			return c, fmt.Errorf("sandbox %s: %w", spec.Sandbox, err)
		}
	}
	c.aliases, c.ifName = slices.Compact(slices.Sorted(slices.Values(spec.Aliases))), spec.IfName
	return c, nil
}

// connectable looks the sandbox and the network up and refuses, with
// Docker's meaning, a connection that cannot be.
func connectable(tx *store.Tx, sandbox, network string) (*Sandbox, *Network, error) {
	sb, err := sandboxByRef(tx, sandbox)
	if err != nil {
		return nil, nil, err
	}
	n, err := networkByRef(tx, network)
	if err != nil {
		return nil, nil, err
	}
	if n.Overlay != nil {
		return nil, nil, fmt.Errorf("network %s is an overlay network: a sandbox joins one when it is created (sandbox create --network %s), not with network connect", n.Name, n.Name)
	}
	if sb.Mode != store.ModeBridge {
		return nil, nil, fmt.Errorf("sandbox %s is in %s mode: only sandboxes on bridge networks can be connected to others", sb.Name, modeName(sb))
	}
	if slices.ContainsFunc(sb.Endpoints, func(ep Endpoint) bool { return ep.Network == n.Name }) {
		return nil, nil, fmt.Errorf("sandbox %s is already on network %s (as %s)", sb.Name, n.Name, endpointOn(sb, n.Name).IfName)
	}
	return sb, n, nil
}

func modeName(sb *Sandbox) string {
	if sb.Mode == store.ModeContainer {
		return "container:" + sb.Container
	}
	return sb.Mode
}

// nextIfName is the lowest ethN the sandbox does not use.
func nextIfName(sb *Sandbox) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("eth%d", i)
		if !slices.ContainsFunc(sb.Endpoints, func(ep Endpoint) bool { return ep.IfName == name }) {
			return name
		}
	}
}

// endpointNamed is sb's endpoint whose interface is named ifName, or nil.
func endpointNamed(sb *Sandbox, ifName string) *Endpoint {
	for i := range sb.Endpoints {
		if sb.Endpoints[i].IfName == ifName {
			return &sb.Endpoints[i]
		}
	}
	return nil
}

func endpointOn(sb *Sandbox, network string) *Endpoint {
	for i := range sb.Endpoints {
		if sb.Endpoints[i].Network == network {
			return &sb.Endpoints[i]
		}
	}
	return nil
}

// attachTo makes ep in sb's namespace, as a sandbox create does.
func (e *Engine) attachTo(tx *store.Tx, u *undo, sb *Sandbox, n *Network, ep Endpoint) error {
	ns, err := e.openOwnNamespace(sb)
	if err != nil {
		return err
	}
	defer ns.Close()
	return e.attach(tx, u, ns, sb, n, ep)
}

// Disconnect removes the sandbox's interface on the network and everything
// that followed it: its address, its names; if it carried the default route,
// the route moves to the next network that is not internal, and so do the
// sandbox's published ports. A sandbox that publishes ports and would be left
// without such a network is refused, unless force, which unpublishes them.
func (e *Engine) Disconnect(network, sandbox string, force bool) (*Sandbox, error) {
	var out *Sandbox
	err := e.mutate(func(tx *store.Tx, u *undo) error {
		sb, n, err := disconnectable(tx, sandbox, network)
		if err != nil {
			return err
		}
		if err := e.intend(u, &journal.Intent{Op: journal.OpNetworkDisconnect, Name: sb.Name, ObjectID: sb.ID,
			Networks: []string{n.Name}, Links: []string{endpointOn(sb, n.Name).HostVeth}}); err != nil {
			return err
		}
		if err := e.disconnect(tx, u, sb, n, force); err != nil {
			return err
		}
		e.checkpoint("network-disconnect:after-teardown")
		out = sb
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func disconnectable(tx *store.Tx, sandbox, network string) (*Sandbox, *Network, error) {
	sb, err := sandboxByRef(tx, sandbox)
	if err != nil {
		return nil, nil, err
	}
	n, err := networkByRef(tx, network)
	if err != nil {
		return nil, nil, err
	}
	if sb.Mode != store.ModeBridge {
		return nil, nil, fmt.Errorf("sandbox %s is in %s mode: it is on no network to disconnect", sb.Name, modeName(sb))
	}
	if endpointOn(sb, n.Name) == nil {
		return nil, nil, fmt.Errorf("sandbox %s is not on network %s", sb.Name, n.Name)
	}
	return sb, n, nil
}

// disconnect removes sb's endpoint on n in tx and the kernel: the default
// route and the published ports move first, then the veth goes.
func (e *Engine) disconnect(tx *store.Tx, u *undo, sb *Sandbox, n *Network, force bool) error {
	gone := *endpointOn(sb, n.Name)
	after := &Sandbox{Name: sb.Name, ID: sb.ID, Mode: sb.Mode, NetNS: sb.NetNS, Ports: sb.Ports, Runtime: sb.Runtime,
		Endpoints: slices.DeleteFunc(slices.Clone(sb.Endpoints), func(ep Endpoint) bool { return ep.Network == n.Name })}
	if gone.Gateway.IsValid() {
		rerouteTo(tx, after.Endpoints)
	}
	if _, ok := publishingEndpoint(after); !ok && len(sb.Ports) > 0 {
		if !force {
			return fmt.Errorf("sandbox %s publishes ports through network %s, and would have no network left to publish them on: remove them first (nsnet port rm %s ...), or use --force to unpublish them", sb.Name, n.Name, sb.Name)
		}
		if err := e.unpublishAll(tx, u, sb); err != nil {
			return err
		}
		after.Ports = nil
	}
	if err := e.moveRoute(tx, u, sb, after); err != nil {
		return err
	}
	if err := e.movePorts(tx, u, sb, after); err != nil {
		return err
	}
	if err := e.releaseEndpoint(tx, sb, gone); err != nil {
		return err
	}
	sb.Endpoints, sb.Ports = after.Endpoints, after.Ports
	if err := tx.PutSandbox(sb); err != nil {
		return err
	}
	if err := e.unguardEndpoints(tx, []Endpoint{gone}); err != nil {
		return err
	}
	if err := e.syncResident(tx, u, sb, n.Name); err != nil {
		return err
	}
	return e.writeEtcOfShared(tx, u, sb)
}

// writeEtcOfShared writes sb's files and those of the sandboxes that share
// its namespace, whose files are sb's.
func (e *Engine) writeEtcOfShared(tx *store.Tx, u *undo, sb *Sandbox) error {
	if err := e.writeEtc(tx, u, sb); err != nil {
		return err
	}
	sharers, err := sharersOf(tx, sb.Name)
	if err != nil {
		return err
	}
	for i := range sharers {
		if err := e.writeEtc(tx, u, &sharers[i]); err != nil {
			return err
		}
	}
	return nil
}

// rerouteTo gives the default route to the first endpoint of eps on a
// network that is not internal.
func rerouteTo(tx *store.Tx, eps []Endpoint) {
	for i := range eps {
		if n, err := tx.Network(eps[i].Network); err == nil && !n.Internal {
			routeVia(&eps[i], n)
			return
		}
	}
}

// moveRoute routes sb's namespace by default via the endpoint that takes
// the default route over in after, if one does; undone, the route goes back.
// (Undo steps run after the transaction: they take no tx.)
func (e *Engine) moveRoute(tx *store.Tx, u *undo, sb, after *Sandbox) error {
	for _, ep := range after.Endpoints {
		old := *endpointOn(sb, ep.Network)
		if !ep.Gateway.IsValid() || old.Gateway.IsValid() {
			continue
		}
		n, err := tx.Network(ep.Network)
		if err != nil {
			return err
		}
		if err := e.repairEndpoint(sb, n, ep); err != nil {
			return err
		}
		u.push(func() error { return e.repairEndpoint(sb, n, old) })
	}
	return nil
}

// repairEndpoint brings ep's veth pair on n to what ep describes, its
// default route among the rest.
func (e *Engine) repairEndpoint(sb *Sandbox, n *Network, ep Endpoint) error {
	host, err := e.hostLinks()
	if err != nil {
		return err
	}
	ns, err := e.openOwnNamespace(sb)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := host.RepairVeth(e.vethSpec(ns, sb, n, ep, guardedAlready)); err != nil {
		return fmt.Errorf("sandbox %s on network %s: %w", sb.Name, ep.Network, err)
	}
	return nil
}

// movePorts sends sb's published ports to their address in after, if it
// changed: the table's elements and the connections tracked to the old
// address. (The resident's targets follow in syncResident.)
func (e *Engine) movePorts(tx *store.Tx, u *undo, sb, after *Sandbox) error {
	before, now := firewallPorts(sb), firewallPorts(after)
	if len(before) == 0 || len(now) == 0 || now[0].CtrIP == before[0].CtrIP {
		return nil
	}
	if err := e.dropPorts(tx, before); err != nil {
		return err
	}
	u.push(func() error { return e.k.fw.AddPorts(before) })
	if err := e.publish(tx, u, now); err != nil {
		return err
	}
	if err := e.flushFlows(before); err != nil {
		e.opts.Warn(fmt.Sprintf("sandbox %s: forget the connections to its old address: %v", sb.Name, err))
	}
	return nil
}

// unpublishAll forgets every port sb publishes, in tx and the kernel.
func (e *Engine) unpublishAll(tx *store.Tx, u *undo, sb *Sandbox) error {
	for _, m := range sb.Ports {
		if err := tx.DeletePort(m, sb.Name); err != nil {
			return err
		}
	}
	if err := e.unpublish(tx, firewallPorts(sb)); err != nil {
		return err
	}
	e.releasePorts(u, sb.Name, heldPorts(sb))
	return nil
}

// releaseEndpoint deletes ep's veth (the namespace stays) and its lease and
// MAC.
func (e *Engine) releaseEndpoint(tx *store.Tx, sb *Sandbox, ep Endpoint) error {
	host, err := e.hostLinks()
	if err != nil {
		return err
	}
	if err := e.deleteOwnLink(host, ep.HostVeth); err != nil {
		return fmt.Errorf("sandbox %s on network %s: %w", sb.Name, ep.Network, err)
	}
	if err := deleteLeases(tx, ep); err != nil {
		return err
	}
	return tx.DeleteMAC(ep.Network, ep.MAC)
}

// deleteLeases releases ep's addresses.
func deleteLeases(tx *store.Tx, ep Endpoint) error {
	for _, a := range []netip.Prefix{ep.Address, ep.Address6} {
		if !a.IsValid() {
			continue
		}
		if err := tx.DeleteLease(ep.Network, a.Addr()); err != nil {
			return err
		}
	}
	return nil
}
