package engine

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/sysctl"
	"github.com/nsnet/nsnet/internal/validate"
	"github.com/nsnet/nsnet/types"
)

// Network is a stored bridge network.
type Network = types.Network

// DefaultNetwork is the network used when no --network is given. Like
// Docker's docker0 it is made on first use, and made again after removal.
const DefaultNetwork = "bridge"

// DefaultBridge is the device name of the default network. Names of its form,
// "nsnet" followed by digits, are reserved for default networks.
const DefaultBridge = "nsnet0"

// DefaultMTU is the MTU of networks made without --mtu.
const DefaultMTU = 1500

// NetworkSpec is the user's request for a network; empty fields get defaults.
type NetworkSpec struct {
	Name     string
	Subnet   string // CIDR; chosen from the address pools if empty
	Gateway  string // first host of the subnet if empty
	Bridge   string // br-<id> (nsnet0 for the default network) if empty
	Internal bool
	MTU      int      // DefaultMTU if zero
	DNS      []string // servers for names the network's resolver does not know (default: the host's)
	// IPv6 makes the network dual-stack: Subnet6 (IPv6 CIDR; a /64 from the
	// IPv6 pools if empty) and Gateway6 (its first address if empty) are
	// only accepted with it.
	IPv6     bool
	Subnet6  string
	Gateway6 string
	Labels   map[string]string
	// Options are Docker's bridge driver options (-o), one of
	// NetworkOptions each: the bridge's name and MTU (as Bridge and MTU),
	// no masquerade, no traffic between the sandboxes, the host address
	// that ports are published on by default.
	Options map[string]string
	// NoAntiSpoof lets the network's sandboxes send from any MAC and address
	// (default: each sandbox port forwards only its sandbox's own).
	NoAntiSpoof bool
	// Overlay makes this host's part of an overlay network (see overlay.go):
	// the overlay agent sets it; Device is chosen here.
	Overlay *types.Overlay
}

// CreateNetwork validates spec, makes the bridge and its firewall rules, and
// stores the network.
func (e *Engine) CreateNetwork(spec NetworkSpec) (*Network, error) {
	n, err := parseNetworkSpec(spec)
	if err != nil {
		return nil, err
	}
	n.ID = e.newID()
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		return e.createNetwork(tx, u, n, picksOf(spec))
	})
	if err != nil {
		return nil, err
	}
	if !n.Internal {
		e.warnForwardDrops(n)
		e.warnLocalnet()
	}
	return n, nil
}

// parseNetworkSpec checks everything that needs neither store nor kernel.
func parseNetworkSpec(spec NetworkSpec) (*Network, error) {
	if err := validate.Name("network", spec.Name); err != nil {
		return nil, err
	}
	if spec.Name == "host" || spec.Name == "none" {
		return nil, fmt.Errorf("network name %q is reserved for the %s mode: choose another name", spec.Name, spec.Name)
	}
	n := &Network{Name: spec.Name, Bridge: spec.Bridge, Internal: spec.Internal, MTU: spec.MTU, NoAntiSpoof: spec.NoAntiSpoof}
	var err error
	if n.DNS, err = parseDNS("network "+spec.Name, spec.DNS); err != nil {
		return nil, err
	}
	if n.Labels, err = parseLabels("network "+spec.Name, spec.Labels); err != nil {
		return nil, err
	}
	if err := applyOptions(n, spec); err != nil {
		return nil, err
	}
	if n.MTU == 0 {
		n.MTU = DefaultMTU
	}
	if n.MTU < 68 || n.MTU > 65535 {
		return nil, fmt.Errorf("invalid MTU %d for network %s: it must be between 68 and 65535", n.MTU, spec.Name)
	}
	if n.Bridge != "" {
		if err := validate.IfName(n.Bridge); err != nil {
			return nil, fmt.Errorf("invalid --bridge for network %s: %w", spec.Name, err)
		}
		if isDefaultBridge(n.Bridge) && spec.Name != DefaultNetwork {
			return nil, fmt.Errorf("--bridge %s for network %s: names of the form nsnetN (nsnet followed by digits) are reserved for the default network %q of each state root: choose another --bridge",
				n.Bridge, spec.Name, DefaultNetwork)
		}
	}
	if spec.Subnet != "" {
		s, err := ipam.ParseSubnet(spec.Subnet)
		if err != nil {
			return nil, err
		}
		n.Subnet = s
	}
	if err := parseOverlay(spec, n); err != nil {
		return nil, err
	}
	if spec.Gateway != "" {
		if spec.Subnet == "" {
			return nil, fmt.Errorf("--gateway %s needs --subnet: a gateway is only meaningful in a subnet you choose", spec.Gateway)
		}
		gw, err := validate.IPv4(spec.Gateway)
		if err != nil {
			return nil, fmt.Errorf("invalid gateway: %w", err)
		}
		if err := ipam.CheckGateway(n.Subnet, gw); err != nil {
			return nil, err
		}
		n.Gateway = gw
	}
	return n, parseIPv6(spec, n)
}

