package engine

import (
	"slices"
	"strings"
	"testing"
)

// guardLines are the fake table's guarded ports, "port MAC [addresses]".
func guardLines(k *fakeKernel) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fw == nil {
		return nil
	}
	var out []string
	for port, g := range k.fw.guards {
		out = append(out, port+" "+g)
	}
	slices.Sort(out)
	return out
}

// TestAntiSpoofElements: a sandbox port on a network guards its sandbox's
// MAC and address from the moment it is attached until it is detached;
// one on a network with NoAntiSpoof has no element.
func TestAntiSpoofElements(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("g", "10.1.0.0/24"), apiNetSpec(NetworkSpec{Name: "o", Subnet: "10.2.0.0/24", NoAntiSpoof: true}),
		apiSb(SandboxSpec{Name: "s1", Networks: []string{"g"}, IP: "10.1.0.10"}),
		apiSb(SandboxSpec{Name: "s2", Networks: []string{"o"}}))
	s1, err := e.InspectSandbox("s1")
	mustDo(t, err)
	want := []string{s1.Endpoints[0].HostVeth + " " + s1.Endpoints[0].MAC + " [10.1.0.10]"}
	if got := guardLines(k); !slices.Equal(got, want) {
		t.Fatalf("guards after create: %q, want %q", got, want)
	}
	_, err = e.Connect(ConnectSpec{Network: "g", Sandbox: "s2", IP: "10.1.0.20"})
	mustDo(t, err)
	if got := guardLines(k); len(got) != 2 || !strings.Contains(strings.Join(got, "\n"), "[10.1.0.20]") {
		t.Errorf("guards after connect: %q, want s1's and s2's on g", got)
	}
	_, err = e.Disconnect("g", "s2", false)
	mustDo(t, err)
	if got := guardLines(k); !slices.Equal(got, want) {
		t.Errorf("guards after disconnect: %q, want %q", got, want)
	}
	_, err = e.RemoveSandbox("s1", false)
	mustDo(t, err)
	if got := guardLines(k); len(got) != 0 {
		t.Errorf("guards after rm: %q, want none", got)
	}
}

// TestAntiSpoofDualStack: a sandbox port on a dual-stack network guards its
// IPv6 address beside its IPv4 one, also after connect; an IPv4-only
// network's port guards the IPv4 address alone.
func TestAntiSpoofDualStack(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNetSpec(NetworkSpec{Name: "g6", Subnet: "10.3.0.0/24", IPv6: true, Subnet6: "fd00:3::/64"}),
		apiNet("g4", "10.4.0.0/24"),
		apiSb(SandboxSpec{Name: "s1", Networks: []string{"g6"}, IP: "10.3.0.10", IP6: "fd00:3::10"}))
	_, err := e.Connect(ConnectSpec{Network: "g4", Sandbox: "s1", IP: "10.4.0.10"})
	mustDo(t, err)
	s1, err := e.InspectSandbox("s1")
	mustDo(t, err)
	want := []string{
		s1.Endpoints[0].HostVeth + " " + s1.Endpoints[0].MAC + " [10.3.0.10 fd00:3::10]",
		s1.Endpoints[1].HostVeth + " " + s1.Endpoints[1].MAC + " [10.4.0.10]",
	}
	slices.Sort(want)
	if got := guardLines(k); !slices.Equal(got, want) {
		t.Errorf("guards: %q, want %q", got, want)
	}
}

// TestAntiSpoofUndo: a create whose veth fails leaves no element behind;
// one whose elements cannot be added (the table is not as the store says)
// rebuilds the tables with them.
func TestAntiSpoofUndo(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("g", "10.1.0.0/24"))
	before := state(t, k, e)
	k.mu.Lock()
	k.failOn = "attach veth"
	k.mu.Unlock()
	if _, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"g"}}); err == nil {
		t.Fatal("create with its veth failing: no error")
	}
	if got := state(t, k, e); !slices.Equal(got, before) {
		t.Errorf("create with its veth failing left:\n%s", diffLines(before, got))
	}
	k.mu.Lock()
	k.failOn = "add 1 guards"
	k.mu.Unlock()
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: []string{"g"}}))
	if got := guardLines(k); len(got) != 1 {
		t.Errorf("guards after a create whose elements failed: %q, want s1's (rebuilt)", got)
	}
}

// TestAntiSpoofRebuildKeepsEarlierPorts: when the second endpoint's elements
// cannot be added and the tables are rebuilt from the store, the first
// endpoint of the same create keeps its elements.
func TestAntiSpoofRebuildKeepsEarlierPorts(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("g1", "10.1.0.0/24"), apiNet("g2", "10.2.0.0/24"))
	// A first create of the same shape finds the step of its second add.
	k.mu.Lock()
	k.steps, k.log = 0, nil
	k.mu.Unlock()
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s0", Networks: []string{"g1", "g2"}}))
	k.mu.Lock()
	second, adds := 0, 0
	for i, step := range k.log {
		if step == "add 1 guards" {
			if adds++; adds == 2 {
				second = i + 1
			}
		}
	}
	k.mu.Unlock()
	if second == 0 {
		t.Fatalf("no second add of guards in a create on two networks: %q", k.log)
	}
	_, err := e.RemoveSandbox("s0", false)
	mustDo(t, err)
	k.mu.Lock()
	k.steps, k.failAt = 0, second
	k.mu.Unlock()
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: []string{"g1", "g2"}}))
	k.mu.Lock()
	k.failAt = 0
	k.mu.Unlock()
	if got := guardLines(k); len(got) != 2 {
		t.Errorf("guards after a create whose second add failed: %q, want both ports", got)
	}
}
