package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/types"
)

// state is everything an operation may change, as sorted lines: the fake
// kernel, the store's records and leases, and the intent and marker files.
func state(t *testing.T, k *fakeKernel, e *Engine) []string {
	t.Helper()
	out := k.dump()
	for i, l := range out { // the owner's ID comes from the state root's path
		out[i] = strings.ReplaceAll(l, e.owner.ID, "OWNER")
	}
	err := e.read(func(tx *store.Tx) error {
		nets, err := tx.Networks()
		for _, n := range nets {
			out = append(out, fmt.Sprintf("network %s %s %s", n.Name, n.Bridge, n.Subnet))
			leases, _ := tx.Leases(n.Name)
			for _, l := range leases {
				out = append(out, fmt.Sprintf("lease %s %s %s", n.Name, l.IP, l.Sandbox))
			}
		}
		sbs, _ := tx.Sandboxes()
		for _, s := range sbs {
			out = append(out, fmt.Sprintf("sandbox %s %s %v %v", s.Name, s.Mode, s.Endpoints, s.Ports))
		}
		runs, _ := tx.Runs()
		for name := range runs {
			out = append(out, "run "+name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	etc, _ := filepath.Glob(filepath.Join(e.k.etcDir, "*", "*"))
	for _, f := range etc {
		raw, _ := os.ReadFile(f)
		out = append(out, fmt.Sprintf("etc %s %q", strings.TrimPrefix(f, e.k.etcDir), strings.ReplaceAll(string(raw), e.owner.ID, "OWNER")))
	}
	for _, dir := range []string{filepath.Join(e.opts.Root, "intents"), filepath.Join(e.opts.RunDir, "netns")} {
		entries, _ := os.ReadDir(dir)
		for _, f := range entries {
			out = append(out, "file "+filepath.Base(dir)+"/"+f.Name())
		}
	}
	sort.Strings(out)
	return out
}

// scenario is one operation, on an engine that setup prepared. A removal
// is not undone when a kernel step fails: it keeps its records and the
// objects it could not remove, so that running it again finishes it.
type scenario struct {
	name    string
	setup   func(t *testing.T, k *fakeKernel, e *Engine)
	op      func(e *Engine) error
	removal bool
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func withNetwork(t *testing.T, _ *fakeKernel, e *Engine) {
	_, err := e.CreateNetwork(NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24"})
	mustDo(t, err)
}

// withDualStack makes the dual-stack network n6.
func withDualStack(t *testing.T, _ *fakeKernel, e *Engine) {
	_, err := e.CreateNetwork(NetworkSpec{Name: "n6", Subnet: "10.6.0.0/24", IPv6: true, Subnet6: "fd00:6::/64"})
	mustDo(t, err)
}

func withSandbox(ports ...string) func(t *testing.T, k *fakeKernel, e *Engine) {
	return func(t *testing.T, k *fakeKernel, e *Engine) {
		withNetwork(t, k, e)
		_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: ports})
		mustDo(t, err)
	}
}

func createSandbox(spec SandboxSpec) func(e *Engine) error {
	return func(e *Engine) error { _, err := e.CreateSandbox(spec); return err }
}

func createNetwork(spec NetworkSpec) func(e *Engine) error {
	return func(e *Engine) error { _, err := e.CreateNetwork(spec); return err }
}

// adopting creates a sandbox that adopts the namespace withNetworkAndNamespace made.
func adopting(spec SandboxSpec) func(e *Engine) error {
	return func(e *Engine) error {
		spec.NetNS = filepath.Join(filepath.Dir(e.opts.Root), "ADOPT")
		_, err := e.CreateSandbox(spec)
		return err
	}
}

func withTwoNetworks(t *testing.T, k *fakeKernel, e *Engine) {
	withNetwork(t, k, e)
	_, err := e.CreateNetwork(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true})
	mustDo(t, err)
}

// withNetworkAndNamespace adds a namespace made by someone else, for a
// sandbox to adopt (the scenarios name it ADOPT).
func withNetworkAndNamespace(t *testing.T, k *fakeKernel, e *Engine) {
	withNetwork(t, k, e)
	mustDo(t, k.outsideNamespace("ADOPT"))
}

// withMultiSandbox has sandbox s1 on n1 and n2, publishing ports (through
// n1, its first non-internal network).
func withMultiSandbox(t *testing.T, k *fakeKernel, e *Engine) {
	withNetwork(t, k, e)
	_, err := e.CreateNetwork(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24"})
	mustDo(t, err)
	_, err = e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1", "n2"}, Publish: []string{"8080:80", "53/udp"}})
	mustDo(t, err)
}

// withInternalSandbox has sandbox s1 on the internal network in only.
func withInternalSandbox(t *testing.T, k *fakeKernel, e *Engine) {
	withTwoNetworks(t, k, e)
	_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"in"}})
	mustDo(t, err)
}

func connect(spec ConnectSpec) func(e *Engine) error {
	return func(e *Engine) error { _, err := e.Connect(spec); return err }
}

func disconnect(network string, force bool) func(e *Engine) error {
	return func(e *Engine) error { _, err := e.Disconnect(network, "s1", force); return err }
}

var scenarios = []scenario{
	{name: "network create", op: createNetwork(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24"})},
	{name: "network create, subnet chosen", op: createNetwork(NetworkSpec{Name: "n2"})},
	{name: "internal network create", op: createNetwork(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true})},
	{name: "sandbox create", setup: withNetwork, op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}})},
	{name: "sandbox create with ports", setup: withNetwork,
		op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Publish: []string{"8080:80", "127.0.0.1:5353:53/udp", "9000/sctp"}})},
	{name: "sandbox create on the default network", op: createSandbox(SandboxSpec{Name: "s2"})},
	{name: "sandbox create on two networks", setup: withTwoNetworks,
		op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{"in", "n1"}, Publish: []string{"8080:80"}})},
	{name: "none sandbox create", op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{ModeNone}})},
	{name: "host sandbox create", op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{ModeHost}})},
	{name: "sandbox create adopting a namespace", setup: withNetworkAndNamespace,
		op: adopting(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Publish: []string{"8080:80"}})},
	{name: "none sandbox create adopting a namespace", setup: withNetworkAndNamespace,
		op: adopting(SandboxSpec{Name: "s2", Networks: []string{ModeNone}})},
	{name: "container sandbox create", setup: withSandbox(), op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{"container:s1"}})},
	{name: "run --rm sandbox create", setup: withNetwork, op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}, AutoRemove: true})},
	{name: "port add", setup: withSandbox("8080:80"), op: func(e *Engine) error {
		_, err := e.AddPorts("s1", []string{"8081:81", "53/udp"})
		return err
	}},
	{name: "port rm", setup: withSandbox("8080:80", "8081:81"), op: func(e *Engine) error {
		_, err := e.RemovePorts("s1", []string{"8080:80"})
		return err
	}},
	{name: "sandbox rm", setup: withSandbox("8080:80"), removal: true, op: func(e *Engine) error {
		_, err := e.RemoveSandbox("s1", false)
		return err
	}},
	{name: "network rm", setup: withNetwork, removal: true, op: func(e *Engine) error { return e.RemoveNetwork("n1") }},
	{name: "network connect, the first route", setup: withInternalSandbox,
		op: connect(ConnectSpec{Network: "n1", Sandbox: "s1", Aliases: []string{"web"}})},
	{name: "network connect, static address", setup: func(t *testing.T, k *fakeKernel, e *Engine) {
		withSandbox("8080:80")(t, k, e)
		_, err := e.CreateNetwork(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24"})
		mustDo(t, err)
	}, op: connect(ConnectSpec{Network: "n2", Sandbox: "s1", IP: "10.2.0.9"})},
	{name: "dual-stack network create", op: createNetwork(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24", IPv6: true, Subnet6: "fd00:2::/64"})},
	{name: "dual-stack network create, subnets chosen", op: createNetwork(NetworkSpec{Name: "n2", IPv6: true})},
	{name: "sandbox create on a dual-stack network, with ports", setup: withDualStack,
		op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{"n6"}, IP6: "fd00:6::9", Publish: []string{"8080:80", "[::]:8081:81"}})},
	{name: "network connect to a dual-stack network", setup: func(t *testing.T, k *fakeKernel, e *Engine) {
		withSandbox("8080:80")(t, k, e)
		withDualStack(t, k, e)
	}, op: connect(ConnectSpec{Network: "n6", Sandbox: "s1", IP6: "fd00:6::9"})},
	{name: "network disconnect, route and ports move", setup: withMultiSandbox, removal: true, op: disconnect("n1", false)},
	{name: "network disconnect, not the route", setup: withMultiSandbox, removal: true, op: disconnect("n2", false)},
	{name: "network disconnect --force, the last network", setup: withSandbox("8080:80"), removal: true, op: disconnect("n1", true)},
	{name: "attach (CNI ADD), the network made", setup: withNamespace, op: attach("n9", "10.9.0.0/24", "eth0", "8080:80")},
	{name: "attach to a second network (CNI ADD)", setup: withAttached, op: attach("n2", "10.2.0.0/24", "eth1", "8080:80", "9090:90")},
	{name: "detach, one network of two (CNI DEL)", setup: withAttachedTwice, removal: true, op: detach("n1")},
	{name: "detach, the last network (CNI DEL)", setup: withAttached, removal: true, op: detach("n1")},
	// The resident runs already: the names of n1 change.
	{name: "sandbox create beside another, with aliases and ports", setup: withSandbox("8080:80"),
		op: createSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Aliases: []string{"db", "web"}, DNS: []string{"192.0.2.53"}, Publish: []string{"8081:81"}})},
	{name: "sandbox rm beside another", setup: withTwoSandboxes, removal: true, op: func(e *Engine) error {
		_, err := e.RemoveSandbox("s2", false)
		return err
	}},
}