// parseIPv6 checks the IPv6 part of spec into n: a subnet and gateway only
// with --ipv6, the gateway only with the subnet.
func parseIPv6(spec NetworkSpec, n *Network) error {
	if !spec.IPv6 {
		if v := spec.Subnet6 + spec.Gateway6; v != "" {
			return fmt.Errorf("network %s: IPv6 --subnet or --gateway %q needs --ipv6: add --ipv6 to make a dual-stack network", spec.Name, v)
		}
		return nil
	}
	if spec.Subnet6 != "" {
		s, err := ipam.ParseSubnet6(spec.Subnet6)
		if err != nil {
			return err
		}
		n.Subnet6 = s
	}
	if spec.Gateway6 == "" {
		return nil
	}
	if spec.Subnet6 == "" {
		return fmt.Errorf("IPv6 --gateway %s needs an IPv6 --subnet: a gateway is only meaningful in a subnet you choose", spec.Gateway6)
	}
	gw, err := validate.IPv6(spec.Gateway6)
	if err != nil {
		return fmt.Errorf("invalid IPv6 gateway: %w", err)
	}
	if err := ipam.CheckGateway(n.Subnet6, gw); err != nil {
		return err
	}
	n.Gateway6 = gw
	return nil
}

// isDefaultBridge reports whether name has the form reserved for default
// networks' bridges: "nsnet" followed by digits (DefaultBridge is one).
func isDefaultBridge(name string) bool {
	digits := strings.TrimPrefix(name, "nsnet")
	return len(digits) > 0 && len(digits) < len(name) && strings.Trim(digits, "0123456789") == ""
}

// picks say what createNetwork chooses for a network: what the user left out.
type picks struct{ subnet, gateway, subnet6, gateway6 bool }

// picksOf are the picks for what spec leaves out.
func picksOf(spec NetworkSpec) picks {
	return picks{subnet: spec.Subnet == "", gateway: spec.Gateway == "",
		subnet6: spec.IPv6 && spec.Subnet6 == "", gateway6: spec.IPv6 && spec.Gateway6 == ""}
}

// createNetwork completes n inside tx (subnets, gateways, bridge name) and
// applies it to the kernel, registering undo steps.
func (e *Engine) createNetwork(tx *store.Tx, u *undo, n *Network, pick picks) error {
	if _, err := tx.Network(n.Name); err == nil {
		return fmt.Errorf("network %s already exists: remove it first (nsnet network rm %s) or choose another name", n.Name, n.Name)
	}
	nets, err := tx.Networks()
	if err != nil {
		return err
	}
	host, err := e.hostLinks()
	if err != nil {
		return err
	}
	if err := e.chooseSubnets(host, n, nets, pick); err != nil {
		return err
	}
	if err := chooseBridge(host, n, nets); err != nil {
		return err
	}
	if err := e.checkBridgeFiltering(n); err != nil {
		return err
	}
	if n.Overlay != nil {
		n.Overlay.Device = overlayDevice(n.ID)
	}
	n.BridgeMAC = ipam.MACFromIP(n.Gateway).String()
	n.Created = e.clock().UTC()
	it := &journal.Intent{Op: journal.OpNetworkCreate, Name: n.Name, ObjectID: n.ID, Links: []string{n.Bridge}}
	if it.Forwarding, it.Forwarding6, err = e.mayEnableForwarding(n); err != nil {
		return err
	}
	if err := e.intend(u, it); err != nil {
		return err
	}
	return e.applyNetwork(tx, host, u, n)
}

