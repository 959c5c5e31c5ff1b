package engine

// Overlay networks span hosts: each host has its own part of one (a bridge,
// as for a local network, plus a VXLAN device on it that the overlay agent
// programs), and the network's addresses are allocated cluster-wide, through
// Options.Cluster, so that no two hosts ever hand out the same one. The
// engine only asks the cluster for an address when a sandbox joins such a
// network and gives it back when the sandbox goes; everything that crosses
// hosts (the cluster store, the VXLAN device and its forwarding entries) is
// the overlay agent's (package overlay). gc keeps the VXLAN device of each
// overlay network, and removing the network removes it.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/nsnet/nsnet/internal/store"
)

// Cluster allocates the addresses of overlay networks across hosts (package
// agentapi asks the host's overlay agent, which uses etcd). Reserve takes ip
// (or, if ip is not valid, the lowest free address of n's subnet) for
// sandbox on this host, all or nothing; Release gives it back, and succeeds
// if it is gone already.
type Cluster interface {
	Reserve(n *Network, sandbox string, ip netip.Addr) (netip.Addr, error)
	Release(n *Network, sandbox string, ip netip.Addr) error
}

// overlayDevice is the name of the VXLAN device of the overlay network with
// ID id.
func overlayDevice(id string) string { return "vx-" + id[:12] }

// parseOverlay checks the overlay part of spec into n.
func parseOverlay(spec NetworkSpec, n *Network) error {
	o := spec.Overlay
	if o == nil {
		return nil
	}
	if spec.Subnet == "" {
		return fmt.Errorf("overlay network %s needs --subnet: every host must use the same one", spec.Name)
	}
	if o.VNI == 0 || o.VNI > 1<<24-1 {
		return fmt.Errorf("invalid VNI %d for overlay network %s: it must be between 1 and 16777215", o.VNI, spec.Name)
	}
	if len(o.Store) == 0 {
		return fmt.Errorf("overlay network %s needs the cluster store's endpoints", spec.Name)
	}
	if spec.Internal {
		return fmt.Errorf("overlay network %s cannot be --internal (not supported yet)", spec.Name)
	}
	if spec.IPv6 || spec.Subnet6 != "" || spec.Gateway6 != "" {
		return fmt.Errorf("overlay network %s cannot be dual-stack: overlay networks are IPv4 only, leave out --ipv6 and IPv6 subnets", spec.Name)
	}
	if _, err := OverlayOptions(spec.Name, spec.MTU, spec.Options); err != nil {
		return err
	}
	c := *o
	c.Store = append([]string(nil), o.Store...)
	n.Overlay = &c
	return nil
}

// overlayRefuses says why an overlay network refuses each of Docker's
// bridge driver options but the MTU.
var overlayRefuses = map[string]string{
	OptBridgeName:  "every host names its own part's bridge, as for --bridge",
	OptMasquerade:  "its subnet spans hosts, so no one host can be its router",
	OptICC:         "nsnet does not filter the traffic that crosses hosts over VXLAN",
	OptHostBinding: "the network spans hosts, and an address is one host's",
}

// OverlayOptions checks the driver options (-o) of overlay network name: it
// takes only com.docker.network.driver.mtu, which must agree with mtu
// (--mtu, 0 if not given). It returns the MTU they give (0: neither).
func OverlayOptions(name string, mtu int, opts map[string]string) (int, error) {
	n := Network{MTU: mtu}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if why, ok := overlayRefuses[k]; ok {
			return 0, fmt.Errorf("overlay network %s: -o %s is for bridge networks only (%s): leave it out", name, k, why)
		}
		if err := applyOption(&n, NetworkSpec{MTU: mtu}, k, opts[k]); err != nil {
			return 0, fmt.Errorf("overlay network %s: %w", name, err)
		}
	}
	return n.MTU, nil
}

// reserveCluster takes the cluster-wide addresses of p's overlay networks,
// undone by u, and returns them by network name.
func (e *Engine) reserveCluster(u *undo, p *sandboxPlan, nets []*Network) (map[string]netip.Addr, error) {
	out := map[string]netip.Addr{}
	for i, n := range nets {
		if n.Overlay == nil {
			continue
		}
		if e.opts.Cluster == nil {
			return nil, fmt.Errorf("network %s is an overlay network, and this engine has no cluster store (Options.Cluster): use the nsnet command", n.Name)
		}
		var want netip.Addr
		if i == 0 {
			if p.mac != nil {
				return nil, fmt.Errorf("--mac on overlay network %s: its MACs are derived from the addresses, unique across hosts: leave --mac out", n.Name)
			}
			want = p.ip
		}
		ip, err := e.opts.Cluster.Reserve(n, p.sb.Name, want)
		if err != nil {
			return nil, err
		}
		u.push(func() error { return e.opts.Cluster.Release(n, p.sb.Name, ip) })
		out[n.Name] = ip
	}
	return out, nil
}

// releaseCluster gives back sb's cluster-wide addresses once it is gone. A
// failure does not fail the removal: it is reported, and the host's overlay
// agent deletes the stale entry when it next compares the store with the
// cluster.
func (e *Engine) releaseCluster(tx *store.Tx, sb *Sandbox) {
	for _, ep := range sb.Endpoints {
		n, err := tx.Network(ep.Network)
		if err != nil || n.Overlay == nil || e.opts.Cluster == nil {
			continue
		}
		if err := e.opts.Cluster.Release(n, sb.Name, ep.Address.Addr()); err != nil {
			e.opts.Warn(fmt.Sprintf("sandbox %s is removed, but its address %s on overlay network %s is still registered in the cluster (%v): the host's overlay agent releases it once it runs and reaches the store", sb.Name, ep.Address.Addr(), n.Name, err))
		}
	}
}
