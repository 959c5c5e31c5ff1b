package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestOverlayHostDeath: a host dies (its agent killed, its sandboxes and
// namespace gone, nothing removed through nsnet); once its lease's TTL has
// passed, the other hosts have removed its sandbox's FDB and neighbour
// entries, and its address is free again cluster-wide. The control: the
// entries were there, and the sandbox reachable, before.
func TestOverlayHostDeath(t *testing.T) {
	c := newCluster(t, 3)
	c.createOverlay("ovd", "10.200.0.0/16")
	s0, s1, s2 := c.w.Name("d0"), c.w.Name("d1"), c.w.Name("d2")
	c.sandbox(0, s0, "--network", "ovd")
	c.sandbox(1, s1, "--network", "ovd")
	ip2 := c.sandbox(2, s2, "--network", "ovd")
	mustPing(t, s0, ip2) // control: the dead host's sandbox was reachable
	for _, i := range []int{0, 1} {
		if _, neigh := remoteEntries(t, c.hosts[i].Host, vxlanDevice(t, c.hosts[i], "ovd").IfName); neigh[ip2] == "" {
			t.Fatalf("host %d has no neighbour entry for %s before host 2 dies: %v", i, ip2, neigh)
		}
	}
	c.kill(2, s2)
	for _, i := range []int{0, 1} {
		dev := vxlanDevice(t, c.hosts[i], "ovd").IfName
		err := waitFor(agentWait, func() error {
			macs, neigh := remoteEntries(t, c.hosts[i].Host, dev)
			if neigh[ip2] != "" || len(macs) != 1 {
				return fmt.Errorf("host %d still has entries of dead host 2: FDB %v, neighbours %v", i, macs, neigh)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s3 := c.w.Name("d3")
	if got := c.sandbox(0, s3, "--network", "ovd", "--ip", ip2); got != ip2 {
		t.Fatalf("the dead host's address %s was not reclaimed: got %s", ip2, got)
	}
	mustPing(t, s1, ip2)

	// A create killed half-way on host 1, after it reserved its address:
	// host 1's agent finds the address held for no sandbox of its own and
	// releases it, so host 0 can be given it. (Without that, the agent's
	// lease would keep it forever.)
	const crashIP = "10.200.0.99"
	r := nsnetEnv(t, c.hosts[1], []string{"NSNET_FAULT=sandbox-create:after-netns"}, "sandbox", "create", "--network", "ovd", "--ip", crashIP, c.w.Name("dx"))
	if r.Code == 0 {
		t.Fatalf("the create with a fault point did not die: %s", r.Stdout)
	}
	c.hosts[1].MustNsnet(t, "gc")
	s4 := c.w.Name("d4")
	err := waitFor(agentWait, func() error {
		if r := c.hosts[0].Nsnet("sandbox", "create", "--network", "ovd", "--ip", crashIP, s4); r.Code != 0 {
			return fmt.Errorf("%s", r.Stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the address %s of the create killed on host 1 was never released: %v", crashIP, err)
	}
	c.teardown(map[int][]string{0: {s0, s3, s4}, 1: {s1}}, "ovd")
	c.stopAgents(0, 1)
	c.stopEtcd()
	for i := range 2 {
		c.assertClean(i)
	}
}

// kill makes host i die: its agent is killed (SIGKILL) and every namespace
// of it deleted behind nsnet's back, as if the machine had gone.
func (c *cluster) kill(i int, sandboxes ...string) {
	c.t.Helper()
	c.stopAgent(i, unix.SIGKILL)
	for _, pid := range processesOfRoot(c.hosts[i].Root) {
		unix.Kill(pid, unix.SIGKILL)
	}
	for _, ns := range append(sandboxes, c.hosts[i].Host) {
		c.mustIP("netns", "del", ns)
		c.dead = append(c.dead, ns)
	}
	for _, sb := range sandboxes { // the dead machine's files: this one's share its file system
		os.Remove(filepath.Join("/run/nsnet/netns", sb))
		os.RemoveAll(filepath.Join("/etc/netns", sb))
	}
}

func (c *cluster) stopAgents(hosts ...int) {
	for _, i := range hosts {
		c.stopAgent(i, unix.SIGTERM)
	}
}

func (c *cluster) assertClean(i int) {
	c.t.Helper()
	h := c.hosts[i]
	h.WaitReleased(c.t)
	clean := c.clean[i]
	clean.Namespaces = slices.DeleteFunc(slices.Clone(clean.Namespaces), func(ns string) bool { return slices.Contains(c.dead, ns) })
	if d := clean.Diff(h.Snapshot(c.t)); d != "" {
		c.t.Errorf("host %d is not as it was before the test:\n%s", i, d)
	}
}

// TestOverlayAgentRestart: while host 1's agent is down, a sandbox appears
// on host 2 and one goes from host 0; the restarted agent resyncs: it has
// the new sandbox's entries and not the removed one's, and the sandbox of
// its own host is still known to the others well after the old agent's
// lease (whose TTL has passed) is gone.
func TestOverlayAgentRestart(t *testing.T) {
	c := newCluster(t, 3)
	c.createOverlay("ovr", "10.200.0.0/16")
	s0, s1, s2 := c.w.Name("r0"), c.w.Name("r1"), c.w.Name("r2")
	ip0 := c.sandbox(0, s0, "--network", "ovr")
	ip1 := c.sandbox(1, s1, "--network", "ovr")
	mustPing(t, s1, ip0)
	c.stopAgent(1, unix.SIGTERM)
	c.hosts[0].MustNsnet(t, "sandbox", "rm", s0)
	ip2 := c.sandbox(2, s2, "--network", "ovr")
	if err := testenv.Ping(s1, ip2); err == nil {
		t.Fatalf("host 1 reaches %s, made while its agent was down: the test cannot see the resync", ip2)
	}
	c.startAgent(1)
	// The lowest free address is the one s0 left: the same address and MAC,
	// now behind host 2, so the resync must move the entry, not just add one.
	dev := vxlanDevice(t, c.hosts[1], "ovr").IfName
	mac2 := inspectSandbox(t, c.hosts[2], s2).Networks["ovr"].MAC
	err := waitFor(agentWait, func() error {
		macs, neigh := remoteEntries(t, c.hosts[1].Host, dev)
		if neigh[ip2] != mac2 || macs[mac2] != underlayIP(2) || len(macs) != 1 || (ip0 != ip2 && neigh[ip0] != "") {
			return fmt.Errorf("host 1 after its agent's restart: FDB %v, neighbours %v; want only %s (%s) behind %s", macs, neigh, ip2, mac2, underlayIP(2))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustPing(t, s1, ip2)
	time.Sleep(3 * time.Second) // longer than the TTL of the old agent's lease
	mustPing(t, s2, ip1)
	c.teardown(map[int][]string{1: {s1}, 2: {s2}}, "ovr")
	c.stopAll()
}

// TestOverlayStoreOutage: with etcd stopped, local networks keep working,
// an overlay sandbox create fails with an error that says the store is
// unreachable and leaves nothing behind, and sandboxes already on the
// overlay still reach each other; once etcd is back (same data), a new
// sandbox on another host is reachable again.
func TestOverlayStoreOutage(t *testing.T) {
	c := newCluster(t, 2)
	c.createOverlay("ovo", "10.200.0.0/16")
	s0, s1 := c.w.Name("o0"), c.w.Name("o1")
	c.sandbox(0, s0, "--network", "ovo")
	ip1 := c.sandbox(1, s1, "--network", "ovo")
	s4 := c.w.Name("o4")
	ip4 := c.sandbox(1, s4, "--network", "ovo")
	c.stopEtcd()
	r4 := c.hosts[1].Nsnet("sandbox", "rm", s4)
	if r4.Code != 0 || !strings.Contains(r4.Stderr, "still registered") {
		t.Fatalf("sandbox rm of an overlay sandbox with etcd stopped: exit %d, stderr %q; want success and a warning", r4.Code, r4.Stderr)
	}
	before := c.hosts[0].MustNsnet(t, "sandbox", "ls")
	r := c.hosts[0].Nsnet("sandbox", "create", "--network", "ovo", c.w.Name("o2"))
	if r.Code == 0 || !strings.Contains(r.Stderr, "unreachable") {
		t.Fatalf("overlay sandbox create with etcd stopped: exit %d, stderr %q; want a failure saying the store is unreachable", r.Code, r.Stderr)
	}
	if after := c.hosts[0].MustNsnet(t, "sandbox", "ls"); after != before || testenv.Ping(s0, ip1) != nil {
		t.Fatalf("the failed create changed the sandboxes (%q -> %q), or the overlay stopped forwarding", before, after)
	}
	for _, args := range [][]string{
		{"network", "create", "--driver", "overlay", "--store", storeURL, "--subnet", "10.201.0.0/16", "ovx"},
		{"network", "rm", "--store", storeURL, "ovo"},
	} {
		expectFail(t, c.hosts[0], 1, []string{"the cluster store (etcd) is unreachable"}, args...)
	}
	c.hosts[0].MustNsnet(t, "network", "create", "--subnet", "10.88.0.0/24", "loc")
	l0, l1 := c.w.Name("l0"), c.w.Name("l1")
	ipl := c.sandbox(0, l0, "--network", "loc")
	c.sandbox(0, l1, "--network", "loc")
	mustPing(t, l1, ipl)
	c.startEtcd()
	// The agent of host 1 releases the address of the sandbox removed while
	// etcd was down: host 0 can then be given it.
	s5 := c.w.Name("o5")
	err := waitFor(agentWait, func() error {
		r := c.hosts[0].Nsnet("sandbox", "create", "--network", "ovo", "--ip", ip4, s5)
		if r.Code != 0 {
			return fmt.Errorf("%s", r.Stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the address %s of the sandbox removed during the outage was not released: %v", ip4, err)
	}
	// Host 1's agent needs a moment to take a new lease (the old one expired
	// with the outage); until then its creates say so.
	s3 := c.w.Name("o3")
	err = waitFor(agentWait, func() error {
		r := c.hosts[1].Nsnet("sandbox", "create", "--network", "ovo", s3)
		if r.Code != 0 {
			return fmt.Errorf("%s", r.Stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("no overlay sandbox create on host 1 after etcd came back: %v", err)
	}
	ip3 := strings.Split(inspectSandbox(t, c.hosts[1], s3).Networks["ovo"].Address, "/")[0]
	if err := waitFor(agentWait, func() error { return testenv.Ping(s0, ip3) }); err != nil {
		t.Fatalf("after etcd came back, %s cannot reach the new sandbox %s: %v", s0, ip3, err)
	}
	c.teardown(map[int][]string{0: {s0, s5, l0, l1}, 1: {s1, s3}}, "ovo")
	c.hosts[0].MustNsnet(t, "network", "rm", "loc")
	c.stopAll()
}
