package engine

// Tests of the calls a container runtime makes through CNI (runtime.go), over
// the fake kernel.

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nsnet/nsnet/types"
)

// runtimeSpec is container ctr's ADD to network n1 (made on 10.1.0.0/24 if
// missing) from its namespace, made outside as dir/ns.
func runtimeSpec(k *fakeKernel, ctr, ns, ifName string) AttachSpec {
	return AttachSpec{
		Sandbox: SandboxSpec{Name: "cni-" + ctr, Networks: []string{"n1"}, NetNS: filepath.Join(k.dir, ns), IfName: ifName,
			Runtime: &types.Runtime{Kind: "cni", ContainerID: ctr}},
		Network: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24"},
	}
}

func mustAttach(t *testing.T, e *Engine, spec AttachSpec) *Sandbox {
	t.Helper()
	sb, _, err := e.Attach(spec)
	if err != nil {
		t.Fatalf("attach %s to %s: %v", spec.Sandbox.Name, spec.Network.Name, err)
	}
	return sb
}

func TestAttachMakesTheNetworkAndTheSandbox(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"))
	spec := runtimeSpec(k, "c1", "C1", "net0")
	spec.Sandbox.IP, spec.Sandbox.MAC, spec.Sandbox.Publish = "10.1.0.9", "02:00:00:00:00:09", []string{"8080:80"}
	sb, n, err := e.Attach(spec)
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "n1" || n.Subnet.String() != "10.1.0.0/24" {
		t.Errorf("network %+v, want n1 on 10.1.0.0/24", n)
	}
	checkBridge(t, k, e, n)
	stored := mustSandbox(t, e, "cni-c1")
	if stored.Runtime == nil || *stored.Runtime != (types.Runtime{Kind: "cni", ContainerID: "c1"}) || stored.OwnsNetNS {
		t.Errorf("stored runtime %+v, owns its namespace %v; want container c1's, adopted", stored.Runtime, stored.OwnsNetNS)
	}
	ep := stored.Endpoints[0]
	if len(stored.Endpoints) != 1 || ep.IfName != "net0" || ep.Address.String() != "10.1.0.9/24" || ep.MAC != "02:00:00:00:00:09" {
		t.Errorf("endpoints %+v, want net0 with 10.1.0.9/24 and 02:00:00:00:00:09", stored.Endpoints)
	}
	id, _ := k.mountAt(filepath.Join(k.dir, "C1"))
	if peer, ok := k.peerLink(id, "net0"); !ok || peer.gateway.String() != "10.1.0.1" {
		t.Errorf("the runtime's namespace has no net0 with a default route via 10.1.0.1: %+v %v", peer, ok)
	}
	if fmt.Sprint(sb.Endpoints) != fmt.Sprint(stored.Endpoints) {
		t.Errorf("returned %+v, stored %+v", sb.Endpoints, stored.Endpoints)
	}
	if want := []string{"tcp 0.0.0.0:8080 -> 10.1.0.9:80"}; !slices.Equal(k.fwPorts(), want) {
		t.Errorf("firewall ports %v, want %v", k.fwPorts(), want)
	}
	if got := k.held("cni-c1"); got != nil {
		t.Errorf("the runtime holds the host ports, yet nsnet's resident holds %v", got)
	}
}

// TestAttachLeavesHostPortsToTheRuntime: Podman binds a published port
// (conmon) right after ADD and re-ADDs while it holds it (network reload):
// nsnet must not test the port by binding it. Control: an nsnet sandbox
// publishing the same taken port is refused.
func TestAttachLeavesHostPortsToTheRuntime(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"), apiNet("n1", "10.1.0.0/24"), apiTake("tcp/0.0.0.0/08080"))
	refused(t, k, e, func() error {
		_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: []string{"8080:80"}})
		return err
	}, "in use by process web")
	spec := runtimeSpec(k, "c1", "C1", "eth0")
	spec.Sandbox.Publish = []string{"8080:80"}
	mustAttach(t, e, spec)
	if want := []string{"tcp 0.0.0.0:8080 -> 10.1.0.2:80"}; !slices.Equal(k.fwPorts(), want) {
		t.Errorf("firewall ports %v, want %v", k.fwPorts(), want)
	}
	// Ports other nsnet sandboxes publish are still refused, either way.
	apiRun(t, k, e, apiOutside("C2"))
	other := runtimeSpec(k, "c2", "C2", "eth0")
	other.Sandbox.Publish = []string{"8080:80"}
	refused(t, k, e, func() error { _, _, err := e.Attach(other); return err }, "already published by sandbox cni-c1")
	refused(t, k, e, func() error {
		_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: []string{"8080:80"}})
		return err
	}, "already published by sandbox cni-c1")
	// gc has the resident hold none of them.
	if _, err := e.GC(false); err != nil {
		t.Fatal(err)
	}
	if got := k.held("cni-c1"); got != nil {
		t.Errorf("after gc nsnet holds %v of the runtime's ports", got)
	}
}

