package store

import (
	"net/netip"

	"github.com/nsnet/nsnet/types"
)

// The records of networks, sandboxes and endpoints are the library's public
// types (package types).
type (
	Network  = types.Network
	Sandbox  = types.Sandbox
	Endpoint = types.Endpoint
)

// Sandbox modes.
const (
	ModeBridge    = types.ModeBridge
	ModeHost      = types.ModeHost
	ModeNone      = types.ModeNone
	ModeContainer = types.ModeContainer
)

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
