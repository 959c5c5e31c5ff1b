// Package testenv builds the throwaway "internet" + "host" world described in
// shared/TESTING.md, runs the nsnet binary inside it, and offers independent
// oracles (iproute2, nft, ping, TCP) for privileged end-to-end tests.
//
// Invariants:
//
//   - The real (root) network namespace is never changed. Every ip command
//     runs with "-n <world namespace>" or under "nsenter --net=<world
//     namespace>"; the uplink veth is created from inside the Inet namespace
//     with its peer placed directly into the Host namespace.
//   - Every namespace of a world is named Prefix+"-"+something, where Prefix
//     is random, short ("t" + 5 of [a-z0-9]) and unused in /run/netns when New
//     picks it, so worlds of parallel tests never collide.
//   - Cleanup (registered by New, so it runs even when the test fails)
//     unmounts anything still mounted under Root, then deletes every
//     /run/netns entry whose name starts with Prefix+"-" (sandboxes first,
//     then Host, then Inet), keeps going past errors and reports each with
//     t.Errorf, and reports any namespace that is still there afterwards.
//   - After New returns: Inet has lo up with 198.51.100.7/32 and wan0 up with
//     203.0.113.1/24; Host has lo up and eth0 up with 203.0.113.2/24 and a
//     default route via 203.0.113.1; eth0 and wan0 are the two ends of one
//     veth pair and are operationally up; net.ipv4.ip_forward is 0 in both.
//     Inet has no route besides its connected 203.0.113.0/24, so a reply to a
//     sandbox address only comes back if the host masquerades.
//   - Only documentation addresses (203.0.113.0/24, 198.51.100.0/24,
//     192.0.2.0/24, and 2001:db8::/32 once a test calls EnableIPv6, which a
//     world has none of before) and private subnets inside the world are
//     used; the world
//     has no link to the real network, so no packet can leave it.
//   - External commands run with a timeout (60 s) so a hung command fails the
//     test instead of hanging it.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/owner"
	"golang.org/x/sys/unix"
)

// Addresses of the world.
const (
	RouterIP = "203.0.113.1"  // "internet" side of the uplink (wan0 in the Inet namespace)
	UplinkIP = "203.0.113.2"  // the host's eth0 address, /24, default route via RouterIP
	PublicIP = "198.51.100.7" // a "public" server address on lo in the Inet namespace (/32)

	UplinkPrefixLen = 24 // prefix length of RouterIP and UplinkIP
)

const (
	netnsDir   = "/run/netns"
	cmdTimeout = 60 * time.Second
)

// World is one throwaway internet + host pair of network namespaces.
type World struct {
	Prefix string // unique short prefix of every name in this world, e.g. "t3f9a1"
	Host   string // netns name of the host namespace: Prefix+"-host"
	Inet   string // netns name of the internet namespace: Prefix+"-inet"
	Root   string // a fresh temp dir passed to nsnet as --root (t.TempDir())
	// ResolvConf is the host's resolver configuration that Nsnet gives
	// nsnet (NSNET_RESOLV_CONF, read by the test binary only): a file of
	// the world's, naming PublicIP, in the internet namespace, as the host's
	// nameserver, so that no test ever asks the machine's own resolvers.
	ResolvConf string
	// Bin is the absolute path of the nsnet binary. New leaves it empty; the
	// first Nsnet/MustNsnet call fills it with Binary's result. Set it before
	// that to run a different binary.
	Bin string

	binMu sync.Mutex
}

// netnsMu serialises "ip netns add" in this process: concurrent first uses
// of /run/netns can otherwise stack two bind mounts on it.
var netnsMu sync.Mutex

// New builds a world, or skips the test when not running as root (fails it
// instead when NSNET_E2E=1, as CI sets it). The world is torn down by a
// t.Cleanup registered before anything is created.
func New(t testing.TB) *World {
	t.Helper()
	NeedRoot(t)
	w := &World{Root: t.TempDir()} // TempDir first: its removal runs after our cleanup
	w.ResolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(w.ResolvConf, []byte("nameserver "+PublicIP+"\n"), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := w.claimPrefix(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { w.destroy(t) })
	if err := w.setup(); err != nil {
		t.Fatalf("testenv: building world %s: %v", w.Prefix, err)
	}
	return w
}

// NeedRoot skips a test that needs root when not running as root, or fails
// it when NSNET_E2E=1 says privileged tests must run (so a CI that would skip
// every one of them cannot pass).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if Required() {
		t.Fatal("testenv: NSNET_E2E=1 but not running as root: privileged tests must run, not skip")
	}
	t.Skip("testenv: needs root to create network namespaces (NSNET_E2E=1 makes this a failure)")
}

