// Package observe takes a read-only snapshot of the kernel state that
// matters to a state root's networks and sandboxes: the host's and the
// sandboxes' links, addresses, routes and sysctls, nsnet's nftables table and
// every other table's chains, listening sockets and the processes behind
// them, and what the root's resident process holds and serves. `nsnet
// diagnose` and `nsnet topology` analyse such a snapshot with pure functions,
// so their logic is tested on snapshots built by hand.
//
// Invariants: nothing here changes the kernel or sends a packet; every read
// goes through the Reader interface (Kernel is the real one), and a part that
// cannot be read is recorded as such (an Err field) rather than failing the
// whole snapshot.
package observe

import (
	"net/netip"
	"slices"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/types"
)

// Snapshot is the state that diagnose and topology look at.
type Snapshot struct {
	Table     string          `json:"table"` // the state root's nftables table (inet NAME)
	Networks  []types.Network `json:"networks"`
	Sandboxes []types.Sandbox `json:"sandboxes"` // with their Ports
	Host      Namespace       `json:"host"`
	// Spaces are the sandboxes' namespaces that were read, by sandbox name.
	Spaces map[string]*Namespace `json:"spaces"`
	Nsnet  Table                 `json:"nsnet_table"`
	// Chains are the chains of every other table of the families IPv4
	// packets cross (nsnet edits none of them).
	Chains    []firewall.Chain `json:"chains"`
	ChainsErr string           `json:"chains_error,omitempty"`
	// LegacyIptables are the tables of the legacy iptables backend in use
	// (/proc/net/ip_tables_names), whose rules nftables cannot show.
	LegacyIptables []string `json:"legacy_iptables,omitempty"`
	Resident       Resident `json:"resident"`
}

// Namespace is what was read of one network namespace.
type Namespace struct {
	Path    string            `json:"path"`
	Err     string            `json:"error,omitempty"` // why it could not be read, if it could not
	Devices []netview.Device  `json:"devices"`
	Routes  []netview.Route   `json:"routes"`
	Sysctls map[string]string `json:"sysctls,omitempty"` // by dotted key (net.ipv4.ip_forward); absent keys are left out
	Sockets []Socket          `json:"sockets,omitempty"` // listening TCP and bound UDP sockets
	// Nameservers are those of the sandbox's resolv.conf (/etc/netns/NAME).
	Nameservers []netip.Addr `json:"nameservers,omitempty"`
	// Replaced is set when the namespace at the sandbox's path is not the
	// one the sandbox was given (deleted and made again by someone else).
	Replaced bool `json:"replaced,omitempty"`
}

// Socket is a listening TCP socket or a bound UDP socket, and the process
// that holds it, when one was found.
type Socket struct {
	Proto   string     `json:"proto"`
	Addr    netip.Addr `json:"addr"` // 0.0.0.0: every address
	Port    uint16     `json:"port"`
	PID     int        `json:"pid,omitempty"`
	Process string     `json:"process,omitempty"` // its command name
}

// Table is nsnet's own table as read, and how it differs from what the
// store calls for (as gc would report it).
type Table struct {
	firewall.View
	Err   string   `json:"error,omitempty"`
	Diffs []string `json:"diffs,omitempty"`
}

// Resident is the state root's resident process as it answers on its
// control socket.
type Resident struct {
	Alive bool                     `json:"alive"`
	PID   int                      `json:"pid,omitempty"`
	Held  map[string][]string      `json:"held,omitempty"`  // the keys of the ports it holds, by sandbox
	Zones map[string]resolver.Zone `json:"zones,omitempty"` // what it serves, by network
}

// Device returns the device named name, if there is one.
func (n *Namespace) Device(name string) (netview.Device, bool) {
	if n == nil {
		return netview.Device{}, false
	}
	i := slices.IndexFunc(n.Devices, func(d netview.Device) bool { return d.Name == name })
	if i < 0 {
		return netview.Device{}, false
	}
	return n.Devices[i], true
}

// Sysctl returns the value of a dotted key, and whether it was read.
func (n *Namespace) Sysctl(key string) (string, bool) {
	if n == nil {
		return "", false
	}
	v, ok := n.Sysctls[key]
	return v, ok
}

// Network returns the stored network named name.
func (s *Snapshot) Network(name string) (types.Network, bool) {
	i := slices.IndexFunc(s.Networks, func(n types.Network) bool { return n.Name == name })
	if i < 0 {
		return types.Network{}, false
	}
	return s.Networks[i], true
}

// Sandbox returns the stored sandbox named name.
func (s *Snapshot) Sandbox(name string) (types.Sandbox, bool) {
	i := slices.IndexFunc(s.Sandboxes, func(sb types.Sandbox) bool { return sb.Name == name })
	if i < 0 {
		return types.Sandbox{}, false
	}
	return s.Sandboxes[i], true
}

// Space returns the namespace read for sandbox name, or nil.
func (s *Snapshot) Space(name string) *Namespace { return s.Spaces[name] }
