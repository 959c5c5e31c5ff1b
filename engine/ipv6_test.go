package engine

import (
	"strings"
	"testing"
)

// TestIPv6OffByDefaultInNewNamespaces: a namespace nsnet makes for a bridge
// sandbox turns IPv6 off for every interface made in it (written once, inside
// it, before anything is made there), so eth0 has it off without a write of
// its own; an adopted namespace keeps its default and gets the write on eth0.
// Either way the host end has IPv6 off; the host's defaults are untouched,
// and gc finds nothing to repair.
func TestIPv6OffByDefaultInNewNamespaces(t *testing.T) {
	k := newFakeKernel(t)
	e := fakeEngine(t, k, false)
	withNetwork(t, k, e)
	mustDo(t, k.outsideNamespace("ADOPT"))
	k.log = nil
	own, err := e.CreateSandbox(SandboxSpec{Name: "own", Networks: []string{"n1"}})
	mustDo(t, err)
	adopted, err := e.CreateSandbox(SandboxSpec{Name: "adopted", Networks: []string{"n1"}, NetNS: k.dir + "/ADOPT"})
	mustDo(t, err)
	cases := []struct {
		sb                 *Sandbox
		defaultV6, ethStep bool
	}{{own, true, false}, {adopted, false, true}}
	sys := fakeSysctls{k}
	for _, c := range cases {
		id := netnsID(c.sb).String()
		if got := sys.get(id + " net/ipv6/conf/eth0/disable_ipv6"); got != "1" {
			t.Errorf("%s: eth0 disable_ipv6 = %s, want 1", c.sb.Name, got)
		}
		if got := sys.get(id+" net/ipv6/conf/default/disable_ipv6") == "1"; got != c.defaultV6 {
			t.Errorf("%s: default disable_ipv6 set: %v, want %v", c.sb.Name, got, c.defaultV6)
		}
		if got := logged(k, "sysctl"+id+" net/ipv6/conf/eth0/disable_ipv6=1"); got != c.ethStep {
			t.Errorf("%s: a write of its own to eth0: %v, want %v (steps %v)", c.sb.Name, got, c.ethStep, k.log)
		}
		if got := sys.get(" net/ipv6/conf/" + c.sb.Endpoints[0].HostVeth + "/disable_ipv6"); got != "1" {
			t.Errorf("%s: the host end's disable_ipv6 = %s, want 1", c.sb.Name, got)
		}
	}
	for key := range k.sysctl {
		if strings.HasPrefix(key, " ") && strings.Contains(key, "/default/") {
			t.Errorf("the host's %s was changed", key)
		}
	}
	if a := gcActions(t, e, true); len(a) > 0 {
		t.Errorf("gc --dry-run after the creates: %q, want nothing", a)
	}
}
