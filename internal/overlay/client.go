// Package overlay makes networks that span hosts (Docker's overlay model):
// one subnet across hosts, each address allocated cluster-wide in etcd
// (package clusterstore), and L2 between hosts over VXLAN with a static FDB
// and neighbour entry per remote sandbox: no multicast, no learning, no
// flooding.
//
// Two parts: Client, which the engine asks for a sandbox's address on an
// overlay network (engine.Cluster), and Agent, the resident `nsnet agent` of
// a host, which makes each overlay network's local part (a bridge network
// with a VXLAN device on it), keeps its own sandboxes registered under its
// lease, and programs the remote sandboxes' entries from a watch on etcd.
//
// Invariants: the Client writes an address only under the lease of a running
// agent of the same state root (read from its state file), so a host's
// addresses expire with its agent; the Agent only ever adds or removes the
// entries of other hosts' sandboxes, and only on its own VXLAN devices.
package overlay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nsnet/nsnet/internal/clusterstore"
	"github.com/nsnet/nsnet/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"
)

// agentState is what a running agent tells the commands of its state root.
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

// Client allocates addresses of overlay networks for the engine
// (engine.Cluster), under the lease of the state root's agent.
type Client struct {
	Root   string
	mu     sync.Mutex
	stores map[string]*clusterstore.Store
}

// NewClient returns a Client for the state root; it connects on first use.
func NewClient(root string) *Client {
	return &Client{Root: root, stores: map[string]*clusterstore.Store{}}
}

// agent returns the running agent of the root, or an error that says to
// start one.
func (c *Client) agent(n *types.Network) (*agentState, error) {
	a, err := readAgentState(c.Root)
	if errors.Is(err, os.ErrNotExist) || (err == nil && unix.Kill(a.PID, 0) != nil) {
		return nil, fmt.Errorf("network %s is an overlay network, and no overlay agent runs for this state root: start one (nsnet agent --store %s)",
			n.Name, clusterstore.URL(n.Overlay.Store))
	}
	return a, err
}

func (c *Client) store(eps []string) (*clusterstore.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := strings.Join(eps, ",")
	if s := c.stores[k]; s != nil {
		return s, nil
	}
	s, err := clusterstore.Open(eps)
	if err == nil {
		c.stores[k] = s
	}
	return s, err
}

// Reserve takes ip (or the lowest free address) of overlay network n for
// sandbox on this host.
func (c *Client) Reserve(n *types.Network, sandbox string, ip netip.Addr) (netip.Addr, error) {
	a, err := c.agent(n)
	if err != nil {
		return netip.Addr{}, err
	}
	s, err := c.store(n.Overlay.Store)
	if err != nil {
		return netip.Addr{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterstore.Timeout)
	defer cancel()
	ep := clusterstore.Endpoint{Network: n.Name, IP: ip, Sandbox: sandbox, Host: a.Host, VTEP: a.Advertise}
	got, err := s.Reserve(ctx, ep, a.Lease)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("sandbox %s: %w", sandbox, err)
	}
	return got, nil
}

// Release gives back sandbox's address ip on overlay network n.
func (c *Client) Release(n *types.Network, sandbox string, ip netip.Addr) error {
	a, err := readAgentState(c.Root)
	if err != nil {
		return fmt.Errorf("read the overlay agent's state: %w", err)
	}
	s, err := c.store(n.Overlay.Store)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterstore.Timeout)
	defer cancel()
	return s.Release(ctx, n.Name, ip, a.Host, sandbox)
}

// Close closes the connections to the cluster store.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.stores {
		s.Close()
		delete(c.stores, k)
	}
}