// withTwoSandboxes adds s2, on n1 with an alias and a port, beside s1.
func withTwoSandboxes(t *testing.T, k *fakeKernel, e *Engine) {
	withSandbox("8080:80")(t, k, e)
	_, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Aliases: []string{"db"}, Publish: []string{"8081:81"}})
	mustDo(t, err)
}

// withNamespace adds a namespace made by a container runtime (ADOPT).
func withNamespace(t *testing.T, k *fakeKernel, _ *Engine) { mustDo(t, k.outsideNamespace("ADOPT")) }

// attach is container c1's ADD from namespace ADOPT to network (made on
// subnet if missing) as ifName, publishing ports.
func attach(network, subnet, ifName string, ports ...string) func(e *Engine) error {
	return func(e *Engine) error {
		_, _, err := e.Attach(AttachSpec{
			Sandbox: SandboxSpec{Name: "cni-c1", Networks: []string{network}, IfName: ifName, Publish: ports,
				NetNS: filepath.Join(filepath.Dir(e.opts.Root), "ADOPT"), Runtime: &types.Runtime{Kind: "cni", ContainerID: "c1"}},
			Network: NetworkSpec{Name: network, Subnet: subnet},
		})
		return err
	}
}

// withAttached has container c1 on n1 (eth0), publishing 8080:80.
func withAttached(t *testing.T, k *fakeKernel, e *Engine) {
	withNamespace(t, k, e)
	mustDo(t, attach("n1", "10.1.0.0/24", "eth0", "8080:80")(e))
}

