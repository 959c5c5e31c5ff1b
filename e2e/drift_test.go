package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// flip returns the other value of a 0/1 sysctl.
func flip(v string) string {
	if v == "1" {
		return "0"
	}
	return "1"
}

// TestGCRepairsDrift changes, behind nsnet's back, every kind of kernel state
// nsnet owns: links set down, addresses and routes removed, a veth taken off
// its bridge, an MTU, MACs (the bridge's, a sandbox's), a sandbox's lo, the
// sysctls (forwarding, route_localnet, IPv6), a rule body and a map element. gc --dry-run lists each (and exits 2) without
// changing anything; it never plans a repair of a sandbox it plans to forget;
// gc repairs all of it; then the dry run has nothing to do (exit 0) and
// traffic flows again.
func TestGCRepairsDrift(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--subnet", "10.88.0.0/24", "--bridge", "br-d1", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.88.0.10", "-p", "8080:80", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.88.0.11", b)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.88.0.12", "-p", "8081:80", c)
	testenv.StartTCPEcho(t, a, "0.0.0.0:80")
	vethA, vethB := inspectSandbox(t, w, a).Networks["n1"].HostVeth, inspectSandbox(t, w, b).Networks["n1"].HostVeth
	gcClean(t, w, "before any drift")

	localnet := testenv.Sysctl(t, w.Host, "net/ipv4/conf/br-d1/route_localnet")
	for _, cmd := range [][]string{
		{w.Host, "ip", "link", "set", "br-d1", "down"},
		{w.Host, "ip", "addr", "del", "10.88.0.1/24", "dev", "br-d1"},
		{w.Host, "ip", "link", "set", "br-d1", "address", "02:00:00:00:00:99"},
		{w.Host, "ip", "link", "set", vethA, "nomaster"},
		{w.Host, "ip", "link", "set", vethB, "mtu", "1400"},
		{w.Host, "sysctl", "-qw", "net.ipv4.ip_forward=0"},
		{w.Host, "sysctl", "-qw", "net.ipv4.conf.br-d1.route_localnet=" + flip(localnet)},
		{w.Host, "sysctl", "-qw", "net.ipv6.conf.br-d1.disable_ipv6=0"},
		{a, "ip", "link", "set", "eth0", "down"},
		{b, "ip", "route", "del", "default"},
		{b, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0"},
		{b, "ip", "link", "set", "eth0", "address", "02:00:00:00:00:55"}, // anti-spoofing drops what it sends then
		{a, "ip", "link", "set", "lo", "down"},
		{w.Host, "nft", "add", "element", "inet", w.Table(), "ports-any-ip", "{ tcp . 9999 : 10.88.0.11 . 22 }"},
		{w.Host, "nft", "insert", "rule", "inet", w.Table(), "forward", "accept"},
		{"/proc/self/ns/net", "ip", "netns", "del", c},
	} {
		mustRun(t, cmd[0], cmd[1], cmd[2:]...)
	}
	plan := gcPending(t, w,
		"repair bridge br-d1 of network n1", "is down", "lacks address 10.88.0.1/24", "has MAC 02:00:00:00:00:99, not 02:42:0a:58:00:01",
		"sysctl net.ipv4.conf.br-d1.route_localnet is "+flip(localnet), "sysctl net.ipv6.conf.br-d1.disable_ipv6 is 0",
		"repair veth "+vethA+" of sandbox "+a, "is not a port of bridge br-d1", "eth0 in the sandbox is down",
		"repair veth "+vethB+" of sandbox "+b, "has MTU 1400, not 1500", "the sandbox lacks its default route via 10.88.0.1", "eth0 in the sandbox has IPv6 on",
		"eth0 in the sandbox has MAC 02:00:00:00:00:55, not 02:42:0a:58:00:0b", "lo in the sandbox is down",
		"turn IPv4 forwarding back on", "rewrite nftables table", "chain forward has", "set ports-any-ip",
		"forget sandbox "+c)
	for _, line := range strings.Split(plan, "\n") {
		if strings.Contains(line, c) && !strings.Contains(line, "forget sandbox "+c) {
			t.Errorf("the plan both forgets %s and acts on it: %q", c, line)
		}
	}
	if got := testenv.Sysctl(t, w.Host, "net/ipv4/ip_forward"); got != "0" {
		t.Errorf("gc --dry-run changed ip_forward to %s", got)
	}
	if err := testenv.Ping(b, "10.88.0.1"); err == nil {
		t.Errorf("the drift did not break anything: the test would not see a repair")
	}

	w.MustNsnet(t, "gc")
	gcClean(t, w, "after gc")
	if mac := mustLink(t, w.Host, "br-d1").Address; mac != "02:42:0a:58:00:01" {
		t.Errorf("after gc, br-d1 has MAC %s, not its own 02:42:0a:58:00:01", mac)
	}
	// Links that were down need a moment before they forward again.
	if err := eventually(func() error { return testenv.Ping(b, testenv.PublicIP) }); err != nil {
		t.Errorf("after gc, b cannot reach the internet: %v", err)
	}
	if err := testenv.Ping(a, "10.88.0.11"); err != nil {
		t.Errorf("after gc, a cannot reach b: %v", err)
	}
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "after gc, a's published port")
	if got := testenv.Sysctl(t, b, "net/ipv6/conf/eth0/disable_ipv6"); got != "1" {
		t.Errorf("after gc, b's eth0 disable_ipv6 = %s", got)
	}
	w.MustNsnet(t, "sandbox", "rm", a, b)
	w.MustNsnet(t, "network", "rm", "n1")
	gcClean(t, w, "with no networks left")
	w.AssertClean(t)
}

