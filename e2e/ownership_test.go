package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// nsInode is the inode of the named namespace, by stat (an independent oracle).
func nsInode(t *testing.T, name string) string {
	t.Helper()
	out, err := testenv.RunIn("/proc/self/ns/net", "stat", "-L", "-c", "%i", testenv.NSPath(name))
	if err != nil {
		t.Fatalf("stat %s: %v\n%s", name, err, out)
	}
	return strings.TrimSpace(out)
}

// TestReplacedNamespaceIsLeftAlone deletes sandboxes' namespaces from
// outside and makes new ones under the same names, as `ip netns del X; ip
// netns add X` does: neither `sandbox rm` nor gc deletes, configures or
// shares the strangers; both forget the sandbox and say so. The control, a
// sandbox whose namespace is still its own, is removed with its namespace.
func TestReplacedNamespaceIsLeftAlone(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--subnet", "10.85.0.0/24", "n1")
	for _, s := range []string{a, b, c} {
		w.MustNsnet(t, "sandbox", "create", "--network", "n1", s)
	}
	for _, s := range []string{a, b} {
		mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", s)
		mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", s)
	}
	inoA, inoB := nsInode(t, a), nsInode(t, b)

	expectFail(t, w, 1, []string{"no longer the namespace", "nsnet gc"}, "sandbox", "create", "--network", "container:"+b, w.Name("d"))
	r := w.Nsnet("sandbox", "rm", a)
	if r.Code != 0 || !strings.Contains(r.Stderr, "left "+testenv.NSPath(a)+" alone") {
		t.Errorf("sandbox rm of a replaced namespace: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if got := nsInode(t, a); got != inoA {
		t.Errorf("sandbox rm touched the stranger at %s: inode %s, want %s", a, got, inoA)
	}
	out := w.MustNsnet(t, "gc")
	if !strings.Contains(out, "forget sandbox "+b) || !strings.Contains(out, "now names another namespace") {
		t.Errorf("gc did not forget %s:\n%s", b, out)
	}
	if got := nsInode(t, b); got != inoB {
		t.Errorf("gc touched the stranger at %s: inode %s, want %s", b, got, inoB)
	}
	if l := testenv.Links(t, b); len(l) != 1 || l[0].IfName != "lo" {
		t.Errorf("gc configured the stranger %s: links %v", b, l)
	}
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("gc does not converge:\n%s", out)
	}
	// Control: a sandbox whose namespace is its own is removed with it.
	w.MustNsnet(t, "sandbox", "rm", c)
	if contains(testenv.NamespaceNames(t), c) {
		t.Errorf("sandbox rm left the sandbox's own namespace %s", c)
	}
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", a)
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", b)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestHostNamespaceIsNotASandbox refuses to adopt the namespace nsnet runs
// in, by its /run/netns name or through /proc; another namespace is adopted.
func TestHostNamespaceIsNotASandbox(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	for _, path := range []string{w.HostPath(), "/proc/self/ns/net", "/proc/thread-self/ns/net"} {
		expectFail(t, w, 1, []string{"host's own network namespace", "--network host"},
			"sandbox", "create", "--network", "none", "--netns", path, w.Name("h"))
	}
	other := w.Name("other")
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", other)
	w.MustNsnet(t, "sandbox", "create", "--network", "none", "--netns", testenv.NSPath(other), w.Name("o"))
	w.MustNsnet(t, "sandbox", "rm", w.Name("o"))
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", other)
	w.AssertClean(t)
}

// linkLocal is the EUI-64 link-local address the kernel gives an interface
// with this MAC.
func linkLocal(t *testing.T, mac string) string {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("fe80::%02x%02x:%02xff:fe%02x:%02x%02x", hw[0]^2, hw[1], hw[2], hw[3], hw[4], hw[5])
}

// TestIPv6DisabledOnIPv4Networks checks that a sandbox of an IPv4-only
// network has no IPv6 on its interface (nor on one added later), nor the
// bridge (nor the host end of its veth), so it cannot reach a host service
// over link-local IPv6; with IPv6 turned back on at both ends (the control)
// it does.
func TestIPv6DisabledOnIPv4Networks(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.86.0.0/24", "--bridge", "br-v6", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", s)
	testenv.StartTCPEcho(t, w.Host, "[::]:2222")
	if got := testenv.Sysctl(t, s, "net/ipv6/conf/eth0/disable_ipv6"); got != "1" {
		t.Errorf("sandbox eth0 disable_ipv6 = %s, want 1", got)
	}
	// nsnet turned IPv6 off for every interface made in the namespace it
	// made, so one added later has it off too; the host's default is left.
	mustRun(t, s, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	if got := testenv.Sysctl(t, s, "net/ipv6/conf/d0/disable_ipv6"); got != "1" {
		t.Errorf("an interface added to the sandbox later: disable_ipv6 = %s, want 1", got)
	}
	mustRun(t, s, "ip", "link", "del", "d0")
	if got := testenv.Sysctl(t, w.Host, "net/ipv6/conf/default/disable_ipv6"); got != "0" {
		t.Errorf("the host's net.ipv6.conf.default.disable_ipv6 = %s, want 0 as the world made it", got)
	}
	if veth := inspectSandbox(t, w, s).Networks["n1"].HostVeth; testenv.Sysctl(t, w.Host, "net/ipv6/conf/"+veth+"/disable_ipv6") != "1" {
		t.Errorf("the sandbox's host veth %s has IPv6 on", veth)
	}
	if got := testenv.Sysctl(t, w.Host, "net/ipv6/conf/br-v6/disable_ipv6"); got != "1" {
		t.Errorf("bridge disable_ipv6 = %s, want 1", got)
	}
	for _, a := range mustLink(t, s, "eth0").AddrInfo {
		if a.Family == "inet6" {
			t.Errorf("sandbox eth0 has IPv6 address %s", a.Local)
		}
	}
	target := "[" + linkLocal(t, mustLink(t, w.Host, "br-v6").Address) + "%eth0]:2222"
	if _, err := testenv.TCPHello(s, target, dialTimeout); err == nil {
		t.Errorf("sandbox reached the host at %s over IPv6", target)
	}
	// Control: with IPv6 back on both ends the host service answers.
	for _, set := range []struct{ ns, dev string }{{w.Host, "br-v6"}, {s, "eth0"}} {
		mustRun(t, set.ns, "sysctl", "-qw", "net.ipv6.conf."+set.dev+".accept_dad=0")
		mustRun(t, set.ns, "sysctl", "-qw", "net.ipv6.conf."+set.dev+".disable_ipv6=0")
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err = testenv.TCPHello(s, target, dialTimeout); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("control: with IPv6 on, the sandbox should reach %s: %v", target, err)
	}
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestUntrustedStateRoot refuses a state root, or a directory in it, that
// is not root's or that others may write, and says how to fix it; fixed, the
// same command works.
func TestUntrustedStateRoot(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	intents := filepath.Join(w.Root, "intents")
	boot := filepath.Join(engine.StateDir("", w.Root), store.BootFile)
	w.MustNsnet(t, "network", "create", "--subnet", "10.87.0.0/24", "n1") // makes the root
	for _, c := range []struct {
		path, fix string
		breakIt   func(string) error
		fixIt     func(string) error
	}{
		{w.Root, "chmod go-w", func(p string) error { return os.Chmod(p, 0o777) }, func(p string) error { return os.Chmod(p, 0o700) }},
		{intents, "chmod go-w", func(p string) error { return os.Chmod(p, 0o770) }, func(p string) error { return os.Chmod(p, 0o700) }},
		{boot, "chmod go-w", func(p string) error { return os.Chmod(p, 0o666) }, func(p string) error { return os.Chmod(p, 0o600) }},
		{w.Root, "chown root:root", func(p string) error { return os.Chown(p, 65534, 65534) }, func(p string) error { return os.Chown(p, 0, 0) }},
	} {
		if err := c.breakIt(c.path); err != nil {
			t.Fatal(err)
		}
		expectFail(t, w, 1, []string{"refusing state path " + c.path, c.fix + " " + c.path}, "network", "ls")
		if err := c.fixIt(c.path); err != nil {
			t.Fatal(err)
		}
		w.MustNsnet(t, "network", "ls")
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestIntentsAndMarkersAreNotTrustedBlindly plants an intent that lists the
// host's uplink and a link made by hand, and a namespace marker whose file
// points at a namespace nsnet never made: recovery and gc touch none of them.
// The controls, an intent listing a link that carries this root's mark and a
// marker for a leftover mount of this root, are acted on.
func TestIntentsAndMarkersAreNotTrustedBlindly(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	mark := "nsnet:" + owner.ID(w.Root) + " sandbox ghost network n1"
	mustRun(t, w.Host, "ip", "link", "add", "byhand0", "type", "bridge")
	mustRun(t, w.Host, "ip", "link", "add", "ours0", "type", "bridge")
	mustRun(t, w.Host, "ip", "link", "set", "ours0", "alias", mark)
	w.MustNsnet(t, "firewall", "reload") // makes the root and its intents
	intent := `{"id":"planted","op":"sandbox-create","name":"ghost","object_id":"x","links":["eth0","byhand0","ours0"]}`
	if err := os.WriteFile(filepath.Join(w.Root, "intents", "planted.json"), []byte(intent), 0o600); err != nil {
		t.Fatal(err)
	}
	victim, left, ghost := w.Name("victim"), w.Name("left"), w.Name("ghost")
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", victim)
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", left)
	for name, body := range map[string]string{
		ghost: fmt.Sprintf(`{"name":%q,"root":%q,"path":%q,"owns":true}`, ghost, w.Root, testenv.NSPath(victim)),
		left:  fmt.Sprintf(`{"name":%q,"root":%q,"owns":true}`, left, w.Root),
	} {
		if err := os.WriteFile(filepath.Join("/run/nsnet/netns", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := w.MustNsnet(t, "gc")
	links := testenv.Links(t, w.Host)
	for _, name := range []string{"eth0", "byhand0"} {
		if _, ok := testenv.FindLink(links, name); !ok {
			t.Errorf("recovery deleted %s, which is not nsnet's (gc said:\n%s)", name, out)
		}
	}
	if _, ok := testenv.FindLink(links, "ours0"); ok {
		t.Errorf("control: recovery left ours0, which carries this root's mark")
	}
	names := testenv.NamespaceNames(t)
	if !contains(names, victim) {
		t.Errorf("gc removed %s, named only in a marker's contents", victim)
	}
	if contains(names, left) {
		t.Errorf("control: gc left %s, a marked leftover of this root", left)
	}
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", victim)
	mustRun(t, w.Host, "ip", "link", "del", "byhand0")
	w.AssertClean(t)
}

// TestIPNetnsExecIsRefused: under `ip netns exec`, nsnet runs in a mount
// namespace of its own that only receives the host's mounts, so a namespace
// it named under /run/netns would vanish when the command exits, and the
// sandbox with it. sandbox create refuses, changing nothing. The control:
// the same command through nsenter (the network namespace only) makes a
// sandbox whose name outlives the command.
func TestIPNetnsExecIsRefused(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b := w.Name("a"), w.Name("b")
	out, err := exec.Command("ip", "netns", "exec", w.Host, testenv.Binary(t), "--root", w.Root, "sandbox", "create", "--network", "none", a).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nsnet runs in a mount namespace whose mount at") || !strings.Contains(string(out), "nsenter --net=") {
		t.Errorf("sandbox create under ip netns exec: %v\n%s", err, out)
	}
	if contains(testenv.NamespaceNames(t), a) {
		t.Errorf("the refused create left a name for %s", a)
	}
	if ls := w.MustNsnet(t, "sandbox", "ls", "-q"); strings.TrimSpace(ls) != "" {
		t.Errorf("the refused create left a sandbox: %q", ls)
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "none", b)
	if !contains(testenv.NamespaceNames(t), b) {
		t.Errorf("through nsenter, %s's name does not outlive the command", b)
	}
	w.MustNsnet(t, "sandbox", "rm", b)
	w.AssertClean(t)
}
