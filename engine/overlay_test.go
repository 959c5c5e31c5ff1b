package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nsnet/nsnet/types"
)

// fakeCluster is an in-memory cluster-wide allocator: the lowest address
// from 10.200.0.50 up that nobody holds, or the one asked for.
type fakeCluster struct {
	mu   sync.Mutex
	held map[netip.Addr]string // address -> sandbox
	fail error                 // Reserve fails with it
}

func (c *fakeCluster) Reserve(n *Network, sandbox string, ip netip.Addr) (netip.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return netip.Addr{}, c.fail
	}
	if !ip.IsValid() {
		for ip = netip.MustParseAddr("10.200.0.50"); c.held[ip] != ""; ip = ip.Next() {
		}
	}
	if c.held[ip] != "" {
		return netip.Addr{}, fmt.Errorf("%s is held by %s", ip, c.held[ip])
	}
	c.held[ip] = sandbox
	return ip, nil
}

func (c *fakeCluster) Release(n *Network, sandbox string, ip netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[ip] == sandbox {
		delete(c.held, ip)
	}
	return nil
}

func (c *fakeCluster) holders() map[netip.Addr]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[netip.Addr]string{}
	for k, v := range c.held {
		out[k] = v
	}
	return out
}

var overlaySpec = NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16", MTU: 1450, Overlay: &types.Overlay{VNI: 4096, Store: []string{"http://192.0.2.2:2379"}}}

func overlayEngine(t *testing.T) (*fakeKernel, *Engine, *fakeCluster) {
	c := &fakeCluster{held: map[netip.Addr]string{}}
	k, e, _ := apiEngine(t, func(o *Options) { o.Cluster = c })
	apiRun(t, k, e, apiNetSpec(overlaySpec))
	return k, e, c
}

// TestOverlaySandboxAddresses: a sandbox on an overlay network gets the
// address the cluster reserved for it (and the MAC derived from it), gives it
// back when removed, and the network records its VXLAN device, which gc
// expects.
func TestOverlaySandboxAddresses(t *testing.T) {
	k, e, c := overlayEngine(t)
	n, err := e.InspectNetwork("ov")
	if err != nil || n.Overlay == nil || n.Overlay.Device != "vx-"+n.ID[:12] || n.Overlay.VNI != 4096 {
		t.Fatalf("overlay network: %+v, %v", n, err)
	}
	sb, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"ov"}})
	if err != nil {
		t.Fatal(err)
	}
	if ep := sb.Endpoints[0]; ep.Address.String() != "10.200.0.50/16" || ep.MAC != "02:42:0a:c8:00:32" {
		t.Fatalf("endpoint %+v, want the cluster's 10.200.0.50 and its derived MAC", ep)
	}
	if _, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"ov"}, IP: "10.200.0.50"}); err == nil {
		t.Fatal("a static address the cluster says is held was given")
	}
	if got := c.holders(); len(got) != 1 || got[netip.MustParseAddr("10.200.0.50")] != "s1" {
		t.Fatalf("after a refused create the cluster holds %v, want only s1's", got)
	}
	k.links[n.Overlay.Device] = &fakeLink{kind: "vxlan", up: true, mtu: 1450, alias: e.owner.NetworkMark("ov")}
	if acts, err := e.GC(true); err != nil || len(acts) != 0 {
		t.Fatalf("gc with the overlay's VXLAN device: %v, %v; want nothing to do", acts, err)
	}
	k.log = nil
	if _, err := e.RemoveSandbox("s1", false); err != nil {
		t.Fatal(err)
	}
	if got := c.holders(); len(got) != 0 {
		t.Fatalf("after removal the cluster holds %v", got)
	}
	// Another host may be given the address at once: the pair left for the
	// kernel is set down, not only marked.
	if !slices.ContainsFunc(k.log, func(s string) bool { return strings.HasPrefix(s, "release veth ") }) {
		t.Errorf("removing an overlay sandbox did not set its veth down; steps: %v", k.log)
	}
	if err := e.RemoveNetwork("ov"); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.links[n.Overlay.Device]; ok {
		t.Fatal("the VXLAN device outlived its network")
	}
}

// TestOverlayCreateUndoesReservation: whichever step of a sandbox create on
// an overlay network fails, the cluster holds nothing afterwards.
func TestOverlayCreateUndoesReservation(t *testing.T) {
	k, e, _ := overlayEngine(t)
	before := k.steps
	if _, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"ov"}}); err != nil {
		t.Fatal(err)
	}
	n := k.steps - before
	for i := 1; i <= n; i++ {
		k, e, c := overlayEngine(t)
		k.failAt = k.steps + i
		if _, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"ov"}}); err == nil {
			continue // a step whose failure the create absorbs
		}
		if got := c.holders(); len(got) != 0 {
			t.Errorf("step %d of %d failed: the cluster still holds %v", i, n, got)
		}
	}
}