// mayEnableForwarding reports whether creating n may turn IPv4 (and IPv6)
// forwarding on: it needs forwarding, which is off. The intent says so, and
// recovery turns it back off.
func (e *Engine) mayEnableForwarding(n *Network) (v4, v6 bool, err error) {
	if n.Internal {
		return false, false, nil
	}
	on, err := e.k.sys.Get(sysctl.IPv4Forward)
	if err != nil {
		return false, false, fmt.Errorf("network %s: read IPv4 forwarding: %w", n.Name, err)
	}
	if !n.IPv6() {
		return on != "1", false, nil
	}
	on6, err := e.k.sys.Get(sysctl.IPv6Forward)
	if err != nil {
		return false, false, fmt.Errorf("network %s: read IPv6 forwarding: %w", n.Name, err)
	}
	return on != "1", on6 != "1", nil
}

// chooseSubnets completes n's subnets and gateways: what pick says from the
// pools and the subnets' first addresses, checking the rest against the
// other networks and the host's routes.
func (e *Engine) chooseSubnets(host links, n *Network, nets []Network, pick picks) error {
	routes, err := host.Routes()
	if err != nil {
		return err
	}
	taken := slices.Clone(routes)
	for _, o := range nets {
		taken = append(taken, o.Subnet)
		if o.IPv6() {
			taken = append(taken, o.Subnet6)
		}
	}
	choose := func(s netip.Prefix, pick bool, pools []AddressPool) (netip.Prefix, error) {
		if !pick {
			return s, checkOverlaps(s, nets, routes)
		}
		s, err := ipam.PickSubnet(pools, taken)
		if err != nil {
			return s, fmt.Errorf("choose a subnet for network %s: %w", n.Name, err)
		}
		return s, nil
	}
	if n.Subnet, err = choose(n.Subnet, pick.subnet, e.pools4()); err != nil {
		return err
	}
	if pick.gateway {
		n.Gateway = ipam.DefaultGateway(n.Subnet)
	}
	if !n.Subnet6.IsValid() && !pick.subnet6 {
		return nil
	}
	pools6 := ipam.Pools6(e.opts.AddressPools, e.opts.HostID)
	if n.Subnet6, err = choose(n.Subnet6, pick.subnet6, pools6); err != nil {
		return err
	}
	if pick.gateway6 {
		n.Gateway6 = ipam.DefaultGateway(n.Subnet6)
	}
	return nil
}

// pools4 are the IPv4 address pools: the options', or, if they have only
// IPv6 ones, the defaults.
func (e *Engine) pools4() []AddressPool {
	if p := ipam.Pools4(e.opts.AddressPools); len(p) > 0 {
		return p
	}
	return ipam.DefaultPools
}

// checkOverlaps refuses a subnet s that overlaps a subnet of another
// network or a route of the host.
func checkOverlaps(s netip.Prefix, nets []Network, routes []netip.Prefix) error {
	for _, o := range nets {
		for _, sub := range []netip.Prefix{o.Subnet, o.Subnet6} {
			if sub.IsValid() && sub.Overlaps(s) {
				return fmt.Errorf("subnet %s overlaps subnet %s of network %s: choose another --subnet", s, sub, o.Name)
			}
		}
	}
	for _, r := range routes {
		if r.Overlaps(s) {
			return fmt.Errorf("subnet %s overlaps the host route to %s: choose another --subnet", s, r)
		}
	}
	return nil
}