// TestGCKeepsRecordWhenTeardownFails makes the teardown of a vanished
// sandbox fail (its namespace marker cannot be removed): gc reports it and
// keeps the record, so the next gc can finish once the cause is gone.
func TestGCKeepsRecordWhenTeardownFails(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	d := w.Name("d")
	w.MustNsnet(t, "network", "create", "--subnet", "10.89.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", d)
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", d)
	marker := filepath.Join("/run/nsnet/netns", d)
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(marker, "stuck"), 0o700); err != nil { // cannot be removed as a file
		t.Fatal(err)
	}
	defer os.RemoveAll(marker)
	expectFail(t, w, 1, []string{"forget sandbox " + d, "the record of sandbox " + d + " is kept"}, "gc")
	inspectSandbox(t, w, d) // still there
	if err := os.RemoveAll(marker); err != nil {
		t.Fatal(err)
	}
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "forget sandbox "+d) {
		t.Errorf("gc after the cause is gone:\n%s", out)
	}
	expectFail(t, w, 1, []string{"not found"}, "sandbox", "inspect", d)
	gcClean(t, w, "after the second gc")
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestGCOnEmptyRoots runs gc on a root that has never had a network, and
// on one whose networks are all gone: nothing to do, and no table made.
func TestGCOnEmptyRoots(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	gcClean(t, w, "a new root")
	w.MustNsnet(t, "gc")
	gcClean(t, w, "a new root after gc")
	w.MustNsnet(t, "network", "create", "--subnet", "10.89.1.0/24", "n1")
	w.MustNsnet(t, "network", "rm", "n1")
	gcClean(t, w, "a root whose networks are gone")
	w.AssertClean(t)
}

