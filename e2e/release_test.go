package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/testenv"
)

// fdbEntry is one entry of "bridge -j fdb show".
type fdbEntry struct {
	MAC    string   `json:"mac"`
	IfName string   `json:"ifname"`
	Flags  []string `json:"flags"`
	State  string   `json:"state"`
}

// learnt returns the ports on which bridge br has learnt mac (entries the
// bridge made itself from traffic, not the ports' own addresses).
func learnt(t *testing.T, ns, br, mac string) []string {
	t.Helper()
	out, err := testenv.RunIn(ns, "bridge", "-j", "fdb", "show", "br", br)
	if err != nil {
		t.Fatalf("bridge fdb show br %s: %v\n%s", br, err, out)
	}
	var entries []fdbEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("bridge fdb show: %v\n%s", err, out)
	}
	var ports []string
	for _, e := range entries {
		if strings.EqualFold(e.MAC, mac) && e.State != "permanent" {
			ports = append(ports, e.IfName)
		}
	}
	return ports
}

// holdNamespace keeps the namespace at /run/netns/name alive (as an open
// descriptor anywhere does) until the returned function is called, so that
// what the kernel destroys with it stays for as long as the test needs.
func holdNamespace(t *testing.T, name string) func() {
	t.Helper()
	f, err := os.Open(testenv.NSPath(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func() { f.Close() }
}

// TestRemovalLeavesPairsToTheKernel: removing a sandbox whose namespace
// nsnet made does not delete its veth (which waits for RCU grace periods):
// the host end is marked released, left up, and goes with the namespace when
// the kernel destroys it. Until then it is harmless: the next sandbox gets the
// next address, not the removed one's; one given that address explicitly
// sets the old pair down first, so its bridge forgets the MAC on it; gc has
// nothing to do. (Here an open descriptor holds the namespace, so the pair
// stays as long as the test needs; without one the kernel destroys it within
// milliseconds.) A namespace that outlives the sandbox, adopted with --netns
// or with a process still in it (rm --force), has its veth deleted at once,
// as before.
func TestRemovalLeavesPairsToTheKernel(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s, peer, ad, forced := w.Name("s"), w.Name("peer"), w.Name("ad"), w.Name("forced")
	adoptNS := w.Name("adopt")
	w.MustNsnet(t, "network", "create", "--subnet", "10.87.0.0/24", "--bridge", "br-lk", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", s) // the first address given: 10.87.0.2
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.87.0.11", peer)
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", adoptNS)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--netns", testenv.NSPath(adoptNS), ad)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", forced)
	ep := inspectSandbox(t, w, s).Networks["n1"]
	if ep.Address != "10.87.0.2/24" {
		t.Fatalf("%s got %s, want the network's first address, 10.87.0.2/24", s, ep.Address)
	}
	if err := testenv.Ping(peer, "10.87.0.2"); err != nil {
		t.Fatalf("peer cannot reach %s: %v", s, err)
	}
	if ports := learnt(t, w.Host, "br-lk", ep.MAC); !contains(ports, ep.HostVeth) {
		t.Fatalf("control: the bridge has not learnt %s's MAC %s on %s (entries on %v): the test could not see it forgotten", s, ep.MAC, ep.HostVeth, ports)
	}

	release := holdNamespace(t, s)
	w.MustNsnet(t, "sandbox", "rm", s)
	l := mustLink(t, w.Host, ep.HostVeth)
	if !l.IsUp() || !owner.IsReleased(l.IfAlias) {
		t.Errorf("after rm, %s: flags %v, alias %q; want it up, with a released mark", ep.HostVeth, l.Flags, l.IfAlias)
	}
	if contains(testenv.NamespaceNames(t), s) {
		t.Errorf("after rm, /run/netns/%s is still there", s)
	}
	gcClean(t, w, "right after rm, the released veth still there")
	next, again := w.Name("next"), w.Name("again")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", next)
	if a := inspectSandbox(t, w, next).Networks["n1"].Address; a == ep.Address {
		t.Errorf("the next sandbox got %s, the address of %s, whose pair is still there", a, s)
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.87.0.2", again)
	if l := mustLink(t, w.Host, ep.HostVeth); l.IsUp() {
		t.Errorf("%s given %s's address: the old pair %s is still up (flags %v)", again, s, ep.HostVeth, l.Flags)
	}
	if ports := learnt(t, w.Host, "br-lk", ep.MAC); contains(ports, ep.HostVeth) {
		t.Errorf("%s given %s's address: the bridge still sends its MAC %s to the old pair %s", again, s, ep.MAC, ep.HostVeth)
	}
	w.MustNsnet(t, "sandbox", "rm", next, again)

	adVeth := inspectSandbox(t, w, ad).Networks["n1"].HostVeth
	w.MustNsnet(t, "sandbox", "rm", ad)
	if _, ok := testenv.FindLink(testenv.Links(t, w.Host), adVeth); ok {
		t.Errorf("the veth %s of a sandbox in an adopted namespace is still there after rm", adVeth)
	}
	if _, ok := testenv.FindLink(testenv.Links(t, adoptNS), "eth0"); ok {
		t.Errorf("the adopted namespace %s still has eth0", adoptNS)
	}

	forcedVeth := inspectSandbox(t, w, forced).Networks["n1"].HostVeth
	sleep := exec.Command("nsenter", "--net="+testenv.NSPath(forced), "sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	expectFail(t, w, 1, []string{"has running processes"}, "sandbox", "rm", forced)
	w.MustNsnet(t, "sandbox", "rm", "--force", forced)
	if _, ok := testenv.FindLink(testenv.Links(t, w.Host), forcedVeth); ok {
		t.Errorf("the veth %s of a sandbox removed with a process in its namespace is still there", forcedVeth)
	}
	gcClean(t, w, "after rm --force")
	sleep.Process.Kill()
	sleep.Wait()

	release()
	if err := eventually(func() error {
		if _, ok := testenv.FindLink(testenv.Links(t, w.Host), ep.HostVeth); ok {
			return os.ErrExist
		}
		return nil
	}); err != nil {
		t.Errorf("%s is still there after the namespace's last reference went", ep.HostVeth)
	}
	w.MustNsnet(t, "sandbox", "rm", peer)
	w.MustNsnet(t, "network", "rm", "n1")
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", adoptNS)
	gcClean(t, w, "at the end")
	w.AssertClean(t)
}

// TestReleasedAddressReachesOnlyTheNewSandbox removes a sandbox and at once
// creates another with the same address (and so the same MAC) while the old
// veth pair still exists (an open descriptor holds the old namespace, as the
// kernel's clean-up may take a while): a client on the bridge, whose
// neighbour entry and whose bridge's FDB knew the old sandbox, connects to a
// real TCP server in the new one at once. Control: a pair left on the bridge,
// up, with that address and MAC (what removing only the namespace name would
// leave until the kernel destroys it) takes the connection instead.
func TestReleasedAddressReachesOnlyTheNewSandbox(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	client, old, neu, ghost := w.Name("client"), w.Name("old"), w.Name("new"), w.Name("ghost")
	w.MustNsnet(t, "network", "create", "--subnet", "10.89.0.0/24", "--bridge", "br-re", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.89.0.20", client)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.89.0.10", old)
	oldEP := inspectSandbox(t, w, old).Networks["n1"]
	if err := testenv.Ping(client, "10.89.0.10"); err != nil {
		t.Fatalf("client cannot reach %s: %v", old, err)
	}
	release := holdNamespace(t, old)
	w.MustNsnet(t, "sandbox", "rm", old)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.89.0.10", neu)
	newEP := inspectSandbox(t, w, neu).Networks["n1"]
	if newEP.MAC != oldEP.MAC || newEP.HostVeth == oldEP.HostVeth {
		t.Fatalf("new sandbox: MAC %s, veth %s; want the old MAC %s on another veth than %s", newEP.MAC, newEP.HostVeth, oldEP.MAC, oldEP.HostVeth)
	}
	if _, ok := testenv.FindLink(testenv.Links(t, w.Host), oldEP.HostVeth); !ok {
		t.Logf("the old veth %s was already gone: the test ran without the old pair", oldEP.HostVeth)
	}
	testenv.StartTCPEcho(t, neu, "0.0.0.0:80")
	if got := reach(t, client, "10.89.0.10:80", true, "client to the new sandbox, at once"); got != "" && got != "from 10.89.0.20" {
		t.Errorf("the new sandbox's server saw %q, want from 10.89.0.20", got)
	}
	reach(t, client, "10.89.0.10:80", true, "client to the new sandbox, again")

	// Control: an old pair still up on the bridge with the address and MAC,
	// which has spoken last, gets the client's connection.
	gveth := "ghost" + strings.ReplaceAll(oldEP.MAC, ":", "")[6:]
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "add", ghost)
	mustRun(t, w.Host, "ip", "link", "add", gveth, "type", "veth", "peer", "name", "eth0", "netns", ghost)
	mustRun(t, ghost, "ip", "link", "set", "eth0", "address", oldEP.MAC)
	mustRun(t, ghost, "ip", "addr", "add", "10.89.0.10/24", "dev", "eth0")
	mustRun(t, ghost, "ip", "link", "set", "eth0", "up")
	mustRun(t, w.Host, "ip", "link", "set", gveth, "master", "br-re", "up")
	if err := eventually(func() error { return testenv.Ping(ghost, "10.89.0.1") }); err != nil {
		t.Fatalf("control: the ghost pair cannot reach the gateway: %v", err)
	}
	reach(t, client, "10.89.0.10:80", false, "control: client to the address while an old pair is up on the bridge")
	mustRun(t, w.Host, "ip", "link", "del", gveth)
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", ghost)
	if err := eventually(func() error {
		_, err := testenv.TCPHello(client, "10.89.0.10:80", dialTimeout)
		return err
	}); err != nil {
		t.Errorf("client to the new sandbox after the control: %v", err)
	}

	release()
	w.MustNsnet(t, "sandbox", "rm", neu, client)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}
