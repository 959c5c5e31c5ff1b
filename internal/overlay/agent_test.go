package overlay

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/types"
)

func TestOneAgentPerRoot(t *testing.T) {
	root := t.TempDir()
	unlock, err := lockAgent(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockAgent(root); err == nil || !strings.Contains(err.Error(), "another nsnet agent runs") {
		t.Fatalf("a second agent for one root: %v, want a refusal", err)
	}
	unlock()
	again, err := lockAgent(root)
	if err != nil {
		t.Fatalf("after the first agent ended: %v", err)
	}
	again()
}

func TestHostIDIsKept(t *testing.T) {
	root := t.TempDir()
	a, err := hostID(root)
	if err != nil || len(a) != 32 {
		t.Fatalf("hostID: %q, %v", a, err)
	}
	if b, err := hostID(root); err != nil || b != a {
		t.Fatalf("hostID again: %q, %v; want %q", b, err, a)
	}
	if c, _ := hostID(t.TempDir()); c == a {
		t.Fatal("two roots got one host ID")
	}
}

// TestClientNeedsARunningAgent: without an agent (no state, or the state of
// one that is gone) a reservation is refused with what to do, before the
// store is asked.
func TestClientNeedsARunningAgent(t *testing.T) {
	root := t.TempDir()
	c := NewClient(root)
	defer c.Close()
	n := &types.Network{Name: "ov", Overlay: &types.Overlay{VNI: 1, Store: []string{"http://192.0.2.2:2379"}}}
	_, err := c.Reserve(n, "s1", netip.Addr{})
	if err == nil || !strings.Contains(err.Error(), "nsnet agent --store etcd://192.0.2.2:2379") {
		t.Fatalf("no agent: %v", err)
	}
	if err := writeAgentState(root, agentState{PID: 1 << 30, Host: "h", Lease: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reserve(n, "s1", netip.Addr{}); err == nil || !strings.Contains(err.Error(), "no overlay agent runs") {
		t.Fatalf("an agent that is gone: %v", err)
	}
}
