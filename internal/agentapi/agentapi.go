// Package agentapi is how nsnet commands ask the state root's overlay agent
// (`nsnet agent`, package overlay) for the addresses of overlay networks,
// over the agent's unix socket ROOT/overlay/agent.sock: one JSON request
// and one JSON response per connection. It links no etcd client, so the
// nsnet binary, which every command starts, stays small and quick to start;
// only the agent talks to etcd.
//
// Client implements engine.Cluster.
package agentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/nsnet/nsnet/types"
)

// Ops of a Request.
const (
	OpReserve = "reserve"
	OpRelease = "release"
)

// Timeout bounds a request: longer than the agent's own bound on etcd.
const Timeout = 12 * time.Second

// Request asks the agent to reserve (IP invalid: the lowest free address)
// or release an address of a sandbox of this host.
type Request struct {
	Op      string     `json:"op"`
	Network string     `json:"network"`
	Sandbox string     `json:"sandbox"`
	IP      netip.Addr `json:"ip"`
}

// Response is the address reserved, or what went wrong.
type Response struct {
	IP    netip.Addr `json:"ip"`
	Error string     `json:"error,omitempty"`
}

// Socket is the agent's socket in state root root.
func Socket(root string) string { return filepath.Join(root, "overlay", "agent.sock") }

// StoreURL is the etcd://HOST:PORT[,...] form of etcd endpoints
// (http://HOST:PORT), as --store takes it.
func StoreURL(endpoints []string) string {
	hps := make([]string, len(endpoints))
	for i, e := range endpoints {
		hps[i] = strings.TrimPrefix(e, "http://")
	}
	return "etcd://" + strings.Join(hps, ",")
}

// Client asks the agent of state root Root.
type Client struct{ Root string }

// Reserve takes ip (or the lowest free address) of overlay network n for
// sandbox, cluster-wide.
func (c Client) Reserve(n *types.Network, sandbox string, ip netip.Addr) (netip.Addr, error) {
	r, err := c.ask(n, Request{Op: OpReserve, Network: n.Name, Sandbox: sandbox, IP: ip})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("sandbox %s: %w", sandbox, err)
	}
	return r.IP, nil
}

// Release gives back sandbox's address ip on overlay network n.
func (c Client) Release(n *types.Network, sandbox string, ip netip.Addr) error {
	_, err := c.ask(n, Request{Op: OpRelease, Network: n.Name, Sandbox: sandbox, IP: ip})
	return err
}

func (c Client) ask(n *types.Network, req Request) (Response, error) {
	conn, err := net.DialTimeout("unix", Socket(c.Root), time.Second)
	if err != nil {
		return Response{}, fmt.Errorf("network %s is an overlay network, and no overlay agent answers for this state root (%v): start one (nsnet agent --store %s)",
			n.Name, err, StoreURL(n.Overlay.Store))
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(Timeout))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return Response{}, fmt.Errorf("ask the overlay agent: %w", err)
	}
	var r Response
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		return Response{}, fmt.Errorf("read the overlay agent's answer: %w", err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}