func chooseBridge(host links, n *Network, nets []Network) error {
	switch {
	case n.Bridge == "" && n.Name == DefaultNetwork:
		name, err := defaultBridge(host)
		if err != nil {
			return err
		}
		n.Bridge = name
	case n.Bridge == "":
		n.Bridge = "br-" + n.ID[:12]
	}
	for _, o := range nets {
		if o.Bridge == n.Bridge {
			return fmt.Errorf("bridge %s is already used by network %s: choose another --bridge", n.Bridge, o.Name)
		}
	}
	exists, err := host.Exists(n.Bridge)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("interface %s already exists on the host: choose another --bridge name", n.Bridge)
	}
	return nil
}

// defaultBridge is DefaultBridge (nsnet0), or, if another state root's
// default network has it already, the first free of nsnet1 to nsnet99.
func defaultBridge(host links) (string, error) {
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("nsnet%d", i)
		exists, err := host.Exists(name)
		if err != nil || !exists {
			return name, err
		}
	}
	return "", fmt.Errorf("interfaces nsnet0 to nsnet99 all exist: remove unused default networks (nsnet network rm bridge) of other state roots")
}

// applyNetwork stores n and makes its bridge, forwarding and firewall rules.
func (e *Engine) applyNetwork(tx *store.Tx, host links, u *undo, n *Network) error {
	old, err := firewallState(tx)
	if err != nil {
		return err
	}
	if err := tx.PutNetwork(n); err != nil {
		return err
	}
	if err := e.createBridge(host, n); err != nil {
		return err
	}
	u.push(func() error { return host.DeleteLink(n.Bridge) })
	e.checkpoint("network-create:after-bridge")
	if !n.Internal {
		if err := e.enableForwarding(u, n); err != nil {
			return err
		}
	}
	if !n.Internal && n.IPv6() {
		if err := e.enableForwarding6(u, n); err != nil {
			return err
		}
	}
	if err := e.syncFirewall(tx); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	u.push(func() error { return e.k.fw.Sync(old.nets, old.ports, old.guards) })
	return nil
}

// createBridge makes n's bridge as the store describes it.
func (e *Engine) createBridge(host links, n *Network) error {
	if err := host.CreateBridge(e.bridgeSpec(n)); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// bridgeSpec is n's bridge as the store describes it.
func (e *Engine) bridgeSpec(n *Network) link.Bridge {
	mac, _ := parseMAC(n.BridgeMAC)
	return link.Bridge{
		Name: n.Bridge, MTU: n.MTU, MAC: mac, Alias: e.owner.NetworkMark(n.Name), Group: owner.Group,
		Address:  netip.PrefixFrom(n.Gateway, n.Subnet.Bits()),
		Address6: gatewayPrefix6(n),
		BeforeUp: func() error { return e.applySettings(bridgeSettings(n)) },
	}
}

// gatewayPrefix6 is the IPv6 gateway address of a dual-stack n with its
// prefix length; zero for an IPv4-only one.
func gatewayPrefix6(n *Network) netip.Prefix {
	if !n.IPv6() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits())
}

// RemoveNetwork removes a network that no sandbox is attached to: its
// firewall rules, its bridge and its record. ref is its name, ID or a unique
// ID prefix.
func (e *Engine) RemoveNetwork(ref string) error {
	return e.mutate(func(tx *store.Tx, u *undo) error {
		n, err := networkByRef(tx, ref)
		if err != nil {
			return err
		}
		return e.removeNetwork(tx, u, n)
	})
}