// TestStaleClaimPassesOn: a sandbox whose name for its namespace was deleted
// outside nsnet (`ip netns del`) still claims that namespace. While the
// namespace lives on (here under the name it was adopted from), a sandbox
// that adopts it takes the claim over, with a warning; it used to be refused
// ("that namespace already belongs to sandbox d", and container:d could not
// help either, its name being gone). gc forgets d only, and the new claim
// holds. The same holds for a namespace that the kernel gave a dead one's
// number (engine's TestStaleNamespaceClaim).
func TestStaleClaimPassesOn(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	x, d, e := w.Name("x"), w.Name("d"), w.Name("e")
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", x)
	w.MustNsnet(t, "sandbox", "create", "--network", "none", "--netns", testenv.NSPath(x), d)
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", d) // nsnet's name for x

	r := w.Nsnet("sandbox", "create", "--network", "none", "--netns", testenv.NSPath(x), e)
	want := fmt.Sprintf("from sandbox %s, which no longer has it (its namespace %s is gone): run nsnet gc to forget sandbox %s", d, testenv.NSPath(d), d)
	if r.Code != 0 || !strings.Contains(r.Stderr, want) {
		t.Fatalf("adopting %s once %s's name for it is gone: exit %d, stderr %q; want success and %q", x, d, r.Code, r.Stderr, want)
	}
	out := w.MustNsnet(t, "gc")
	if !strings.Contains(out, "forget sandbox "+d+": ") || strings.Contains(out, e) {
		t.Errorf("gc should forget %s only:\n%s", d, out)
	}
	expectFail(t, w, 1, []string{"that namespace already belongs to sandbox " + e},
		"sandbox", "create", "--network", "none", "--netns", testenv.NSPath(x), w.Name("f"))
	w.MustNsnet(t, "sandbox", "rm", e)
	if !contains(testenv.NamespaceNames(t), x) {
		t.Errorf("removing %s destroyed the namespace it adopted", e)
	}
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", x)
	gcClean(t, w, "at the end")
	w.AssertClean(t)
}

