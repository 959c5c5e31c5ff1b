package e2e

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestSubnetChoice checks that networks made without --subnet get free
// subnets from the pool, skipping other networks and the host's routes.
func TestSubnetChoice(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	pool := []string{"--default-address-pool", "base=10.70.0.0/16,size=24"}
	mustRun(t, w.Host, "ip", "route", "add", "10.70.1.0/24", "via", testenv.RouterIP)
	w.MustNsnet(t, append(pool, "network", "create", "a")...)
	w.MustNsnet(t, append(pool, "network", "create", "b")...)
	if got := inspectNetwork(t, w, "a"); got.Subnet != "10.70.0.0/24" || got.Gateway != "10.70.0.1" {
		t.Errorf("network a: %s gw %s, want 10.70.0.0/24 gw 10.70.0.1", got.Subnet, got.Gateway)
	}
	if got := inspectNetwork(t, w, "b"); got.Subnet != "10.70.2.0/24" {
		t.Errorf("network b: %s, want 10.70.2.0/24 (10.70.0.0/24 is a's, 10.70.1.0/24 a host route's)", got.Subnet)
	}
	expectFail(t, w, 1, []string{"pool", "--subnet"},
		"--default-address-pool", "base=10.70.0.0/23,size=24", "network", "create", "c")
	w.MustNsnet(t, "network", "rm", "a", "b")
	mustRun(t, w.Host, "ip", "route", "del", "10.70.1.0/24")
	w.AssertClean(t)
}

// TestLeases checks that leases persist across invocations, are handed out
// round-robin and released on removal (a released address is given again once
// the subnet has gone round), respect static addresses, and that a full
// subnet is a clear error.
func TestLeases(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, c, d := w.Name("a"), w.Name("b"), w.Name("c"), w.Name("d")
	w.MustNsnet(t, "network", "create", "--subnet", "10.71.0.0/29", "small")
	w.MustNsnet(t, "sandbox", "create", "--network", "small", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "small", "--ip", "10.71.0.3", b)
	w.MustNsnet(t, "sandbox", "create", "--network", "small", c)
	addr := func(sb string) string { return inspectSandbox(t, w, sb).Networks["small"].Address }
	if addr(a) != "10.71.0.2/29" || addr(b) != "10.71.0.3/29" || addr(c) != "10.71.0.4/29" {
		t.Errorf("addresses a=%s b=%s c=%s, want .2 .3 .4", addr(a), addr(b), addr(c))
	}
	expectFail(t, w, 1, []string{"10.71.0.3", "already in use"}, "sandbox", "create", "--network", "small", "--ip", "10.71.0.3", d)
	w.MustNsnet(t, "sandbox", "rm", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "small", d)
	if addr(d) != "10.71.0.5/29" {
		t.Errorf("d=%s, want the next address after c's, 10.71.0.5/29, not a's released one", addr(d))
	}
	if mac := inspectSandbox(t, w, d).Networks["small"].MAC; mac != "02:42:0a:47:00:05" {
		t.Errorf("MAC %s, want 02:42:0a:47:00:05 (stable per address)", mac)
	}
	// .6 is left, then a's released .2; .7 is broadcast.
	e := w.Name("e")
	w.MustNsnet(t, "sandbox", "create", "--network", "small", e)
	w.MustNsnet(t, "sandbox", "create", "--network", "small", a)
	if addr(e) != "10.71.0.6/29" || addr(a) != "10.71.0.2/29" {
		t.Errorf("e=%s a=%s, want .6, then the released .2 once the subnet has gone round", addr(e), addr(a))
	}
	if mac := inspectSandbox(t, w, a).Networks["small"].MAC; mac != "02:42:0a:47:00:02" {
		t.Errorf("MAC %s, want 02:42:0a:47:00:02 (stable per address)", mac)
	}
	before := w.Snapshot(t)
	f := w.Name("f")
	expectFail(t, w, 1, []string{"10.71.0.0/29", "full"}, "sandbox", "create", "--network", "small", f)
	if diff := before.Diff(w.Snapshot(t)); diff != "" {
		t.Errorf("failed create changed the world:\n%s", diff)
	}
	n := inspectNetwork(t, w, "small")
	var got []string
	for _, s := range n.Sandboxes {
		got = append(got, s.Address)
	}
	if strings.Join(got, " ") == "" || len(got) != 5 {
		t.Errorf("network inspect lists addresses %v, want 5", got)
	}
	w.MustNsnet(t, "sandbox", "rm", a, b, c, d, e)
	w.MustNsnet(t, "network", "rm", "small")
	w.AssertClean(t)
}
