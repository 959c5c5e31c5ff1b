package testenv

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil && Required() {
			t.Fatalf("%s not installed, and NSNET_E2E=1 says privileged tests must run", tool)
		} else if err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// rootLinks lists link names of the real namespace (read only).
func rootLinks(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, f[0]+f[1])
		}
	}
	return names
}

func netnsInode(t *testing.T, path string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

func TestLifecycleRemovesEverything(t *testing.T) {
	t.Parallel()
	before := rootLinks(t)
	var w *World
	t.Run("world", func(t *testing.T) {
		w = New(t)
		// A sandbox like nsnet makes, with a veth into the host namespace.
		sbx := w.Name("sbx")
		if err := netnsAdd(sbx); err != nil {
			t.Fatal(err)
		}
		if _, err := ip("-n", sbx, "link", "add", "ve0", "type", "veth",
			"peer", "name", "vh0", "netns", w.Host); err != nil {
			t.Fatal(err)
		}
		names := NamespaceNames(t)
		for _, n := range []string{w.Host, w.Inet, sbx} {
			if !slices.Contains(names, n) {
				t.Errorf("namespace %s missing from %v", n, names)
			}
		}
	})
	if w == nil {
		return // skipped
	}
	if left, _ := prefixed(w.Prefix); len(left) > 0 {
		t.Errorf("namespaces left after cleanup: %v", left)
	}
	if _, err := os.Stat(w.Root); !os.IsNotExist(err) {
		t.Errorf("root dir %s still there: %v", w.Root, err)
	}
	if after := rootLinks(t); !slices.Equal(before, after) {
		t.Errorf("real namespace links changed: %v -> %v", before, after)
	}
}

func TestWorldShape(t *testing.T) {
	t.Parallel()
	w := New(t)
	if !regexp.MustCompile(`^[a-z0-9]{1,6}$`).MatchString(w.Prefix) ||
		w.Host != w.Prefix+"-host" || w.Inet != w.Prefix+"-inet" ||
		w.Name("x") != w.Prefix+"-x" || w.HostPath() != "/run/netns/"+w.Host {
		t.Errorf("bad names: %+v", w)
	}
	if w.Bin != "" {
		t.Errorf("Bin built eagerly: %s", w.Bin)
	}
	checkLink(t, Addrs(t, w.Host), "eth0", "veth", UplinkIP+"/24")
	checkLink(t, Addrs(t, w.Host), "lo", "", "127.0.0.1/8")
	checkLink(t, Addrs(t, w.Inet), "wan0", "veth", RouterIP+"/24")
	checkLink(t, Addrs(t, w.Inet), "lo", "", "127.0.0.1/8", PublicIP+"/32")
	if n := len(Links(t, w.Host)); n != 2 {
		t.Errorf("host has %d links, want 2", n)
	}
	want := []Route{{Dst: "default", Gateway: RouterIP, Dev: "eth0", Flags: []string{}},
		{Dst: "203.0.113.0/24", Dev: "eth0", Protocol: "kernel", Scope: "link",
			PrefSrc: UplinkIP, Flags: []string{}}}
	if got := Routes(t, w.Host); !reflect.DeepEqual(got, want) {
		t.Errorf("host routes %+v, want %+v", got, want)
	}
	if got := Routes(t, w.Inet); len(got) != 1 || got[0].Dst != "203.0.113.0/24" {
		t.Errorf("inet routes %+v, want only 203.0.113.0/24", got)
	}
	for _, ns := range []string{w.Host, w.Inet} {
		if v := Sysctl(t, ns, "net.ipv4.ip_forward"); v != "0" {
			t.Errorf("ip_forward in %s = %q", ns, v)
		}
	}
}

func checkLink(t *testing.T, links []Link, name, kind string, addrs ...string) {
	t.Helper()
	l, ok := FindLink(links, name)
	if !ok {
		t.Fatalf("no link %s in %+v", name, links)
	}
	if l.Kind() != kind || !l.IsUp() || !slices.Equal(l.IPs("inet"), addrs) {
		t.Errorf("link %s: kind %q up %v addrs %v; want %q, up, %v",
			name, l.Kind(), l.IsUp(), l.IPs("inet"), kind, addrs)
	}
}

func TestSysctlAgreesWithInNS(t *testing.T) {
	t.Parallel()
	w := New(t)
	if err := writeSysctl(w.Host, "net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if v := Sysctl(t, w.Host, "net/ipv4/ip_forward"); v != "1" {
		t.Errorf("host ip_forward = %q after writing 1", v)
	}
	if v := Sysctl(t, w.Inet, "net/ipv4/ip_forward"); v != "0" {
		t.Errorf("inet ip_forward = %q, want untouched 0", v)
	}
}

func TestInNS(t *testing.T) {
	t.Parallel()
	w := New(t)
	var inside string
	err := InNS(w.HostPath(), func() (err error) {
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	})
	if err != nil || inside != netnsInode(t, w.HostPath()) {
		t.Errorf("inside = %q, %v; want %s", inside, err, netnsInode(t, w.HostPath()))
	}
	sentinel := fmt.Errorf("sentinel")
	if err := InNS(w.InetPath(), func() error { return sentinel }); err != sentinel {
		t.Errorf("error not passed through: %v", err)
	}
	if err := InNS(NSPath(w.Name("nope")), func() error { return nil }); err == nil {
		t.Error("InNS on a missing namespace succeeded")
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	needTools(t, "ping")
	w := New(t)
	if err := Ping(w.Host, PublicIP); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range Neighbours(t, w.Host) {
		found = found || (n.Dst == RouterIP && n.Dev == "eth0" && n.LLAddr != "")
	}
	if !found {
		t.Errorf("no neighbour entry for %s: %+v", RouterIP, Neighbours(t, w.Host))
	}
	// No route from the internet to a sandbox subnet: fails locally.
	if err := Ping(w.Inet, "192.168.88.1"); err == nil {
		t.Error("inet reached 192.168.88.1")
	}
}

func TestTCPEcho(t *testing.T) {
	t.Parallel()
	w := New(t)
	addr := PublicIP + ":7777"
	s := StartTCPEcho(t, w.Inet, addr)
	got, err := TCPHello(w.Host, addr, 5*time.Second)
	if err != nil || got != "from "+UplinkIP {
		t.Fatalf("TCPHello = %q, %v", got, err)
	}
	c, err := DialIn(w.Host, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "ping\n")
	want := "from " + UplinkIP + "\nping\n"
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != want {
		t.Errorf("echo got %q, %v", buf, err)
	}
	if seen := s.Seen(); !slices.Equal(seen, []string{UplinkIP, UplinkIP}) {
		t.Errorf("Seen = %v", seen)
	}
	// The server is only in Inet: the host has no such local address.
	if _, err := TCPHello(w.Host, "127.0.0.1:7777", time.Second); err == nil {
		t.Error("echo server reachable on the host's loopback")
	}
}

func TestSnapshotAndAssertClean(t *testing.T) {
	t.Parallel()
	needTools(t, "nft")
	w := New(t)
	s1, s2 := w.Snapshot(t), w.Snapshot(t)
	if d := s1.Diff(s2); d != "" || !reflect.DeepEqual(s1, s2) {
		t.Errorf("snapshots of an unchanged world differ:\n%s", d)
	}
	if len(s1.Links) != 2 || len(s1.Routes) != 2 || len(s1.Nft) != 0 || len(s1.Namespaces) != 2 {
		t.Errorf("unexpected snapshot %+v", s1)
	}
	w.AssertClean(t)

	// Make it dirty: a link, a table, a sandbox.
	mustRun(t, w.Host, "ip", "link", "add", "br7", "type", "bridge")
	mustRun(t, w.Host, "nft", "add", "table", "inet", "leftover")
	if err := netnsAdd(w.Name("sbx")); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	w.AssertClean(r)
	if len(r.errs) != 3 {
		t.Errorf("AssertClean on a dirty world reported %d errors: %q", len(r.errs), r.errs)
	}
	d := s1.Diff(w.Snapshot(t))
	for _, want := range []string{"+ br7 kind=bridge", `+ table {"family":"inet","name":"leftover"}`, "+ " + w.Name("sbx")} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
}

func mustRun(t *testing.T, ns string, name string, args ...string) {
	t.Helper()
	if out, err := RunIn(ns, name, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestDiff(t *testing.T) {
	a := Snapshot{Routes: []string{"x", "y", "y"}, Nft: []string{"a", "b"}}
	b := Snapshot{Routes: []string{"y", "z"}, Nft: []string{"b", "a"}}
	want := "routes:\n  - x\n  - y\n  + z\nnft:\n  (same entries, different order)\n"
	if d := a.Diff(b); d != want {
		t.Errorf("Diff = %q, want %q", d, want)
	}
	if d := a.Diff(a); d != "" {
		t.Errorf("self Diff = %q", d)
	}
}

// TestNsnetFakeBinary checks how Nsnet runs its binary, using a script.
func TestNsnetFakeBinary(t *testing.T) {
	t.Setenv("NSNET_ROOT", "/must/not/be/seen")
	w := New(t)
	w.Bin = filepath.Join(t.TempDir(), "fake-nsnet")
	script := `#!/bin/sh
echo "args=$*"
echo "env=${NSNET_ROOT-unset}"
readlink /proc/self/ns/net /proc/self/ns/mnt
echo to-stderr >&2
for a; do last=$a; done
exit $last
`
	if err := os.WriteFile(w.Bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt, _ := os.Readlink("/proc/self/ns/mnt")
	r := w.Nsnet("network", "ls", "3")
	want := fmt.Sprintf("args=--root %s network ls 3\nenv=unset\n%s\n%s\n",
		w.Root, netnsInode(t, w.HostPath()), mnt)
	if r.Code != 3 || r.Stdout != want || r.Stderr != "to-stderr\n" {
		t.Errorf("Nsnet = %+v\nwant stdout %q", r, want)
	}
	if out := w.MustNsnet(t, "0"); !strings.HasPrefix(out, "args=--root "+w.Root+" 0\n") {
		t.Errorf("MustNsnet stdout %q", out)
	}
}

// TestBinary builds the real CLI.
func TestBinary(t *testing.T) {
	p := Binary(t)
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 || !filepath.IsAbs(p) {
		t.Errorf("Binary() = %s: %v %v", p, st, err)
	}
	if q := Binary(t); q != p {
		t.Errorf("second Binary() = %s, want %s", q, p)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

// TestRepliesNeedMasquerade checks the world's key property with a
// hand-made sandbox: the internet answers a sandbox only through NAT.
func TestRepliesNeedMasquerade(t *testing.T) {
	t.Parallel()
	needTools(t, "nft")
	w := New(t)
	sbx := w.Name("s1")
	if err := netnsAdd(sbx); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-n", w.Host, "link", "add", "br0", "type", "bridge"},
		{"-n", w.Host, "addr", "add", "192.168.88.1/24", "dev", "br0"},
		{"-n", w.Host, "link", "set", "br0", "up"},
		{"-n", sbx, "link", "add", "eth0", "type", "veth", "peer", "name", "vh1", "netns", w.Host},
		{"-n", w.Host, "link", "set", "vh1", "master", "br0", "up"},
		{"-n", sbx, "addr", "add", "192.168.88.11/24", "dev", "eth0"},
		{"-n", sbx, "link", "set", "eth0", "up"},
		{"-n", sbx, "route", "add", "default", "via", "192.168.88.1"},
	} {
		if _, err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeSysctl(w.Host, "net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	s := StartTCPEcho(t, w.Inet, "0.0.0.0:7777")
	addr := PublicIP + ":7777"
	if got, err := TCPHello(sbx, addr, time.Second); err == nil {
		t.Errorf("reply without NAT: %q", got)
	}
	mustRun(t, w.Host, "nft", "add table ip t; add chain ip t post { type nat hook postrouting priority 100; }; "+
		"add rule ip t post ip saddr 192.168.88.0/24 oifname eth0 masquerade")
	if got, err := TCPHello(sbx, addr, 5*time.Second); err != nil || got != "from "+UplinkIP {
		t.Errorf("with NAT: %q, %v", got, err)
	}
	if seen := s.Seen(); !slices.Equal(seen, []string{UplinkIP}) {
		t.Errorf("Seen = %v, want only the masqueraded connection", seen)
	}
}

// TestCleanupReportsLeftovers plants what a test that did not clean up would
// leave of nsnet (a marker, a pending intent, a process of the state root):
// the world's cleanup reports each as a failure, then removes it.
func TestCleanupReportsLeftovers(t *testing.T) {
	t.Parallel()
	NeedRoot(t)
	rec := &recorder{TB: t}
	w := &World{Root: t.TempDir()}
	if err := w.claimPrefix(); err != nil {
		t.Fatal(err)
	}
	if err := w.setup(); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(markerDir, w.Name("s"))
	intent := filepath.Join(w.Root, "intents", "x.json")
	for _, f := range []string{marker, intent} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proc := exec.Command("sh", "-c", "sleep 60; :", "--root", w.Root, "x") // a command line like a port holder's
	if err := proc.Start(); err == nil {
		defer proc.Wait()
	}
	w.destroy(rec)
	got := strings.Join(rec.errs, "\n")
	for _, want := range []string{"leftover " + marker, "leftover " + intent, "leftover process"} {
		if !strings.Contains(got, want) {
			t.Errorf("cleanup did not report %q; it reported:\n%s", want, got)
		}
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s", marker)
	}
}