func TestAttachAgainAndToMoreNetworks(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"), apiNet("n2", "10.2.0.0/24"))
	first := runtimeSpec(k, "c1", "C1", "eth1") // Podman may ADD eth1 before eth0
	first.Sandbox.Publish = []string{"8080:80"}
	mustAttach(t, e, first)
	before := state(t, k, e)
	mustAttach(t, e, first)
	if after := state(t, k, e); !slices.Equal(before, after) {
		t.Errorf("the same ADD again changed:\n%s", diffLines(before, after))
	}
	second := runtimeSpec(k, "c1", "C1", "eth0")
	second.Sandbox.Networks, second.Network = []string{"n2"}, NetworkSpec{Name: "n2"}
	second.Sandbox.IP, second.Sandbox.Aliases = "10.2.0.7", []string{"web"}
	second.Sandbox.Publish = []string{"8080:80", "9090:90"} // Podman gives every network the ports
	sb := mustAttach(t, e, second)
	if len(sb.Endpoints) != 2 {
		t.Fatalf("endpoints %+v, want two", sb.Endpoints)
	}
	ep := sb.Endpoints[1]
	if ep.IfName != "eth0" || ep.Network != "n2" || ep.Address.String() != "10.2.0.7/24" || ep.Gateway.IsValid() || !slices.Equal(ep.Aliases, []string{"web"}) {
		t.Errorf("second endpoint %+v, want eth0 on n2 at 10.2.0.7, no default route, alias web", ep)
	}
	want := []string{"tcp 0.0.0.0:8080 -> 10.1.0.2:80", "tcp 0.0.0.0:9090 -> 10.1.0.2:90"}
	if !slices.Equal(k.fwPorts(), want) {
		t.Errorf("firewall ports %v, want %v (to the first network's address)", k.fwPorts(), want)
	}
	third := runtimeSpec(k, "c1", "C1", "eth0")
	third.Sandbox.Networks, third.Network = []string{"n3"}, NetworkSpec{Name: "n3", Subnet: "10.3.0.0/24"}
	refused(t, k, e, func() error { _, _, err := e.Attach(third); return err }, "sandbox cni-c1 has an interface eth0 already, on network n2")
	third.Sandbox.IfName = "eth1"
	third.Sandbox.Networks, third.Network = []string{"n2"}, NetworkSpec{Name: "n2"}
	refused(t, k, e, func() error { _, _, err := e.Attach(third); return err }, "sandbox cni-c1 is on network n2 already, as eth0, not eth1")
}

