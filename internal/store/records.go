package store

import (
	"net/netip"
	"time"

	"github.com/nsnet/nsnet/internal/portspec"
)

// Network is a bridge network.
type Network struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Bridge    string       `json:"bridge"`
	Subnet    netip.Prefix `json:"subnet"`
	Gateway   netip.Addr   `json:"gateway"`
	Internal  bool         `json:"internal"`
	MTU       int          `json:"mtu"`
	BridgeMAC string       `json:"bridge_mac"`
	Created   time.Time    `json:"created"`
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
	NetNSDev  uint64     `json:"netns_dev,omitempty"`   // device and inode: the ID of the namespace the
	NetNSIno  uint64     `json:"netns_inode,omitempty"` // sandbox was given (a bridge or none sandbox claims it)
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Ports are published on the address of the endpoint with the default
	// route (the first non-internal network's). They are stored
	// apart from the record (PutPort), so adding one costs the same however
	// many the sandbox has; Sandbox and Sandboxes fill this field in.
	Ports []portspec.Mapping `json:"-"`
	// Holder is the pid of the process that keeps the ports bound, as it
	// was when nsnet last handed it ports: a hint only, never signalled
	// (holders are known by their control socket, see internal/holder).
	Holder  int       `json:"holder_pid,omitempty"`
	Created time.Time `json:"created"`
}

// Endpoint is a sandbox's attachment to one network.
type Endpoint struct {
	Network  string       `json:"network"`
	IfName   string       `json:"ifname"`
	Address  netip.Prefix `json:"address"`
	MAC      string       `json:"mac"`
	Gateway  netip.Addr   `json:"gateway"` // set on the first non-internal network's endpoint only: the default route
	HostVeth string       `json:"host_veth"`
}

// Lease is an address held on a network.
type Lease struct {
	IP      netip.Addr
	Sandbox string
}

// Run is the process that a sandbox made by `nsnet run --rm` goes with: the
// sandbox is removed once it has exited. A process is known by its pid and
// its start time (in clock ticks since boot), so a reused pid is not it.
type Run struct {
	SandboxID string `json:"sandbox_id"`
	PID       int    `json:"pid"`
	Start     uint64 `json:"start"`
}