// TestOverlayRefusals: what cannot be done on an overlay network is refused
// before anything changes.
func TestOverlayRefusals(t *testing.T) {
	k, e, c := overlayEngine(t)
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s0", Networks: []string{"n1"}}))
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"--mac", func() error {
			_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"ov"}, MAC: "02:00:00:00:00:01"})
			return err
		}, "--mac on overlay network ov"},
		{"connect", func() error {
			_, err := e.Connect(ConnectSpec{Network: "ov", Sandbox: "s0"})
			return err
		}, "is an overlay network"},
		{"store unreachable", func() error {
			c.fail = errors.New("the cluster store (etcd) is unreachable")
			defer func() { c.fail = nil }()
			_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"ov"}})
			return err
		}, "unreachable"},
		{"no VNI", func() error {
			_, err := e.CreateNetwork(NetworkSpec{Name: "o2", Subnet: "10.201.0.0/16", Overlay: &types.Overlay{Store: []string{"x"}}})
			return err
		}, "invalid VNI 0"},
		{"-o icc", func() error {
			_, err := e.CreateNetwork(NetworkSpec{Name: "o2", Subnet: "10.201.0.0/16", Options: map[string]string{OptICC: "false"},
				Overlay: &types.Overlay{VNI: 7, Store: []string{"x"}}})
			return err
		}, "-o " + OptICC + " is for bridge networks only"},
		{"--ipv6", func() error {
			_, err := e.CreateNetwork(NetworkSpec{Name: "o2", Subnet: "10.201.0.0/16", IPv6: true, Overlay: &types.Overlay{VNI: 7, Store: []string{"x"}}})
			return err
		}, "IPv4 only"},
	} {
		steps := k.steps
		if err := tc.do(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
		if len(c.holders()) != 0 {
			t.Errorf("%s: the cluster holds %v", tc.name, c.holders())
		}
		if tc.name != "store unreachable" && k.steps != steps {
			t.Errorf("%s: %d kernel steps taken before refusing", tc.name, k.steps-steps)
		}
	}
	for _, opt := range []string{OptBridgeName, OptMasquerade, OptHostBinding} {
		if _, err := OverlayOptions("o2", 0, map[string]string{opt: "x"}); err == nil || !strings.Contains(err.Error(), "for bridge networks only") {
			t.Errorf("-o %s on an overlay network: %v, want a refusal", opt, err)
		}
	}
	if mtu, err := OverlayOptions("o2", 1400, map[string]string{OptMTU: "1400"}); mtu != 1400 || err != nil {
		t.Errorf("-o %s=1400 --mtu 1400 on an overlay network: %d, %v", OptMTU, mtu, err)
	}
	if _, err := OverlayOptions("o2", 1300, map[string]string{OptMTU: "1400"}); err == nil || !strings.Contains(err.Error(), "contradicts --mtu") {
		t.Errorf("-o %s=1400 --mtu 1300: %v, want a refusal", OptMTU, err)
	}
	_, e2, _ := apiEngine(t, nil)
	if _, err := e2.CreateNetwork(overlaySpec); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"ov"}}); err == nil || !strings.Contains(err.Error(), "no cluster store") {
		t.Fatalf("an engine without Options.Cluster: %v, want a refusal", err)
	}
}

// TestOverlayListAndPrune: filters tell an overlay network by its driver,
// and network prune leaves this host's part of one, which its agent owns,
// while it removes an unused bridge network beside it.
func TestOverlayListAndPrune(t *testing.T) {
	k, e, _ := overlayEngine(t)
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"))
	for driver, want := range map[string]string{"overlay": "ov", "bridge": "n1"} {
		ds, err := e.ListNetworks(Filters{"driver": {driver}})
		if err != nil || len(ds) != 1 || ds[0].Name != want {
			t.Errorf("networks with driver=%s: %+v, %v; want only %s", driver, ds, err, want)
		}
	}
	removed, err := e.PruneNetworks(nil)
	if err != nil || !slices.Equal(removed, []string{"n1"}) {
		t.Fatalf("network prune removed %v (%v), want only n1", removed, err)
	}
	if _, err := e.InspectNetwork("ov"); err != nil {
		t.Fatalf("the overlay's part is gone after network prune: %v", err)
	}
}

// TestOverlayAttachRefused: a container runtime (CNI) attaching to an
// overlay network, through an engine without a cluster, is refused and
// changes nothing: its addresses are the agent's to allocate.
func TestOverlayAttachRefused(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNetSpec(overlaySpec), apiOutside("C1"))
	spec := runtimeSpec(k, "c1", "C1", "eth0")
	spec.Sandbox.Networks, spec.Network = []string{"ov"}, NetworkSpec{Name: "ov", Subnet: "10.200.0.0/16"}
	refused(t, k, e, func() error { _, _, err := e.Attach(spec); return err }, "network ov is an overlay network")
}
