// Package types holds the types of nsnet's library API (package engine
// names them too): networks, sandboxes, their endpoints, published ports,
// address pools, and the filters that select them. They are also the form in
// which nsnet stores them.
//
// It has no behaviour beyond formatting and comparing these values, and
// imports nothing of nsnet.
package types

import (
	"fmt"
	"net/netip"
	"time"
)

// Network is a bridge network.
type Network struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Bridge  string       `json:"bridge"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// Subnet6 and Gateway6 are set on a dual-stack network (network create
	// --ipv6) only; records made before IPv6 have neither.
	Subnet6   netip.Prefix `json:"subnet6,omitzero"`
	Gateway6  netip.Addr   `json:"gateway6,omitzero"`
	Internal  bool         `json:"internal"`
	MTU       int          `json:"mtu"`
	BridgeMAC string       `json:"bridge_mac"`
	// DNS are the servers the network's resolver asks for names it does not
	// know itself (network create --dns); empty: the host's.
	DNS     []netip.Addr `json:"dns,omitempty"`
	Created time.Time    `json:"created"`
	// Labels are the user's metadata (--label), which nsnet only keeps.
	Labels map[string]string `json:"labels,omitempty"`
	// Options are the driver options as given (-o, Docker's bridge
	// options); what they mean is in the fields below, and in Bridge and MTU.
	Options map[string]string `json:"options,omitempty"`
	// NoMasquerade: traffic leaving the network keeps its sandbox's source
	// address, the network is routed
	// (com.docker.network.bridge.enable_ip_masquerade=false).
	NoMasquerade bool `json:"no_masquerade,omitempty"`
	// NoICC: the network's sandboxes cannot reach each other, only the
	// gateway and beyond (com.docker.network.bridge.enable_icc=false).
	NoICC bool `json:"no_icc,omitempty"`
	// HostBinding is the host address that the network's sandboxes publish
	// ports on when -p gives none; invalid: every address
	// (com.docker.network.bridge.host_binding_ipv4).
	HostBinding netip.Addr `json:"host_binding_ipv4,omitzero"`
	// NoAntiSpoof turns anti-spoofing off (network create --antispoof=false):
	// the sandboxes' ports then forward whatever source MAC and address their
	// sandboxes send from, as a sandbox that routes or moves addresses needs.
	NoAntiSpoof bool `json:"no_antispoof,omitempty"`
	// Overlay is set on this host's part of an overlay network, one that
	// spans hosts (network create --driver overlay): nil for local networks.
	Overlay *Overlay `json:"overlay,omitempty"`
}

// Driver is Docker's name of the network's driver: "overlay" for an
// overlay network's part on this host, else "bridge".
func (n *Network) Driver() string {
	if n.Overlay != nil {
		return "overlay"
	}
	return "bridge"
}

// Scope is Docker's scope of the network: "global" for an overlay network
// (as Docker's overlays in a key-value store were), else "local".
func (n *Network) Scope() string {
	if n.Overlay != nil {
		return "global"
	}
	return "local"
}

// Overlay is what makes a network an overlay: its bridge also has a VXLAN
// device, and its addresses are allocated cluster-wide in Store (etcd).
type Overlay struct {
	VNI    uint32   `json:"vni"`
	Store  []string `json:"store"`  // the etcd endpoints (http://HOST:PORT)
	Device string   `json:"device"` // the VXLAN device on the bridge, vx-<ID[:12]>
}

// Sandbox modes.
const (
	ModeBridge    = "bridge"
	ModeHost      = "host"
	ModeNone      = "none"
	ModeContainer = "container"
)

// Sandbox is a named network namespace and its endpoints.
type Sandbox struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Mode      string     `json:"mode"`                  // one of the Mode constants
	Container string     `json:"container,omitempty"`   // for ModeContainer: the sandbox whose namespace is shared
	NetNS     string     `json:"netns"`                 // path to use to enter the namespace
	OwnsNetNS bool       `json:"owns_netns"`            // nsnet created the namespace and destroys it on removal
	Mounted   bool       `json:"mounted"`               // nsnet bind-mounted NetNS and unmounts it on removal
	NetNSDev  uint64     `json:"netns_dev,omitempty"`   // device, inode and the time its file was made: the ID of
	NetNSIno  uint64     `json:"netns_inode,omitempty"` // the namespace the sandbox was given (a bridge or none
	NetNSBorn int64      `json:"netns_born,omitempty"`  // sandbox claims it); see internal/netns.ID
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Ports are published on the address of the endpoint with the default
	// route (the first non-internal network's). They are stored
	// apart from the record , so adding one costs the same however
	// many the sandbox has; Sandbox and Sandboxes fill this field in.
	Ports []Mapping `json:"-"`
	// DNS are the servers that names the sandbox's resolver does not know go
	// to (sandbox create --dns); empty: its network's.
	DNS []netip.Addr `json:"dns,omitempty"`
	// Runtime is set on a sandbox that a container runtime attached through
	// CNI: the runtime removes it (nsnet sandbox rm needs --force), and
	// binds and holds its published host ports itself.
	Runtime *Runtime  `json:"runtime,omitempty"`
	Created time.Time `json:"created"`
	// Labels are the user's metadata (--label), which nsnet only keeps.
	Labels map[string]string `json:"labels,omitempty"`
}

// Runtime names the container of a container runtime that a sandbox
// belongs to.
type Runtime struct {
	Kind        string `json:"kind"`         // how it was attached: "cni"
	ContainerID string `json:"container_id"` // the runtime's ID of the container (CNI_CONTAINERID)
}

// Endpoint is a sandbox's attachment to one network.
type Endpoint struct {
	Network string       `json:"network"`
	IfName  string       `json:"ifname"`
	Address netip.Prefix `json:"address"`
	MAC     string       `json:"mac"`
	Gateway netip.Addr   `json:"gateway"` // set on the first non-internal network's endpoint only: the default route
	// Address6 is the endpoint's IPv6 address on a dual-stack network, and
	// Gateway6 the IPv6 default route, set where Gateway is (if the network
	// is dual-stack).
	Address6 netip.Prefix `json:"address6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
	HostVeth string       `json:"host_veth"`
	Aliases  []string     `json:"aliases,omitempty"` // more names of the sandbox on this network (--alias)
}