func TestAttachRefusals(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"), apiOutside("C2"), apiNet("n1", "10.1.0.0/24"),
		apiSb(SandboxSpec{Name: "cni-mine", Networks: []string{"n1"}}))
	mustAttach(t, e, runtimeSpec(k, "c1", "C1", "eth0"))
	for _, c := range []struct {
		name   string
		change func(*AttachSpec)
		want   []string
		other  bool // wraps ErrOtherContainer
	}{
		{"another container's name", func(s *AttachSpec) {
			s.Sandbox.Runtime.ContainerID = "c2"
			s.Sandbox.NetNS = filepath.Join(k.dir, "C2")
		},
			[]string{"sandbox cni-c1 exists already and belongs to another container, not to container c2"}, true},
		{"a sandbox of nsnet's own", func(s *AttachSpec) { s.Sandbox.Name = "cni-mine" }, []string{"sandbox cni-mine exists already"}, true},
		{"another namespace", func(s *AttachSpec) {
			s.Sandbox.NetNS, s.Sandbox.Networks, s.Network = filepath.Join(k.dir, "C2"), []string{"n2"}, NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24"}
		}, []string{"sandbox cni-c1 of container c1 is in another namespace than"}, false},
		{"the network with another subnet", func(s *AttachSpec) { s.Sandbox.Name, s.Network.Subnet = "cni-c2", "10.9.0.0/24" },
			[]string{"network n1 exists with subnet 10.1.0.0/24, not 10.9.0.0/24"}, false},
		{"the network, internal", func(s *AttachSpec) { s.Sandbox.Name, s.Network.Internal = "cni-c2", true },
			[]string{"network n1 exists with internal false, not true"}, false},
		{"the network, without anti-spoofing", func(s *AttachSpec) { s.Sandbox.Name, s.Network.NoAntiSpoof = "cni-c2", true },
			[]string{"network n1 exists with antispoof true, not false"}, false},
		{"no runtime", func(s *AttachSpec) { s.Sandbox.Runtime = nil }, []string{"needs the runtime's container"}, false},
		{"no namespace", func(s *AttachSpec) { s.Sandbox.NetNS = "" }, []string{"needs the container's namespace"}, false},
		{"two networks", func(s *AttachSpec) { s.Sandbox.Networks = []string{"n1", "n2"} }, []string{"attaching takes one network"}, false},
		{"interface lo", func(s *AttachSpec) { s.Sandbox.Name, s.Sandbox.IfName = "cni-c2", "lo" }, []string{"interface name lo"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := runtimeSpec(k, "c1", "C1", "eth0")
			rt := *spec.Sandbox.Runtime
			spec.Sandbox.Runtime = &rt
			c.change(&spec)
			err := refused(t, k, e, func() error { _, _, err := e.Attach(spec); return err }, c.want...)
			if errors.Is(err, ErrOtherContainer) != c.other {
				t.Errorf("wraps ErrOtherContainer: %v, want %v", errors.Is(err, ErrOtherContainer), c.other)
			}
		})
	}
}

func TestDetach(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"), apiNet("n2", "10.2.0.0/24"))
	first := runtimeSpec(k, "c1", "C1", "eth0")
	first.Sandbox.Publish = []string{"8080:80"}
	mustAttach(t, e, first)
	second := runtimeSpec(k, "c1", "C1", "eth1")
	second.Sandbox.Networks, second.Network = []string{"n2"}, NetworkSpec{Name: "n2"}
	mustAttach(t, e, second)
	for _, c := range []DetachSpec{
		{Sandbox: "cni-c2", ContainerID: "c2", Network: "n1", IfName: "eth0"},   // no such sandbox
		{Sandbox: "cni-c1", ContainerID: "c9", Network: "n1", IfName: "eth0"},   // another container's
		{Sandbox: "cni-c1", ContainerID: "c1", Network: "n1", IfName: "eth1"},   // another interface
		{Sandbox: "cni-c1", ContainerID: "c1", Network: "nine", IfName: "eth0"}, // not on it
	} {
		before := state(t, k, e)
		if done, err := e.Detach(c); done || err != nil {
			t.Errorf("detach %+v: %v, %v; want nothing done, no error", c, done, err)
		}
		if after := state(t, k, e); !slices.Equal(before, after) {
			t.Errorf("detach %+v changed:\n%s", c, diffLines(before, after))
		}
	}
	// Off n1, which had the route and the ports: both move to n2.
	if done, err := e.Detach(DetachSpec{Sandbox: "cni-c1", ContainerID: "c1", Network: "n1", IfName: "eth0"}); !done || err != nil {
		t.Fatalf("detach from n1: %v, %v", done, err)
	}
	sb := mustSandbox(t, e, "cni-c1")
	if len(sb.Endpoints) != 1 || sb.Endpoints[0].Network != "n2" || !sb.Endpoints[0].Gateway.IsValid() {
		t.Errorf("endpoints %+v, want n2's only, with the default route", sb.Endpoints)
	}
	if want := []string{"tcp 0.0.0.0:8080 -> 10.2.0.2:80"}; !slices.Equal(k.fwPorts(), want) {
		t.Errorf("firewall ports %v, want %v", k.fwPorts(), want)
	}
	// The last one: the sandbox goes, the runtime's namespace stays.
	if done, err := e.Detach(DetachSpec{Sandbox: "cni-c1", ContainerID: "c1", Network: "n2"}); !done || err != nil {
		t.Fatalf("detach from n2: %v, %v", done, err)
	}
	if _, err := e.InspectSandbox("cni-c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the sandbox is still there: %v", err)
	}
	if _, ok := k.mountAt(filepath.Join(k.dir, "C1")); !ok {
		t.Errorf("the runtime's namespace is gone")
	}
	if _, ok := k.mountAt(e.k.ns.Path("cni-c1")); ok {
		t.Errorf("nsnet's name for the namespace is still there")
	}
	if got := k.fwPorts(); len(got) != 0 {
		t.Errorf("firewall ports %v are left", got)
	}
	if done, err := e.Detach(DetachSpec{Sandbox: "cni-c1", ContainerID: "c1", Network: "n2"}); done || err != nil {
		t.Errorf("a second DEL: %v, %v; want nothing done, no error", done, err)
	}
}

