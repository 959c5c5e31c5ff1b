// Package topology draws a state root's network from a snapshot of the
// kernel's state (package observe): the host's uplink and addresses, its
// forwarding and nsnet's NAT, each network's bridge and gateway, each
// sandbox's veth pair with interface names, addresses and MACs, published
// ports, internal networks marked. It renders the drawing as a text tree, a
// Graphviz (dot) graph, or JSON, and as SVG by piping the dot graph through
// nsnet-svg (cmd/nsnet-svg), a program of its own: nsnet does not link the
// Graphviz library, which compiles Graphviz when a process starts.
//
// Invariants: Build is pure (it reads a snapshot and changes nothing), and
// every renderer takes only the Graph (WriteSVG also the renderer's path),
// in a stable order (networks and sandboxes by name), so the outputs are
// tested with golden files. Every
// value shown is the kernel's as read (an address, a MAC, up or down),
// except where the kernel has no such object: then the store's, marked
// missing.
package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/types"
)

// Graph is what is drawn.
type Graph struct {
	Host     Host      `json:"host"`
	Networks []Network `json:"networks"`
}

// Host is the host's side: its interfaces beyond nsnet's, its default
// route, forwarding and NAT.
type Host struct {
	Uplinks      []Link `json:"uplinks"` // devices with an address that are not nsnet's, lo excepted
	DefaultRoute string `json:"default_route,omitempty"`
	Forwarding   bool   `json:"ip_forward"`
	Table        string `json:"table"`        // nsnet's nftables table
	TableExists  bool   `json:"table_exists"` // false after nft flush ruleset
}

// Link is one interface as the kernel has it.
type Link struct {
	Name    string   `json:"name"`
	Addrs   []string `json:"addrs,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	MTU     int      `json:"mtu,omitempty"`
	State   string   `json:"state"`             // up, down, no carrier, missing
	Master  string   `json:"master,omitempty"`  // the bridge it is a port of
	Hairpin bool     `json:"hairpin,omitempty"` // bridge port flag
}

// Network is one network with its bridge and sandboxes.
type Network struct {
	Name       string       `json:"name"`
	Subnet     string       `json:"subnet"`
	Gateway    string       `json:"gateway"`
	Internal   bool         `json:"internal,omitempty"`
	Masquerade bool         `json:"masquerade"` // nsnet's masquerade rule for it is in the kernel
	Bridge     Link         `json:"bridge"`
	Sandboxes  []Attachment `json:"sandboxes"`
}

// Attachment is a sandbox's veth pair on a network.
type Attachment struct {
	Sandbox  string   `json:"sandbox"`
	Mode     string   `json:"mode"`
	Inside   Link     `json:"inside"`          // its interface in the sandbox
	HostVeth Link     `json:"host_veth"`       // the other end, a port of the bridge
	Gateway  bool     `json:"default_route"`   // its default route goes this way
	Ports    []string `json:"ports,omitempty"` // published, as HOSTIP:HOSTPORT->PORT/PROTO
}

// Build makes the graph of the named networks (every one when none).
func Build(s *observe.Snapshot, only []string) (*Graph, error) {
	for _, name := range only {
		if _, ok := s.Network(name); !ok {
			return nil, fmt.Errorf("network %s does not exist: nsnet network ls lists them", name)
		}
	}
	g := &Graph{Host: host(s)}
	nets := slices.Clone(s.Networks)
	slices.SortFunc(nets, func(a, b types.Network) int { return strings.Compare(a.Name, b.Name) })
	for _, n := range nets {
		if len(only) == 0 || slices.Contains(only, n.Name) {
			g.Networks = append(g.Networks, network(s, n))
		}
	}
	return g, nil
}

func host(s *observe.Snapshot) Host {
	h := Host{Table: "inet " + s.Table, TableExists: s.Nsnet.Exists}
	v, _ := s.Host.Sysctl("net.ipv4.ip_forward")
	h.Forwarding = v == "1"
	for _, r := range s.Host.Routes {
		if r.Dst.Bits() == 0 {
			h.DefaultRoute = strings.TrimSpace(fmt.Sprintf("default %s dev %s", via(r.Gateway), r.Dev))
			break
		}
	}
	bridges := map[string]bool{}
	for _, n := range s.Networks {
		bridges[n.Bridge] = true
	}
	for _, d := range s.Host.Devices {
		if d.Name == "lo" || d.Master != "" || bridges[d.Name] || len(d.Addrs) == 0 {
			continue
		}
		h.Uplinks = append(h.Uplinks, link(&s.Host, d.Name))
	}
	return h
}

func via(gw netip.Addr) string {
	if gw.IsValid() {
		return "via " + gw.String()
	}
	return ""
}

// link is the device name of ns as the kernel has it.
func link(ns *observe.Namespace, name string) Link {
	d, found := ns.Device(name)
	if !found {
		return Link{Name: name, State: "missing"}
	}
	l := Link{Name: name, MAC: d.MAC, MTU: d.MTU, Master: d.Master, State: "up"}
	switch {
	case !d.Up:
		l.State = "down"
	case !d.Carrier:
		l.State = "no carrier"
	}
	for _, a := range d.Addrs {
		l.Addrs = append(l.Addrs, a.String())
	}
	l.Hairpin = d.Hairpin != nil && *d.Hairpin
	return l
}

func network(s *observe.Snapshot, n types.Network) Network {
	out := Network{Name: n.Name, Subnet: n.Subnet.String(), Gateway: n.Gateway.String(), Internal: n.Internal,
		Bridge: link(&s.Host, n.Bridge)}
	out.Masquerade = slices.ContainsFunc(s.Nsnet.Rules, func(r firewall.Rule) bool {
		return r.Comment == "nsnet network "+n.Name+": masquerade"
	})
	sbs := slices.Clone(s.Sandboxes)
	slices.SortFunc(sbs, func(a, b types.Sandbox) int { return strings.Compare(a.Name, b.Name) })
	for _, sb := range sbs {
		for _, ep := range sb.Endpoints {
			if ep.Network == n.Name {
				out.Sandboxes = append(out.Sandboxes, attachment(s, sb, ep))
			}
		}
	}
	return out
}

func attachment(s *observe.Snapshot, sb types.Sandbox, ep types.Endpoint) Attachment {
	a := Attachment{Sandbox: sb.Name, Mode: sb.Mode, HostVeth: link(&s.Host, ep.HostVeth), Gateway: ep.Gateway.IsValid()}
	ns := s.Space(sb.Name)
	switch {
	case ns == nil || ns.Err != "" || ns.Replaced:
		a.Inside = Link{Name: ep.IfName, Addrs: []string{ep.Address.String()}, MAC: ep.MAC, State: "missing"}
	default:
		a.Inside = link(ns, ep.IfName)
	}
	if _, isDefault := publishing(sb); isDefault == ep.Network {
		for _, m := range sb.Ports {
			a.Ports = append(a.Ports, fmt.Sprintf("%s->%d/%s", hostSide(m), m.CtrPort, m.Proto))
		}
	}
	return a
}

// publishing names the network a sandbox's published ports lead to: that
// of its endpoint with the default route.
func publishing(sb types.Sandbox) (types.Endpoint, string) {
	for _, ep := range sb.Endpoints {
		if ep.Gateway.IsValid() {
			return ep, ep.Network
		}
	}
	return types.Endpoint{}, ""
}

// hostSide is m's host address and port: 0.0.0.0:8080, [::]:8080.
func hostSide(m types.Mapping) string { return m.HostAddr() }
