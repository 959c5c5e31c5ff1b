package engine

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// lazyWorld is an engine on a fake kernel that destroys dead namespaces
// only at reap, as the kernel does in its batched clean-up, with network n1
// and sandbox s1 (made by nsnet) on it.
func lazyWorld(t *testing.T) (*fakeKernel, *Engine, *Sandbox) {
	t.Helper()
	k := newFakeKernel(t)
	k.lazy = true
	e := fakeEngine(t, k, true)
	withNetwork(t, k, e)
	sb, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1"}, IP: "10.1.0.5", Publish: []string{"8080:80"}})
	mustDo(t, err)
	return k, e, sb
}

func logged(k *fakeKernel, step string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Contains(k.log, step)
}

func hostLink(k *fakeKernel, name string) *fakeLink {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.links[name]; l != nil {
		c := *l
		return &c
	}
	return nil
}

func gcActions(t *testing.T, e *Engine, dryRun bool) []string {
	t.Helper()
	actions, err := e.GC(dryRun)
	mustDo(t, err)
	return actions
}

// TestRemoveLeavesPairsToTheKernel: removing a sandbox whose namespace nsnet
// made removes the namespace name and releases the host veth (down, marked
// released) instead of deleting it; gc leaves the
// released veth to the kernel, and a sandbox given the same address at once
// gets a new pair on the bridge. Once the kernel has destroyed the namespace,
// nothing is left.
func TestRemoveLeavesPairsToTheKernel(t *testing.T) {
	k, e, sb := lazyWorld(t)
	veth := sb.Endpoints[0].HostVeth
	k.log = nil
	_, err := e.RemoveSandbox("s1", false)
	mustDo(t, err)
	if logged(k, "delete link "+veth) || !logged(k, "release veth "+veth) {
		t.Fatalf("want %s released, not deleted; steps: %v", veth, k.log)
	}
	l := hostLink(k, veth)
	if l == nil {
		t.Fatalf("%s is gone before the kernel destroyed its namespace", veth)
	}
	if at, ok := e.owner.Released(l.alias); l.up || !ok || at.IsZero() {
		t.Errorf("released %s: up %v, alias %q; want down, with a released mark", veth, l.up, l.alias)
	}
	if a := gcActions(t, e, true); len(a) > 0 {
		t.Errorf("gc --dry-run while the kernel destroys the namespace: %q, want nothing", a)
	}
	again, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1"}, IP: "10.1.0.5"})
	mustDo(t, err)
	if nv := again.Endpoints[0].HostVeth; nv == veth || hostLink(k, nv) == nil || hostLink(k, nv).master == "" || !hostLink(k, nv).up {
		t.Errorf("the new sandbox's veth %s (old %s) is not a new port of the bridge, up", nv, veth)
	}
	_, err = e.RemoveSandbox("s1", false)
	mustDo(t, err)
	k.reap()
	if a := gcActions(t, e, true); len(a) > 0 {
		t.Errorf("gc --dry-run after the kernel's clean-up: %q, want nothing", a)
	}
	for _, l := range state(t, k, e) {
		if strings.HasPrefix(l, "link veth") || strings.HasPrefix(l, "peer ") || strings.HasPrefix(l, "mount s1") {
			t.Errorf("left after removal: %s", l)
		}
	}
}

// TestReleasedVethOutlivingGraceIsLeftover: a released veth still there a
// minute later belongs to a namespace something else keeps alive: gc reports
// and removes it.
func TestReleasedVethOutlivingGraceIsLeftover(t *testing.T) {
	k, e, sb := lazyWorld(t)
	veth := sb.Endpoints[0].HostVeth
	_, err := e.RemoveSandbox("s1", false)
	mustDo(t, err)
	e.clock = func() time.Time { return time.Now().Add(releaseGrace + time.Second) }
	if a := gcActions(t, e, true); len(a) != 1 || !strings.Contains(a[0], "would remove leftover veth "+veth) {
		t.Fatalf("gc --dry-run a minute later: %q, want the leftover %s", a, veth)
	}
	if a := gcActions(t, e, false); len(a) != 1 || hostLink(k, veth) != nil {
		t.Errorf("gc: %q; %s still there: %v", a, veth, hostLink(k, veth) != nil)
	}
}