func TestRemovingARuntimesSandboxNeedsForce(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"))
	mustAttach(t, e, runtimeSpec(k, "c1", "C1", "eth0"))
	refused(t, k, e, func() error { _, err := e.RemoveSandbox("cni-c1", false); return err },
		"sandbox cni-c1 belongs to container c1, which a container runtime attached through CNI", "or use --force")
	if removed, err := e.RemoveSandbox("cni-c1", true); err != nil || !slices.Equal(removed, []string{"cni-c1"}) {
		t.Errorf("rm --force: %v, %v", removed, err)
	}
}

func TestCheckAttachment(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"), apiOutside("C2"))
	sb := mustAttach(t, e, runtimeSpec(k, "c1", "C1", "eth0"))
	spec := DetachSpec{Sandbox: "cni-c1", ContainerID: "c1", Network: "n1", IfName: "eth0"}
	a, diffs, err := e.CheckAttachment(spec, filepath.Join(k.dir, "C1"))
	if err != nil || len(diffs) != 0 || a.Endpoint.IfName != "eth0" || a.Network.Name != "n1" {
		t.Fatalf("check right after ADD: %+v %v %v", a, diffs, err)
	}
	if _, _, err := e.CheckAttachment(DetachSpec{Sandbox: "cni-c1", ContainerID: "c1", Network: "n1", IfName: "eth5"}, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("check of an unknown interface: %v, want ErrNotFound", err)
	}
	_, diffs, _ = e.CheckAttachment(spec, filepath.Join(k.dir, "C2"))
	wantDiff(t, "another namespace", diffs, "is not the sandbox's")
	id, _ := k.mountAt(filepath.Join(k.dir, "C1"))
	k.mu.Lock()
	k.peers[id]["eth0"].gateway = netip.Addr{}
	k.mu.Unlock()
	_, diffs, _ = e.CheckAttachment(spec, "")
	wantDiff(t, "route deleted", diffs, "lacks its default route via 10.1.0.1")
	mustDo(t, fakeLinks{k}.DeleteLink(sb.Endpoints[0].HostVeth))
	_, diffs, _ = e.CheckAttachment(spec, "")
	wantDiff(t, "veth deleted", diffs, "host veth "+sb.Endpoints[0].HostVeth+" is missing")
	k.mu.Lock()
	k.fw.drift = []string{"chain forward has another rule"}
	k.mu.Unlock()
	_, diffs, _ = e.CheckAttachment(spec, "")
	wantDiff(t, "rules drifted", diffs, "chain forward has another rule")
}

func wantDiff(t *testing.T, what string, diffs []string, want string) {
	t.Helper()
	if !slices.ContainsFunc(diffs, func(d string) bool { return strings.Contains(d, want) }) {
		t.Errorf("%s: diffs %q, want one saying %q", what, diffs, want)
	}
}

// TestParallelAttachAndDetach plays a runtime starting and removing many
// containers at once: none fails, no address is given twice.
func TestParallelAttachAndDetach(t *testing.T) {
	k, e, _ := apiEngine(t, func(o *Options) { o.LockTimeout = DefaultLockTimeout })
	var idMu sync.Mutex
	next := e.newID // the test's counter; the real one is random, safe from any goroutine
	e.newID = func() string {
		idMu.Lock()
		defer idMu.Unlock()
		return next()
	}
	const n = 16
	for i := range n {
		apiRun(t, k, e, apiOutside(fmt.Sprintf("C%d", i)))
	}
	var wg sync.WaitGroup
	addrs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			sb, _, err := e.Attach(runtimeSpec(k, fmt.Sprintf("c%d", i), fmt.Sprintf("C%d", i), "eth0"))
			if errs[i] = err; err == nil {
				addrs[i] = sb.Endpoints[0].Address.String()
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil || seen[addrs[i]] {
			t.Errorf("container c%d: %v, address %s (given twice: %v)", i, errs[i], addrs[i], seen[addrs[i]])
		}
		seen[addrs[i]] = true
	}
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.Detach(DetachSpec{Sandbox: fmt.Sprintf("cni-c%d", i), ContainerID: fmt.Sprintf("c%d", i), Network: "n1"})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("detach c%d: %v", i, errs[i])
		}
	}
	if sbs, err := e.Sandboxes(); err != nil || len(sbs) != 0 {
		t.Errorf("left: %v %v", sbs, err)
	}
}