// removeNetwork removes n, refusing it while sandboxes are attached.
func (e *Engine) removeNetwork(tx *store.Tx, u *undo, n *Network) error {
	users, err := attachedSandboxes(tx, n.Name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("network %s has attached sandboxes %v: remove them first (nsnet sandbox rm %s)", n.Name, users, joinNames(users))
	}
	if err := tx.DeleteNetwork(n.Name); err != nil {
		return err
	}
	err = e.intend(u, &journal.Intent{Op: journal.OpNetworkRemove, Name: n.Name, ObjectID: n.ID, Links: []string{n.Bridge}})
	if err != nil {
		return err
	}
	if err := e.teardownNetwork(tx, n); err != nil {
		return err
	}
	e.checkpoint("network-rm:after-teardown")
	return nil
}

// teardownNetwork removes n's kernel objects once its record is deleted in tx.
func (e *Engine) teardownNetwork(tx *store.Tx, n *Network) error {
	var errs []error
	if err := e.syncFirewall(tx); err != nil {
		errs = append(errs, err)
	}
	host, err := e.hostLinks()
	if err == nil && n.Overlay != nil {
		err = e.deleteOwnLink(host, n.Overlay.Device)
	}
	if err == nil {
		err = e.deleteOwnBridge(host, n)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove network %s: %w; the network is kept, retry nsnet network rm %s", n.Name, errors.Join(errs...), n.Name)
	}
	return nil
}

// deleteOwnBridge deletes n's bridge, unless someone else's interface has
// its name now (foreignLink), which it leaves alone with a warning.
func (e *Engine) deleteOwnBridge(host links, n *Network) error {
	why, err := e.foreignLink(host, n.Bridge)
	if err != nil {
		return err
	}
	if why != "" {
		e.opts.Warn(fmt.Sprintf("network %s: left %s alone: it is someone else's interface now (%s), not the network's bridge", n.Name, n.Bridge, why))
		return nil
	}
	return host.DeleteLink(n.Bridge)
}

// Networks lists every network, by name.
func (e *Engine) Networks() ([]Network, error) {
	var out []Network
	err := e.read(func(tx *store.Tx) error {
		var err error
		out, err = tx.Networks()
		return err
	})
	return out, err
}

// NetworkDetail is a network with the sandboxes attached to it.
type NetworkDetail struct {
	Network
	Attached []Attachment
}

// Attachment is one sandbox's endpoint on a network.
type Attachment struct {
	Sandbox string
	Endpoint
}

// InspectNetwork returns the network that ref (its name, ID or a unique ID
// prefix) names, and the addresses in use on it.
func (e *Engine) InspectNetwork(ref string) (*NetworkDetail, error) {
	var d NetworkDetail
	err := e.read(func(tx *store.Tx) error {
		n, err := networkByRef(tx, ref)
		if err != nil {
			return err
		}
		d.Network = *n
		sbs, err := tx.Sandboxes()
		for _, s := range sbs {
			for _, ep := range s.Endpoints {
				if ep.Network == n.Name {
					d.Attached = append(d.Attached, Attachment{Sandbox: s.Name, Endpoint: ep})
				}
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func networkNotFound(name string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("network %s %w (see nsnet network ls)", name, store.ErrNotFound)
	}
	return err
}

func attachedSandboxes(tx *store.Tx, network string) ([]string, error) {
	sbs, err := tx.Sandboxes()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range sbs {
		for _, ep := range s.Endpoints {
			if ep.Network == network {
				out = append(out, s.Name)
			}
		}
	}
	return out, nil
}

// parseLabels checks labels of what, and returns a copy (nil if none).
func parseLabels(what string, labels map[string]string) (map[string]string, error) {
	if err := validate.Labels(what, labels); err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		return nil, nil
	}
	return maps.Clone(labels), nil
}

// parseDNS parses --dns servers (IPv4 or IPv6 addresses), for what.
func parseDNS(what string, servers []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range servers {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return nil, fmt.Errorf("invalid --dns %q for %s: give the IP address of a DNS server", s, what)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// CheckNetworkSpec reports what is wrong with spec, as CreateNetwork would
// refuse it before it looks at the store or the kernel; nil if nothing is.
func CheckNetworkSpec(spec NetworkSpec) error {
	_, err := parseNetworkSpec(spec)
	return err
}
