package engine

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/store"
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
// made removes the namespace name and releases the host veth (marked
// released, left up in its bridge) instead of deleting it, and records its
// address and MAC as released; gc leaves the released veth to the kernel. A
// sandbox given the same address at once sets the old pair down first (its
// bridge then forgets the MAC on it) and gets a new pair on the bridge. Once
// the kernel has destroyed the namespace, nothing is left, and gc forgets
// the released records.
func TestRemoveLeavesPairsToTheKernel(t *testing.T) {
	k, e, sb := lazyWorld(t)
	veth := sb.Endpoints[0].HostVeth
	k.log = nil
	_, err := e.RemoveSandbox("s1", false)
	mustDo(t, err)
	if logged(k, "delete link "+veth) || logged(k, "release veth "+veth) || !logged(k, "mark link "+veth) {
		t.Fatalf("want %s marked released, neither set down nor deleted; steps: %v", veth, k.log)
	}
	l := hostLink(k, veth)
	if l == nil {
		t.Fatalf("%s is gone before the kernel destroyed its namespace", veth)
	}
	if at, ok := e.owner.Released(l.alias); !l.up || !ok || at.IsZero() {
		t.Errorf("released %s: up %v, alias %q; want it up, with a released mark", veth, l.up, l.alias)
	}
	if got := releasedWith(t, e, "n1", "10.1.0.5", sb.Endpoints[0].MAC); !slices.Equal(got, []string{veth}) {
		t.Errorf("released records for 10.1.0.5 and %s: %v, want %s", sb.Endpoints[0].MAC, got, veth)
	}
	if a := gcActions(t, e, true); len(a) > 0 {
		t.Errorf("gc --dry-run while the kernel destroys the namespace: %q, want nothing", a)
	}
	k.log = nil
	again, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1"}, IP: "10.1.0.5"})
	mustDo(t, err)
	if !logged(k, "release veth "+veth) || hostLink(k, veth).up {
		t.Errorf("the old pair %s is not set down before its address is given again; steps: %v", veth, k.log)
	}
	if nv := again.Endpoints[0].HostVeth; nv == veth || hostLink(k, nv) == nil || hostLink(k, nv).master == "" || !hostLink(k, nv).up {
		t.Errorf("the new sandbox's veth %s (old %s) is not a new port of the bridge, up", nv, veth)
	}
	if got := releasedWith(t, e, "n1", "10.1.0.5", sb.Endpoints[0].MAC); len(got) > 0 {
		t.Errorf("released records once the address is given again: %v, want none", got)
	}
	_, err = e.RemoveSandbox("s1", false)
	mustDo(t, err)
	k.reap()
	if a := gcActions(t, e, true); len(a) > 0 {
		t.Errorf("gc --dry-run after the kernel's clean-up: %q, want nothing", a)
	}
	gcActions(t, e, false)
	if got := releasedWith(t, e, "n1", "10.1.0.5", sb.Endpoints[0].MAC); len(got) > 0 {
		t.Errorf("released records after the kernel's clean-up and gc: %v, want none", got)
	}
	for _, l := range state(t, k, e) {
		if strings.HasPrefix(l, "link veth") || strings.HasPrefix(l, "peer ") || strings.HasPrefix(l, "mount s1") {
			t.Errorf("left after removal: %s", l)
		}
	}
}

// releasedWith is store.Tx.ReleasedWith in a transaction of its own.
func releasedWith(t *testing.T, e *Engine, network, addr, mac string) (veths []string) {
	t.Helper()
	mustDo(t, e.op(false, func() error {
		return e.view(func(tx *store.Tx) error {
			veths = tx.ReleasedWith(network, []netip.Addr{netip.MustParseAddr(addr)}, mac)
			return nil
		})
	}))
	return veths
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
	for _, failing := range []string{"mark link veth90dd53c8", "remove namespace s1"} {
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

// TestAddressesGoRoundRobin: an address is handed out again only once every
// other free one has been, so a removed sandbox's pair, which the kernel
// destroys a little later, is almost always gone by then; where the subnet
// leaves no other (a /30), the new sandbox sets the old pair down first.
func TestAddressesGoRoundRobin(t *testing.T) {
	k, e, _ := lazyWorld(t) // s1 has 10.1.0.5, given statically
	addressOf := func(name string, nets ...string) (string, string) {
		t.Helper()
		sb, err := e.CreateSandbox(SandboxSpec{Name: name, Networks: nets})
		mustDo(t, err)
		return sb.Endpoints[0].Address.Addr().String(), sb.Endpoints[0].HostVeth
	}
	remove := func(name string) {
		t.Helper()
		_, err := e.RemoveSandbox(name, false)
		mustDo(t, err)
	}
	var got []string
	for _, name := range []string{"a", "b", "c"} {
		a, _ := addressOf(name, "n1")
		got = append(got, a)
		remove(name)
	}
	if want := []string{"10.1.0.2", "10.1.0.3", "10.1.0.4"}; !slices.Equal(got, want) {
		t.Errorf("three sandboxes made and removed one after another got %v, want %v", got, want)
	}
	if a, _ := addressOf("d", "n1"); a != "10.1.0.6" {
		t.Errorf("the next one got %s, want 10.1.0.6 (10.1.0.5 is s1's)", a)
	}

	_, err := e.CreateNetwork(NetworkSpec{Name: "tiny", Subnet: "10.30.0.0/30"})
	mustDo(t, err)
	first, old := addressOf("x", "tiny")
	remove("x")
	if l := hostLink(k, old); l == nil || !l.up {
		t.Fatalf("x's pair %s: want it left up for the kernel, got %+v", old, l)
	}
	k.log = nil
	again, veth := addressOf("y", "tiny")
	if again != first {
		t.Fatalf("y on the /30 got %s, want its only address %s", again, first)
	}
	if i, j := slices.Index(k.log, "release veth "+old), slices.Index(k.log, "attach veth "+veth); i < 0 || j < i {
		t.Errorf("want x's pair %s set down before y's %s is made; steps: %v", old, veth, k.log)
	}
	if l := hostLink(k, old); l != nil && l.up {
		t.Errorf("x's pair %s is still up beside y's", old)
	}
}

// TestRebuiltFirewallBlocksReleasedPorts: a firewall rebuilt from the store
// (after an outside nft flush ruleset, say) while the kernel has not yet
// destroyed a released pair keeps its port blocked, and lets it go once gc
// has found the pair gone.
func TestRebuiltFirewallBlocksReleasedPorts(t *testing.T) {
	k, e, sb := lazyWorld(t)
	veth := sb.Endpoints[0].HostVeth
	_, err := e.RemoveSandbox("s1", false)
	mustDo(t, err)
	blocked := func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.fw != nil && k.fw.blocked[veth]
	}
	if !blocked() {
		t.Fatalf("the released port %s is not blocked after the removal", veth)
	}
	k.mu.Lock()
	k.fw = nil // nft flush ruleset
	k.mu.Unlock()
	mustDo(t, e.ReloadFirewall())
	if !blocked() {
		t.Errorf("the released port %s is not blocked in the firewall rebuilt from the store", veth)
	}
	if a := gcActions(t, e, true); len(a) > 0 {
		t.Errorf("gc --dry-run after the rebuild: %q, want nothing", a)
	}
	k.reap()
	gcActions(t, e, false)
	mustDo(t, e.ReloadFirewall())
	if blocked() {
		t.Errorf("the port %s is still blocked in a rebuild after gc found its pair gone", veth)
	}
}