// TestForeignBridgeIsLeftAlone: someone deletes a network's bridge and makes
// an interface of their own under its name. gc (dry run or not) says so and
// fails, leaving it as it is (it used to take it over: set nsnet's alias and
// the gateway address on it, and put the network's veths on it); sandbox
// create on the network is refused. The control: once the stranger is gone,
// gc makes the network's bridge again and a sandbox create works.
func TestForeignBridgeIsLeftAlone(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	br, a, b := "br-fb1", w.Name("a"), w.Name("b")
	w.MustNsnet(t, "network", "create", "--subnet", "10.84.0.0/24", "--bridge", br, "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", a)
	mustRun(t, w.Host, "ip", "link", "del", br)
	mustRun(t, w.Host, "ip", "link", "add", br, "type", "bridge")
	mustRun(t, w.Host, "ip", "addr", "add", "192.0.2.9/24", "dev", br)
	before := mustLink(t, w.Host, br)

	want := []string{"network n1: its bridge " + br + " is not this state root's", "ip link del " + br}
	expectFail(t, w, 1, want, "gc", "--dry-run")
	expectFail(t, w, 1, want, "gc")
	expectFail(t, w, 1, append(want, "sandbox "+b), "sandbox", "create", "--network", "n1", b)
	after := mustLink(t, w.Host, br)
	if after.IfAlias != "" || after.IsUp() || !slices.Equal(after.IPs("inet"), []string{"192.0.2.9/24"}) || after.Address != before.Address {
		t.Errorf("nsnet changed the stranger %s: before %+v, after %+v", br, before, after)
	}
	if ports := testenv.Links(t, w.Host); slices.ContainsFunc(ports, func(l testenv.Link) bool { return l.Master == br }) {
		t.Errorf("nsnet put a veth on the stranger %s", br)
	}

	mustRun(t, w.Host, "ip", "link", "del", br)
	out := w.MustNsnet(t, "gc")
	if !strings.Contains(out, "recreate bridge "+br+" of network n1") {
		t.Errorf("gc once the stranger is gone:\n%s", out)
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", b)
	if err := eventually(func() error { return testenv.Ping(b, "10.84.0.2") }); err != nil {
		t.Errorf("after gc, %s cannot reach %s: %v", b, a, err)
	}
	w.MustNsnet(t, "sandbox", "rm", a, b)
	// network rm leaves a stranger alone too.
	mustRun(t, w.Host, "ip", "link", "del", br)
	mustRun(t, w.Host, "ip", "link", "add", br, "type", "bridge")
	r := w.Nsnet("network", "rm", "n1")
	if r.Code != 0 || !strings.Contains(r.Stderr, "left "+br+" alone: it is someone else's interface now") {
		t.Errorf("network rm with a stranger under its bridge's name: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if _, ok := testenv.FindLink(testenv.Links(t, w.Host), br); !ok {
		t.Errorf("network rm deleted the stranger %s", br)
	}
	mustRun(t, w.Host, "ip", "link", "del", br)
	w.AssertClean(t)
}

// TestGCRecreatesStrayPairs: a veth pair changed by hand so that it cannot be
// repaired in place is deleted and made anew: a's eth0 renamed inside its
// namespace (gc used to fail on reading eth0's sysctls, doing nothing else),
// b's host end moved into another namespace (gc's recreation used to fail on
// the eth0 left in b).
func TestGCRecreatesStrayPairs(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, elsewhere := w.Name("a"), w.Name("b"), w.Name("elsewhere")
	w.MustNsnet(t, "network", "create", "--subnet", "10.83.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.83.0.2", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.83.0.3", b)
	vethA, vethB := inspectSandbox(t, w, a).Networks["n1"].HostVeth, inspectSandbox(t, w, b).Networks["n1"].HostVeth
	mustRun(t, a, "ip", "link", "set", "eth0", "down")
	mustRun(t, a, "ip", "link", "set", "eth0", "name", "foo0")
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", elsewhere)
	mustRun(t, w.Host, "ip", "link", "set", vethB, "netns", elsewhere)
	for _, s := range []string{a, b} {
		if err := testenv.Ping(s, "10.83.0.1"); err == nil {
			t.Errorf("the drift did not cut %s off: the test would not see a repair", s)
		}
	}
	gcPending(t, w, "recreate veth "+vethA+" of sandbox "+a+" on network n1 (its peer eth0 is missing from "+testenv.NSPath(a)+")",
		"recreate veth "+vethB+" of sandbox "+b+" on network n1")
	w.MustNsnet(t, "gc")
	gcClean(t, w, "after gc")
	for s, ip := range map[string]string{a: "10.83.0.2/24", b: "10.83.0.3/24"} {
		if l := mustLink(t, s, "eth0"); !slices.Equal(l.IPs("inet"), []string{ip}) {
			t.Errorf("after gc, eth0 of %s: %+v", s, l)
		}
		if err := eventually(func() error { return testenv.Ping(s, "10.83.0.1") }); err != nil {
			t.Errorf("after gc, %s cannot reach its gateway: %v", s, err)
		}
	}
	if _, ok := testenv.FindLink(testenv.Links(t, a), "foo0"); ok {
		t.Errorf("after gc, the renamed peer foo0 is still in %s", a)
	}
	if _, ok := testenv.FindLink(testenv.Links(t, elsewhere), vethB); ok {
		t.Errorf("after gc, %s's old host end is still in %s", b, elsewhere)
	}
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", elsewhere)
	w.MustNsnet(t, "sandbox", "rm", a, b)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestForeignVethIsLeftAlone: someone deletes a sandbox's host veth and makes
// an interface of their own under its name: gc says so and fails, and leaves
// it off the bridge and unmarked (it used to take it over). The control: once
// the stranger is gone, gc makes the sandbox's veth again.
func TestForeignVethIsLeftAlone(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a := w.Name("a")
	w.MustNsnet(t, "network", "create", "--subnet", "10.82.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", a)
	veth := inspectSandbox(t, w, a).Networks["n1"].HostVeth
	mustRun(t, w.Host, "ip", "link", "del", veth)
	mustRun(t, w.Host, "ip", "link", "add", veth, "type", "veth", "peer", "name", "fv-peer")

	want := []string{"veth " + veth + " of sandbox " + a + " is not this state root's", "ip link del " + veth}
	expectFail(t, w, 1, want, "gc", "--dry-run")
	expectFail(t, w, 1, want, "gc")
	if l := mustLink(t, w.Host, veth); l.Master != "" || l.IfAlias != "" {
		t.Errorf("gc took over the stranger %s: %+v", veth, l)
	}

	mustRun(t, w.Host, "ip", "link", "del", veth)
	w.MustNsnet(t, "gc")
	gcClean(t, w, "once the stranger is gone")
	if err := eventually(func() error { return testenv.Ping(a, "10.82.0.1") }); err != nil {
		t.Errorf("after gc, %s cannot reach its gateway: %v", a, err)
	}
	w.MustNsnet(t, "sandbox", "rm", a)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}