// Mapping is one published port: a host address (invalid: every host
// address, IPv4 and, on a dual-stack network, IPv6; :: every IPv6 one),
// protocol and port, to the sandbox's port.
type Mapping struct {
	Proto    string     `json:"proto"`
	HostIP   netip.Addr `json:"host_ip"` // invalid: every host address; ::, every IPv6 one
	HostPort uint16     `json:"host_port"`
	CtrPort  uint16     `json:"container_port"`
}

// IPv6 reports whether n is dual-stack.
func (n Network) IPv6() bool { return n.Subnet6.IsValid() }

// HostIPString is the host address as Docker prints it.
func (m Mapping) HostIPString() string {
	if !m.HostIP.IsValid() {
		return "0.0.0.0"
	}
	return m.HostIP.String()
}

// HostAddr is the host address and port as Docker prints them:
// 0.0.0.0:8080, [::]:8080.
func (m Mapping) HostAddr() string {
	if m.HostIP.Is6() {
		return fmt.Sprintf("[%s]:%d", m.HostIP, m.HostPort)
	}
	return fmt.Sprintf("%s:%d", m.HostIPString(), m.HostPort)
}

// Key identifies the host side of a mapping: "tcp/0.0.0.0/08080".
func (m Mapping) Key() string {
	return fmt.Sprintf("%s/%s/%05d", m.Proto, m.HostIPString(), m.HostPort)
}

// String formats the mapping as `docker port` does: 80/tcp -> 0.0.0.0:8080.
func (m Mapping) String() string {
	return fmt.Sprintf("%d/%s -> %s", m.CtrPort, m.Proto, m.HostAddr())
}

// Overlaps reports whether two mappings claim the same host port: same
// protocol and port, and the same host address, or either on all addresses
// (:: is all IPv6 addresses).
func (m Mapping) Overlaps(o Mapping) bool {
	return m.Proto == o.Proto && m.HostPort == o.HostPort && HostsOverlap(m.HostIP, o.HostIP)
}

// HostsOverlap reports whether two host addresses of mappings share an
// address: equal, either invalid (every address), or both IPv6 and either
// :: (every IPv6 address).
func HostsOverlap(a, b netip.Addr) bool {
	switch {
	case !a.IsValid() || !b.IsValid() || a == b:
		return true
	case a.Is6() && b.Is6():
		return a.IsUnspecified() || b.IsUnspecified()
	}
	return false
}

// AddressPool is a range that subnets of Size bits are carved from, like
// dockerd's --default-address-pool base=172.17.0.0/16,size=16.
type AddressPool struct {
	Base netip.Prefix
	Size int
}

func (p AddressPool) String() string { return fmt.Sprintf("base=%s,size=%d", p.Base, p.Size) }

// Filters select networks or sandboxes as Docker's --filter does: each key
// (name, id, label, ...) with the values given for it. The values of one key
// are alternatives (any may match), but for label, all must (as in Docker);
// different keys must all match.
type Filters map[string][]string