// TestConnectWithInterfaceNameAndMAC: network connect takes the interface's
// name and a MAC, as a runtime's second ADD does, and refuses bad ones.
func TestConnectWithInterfaceNameAndMAC(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiNet("n2", "10.2.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}}))
	for _, c := range []struct {
		spec ConnectSpec
		want string
	}{
		{ConnectSpec{Network: "n2", Sandbox: "s1", IfName: "eth0"}, "sandbox s1 has an interface eth0 already, on network n1"},
		{ConnectSpec{Network: "n2", Sandbox: "s1", IfName: "lo"}, "interface name lo"},
		{ConnectSpec{Network: "n2", Sandbox: "s1", IfName: "a/b"}, "invalid interface name"},
		{ConnectSpec{Network: "n2", Sandbox: "s1", MAC: "01:00:00:00:00:01"}, "is multicast"},
		{ConnectSpec{Network: "n2", Sandbox: "s1", MAC: "02:42:0a:02:00:01"}, "it is the MAC of the network's bridge"},
	} {
		refused(t, k, e, func() error { _, err := e.Connect(c.spec); return err }, c.want)
	}
	sb, err := e.Connect(ConnectSpec{Network: "n2", Sandbox: "s1", IfName: "net1", MAC: "02:00:00:00:02:09"})
	if err != nil {
		t.Fatal(err)
	}
	ep := sb.Endpoints[1]
	if ep.IfName != "net1" || ep.MAC != "02:00:00:00:02:09" {
		t.Errorf("endpoint %+v, want net1 with 02:00:00:00:02:09", ep)
	}
	id, _ := k.mountAt(e.k.ns.Path("s1"))
	if _, ok := k.peerLink(id, "net1"); !ok {
		t.Error("no net1 in the sandbox")
	}
}

// TestAttachToMoreNetworksOnHostBinding: Podman gives every network's ADD
// the container's ports; on a second network they are known as published
// already, on the first network's host_binding_ipv4, and nothing changes but
// the new interface.
func TestAttachToMoreNetworksOnHostBinding(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"), apiNet("n2", "10.2.0.0/24"),
		apiNetSpec(NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Options: map[string]string{OptHostBinding: "192.0.2.9"}}))
	first := runtimeSpec(k, "c1", "C1", "eth0")
	first.Sandbox.Publish = []string{"8080:80"}
	mustAttach(t, e, first)
	want := []string{"tcp 192.0.2.9:8080 -> 10.1.0.2:80"}
	if !slices.Equal(k.fwPorts(), want) {
		t.Fatalf("firewall ports %v, want %v", k.fwPorts(), want)
	}
	second := runtimeSpec(k, "c1", "C1", "eth1")
	second.Sandbox.Networks, second.Network = []string{"n2"}, NetworkSpec{Name: "n2"}
	second.Sandbox.Publish = first.Sandbox.Publish
	if sb := mustAttach(t, e, second); len(sb.Endpoints) != 2 || len(sb.Ports) != 1 {
		t.Errorf("endpoints %+v, ports %+v; want two endpoints and the one port", sb.Endpoints, sb.Ports)
	}
	if !slices.Equal(k.fwPorts(), want) {
		t.Errorf("firewall ports %v, want %v", k.fwPorts(), want)
	}
}

// TestPruneKeepsRuntimeSandboxes: sandbox prune leaves a runtime's sandbox,
// whose namespace the runtime made and may not have started its process in
// yet, where it removes an idle sandbox of nsnet's own on the same network
// (the control); network prune leaves the network the runtime's sandbox is
// on.
func TestPruneKeepsRuntimeSandboxes(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("C1"))
	mustAttach(t, e, runtimeSpec(k, "c1", "C1", "eth0"))
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "idle", Networks: []string{"n1"}}))
	removed, err := e.PruneSandboxes(nil)
	if err != nil || !slices.Equal(removed, []string{"idle"}) {
		t.Fatalf("sandbox prune: %v, %v; want idle only", removed, err)
	}
	if removed, err := e.PruneNetworks(nil); err != nil || len(removed) != 0 {
		t.Errorf("network prune: %v, %v; want nothing (cni-c1 is on n1)", removed, err)
	}
	mustSandbox(t, e, "cni-c1")
}