// Required reports whether privileged tests must run (NSNET_E2E=1).
func Required() bool { return os.Getenv("NSNET_E2E") == "1" }

// Name returns Prefix+"-"+s. Name every sandbox with it so cleanup finds it.
func (w *World) Name(s string) string { return w.Prefix + "-" + s }

// HostPath returns the path of the host namespace, "/run/netns/"+w.Host.
func (w *World) HostPath() string { return NSPath(w.Host) }

// InetPath returns the path of the internet namespace, "/run/netns/"+w.Inet.
func (w *World) InetPath() string { return NSPath(w.Inet) }

// NSPath returns "/run/netns/"+name.
func NSPath(name string) string { return netnsDir + "/" + name }

// nsPath lets helpers take either a netns name or an absolute netns path.
func nsPath(ns string) string {
	if strings.HasPrefix(ns, "/") {
		return ns
	}
	return NSPath(ns)
}

// claimPrefix picks a random prefix that no /run/netns entry uses and
// reserves it by creating the Inet namespace.
func (w *World) claimPrefix() error {
	var err error
	for range 8 {
		p := randomPrefix()
		if names, lerr := prefixed(p); lerr != nil || len(names) > 0 {
			err = errors.Join(lerr, fmt.Errorf("prefix %s in use", p))
			continue
		}
		if err = netnsAdd(p + "-inet"); err == nil {
			w.Prefix, w.Host, w.Inet = p, p+"-host", p+"-inet"
			return nil
		}
	}
	return fmt.Errorf("no free world prefix: %w", err)
}

func randomPrefix() string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return "t" + string(b)
}

func netnsAdd(name string) error {
	netnsMu.Lock()
	defer netnsMu.Unlock()
	_, err := ip("netns", "add", name)
	return err
}

// setup creates Host and everything inside both namespaces.
func (w *World) setup() error {
	if err := netnsAdd(w.Host); err != nil {
		return err
	}
	h, i := w.Host, w.Inet
	for _, args := range [][]string{
		{"-n", i, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", h},
		{"-n", i, "addr", "add", RouterIP + "/24", "dev", "wan0"},
		{"-n", i, "addr", "add", PublicIP + "/32", "dev", "lo"},
		{"-n", i, "link", "set", "lo", "up"},
		{"-n", i, "link", "set", "wan0", "up"},
		{"-n", h, "addr", "add", UplinkIP + "/24", "dev", "eth0"},
		{"-n", h, "link", "set", "lo", "up"},
		{"-n", h, "link", "set", "eth0", "up"},
		{"-n", h, "route", "add", "default", "via", RouterIP},
	} {
		if _, err := ip(args...); err != nil {
			return err
		}
	}
	for _, ns := range []string{h, i} {
		if err := writeSysctl(ns, "net/ipv4/ip_forward", "0"); err != nil {
			return err
		}
	}
	return errors.Join(waitOperUp(h, "eth0"), waitOperUp(i, "wan0"))
}

// writeSysctl writes /proc/sys/<key> inside ns (/proc/sys/net follows the
// network namespace of the thread that opens it).
func writeSysctl(ns, key, val string) error {
	return InNS(nsPath(ns), func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644)
	})
}

// waitOperUp waits (5 s at most) until link dev in ns has operstate UP;
// veth carrier changes reach userspace up to a second late.
func waitOperUp(ns, dev string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var links []Link
		err := ipJSON(ns, &links, "link", "show", "dev", dev)
		if err == nil && len(links) == 1 && links[0].OperState == "UP" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in %s not up: %v %+v", dev, ns, err, links)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// destroy removes everything the world and the test made in it.
func (w *World) destroy(t testing.TB) {
	t.Helper()
	w.reportLeftovers(t)
	if err := unmountUnder(w.Root); err != nil {
		t.Errorf("testenv: cleanup: %v", err)
	}
	killRootProcesses(w.Root)
	names, err := prefixed(w.Prefix)
	if err != nil {
		t.Errorf("testenv: cleanup: %v", err)
		names = []string{w.Host, w.Inet} // try the two we know of anyway
	}
	for _, n := range deletionOrder(names, w.Host, w.Inet) {
		if _, err := ip("netns", "del", n); err != nil {
			t.Errorf("testenv: cleanup: %v", err)
		}
	}
	if left, err := prefixed(w.Prefix); err != nil || len(left) > 0 {
		t.Errorf("testenv: cleanup left namespaces %v (%v)", left, err)
	}
	removeMarkers(w.Prefix)
	os.RemoveAll(filepath.Join(stateDir, owner.ID(w.Root)))
}

// killRootProcesses kills what nsnet started for this world's state root and
// left running when a test stopped half-way (the resident process: `nsnet
// __resident --root ROOT`), since it keeps the host namespace alive.
func killRootProcesses(root string) {
	for pid := range rootProcesses(root) {
		unix.Kill(pid, unix.SIGKILL)
	}
}

// rootProcesses returns the processes started for the state root (their
// command line has `--root ROOT`), by pid, with their command lines.
func rootProcesses(root string) map[int]string {
	out := map[int]string{}
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(raw), "\x00--root\x00"+root+"\x00") {
			continue
		}
		if pid, err := strconv.Atoi(strings.Split(f, "/")[2]); err == nil && pid > 0 && pid != os.Getpid() {
			out[pid] = strings.ReplaceAll(strings.TrimRight(string(raw), "\x00"), "\x00", " ")
		}
	}
	return out
}

