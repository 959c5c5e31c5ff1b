// Package overlay makes networks that span hosts (Docker's overlay model):
// one subnet across hosts, each address allocated cluster-wide in etcd
// (package clusterstore), and L2 between hosts over VXLAN with a static FDB
// and neighbour entry per remote sandbox: no multicast, no learning, no
// flooding.
//
// Agent is the resident `nsnet agent` of a host: it makes each overlay
// network's local part (a bridge network with a VXLAN device on it), reserves
// and releases addresses for the host's commands (on its socket, package
// agentapi), keeps the host's sandboxes registered under its lease, and
// programs the remote sandboxes' entries from a watch on etcd.
//
// Invariants: an address is only ever written under the lease of the running
// agent of its host, so a host's addresses expire with its agent; the agent
// only ever adds or removes the entries of other hosts' sandboxes, and only
// on its own VXLAN devices; one agent runs per state root (a lock).
package overlay

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// agentState is what a running agent keeps in its state root, for the next
// agent to revoke its lease once it has taken over.
type agentState struct {
	PID       int              `json:"pid"`
	Host      string           `json:"host"`
	Advertise netip.Addr       `json:"advertise"`
	Lease     clientv3.LeaseID `json:"lease"`
	Store     []string         `json:"store"`
}

func stateDir(root string) string  { return filepath.Join(root, "overlay") }
func statePath(root string) string { return filepath.Join(stateDir(root), "agent.json") }

func readAgentState(root string) (*agentState, error) {
	raw, err := os.ReadFile(statePath(root))
	if err != nil {
		return nil, err
	}
	var a agentState
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("overlay agent state %s is damaged: %w", statePath(root), err)
	}
	return &a, nil
}

func writeAgentState(root string, a agentState) error {
	if err := os.MkdirAll(stateDir(root), 0o700); err != nil {
		return err
	}
	raw, _ := json.Marshal(a)
	tmp := statePath(root) + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(root))
}