// withAttachedTwice has container c1 on n1 (eth0, publishing) and n2 (eth1).
func withAttachedTwice(t *testing.T, k *fakeKernel, e *Engine) {
	withAttached(t, k, e)
	mustDo(t, attach("n2", "10.2.0.0/24", "eth1")(e))
}

func detach(network string) func(e *Engine) error {
	return func(e *Engine) error {
		_, err := e.Detach(DetachSpec{Sandbox: "cni-c1", ContainerID: "c1", Network: network})
		return err
	}
}

// TestUndoAtEveryStep fails each scenario's kernel steps one by one, from the
// first to the last. A failure the operation reports leaves the kernel, the
// store and the journal exactly as they were (a removal: its records as they
// were, and running it again finishes it); a failure it absorbs (a fallback,
// such as rewriting the table when a map element is missing, or a host port
// released after the commit) leaves, once gc has run, exactly what a run
// without failures leaves.
func TestUndoAtEveryStep(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			want, steps := runScenario(t, sc, 0)
			if steps == 0 {
				t.Fatal("the operation took no step")
			}
			for failAt := 1; failAt <= steps; failAt++ {
				runScenario(t, sc, failAt, want...)
			}
		})
	}
}

// runScenario runs sc with step failAt failing (0: none) and checks the
// outcome against the state before and against want, the state a run
// without failures ends in. It returns the end state and the steps taken.
func runScenario(t *testing.T, sc scenario, failAt int, want ...string) ([]string, int) {
	t.Helper()
	k := newFakeKernel(t)
	e := fakeEngine(t, k, true)
	if sc.setup != nil {
		sc.setup(t, k, e)
	}
	before := state(t, k, e)
	k.steps, k.log, k.failAt = 0, nil, failAt
	err := sc.op(e)
	k.failAt = 0
	steps, log := k.steps, k.log
	switch {
	case err == nil && failAt == 0:
		if after := state(t, k, e); slices.Equal(before, after) {
			t.Errorf("the operation succeeded and changed nothing")
		}
	case err == nil: // absorbed, or left for gc (a host port released late)
		if _, err := e.GC(false); err != nil {
			t.Errorf("step %d (%s) failed, the operation went on; gc then: %v", failAt, log[failAt-1], err)
		}
		if after := state(t, k, e); !slices.Equal(after, want) {
			t.Errorf("step %d (%s) failed, the operation went on, and with gc ended elsewhere than without the failure:\n%s", failAt, log[failAt-1], diffLines(want, after))
		}
	case !errors.Is(err, errInjected):
		t.Errorf("step %d failed: %v, want the injected failure", failAt, err)
	case sc.removal:
		if after := storeLines(state(t, k, e)); !slices.Equal(storeLines(before), after) {
			t.Errorf("after a failure at step %d (%s): the records changed:\n%s", failAt, log[failAt-1], diffLines(storeLines(before), after))
		}
		if err := sc.op(e); err != nil {
			t.Errorf("after a failure at step %d (%s), running it again: %v", failAt, log[failAt-1], err)
		} else if after := state(t, k, e); !slices.Equal(after, want) {
			t.Errorf("after a failure at step %d (%s), running it again ended elsewhere:\n%s", failAt, log[failAt-1], diffLines(want, after))
		}
	default:
		if after := state(t, k, e); !slices.Equal(before, after) {
			t.Errorf("after a failure at step %d (%s): not undone:\n%s", failAt, log[failAt-1], diffLines(before, after))
		}
	}
	return state(t, k, e), steps
}

// storeLines are the lines of a state that come from the store.
func storeLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, p := range []string{"network ", "lease ", "sandbox ", "run "} {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return out
}

// diffLines shows the lines only in a (-) and only in b (+).
func diffLines(a, b []string) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
