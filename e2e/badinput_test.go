package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// badState is everything a rejected command must leave as it was: the host
// namespace (links, routes, nft ruleset, the world's namespaces), the
// forwarding sysctl, the links and routes inside sandbox s1, and the store as
// the CLI lists it plus its leases and the files in the state directory.
type badState struct {
	Snap      testenv.Snapshot
	Forward   string
	Sandbox   []string
	Networks  string
	Sandboxes string
	Leases    []string
	RootFiles []string
}

func (s badState) diff(o badState) string {
	var b strings.Builder
	b.WriteString(s.Snap.Diff(o.Snap))
	if s.Forward != o.Forward {
		fmt.Fprintf(&b, "net.ipv4.ip_forward: %s -> %s\n", s.Forward, o.Forward)
	}
	if !reflect.DeepEqual(s.Sandbox, o.Sandbox) {
		fmt.Fprintf(&b, "inside sandbox s1: %q -> %q\n", s.Sandbox, o.Sandbox)
	}
	if s.Networks != o.Networks {
		fmt.Fprintf(&b, "network ls --format json:\n--- before\n%s--- after\n%s", s.Networks, o.Networks)
	}
	if s.Sandboxes != o.Sandboxes {
		fmt.Fprintf(&b, "sandbox ls --format json:\n--- before\n%s--- after\n%s", s.Sandboxes, o.Sandboxes)
	}
	if !reflect.DeepEqual(s.Leases, o.Leases) {
		fmt.Fprintf(&b, "leases: %q -> %q\n", s.Leases, o.Leases)
	}
	if !reflect.DeepEqual(s.RootFiles, o.RootFiles) {
		fmt.Fprintf(&b, "state dir files: %q -> %q\n", s.RootFiles, o.RootFiles)
	}
	return b.String()
}

func takeBadState(t *testing.T, w *testenv.World, sandbox string) badState {
	t.Helper()
	return badState{
		Snap:      w.Snapshot(t),
		Forward:   testenv.Sysctl(t, w.Host, "net.ipv4.ip_forward"),
		Sandbox:   nsState(t, sandbox),
		Networks:  w.MustNsnet(t, "network", "ls", "--format", "json"),
		Sandboxes: w.MustNsnet(t, "sandbox", "ls", "--format", "json"),
		Leases:    storeLeases(t, w.Root),
		RootFiles: dirEntries(t, w.Root),
	}
}

// nsState describes the links (with master and addresses) and IPv4 routes of
// namespace ns.
func nsState(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	for _, l := range testenv.Addrs(t, ns) {
		out = append(out, fmt.Sprintf("link %s kind=%s mac=%s mtu=%d addrs=%s",
			l.IfName, l.Kind(), l.Address, l.MTU, strings.Join(l.IPs("inet"), ",")))
	}
	for _, r := range testenv.Routes(t, ns) {
		out = append(out, fmt.Sprintf("route %s via=%s dev=%s", r.Dst, r.Gateway, r.Dev))
	}
	sort.Strings(out)
	return out
}