// reportLeftovers fails the test for what nsnet left of the world's state
// root: a running resident process, namespace markers, pending intents. A test
// must end what it started; the world only cleans up after a failure.
func (w *World) reportLeftovers(t testing.TB) {
	t.Helper()
	for pid, cmd := range rootProcesses(w.Root) {
		t.Errorf("testenv: leftover process %d of the test's state root: %s", pid, cmd)
	}
	for _, pattern := range []string{filepath.Join(markerDir, w.Prefix+"-*"), filepath.Join(w.Root, "intents", "*.json"), filepath.Join(etcNetns, w.Prefix+"-*")} {
		left, _ := filepath.Glob(pattern)
		for _, f := range left {
			t.Errorf("testenv: leftover %s", f)
			if strings.HasPrefix(f, etcNetns+"/") {
				os.RemoveAll(f)
			}
		}
	}
}

// etcNetns holds the resolv.conf and hosts nsnet writes for sandboxes.
const etcNetns = "/etc/netns"

// markerDir is where nsnet marks the namespace mounts it makes; a test that
// stops half-way leaves its sandboxes' markers there.
const markerDir = "/run/nsnet/netns"

// RemoveOrphanStates removes the state files nsnet keeps in its run
// directory for state roots that tests made in the temporary directory and
// that are gone (store.RootFile names each one's root). Run it once all tests
// are done: a test may move its root away for a while.
func RemoveOrphanStates() {
	roots, _ := filepath.Glob(filepath.Join(stateDir, "*", "root"))
	for _, f := range roots {
		raw, err := os.ReadFile(f)
		root := strings.TrimSpace(string(raw))
		if err != nil || !strings.HasPrefix(root, os.TempDir()+"/") {
			continue
		}
		if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(filepath.Dir(f))
		}
	}
}

// stateDir holds the state files of nsnet's state roots (engine.StateDir).
const stateDir = "/run/nsnet/state"

func removeMarkers(prefix string) {
	for _, pattern := range []string{prefix + "-*", "." + prefix + "-*.tmp"} {
		files, _ := filepath.Glob(filepath.Join(markerDir, pattern))
		for _, f := range files {
			os.Remove(f)
		}
	}
}

// deletionOrder puts host and inet last so sandboxes go first.
func deletionOrder(names []string, host, inet string) []string {
	var out []string
	for _, n := range names {
		if n != host && n != inet {
			out = append(out, n)
		}
	}
	for _, n := range []string{host, inet} {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	return out
}

// prefixed returns the sorted /run/netns entries named prefix+"-"...
func prefixed(prefix string) ([]string, error) {
	names, err := namespaceNames()
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix+"-") {
			out = append(out, n)
		}
	}
	return out, err
}

func namespaceNames() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, err
}

// unmountUnder lazily unmounts every mount point below dir, deepest first
// (in case nsnet bind-mounted namespace files under its --root).
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 &&
			strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if uerr := unix.Unmount(m, unix.MNT_DETACH); uerr != nil {
			err = errors.Join(err, fmt.Errorf("unmount %s: %w", m, uerr))
		}
	}
	return errors.Join(err, sc.Err())
}

// ip runs iproute2 with a timeout; the error carries the command and output.
func ip(args ...string) (string, error) {
	return run("ip", args...)
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "),
			err, strings.TrimSpace(string(out)))
	}
	return string(out), err
}

// Table is the name of the nftables table (family inet) that nsnet keeps for
// the world's state root, Root.
func (w *World) Table() string { return owner.Table(w.Root) }