// TestRemoveDeletesVethsOfNamespacesThatMayOutliveIt: a namespace adopted
// with --netns, or one with a process in it (--force), outlives the sandbox:
// its veth is deleted, as before.
func TestRemoveDeletesVethsOfNamespacesThatMayOutliveIt(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, k *fakeKernel, e *Engine) *Sandbox
	}{
		{"adopted with --netns", func(t *testing.T, k *fakeKernel, e *Engine) *Sandbox {
			mustDo(t, k.outsideNamespace("ADOPT"))
			sb, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}, NetNS: k.dir + "/ADOPT"})
			mustDo(t, err)
			return sb
		}},
		{"a process in it, --force", func(t *testing.T, k *fakeKernel, e *Engine) *Sandbox {
			sb, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}})
			mustDo(t, err)
			k.mu.Lock()
			k.procs[sb.NetNSIno] = []Process{{PID: 42, Comm: "sleep"}}
			k.mu.Unlock()
			return sb
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := lazyWorld(t)
			sb := c.setup(t, k, e)
			veth := sb.Endpoints[0].HostVeth
			if len(k.procs[sb.NetNSIno]) > 0 {
				_, err := e.RemoveSandbox("s2", false)
				if err == nil || !strings.Contains(err.Error(), "has running processes: sleep (pid 42)") {
					t.Fatalf("remove without --force with a process in the namespace: %v, want it refused", err)
				}
			}
			_, err := e.RemoveSandbox("s2", true)
			mustDo(t, err)
			if !logged(k, "delete link "+veth) || logged(k, "release veth "+veth) || hostLink(k, veth) != nil {
				t.Errorf("want %s deleted at once; steps: %v", veth, k.log)
			}
		})
	}
}

// TestReleaseFailureKeepsTheSandbox: if releasing the veth or removing the
// namespace name fails, the sandbox and its lease are kept (its address
// cannot go to another sandbox while its pair may be on the bridge); sandbox
// rm again finishes, or gc puts the sandbox back as it was.
func TestReleaseFailureKeepsTheSandbox(t *testing.T) {
	for _, failing := range []string{"release veth veth90dd53c8", "remove namespace s1"} {
		for _, then := range []string{"sandbox rm", "gc"} {
			t.Run(failing+", then "+then, func(t *testing.T) {
				// The same removal on a copy of the world numbers its steps.
				k2, e2, _ := lazyWorld(t)
				k2.steps, k2.log = 0, nil
				_, err := e2.RemoveSandbox("s1", false)
				mustDo(t, err)
				n := slices.Index(k2.log, failing) + 1
				if n == 0 {
					t.Fatalf("no step %q in %v", failing, k2.log)
				}
				k, e, sb := lazyWorld(t)
				before := state(t, k, e)
				k.steps, k.log, k.failAt = 0, nil, n
				_, err = e.RemoveSandbox("s1", false)
				k.failAt = 0
				if err == nil || !strings.Contains(err.Error(), "retry nsnet sandbox rm s1") {
					t.Fatalf("remove with %q failing: %v, want an error that says to retry", failing, err)
				}
				if after := storeLines(state(t, k, e)); !slices.Equal(storeLines(before), after) {
					t.Errorf("records changed:\n%s", diffLines(storeLines(before), after))
				}
				if then == "gc" {
					gcActions(t, e, false)
					if after := state(t, k, e); !slices.Equal(before, after) {
						t.Errorf("gc did not put the sandbox back:\n%s", diffLines(before, after))
					}
					return
				}
				_, err = e.RemoveSandbox("s1", false)
				mustDo(t, err)
				k.reap()
				if l := hostLink(k, sb.Endpoints[0].HostVeth); l != nil || logged(k, "delete link "+sb.Endpoints[0].HostVeth) {
					t.Errorf("running it again: want the veth left to the kernel, and gone with the namespace; steps %v", k.log)
				}
			})
		}
	}
}