// storeLeases lists every lease in the state store as "network ip sandbox".
func storeLeases(t *testing.T, root string) []string {
	t.Helper()
	st, err := openStore(root, store.Options{ReadOnly: true, LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	var out []string
	err = st.View(func(tx *store.Tx) error {
		nets, err := tx.Networks()
		if err != nil {
			return err
		}
		for _, n := range nets {
			ls, err := tx.Leases(n.Name)
			if err != nil {
				return err
			}
			for _, l := range ls {
				out = append(out, n.Name+" "+l.IP.String()+" "+l.Sandbox)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read leases: %v", err)
	}
	return out
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, p+" "+info.Mode().String())
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// nobodyBinary copies the nsnet binary into a world-readable directory (the
// one testenv builds into is 0700 root) so user nobody can execute it.
func nobodyBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nsnet-badinput-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(testenv.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "nsnet")
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// nsnetAsNobody runs the binary inside the world's host namespace as uid and
// gid 65534 with no supplementary groups.
func nsnetAsNobody(w *testenv.World, bin string, args ...string) testenv.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append([]string{"--net=" + w.HostPath(), "--", "setpriv", "--reuid=65534", "--regid=65534",
		"--clear-groups", bin, "--root", w.Root}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := testenv.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: -1}
	if cmd.ProcessState != nil {
		r.Code = cmd.ProcessState.ExitCode()
	}
	if err != nil && r.Code == -1 {
		r.Stderr += "\n" + err.Error()
	}
	return r
}

// TestBadInput checks that every kind of bad input gets a clear error naming
// what is wrong, exit code 1, and changes neither the store nor the kernel.
func TestBadInput(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s1 := w.Name("s1")
	sx := w.Name("sx") // the name of sandboxes that must not be created

	// Baseline. n1 is --internal so that ip_forward stays 0 and any bad
	// command that turns it on is caught.
	w.MustNsnet(t, "network", "create", "--subnet", "10.20.0.0/24", "--bridge", "br-n1", "--internal", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.20.0.10", s1)
	// n6 is dual-stack (internal too), for the IPv6 rows; the world's IPv6
	// gives the host a route to 2001:db8:1::/64.
	w.EnableIPv6(t)
	w.MustNsnet(t, "network", "create", "--ipv6", "--subnet", "10.21.0.0/24", "--subnet", "fd00:20::/64", "--internal", "n6")
	if out, err := testenv.RunIn(w.Host, "ip", "route", "add", "10.77.0.0/16", "via", testenv.RouterIP); err != nil {
		t.Fatalf("add host route: %v\n%s", err, out)
	}

	notNS := filepath.Join(t.TempDir(), "regular-file")
	if err := os.WriteFile(notNS, []byte("not a namespace\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	long65 := w.Name(strings.Repeat("a", 64-len(w.Name("")))) + "b"
	if len(long65) != 65 {
		t.Fatalf("long65 is %d characters", len(long65))
	}
	bridge16 := "br-0123456789abc"
	badLabels := filepath.Join(t.TempDir(), "labels")
	if err := os.WriteFile(badLabels, []byte("ok=1\nk=\xff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spaceLabels := filepath.Join(t.TempDir(), "labels")
	if err := os.WriteFile(spaceLabels, []byte("# comment\nmy key=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const opt = "com.docker.network."
	var tooManyLabels []string
	for i := range 65 {
		tooManyLabels = append(tooManyLabels, "--label", fmt.Sprintf("k%d=v", i))
	}
	longKey := strings.Repeat("k", 256)

	rows := []struct {
		name   string
		args   []string
		want   []string // substrings of stderr
		stdout string   // expected stdout, spaces trimmed
		nobody bool     // run as uid 65534
		code   int      // expected exit code; 0 means 1
		// better are substrings saying what to do, checked after the state.
		better []string
	}{
		// network create: subnet
		{name: "cidr bad octet", args: []string{"network", "create", "--subnet", "10.0.0.300/24", "nx"},
			want: []string{`"10.0.0.300/24"`, "invalid subnet", "CIDR"}},
		{name: "cidr nonsense", args: []string{"network", "create", "--subnet", "nonsense", "nx"},
			want: []string{`"nonsense"`, "invalid subnet", "CIDR"}},
		{name: "cidr ipv6 without --ipv6", args: []string{"network", "create", "--subnet", "fd00::/64", "nx"},
			want: []string{`"fd00::/64"`, "needs --ipv6"}, better: []string{"add --ipv6"}},
		// network create: IPv6
		{name: "ipv6 cidr multicast", args: []string{"network", "create", "--ipv6", "--subnet", "ff05::/64", "nx"},
			want: []string{`"ff05::/64"`, "ff00::/8", "multicast"}},
		{name: "ipv6 cidr link-local", args: []string{"network", "create", "--ipv6", "--subnet", "fe80::/64", "nx"},
			want: []string{`"fe80::/64"`, "link-local"}, better: []string{"unique local"}},
		{name: "ipv6 cidr loopback", args: []string{"network", "create", "--ipv6", "--subnet", "::1/128", "nx"},
			want: []string{`"::1/128"`, "loopback"}},
		{name: "ipv6 cidr v4-mapped", args: []string{"network", "create", "--ipv6", "--subnet", "::ffff:10.30.0.0/120", "nx"},
			want: []string{"IPv4-mapped"}},
		{name: "ipv6 cidr /127", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::/127", "nx"},
			want: []string{`"fd00:30::/127"`, "prefix length", "/126"}},
		{name: "ipv6 cidr /128", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::/128", "nx"},
			want: []string{`"fd00:30::/128"`, "prefix length", "/126"}},
		{name: "ipv6 cidr host bits", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::5/64", "nx"},
			want: []string{`"fd00:30::5/64"`, "host bits", "fd00:30::/64"}},
		{name: "ipv6 cidr nonsense", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:zz::/64", "nx"},
			want: []string{`"fd00:zz::/64"`, "CIDR"}},
		{name: "two ipv4 subnets", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--subnet", "10.31.0.0/24", "nx"},
			want: []string{"--subnet 10.31.0.0/24", "one --subnet per address family", "10.30.0.0/24"}},
		{name: "two ipv6 subnets", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::/64", "--subnet", "fd00:31::/64", "nx"},
			want: []string{"--subnet fd00:31::/64", "one --subnet per address family"}},
		{name: "ipv6 subnet overlaps network", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:20::/48", "nx"},
			want: []string{"fd00:20::/48", "overlaps", "fd00:20::/64", "n6"}},
		{name: "ipv6 subnet overlaps uplink", args: []string{"network", "create", "--ipv6", "--subnet", "2001:db8:1::/64", "nx"},
			want: []string{"2001:db8:1::/64", "overlaps", "host route"}},
		{name: "ipv6 gateway outside subnet", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::/64", "--gateway", "fd00:31::1", "nx"},
			want: []string{"fd00:31::1", "outside", "fd00:30::/64"}},
		{name: "ipv6 gateway link-local", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::/64", "--gateway", "fe80::1", "nx"},
			want: []string{`"fe80::1"`, "link-local"}},
		{name: "ipv6 gateway multicast", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::/64", "--gateway", "ff02::1", "nx"},
			want: []string{`"ff02::1"`, "multicast"}},
		{name: "ipv6 gateway subnet-router anycast", args: []string{"network", "create", "--ipv6", "--subnet", "fd00:30::/64", "--gateway", "fd00:30::", "nx"},
			want: []string{"gateway fd00:30::", "network or last address"}},
		{name: "ipv6 gateway without subnet", args: []string{"network", "create", "--ipv6", "--gateway", "fd00:30::1", "nx"},
			want: []string{"--gateway fd00:30::1", "needs an IPv6 --subnet"}},
		{name: "ipv6 pool link-local", args: []string{"--default-address-pool", "base=fe80::/16,size=64", "network", "create", "--ipv6", "nx"},
			want: []string{"address pool", "link-local"}},
		{name: "cidr host bits", args: []string{"network", "create", "--subnet", "10.30.0.5/24", "nx"},
			want: []string{`"10.30.0.5/24"`, "host bits", "10.30.0.0/24"}},
		{name: "cidr too small", args: []string{"network", "create", "--subnet", "10.30.0.0/31", "nx"},
			want: []string{`"10.30.0.0/31"`, "prefix length", "/30"}},
		{name: "cidr too large", args: []string{"network", "create", "--subnet", "10.0.0.0/7", "nx"},
			want: []string{`"10.0.0.0/7"`, "prefix length", "/8"}},
		{name: "cidr loopback", args: []string{"network", "create", "--subnet", "127.0.0.0/8", "nx"},
			want: []string{`"127.0.0.0/8"`, "loopback", "cannot use"}, better: []string{"private range"}},
		{name: "cidr inside loopback", args: []string{"network", "create", "--subnet", "127.100.0.0/24", "nx"},
			want: []string{`"127.100.0.0/24"`, "is in 127.0.0.0/8", "loopback"}},
		{name: "cidr multicast", args: []string{"network", "create", "--subnet", "239.1.0.0/16", "nx"},
			want: []string{`"239.1.0.0/16"`, "224.0.0.0/4", "multicast"}},
		{name: "cidr this network", args: []string{"network", "create", "--subnet", "0.0.0.0/8", "nx"},
			want: []string{`"0.0.0.0/8"`, "this-network"}},
		{name: "cidr link-local", args: []string{"network", "create", "--subnet", "169.254.1.0/24", "nx"},
			want: []string{`"169.254.1.0/24"`, "169.254.0.0/16", "link-local"}},
		{name: "cidr class E", args: []string{"network", "create", "--subnet", "250.0.0.0/8", "nx"},
			want: []string{`"250.0.0.0/8"`, "240.0.0.0/4", "class E"}},
		{name: "cidr limited broadcast", args: []string{"network", "create", "--subnet", "255.255.255.252/30", "nx"},
			want: []string{`"255.255.255.252/30"`, "limited broadcast"}},
		{name: "pool loopback", args: []string{"--default-address-pool", "base=127.0.0.0/8,size=24", "network", "create", "nx"},
			want: []string{"address pool", "127.0.0.0/8", "loopback"}},
		{name: "pool overlaps link-local", args: []string{"--default-address-pool", "base=169.0.0.0/8,size=24", "sandbox", "create", sx},
			want: []string{"address pool", "overlaps 169.254.0.0/16", "link-local"}},
		// network create: gateway
		{name: "gateway bad octet", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--gateway", "10.30.0.999", "nx"},
			want: []string{`"10.30.0.999"`, "gateway", "invalid IP address"}},
		{name: "gateway outside subnet", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--gateway", "10.31.0.1", "nx"},
			want: []string{"10.31.0.1", "outside", "10.30.0.0/24"}},
		{name: "gateway network address", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--gateway", "10.30.0.0", "nx"},
			want: []string{"gateway 10.30.0.0", "network or broadcast address"}},
		{name: "gateway broadcast address", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--gateway", "10.30.0.255", "nx"},
			want: []string{"gateway 10.30.0.255", "network or broadcast address"}},
		{name: "gateway without subnet", args: []string{"network", "create", "--gateway", "10.30.0.1", "nx"},
			want: []string{"--gateway 10.30.0.1", "needs --subnet"}},
		// network create: overlaps
		{name: "subnet overlaps network", args: []string{"network", "create", "--subnet", "10.20.0.0/16", "nx"},
			want: []string{"10.20.0.0/16", "overlaps", "10.20.0.0/24", "n1"}},
		{name: "subnet inside network", args: []string{"network", "create", "--subnet", "10.20.0.128/25", "nx"},
			want: []string{"10.20.0.128/25", "overlaps", "n1"}},
		{name: "subnet overlaps host route", args: []string{"network", "create", "--subnet", "10.77.1.0/24", "nx"},
			want: []string{"10.77.1.0/24", "overlaps", "host route", "10.77.0.0/16"}},
		{name: "subnet overlaps uplink", args: []string{"network", "create", "--subnet", "203.0.113.0/25", "nx"},
			want: []string{"203.0.113.0/25", "overlaps", "host route", "203.0.113.0/24"}},
		// network create: names
		{name: "network name taken", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "n1"},
			want: []string{"network n1 already exists"}},
		{name: "network name reserved", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "host"},
			want: []string{`"host"`, "reserved"}},
		{name: "network name empty", args: []string{"network", "create", "--subnet", "10.30.0.0/24", ""},
			want: []string{"network name is empty"}},
		{name: "network name slash", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "a/b"},
			want: []string{`"a/b"`, `'/'`, "not allowed"}},
		{name: "network name space", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "a b"},
			want: []string{`"a b"`, `' '`, "not allowed"}},
		{name: "network name 65 chars", args: []string{"network", "create", "--subnet", "10.30.0.0/24", long65},
			want: []string{long65, "65 characters", "64"}},
		{name: "network name no args", args: []string{"network", "create"},
			want: []string{"exactly 1 argument", "NAME"}},
		// network create: bridge and MTU
		{name: "bridge 16 chars", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", bridge16, "nx"},
			want: []string{bridge16, "16 characters", "15"}},
		{name: "bridge slash", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "br/x", "nx"},
			want: []string{`"br/x"`, "not allowed"}},
		{name: "bridge used by n1", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "br-n1", "nx"},
			want: []string{"br-n1", "already used by network n1"}},
		{name: "bridge of the default network", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "nsnet0", "nx"},
			want: []string{"--bridge nsnet0", "reserved for the default network"}, better: []string{"choose another --bridge"}},
		{name: "bridge of another root's default network", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "nsnet12", "nx"},
			want: []string{"--bridge nsnet12", "nsnet followed by digits", "each state root"}},
		{name: "bridge is host interface", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "eth0", "nx"},
			want: []string{"eth0", "already exists"}},
		{name: "bridge name template", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "br%d", "nx"},
			want: []string{"br%d", "--bridge"}},
		{name: "bridge name kernel rejects", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "all", "nx"},
			want: []string{"all"}, better: []string{"--bridge"}},
		{name: "mtu too small", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--mtu", "10", "nx"},
			want: []string{"MTU 10", "68", "65535"}},
		// sandbox create
		{name: "sandbox unknown network", args: []string{"sandbox", "create", "--network", "nope", sx},
			want: []string{"network nope not found"}},
		{name: "sandbox second network unknown", args: []string{"sandbox", "create", "--network", "n1", "--network", "nope", sx},
			want: []string{"network nope not found"}},
		{name: "sandbox network twice", args: []string{"sandbox", "create", "--network", "n1", "--network", "n1", sx},
			want: []string{"n1", "twice"}},
		{name: "sandbox name taken", args: []string{"sandbox", "create", "--network", "n1", s1},
			want: []string{"sandbox " + s1 + " already exists"}},
		{name: "sandbox name is foreign netns", args: []string{"sandbox", "create", "--network", "n1", w.Host},
			want: []string{w.Host, "already exists", "--netns"}},
		{name: "sandbox name empty", args: []string{"sandbox", "create", "--network", "n1", ""},
			want: []string{"sandbox name is empty"}},
		{name: "sandbox name slash", args: []string{"sandbox", "create", "--network", "n1", w.Name("a") + "/../" + w.Name("b")},
			want: []string{w.Name("a") + "/../" + w.Name("b"), "not allowed"}},
		{name: "sandbox name space", args: []string{"sandbox", "create", "--network", "n1", w.Name("a b")},
			want: []string{w.Name("a b"), "not allowed"}},
		{name: "sandbox name 65 chars", args: []string{"sandbox", "create", "--network", "n1", long65},
			want: []string{long65, "65 characters", "64"}},
		{name: "ip outside subnet", args: []string{"sandbox", "create", "--network", "n1", "--ip", "10.30.0.5", sx},
			want: []string{"10.30.0.5", "outside", "10.20.0.0/24"}},
		{name: "ip taken", args: []string{"sandbox", "create", "--network", "n1", "--ip", "10.20.0.10", sx},
			want: []string{"10.20.0.10", "already in use"}, better: []string{s1}},
		{name: "ip is gateway", args: []string{"sandbox", "create", "--network", "n1", "--ip", "10.20.0.1", sx},
			want: []string{"10.20.0.1", "gateway"}},
		{name: "ip is network address", args: []string{"sandbox", "create", "--network", "n1", "--ip", "10.20.0.0", sx},
			want: []string{"10.20.0.0", "network address"}},
		{name: "ip is broadcast", args: []string{"sandbox", "create", "--network", "n1", "--ip", "10.20.0.255", sx},
			want: []string{"10.20.0.255", "broadcast"}},
		{name: "ip invalid", args: []string{"sandbox", "create", "--network", "n1", "--ip", "1.2.3", sx},
			want: []string{`"1.2.3"`, "invalid IP address"}},
		{name: "ip ipv6", args: []string{"sandbox", "create", "--network", "n1", "--ip", "fd00::5", sx},
			want: []string{`"fd00::5"`, "not IPv4"}, better: []string{"--ip6"}},
		{name: "ip6 on an IPv4-only network", args: []string{"sandbox", "create", "--network", "n1", "--ip6", "fd00:20::5", sx},
			want: []string{"--ip6 fd00:20::5", "network n1", "IPv4 only"}, better: []string{"--ipv6"}},
		{name: "ip6 outside subnet", args: []string{"sandbox", "create", "--network", "n6", "--ip6", "fd00:21::5", sx},
			want: []string{"fd00:21::5", "outside", "fd00:20::/64"}},
		{name: "ip6 is gateway", args: []string{"sandbox", "create", "--network", "n6", "--ip6", "fd00:20::1", sx},
			want: []string{"fd00:20::1", "gateway"}},
		{name: "ip6 is ipv4", args: []string{"sandbox", "create", "--network", "n6", "--ip6", "10.21.0.5", sx},
			want: []string{"--ip6", `"10.21.0.5"`, "is IPv4"}},
		{name: "ip6 link-local", args: []string{"sandbox", "create", "--network", "n6", "--ip6", "fe80::5", sx},
			want: []string{"--ip6", `"fe80::5"`, "link-local"}},
		{name: "ip6 with network none", args: []string{"sandbox", "create", "--network", "none", "--ip6", "fd00:20::5", sx},
			want: []string{"--ip6", "--network none"}},
		{name: "connect ip6 outside subnet", args: []string{"network", "connect", "--ip6", "fd00:21::5", "n6", s1},
			want: []string{"fd00:21::5", "outside"}},
		{name: "ip outside default network", args: []string{"sandbox", "create", "--ip", "10.99.0.5", sx},
			want: []string{"10.99.0.5", "outside"}},
		{name: "mac invalid", args: []string{"sandbox", "create", "--network", "n1", "--mac", "zz:zz:zz:zz:zz:zz", sx},
			want: []string{`"zz:zz:zz:zz:zz:zz"`, "invalid MAC address"}},
		{name: "mac multicast", args: []string{"sandbox", "create", "--network", "n1", "--mac", "01:00:5e:00:00:01", sx},
			want: []string{`"01:00:5e:00:00:01"`, "multicast"}},
		{name: "mac of another sandbox", args: []string{"sandbox", "create", "--network", "n1", "--mac", "02:42:0a:14:00:0a", sx},
			want: []string{"--mac 02:42:0a:14:00:0a", "network n1", "already used by sandbox " + s1}, better: []string{"choose another --mac"}},
		{name: "mac of another sandbox in capitals", args: []string{"sandbox", "create", "--network", "n1", "--mac", "02:42:0A:14:00:0A", sx},
			want: []string{"02:42:0a:14:00:0a", "already used by sandbox " + s1}},
		{name: "mac of the bridge", args: []string{"sandbox", "create", "--network", "n1", "--mac", "02:42:0a:14:00:01", sx},
			want: []string{"--mac 02:42:0a:14:00:01", "bridge br-n1"}, better: []string{"choose another --mac"}},
		{name: "netns regular file", args: []string{"sandbox", "create", "--network", "n1", "--netns", notNS, sx},
			want: []string{notNS, "not a network namespace"}},
		{name: "netns other namespace type", args: []string{"sandbox", "create", "--network", "n1", "--netns", "/proc/self/ns/mnt", sx},
			want: []string{"/proc/self/ns/mnt", "not a network namespace"}},
		{name: "netns of another sandbox", args: []string{"sandbox", "create", "--network", "n1", "--netns", testenv.NSPath(s1), sx},
			want: []string{sx}, better: []string{s1}},
		{name: "netns missing", args: []string{"sandbox", "create", "--network", "n1", "--netns", missing, sx},
			want: []string{missing, "no such file or directory"}},
		{name: "netns with host mode", args: []string{"sandbox", "create", "--network", "host", "--netns", w.HostPath(), sx},
			want: []string{"--netns", "--network host"}},
		{name: "container unknown", args: []string{"sandbox", "create", "--network", "container:" + w.Name("nope"), sx},
			want: []string{w.Name("nope"), "not found"}},
		{name: "ip with network none", args: []string{"sandbox", "create", "--network", "none", "--ip", "10.20.0.20", sx},
			want: []string{"--ip", "--network none"}},
		// unknown names
		{name: "sandbox rm unknown", args: []string{"sandbox", "rm", sx},
			want: []string{"sandbox " + sx + " not found"}},
		{name: "sandbox inspect unknown", args: []string{"sandbox", "inspect", sx},
			want: []string{"sandbox " + sx + " not found"}, stdout: "[]"},
		{name: "network rm unknown", args: []string{"network", "rm", "nope"},
			want: []string{"network nope not found"}},
		{name: "network inspect unknown", args: []string{"network", "inspect", "nope"},
			want: []string{"network nope not found"}, stdout: "[]"},
		{name: "network rm in use", args: []string{"network", "rm", "n1"},
			want: []string{"network n1", s1, "sandbox rm " + s1}},
		// not root
		{name: "not root network create", nobody: true, args: []string{"network", "create", "--subnet", "10.30.0.0/24", "nx"},
			want: []string{"must run as root", "sudo"}, better: []string{"nsnet network create must run as root"}},
		{name: "not root sandbox rm", nobody: true, args: []string{"sandbox", "rm", s1},
			want: []string{"must run as root", "sudo"}},
		// ports
		{name: "publish bad spec", args: []string{"sandbox", "create", "--network", "n1", "-p", "80:99999", sx},
			want: []string{`"80:99999"`, "container port"}},
		{name: "publish with network none", args: []string{"sandbox", "create", "--network", "none", "-p", "80", sx},
			want: []string{"-p", "--network none"}},
		{name: "publish on internal network", args: []string{"sandbox", "create", "--network", "n1", "-p", "80", sx},
			want: []string{"internal network n1", "cannot publish"}},
		{name: "port add unknown sandbox", args: []string{"port", "add", sx, "80"},
			want: []string{"sandbox " + sx + " not found"}},
		{name: "port add bad spec", args: []string{"port", "add", s1, "80/icmp"},
			want: []string{`"icmp"`, "tcp, udp, sctp"}},
		{name: "port add on internal network", args: []string{"port", "add", s1, "8080:80"},
			want: []string{"internal network n1", "cannot publish"}},
		{name: "port rm nothing published", args: []string{"port", "rm", s1, "80"},
			want: []string{"publishes nothing matching 80"}},
		{name: "port ls unknown sandbox", args: []string{"port", "ls", sx},
			want: []string{"sandbox " + sx + " not found"}},
		{name: "port add without spec", args: []string{"port", "add", s1},
			want: []string{"NAME SPEC"}},
		// other commands
		{name: "network ls bad format", args: []string{"network", "ls", "--format", "xml"},
			want: []string{`"xml"`, "table or json"}},
		{name: "sandbox ls bad format", args: []string{"sandbox", "ls", "--format", "yaml"},
			want: []string{`"yaml"`, "table or json"}},
		{name: "lock timeout negative", args: []string{"--lock-timeout", "-1s", "network", "ls"},
			want: []string{"--lock-timeout -1s is negative"}, better: []string{"give 0"}},
		// network connect / disconnect, --dns, --alias
		{name: "connect unknown network", args: []string{"network", "connect", "nope", s1},
			want: []string{"network nope not found"}},
		{name: "connect unknown sandbox", args: []string{"network", "connect", "n1", sx},
			want: []string{"sandbox " + sx + " not found"}},
		{name: "connect already on it", args: []string{"network", "connect", "n1", s1},
			want: []string{"already on network n1"}},
		{name: "connect one argument", args: []string{"network", "connect", "n1"},
			want: []string{"exactly 2 arguments", "NETWORK SANDBOX"}},
		{name: "connect bad ip", args: []string{"network", "connect", "--ip", "10.20.0.999", "n1", s1},
			want: []string{`"10.20.0.999"`}},
		{name: "connect bad alias", args: []string{"network", "connect", "--alias", "a b", "n1", s1},
			want: []string{`"a b"`, "alias", "not allowed"}},
		{name: "disconnect not on it", args: []string{"network", "disconnect", "bridge", s1},
			want: []string{"network bridge not found"}},
		{name: "disconnect unknown sandbox", args: []string{"network", "disconnect", "n1", sx},
			want: []string{"sandbox " + sx + " not found"}},
		{name: "network dns not an address", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--dns", "dns.example", "nx"},
			want: []string{`invalid --dns "dns.example"`, "IP address of a DNS server"}},
		{name: "sandbox dns not an address", args: []string{"sandbox", "create", "--network", "n1", "--dns", "300.1.1.1", sx},
			want: []string{`invalid --dns "300.1.1.1"`}},
		{name: "alias on the default network", args: []string{"sandbox", "create", "--alias", "web", sx},
			want: []string{"--alias needs a network made with network create"}},
		{name: "alias bad characters", args: []string{"sandbox", "create", "--network", "n1", "--alias", "we/b", sx},
			want: []string{`"we/b"`, "not allowed"}},
		{name: "gc with an argument", args: []string{"gc", "now"},
			want: []string{"takes no arguments"}},
		{name: "firewall reload with an argument", args: []string{"firewall", "reload", "x"},
			want: []string{"takes no arguments"}},
		{name: "unknown command", args: []string{"sandbox", "start", s1},
			want: []string{"unknown"}},
		{name: "unknown flag", args: []string{"network", "create", "--subnt", "10.30.0.0/24", "nx"},
			want: []string{"unknown flag", "--subnt"}},
		{name: "exec unknown sandbox", code: 125, args: []string{"exec", sx, "--", "true"},
			want: []string{"sandbox " + sx + " not found"}},
		{name: "exec without command", code: 125, args: []string{"exec", s1},
			want: []string{"needs a command"}},
		{name: "run on unknown network", code: 125, args: []string{"run", "--rm", "--name", sx, "--network", "nope", "--", "true"},
			want: []string{"network nope not found"}},
		// Docker's habits (issue 11): labels, driver options, filters, formats, prune, completion
		{name: "label without key", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--label", "=x", "nx"},
			want: []string{"network nx", "the key is empty"}},
		{name: "label key with a space", args: []string{"sandbox", "create", "--network", "n1", "--label", "a b=c", sx},
			want: []string{"sandbox " + sx, `invalid label key "a b"`, "white space"}},
		{name: "label file missing", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--label-file", missing, "nx"},
			want: []string{"read --label-file", missing, "no such file"}},
		{name: "label file not UTF-8", args: []string{"sandbox", "create", "--network", "n1", "--label-file", badLabels, sx},
			want: []string{badLabels, "line 2 is not valid UTF-8"}},
		{name: "label file with a bad key", args: []string{"sandbox", "create", "--network", "n1", "--label-file", spaceLabels, sx},
			want: []string{`invalid label key "my key"`}},
		{name: "run with a bad label", code: 125, args: []string{"run", "--rm", "--name", sx, "--network", "none", "--label", "=x", "--", "true"},
			want: []string{"the key is empty"}},
		{name: "run with a missing label file", code: 125, args: []string{"run", "--rm", "--name", sx, "--network", "none", "--label-file", missing, "--", "true"},
			want: []string{"read --label-file", missing}},
		{name: "label value with a control character", args: []string{"sandbox", "create", "--network", "n1", "--label", "k=a\x07b", sx},
			want: []string{"sandbox " + sx, "label k", "printable"}},
		{name: "label key too long", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--label", longKey + "=v", "nx"},
			want: []string{"256 bytes long", "255"}},
		{name: "too many labels", args: append(append([]string{"network", "create", "--subnet", "10.30.0.0/24"}, tooManyLabels...), "nx"),
			want: []string{"network nx has 65 labels", "limit is 64"}},
		{name: "option unknown", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "bridge.enable_ipv6=true", "nx"},
			want: []string{"unknown driver option -o " + opt + "bridge.enable_ipv6", "nsnet knows", opt + "bridge.enable_icc"}},
		{name: "option without value", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "driver.mtu", "nx"},
			want: []string{"bad -o", "KEY=VALUE"}},
		{name: "option given twice", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "driver.mtu=1400", "-o", opt + "driver.mtu=1300", "nx"},
			want: []string{"given twice"}},
		{name: "option mtu not a number", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "driver.mtu=big", "nx"},
			want: []string{opt + "driver.mtu=big", "MTU as a number"}},
		{name: "option mtu too small", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "driver.mtu=60", "nx"},
			want: []string{"MTU 60", "68", "65535"}},
		{name: "option mtu against --mtu", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--mtu", "1400", "-o", opt + "driver.mtu=1300", "nx"},
			want: []string{"contradicts --mtu 1400"}},
		{name: "option bridge against --bridge", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "--bridge", "br-a", "-o", opt + "bridge.name=br-b", "nx"},
			want: []string{opt + "bridge.name=br-b contradicts --bridge br-a"}},
		{name: "option bridge used by n1", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "bridge.name=br-n1", "nx"},
			want: []string{"br-n1", "already used by network n1"}},
		{name: "option bridge name too long", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "bridge.name=" + bridge16, "nx"},
			want: []string{bridge16, "15"}},
		{name: "option masquerade not a boolean", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "bridge.enable_ip_masquerade=maybe", "nx"},
			want: []string{opt + "bridge.enable_ip_masquerade=maybe", "true or false"}},
		{name: "option icc not a boolean", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "bridge.enable_icc=2", "nx"},
			want: []string{opt + "bridge.enable_icc=2", "true or false"}},
		{name: "option host binding not an address", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "bridge.host_binding_ipv4=localhost", "nx"},
			want: []string{opt + "bridge.host_binding_ipv4", `"localhost"`}},
		{name: "option host binding IPv6", args: []string{"network", "create", "--subnet", "10.30.0.0/24", "-o", opt + "bridge.host_binding_ipv4=2001:db8::1", "nx"},
			want: []string{opt + "bridge.host_binding_ipv4", "not IPv4"}},
		{name: "filter without value", args: []string{"network", "ls", "--filter", "name"},
			want: []string{`bad --filter "name"`, "KEY=VALUE"}},
		{name: "network ls unknown filter", args: []string{"network", "ls", "--filter", "publish=80"},
			want: []string{`invalid filter "publish" for listing networks`, "dangling, driver, id, label, name"}},
		{name: "sandbox ls unknown filter", args: []string{"sandbox", "ls", "-f", "dangling=true"},
			want: []string{`invalid filter "dangling" for listing sandboxes`, "id, label, name, network, publish"}},
		{name: "port ls unknown filter", args: []string{"port", "ls", "--filter", "driver=bridge"},
			want: []string{`invalid filter "driver" for listing sandboxes`}},
		{name: "dangling not a boolean", args: []string{"network", "ls", "--filter", "dangling=maybe"},
			want: []string{"dangling=maybe", "true or false"}},
		{name: "publish filter not a port", args: []string{"sandbox", "ls", "--filter", "publish=web"},
			want: []string{"publish=web", "container port"}},
		{name: "label filter without key", args: []string{"sandbox", "ls", "--filter", "label==x"},
			want: []string{"label==x", "KEY or KEY=VALUE"}},
		{name: "network prune unknown filter", args: []string{"network", "prune", "-f", "--filter", "dangling=true"},
			want: []string{`invalid filter "dangling" for pruning networks`, "until"}},
		{name: "network prune bad until", args: []string{"network", "prune", "--filter", "until=soon"},
			want: []string{"until=soon", "duration"}},
		{name: "sandbox prune unknown filter", args: []string{"sandbox", "prune", "--filter", "driver=bridge"},
			want: []string{`invalid filter "driver" for pruning sandboxes`}},
		{name: "network prune with an argument", args: []string{"network", "prune", "-f", "n1"},
			want: []string{"takes no arguments"}},
		{name: "sandbox prune with an argument", args: []string{"sandbox", "prune", "-f", s1},
			want: []string{"takes no arguments"}},
		{name: "format template unclosed", args: []string{"network", "ls", "--format", "{{.Name"},
			want: []string{`invalid --format template "{{.Name"`}},
		{name: "format unknown field", args: []string{"sandbox", "ls", "--format", "{{.Nope}}"},
			want: []string{"--format template", "can't evaluate field Nope"}},
		{name: "format unknown function", args: []string{"port", "ls", "--format", "{{shout .Sandbox}}"},
			want: []string{`function "shout" not defined`}},
		{name: "inspect format unknown field", args: []string{"network", "inspect", "-f", "{{.Nope}}", "n1"},
			want: []string{"can't evaluate field Nope"}},
		{name: "inspect format unknown", args: []string{"network", "inspect", "--format", "xml", "n1"},
			want: []string{`unknown --format "xml"`}},
		{name: "inspect format table", args: []string{"sandbox", "inspect", "--format", "table {{.Name}}", s1},
			want: []string{"inspect prints no table"}},
		{name: "completion unknown shell", args: []string{"completion", "pwsh"},
			want: []string{`unknown shell "pwsh"`, "bash, zsh and fish"}},
		{name: "completion without shell", args: []string{"completion"},
			want: []string{"exactly 1 argument", "bash, zsh or fish"}},
		{name: "version with an argument", args: []string{"version", "x"},
			want: []string{"takes no arguments"}},
		{name: "run missing program", code: 127, args: []string{"run", "--rm", "--name", sx, "--network", "none", "--", "no-such-program-x"},
			want: []string{"no-such-program-x", "not found"}},
	}

	nobodyBin := nobodyBinary(t)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			before := takeBadState(t, w, s1)
			var res testenv.Result
			if r.nobody {
				res = nsnetAsNobody(w, nobodyBin, r.args...)
			} else {
				res = w.Nsnet(r.args...)
			}
			cmd := "nsnet " + strings.Join(r.args, " ")
			code := r.code
			if code == 0 {
				code = 1
			}
			if res.Code != code {
				t.Errorf("%s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", cmd, res.Code, code, res.Stdout, res.Stderr)
			}
			if !strings.HasPrefix(res.Stderr, "Error: ") {
				t.Errorf("%s: stderr does not start with \"Error: \":\n%s", cmd, res.Stderr)
			}
			for _, want := range r.want {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, res.Stderr)
				}
			}
			if got := strings.TrimSpace(res.Stdout); got != r.stdout {
				t.Errorf("%s: stdout %q, want %q", cmd, got, r.stdout)
			}
			after := takeBadState(t, w, s1)
			if d := before.diff(after); d != "" {
				t.Errorf("%s changed state:\n%s", cmd, d)
			}
			t.Logf("%s -> %d: %s", cmd, res.Code, strings.TrimSpace(res.Stderr))
			for _, want := range r.better {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("%s: stderr lacks %q (it should say what to do):\n%s", cmd, want, res.Stderr)
				}
			}
		})
	}

	w.MustNsnet(t, "sandbox", "rm", s1)
	w.MustNsnet(t, "network", "rm", "n1", "n6")
	if out, err := testenv.RunIn(w.Host, "ip", "route", "del", "10.77.0.0/16"); err != nil {
		t.Errorf("delete host route: %v\n%s", err, out)
	}
	w.AssertClean(t)
	if got := testenv.Sysctl(t, w.Host, "net.ipv4.ip_forward"); got != "0" {
		t.Errorf("ip_forward = %s after the test, want 0 (n1 is internal)", got)
	}
}
