package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestModes checks none, host and container:NAME, and that a shared
// namespace's owner is protected unless --force.
func TestModes(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	none, host, owner, sharer := w.Name("none"), w.Name("hostm"), w.Name("owner"), w.Name("sharer")
	w.MustNsnet(t, "--default-address-pool", "base=10.60.0.0/16,size=24", "sandbox", "create", owner)
	w.MustNsnet(t, "sandbox", "create", "--network", "none", none)
	w.MustNsnet(t, "sandbox", "create", "--network", "host", host)
	w.MustNsnet(t, "sandbox", "create", "--network", "container:"+owner, sharer)

	links := testenv.Addrs(t, none)
	if len(links) != 1 || links[0].IfName != "lo" || !links[0].IsUp() {
		t.Errorf("none sandbox links: %+v, want only lo, up", links)
	}
	if eth0 := mustLink(t, host, "eth0"); !contains(eth0.IPs("inet"), testenv.UplinkIP+"/24") {
		t.Errorf("host-mode sandbox does not see the host's eth0: %v", eth0.IPs("inet"))
	}
	ownerIP := mustLink(t, owner, "eth0").IPs("inet")
	if got := mustLink(t, sharer, "eth0").IPs("inet"); len(ownerIP) != 1 || strings.Join(got, ",") != strings.Join(ownerIP, ",") {
		t.Errorf("container-mode sandbox sees %v, owner has %v", got, ownerIP)
	}
	if ownerIP[0] != "10.60.0.2/24" {
		t.Errorf("default network from the pool gave %v, want 10.60.0.2/24", ownerIP)
	}

	before := w.Snapshot(t)
	expectFail(t, w, 1, []string{owner, "shared by", sharer, "--force"}, "sandbox", "rm", owner)
	if d := before.Diff(w.Snapshot(t)); d != "" {
		t.Errorf("refused rm changed the world:\n%s", d)
	}
	w.MustNsnet(t, "sandbox", "rm", "--force", owner)
	expectFail(t, w, 1, []string{sharer, "not found"}, "sandbox", "inspect", sharer)
	w.MustNsnet(t, "sandbox", "rm", none, host)
	if eth0 := mustLink(t, w.Host, "eth0"); !eth0.IsUp() {
		t.Errorf("removing a host-mode sandbox took the host's eth0 down")
	}
	w.MustNsnet(t, "network", "rm", "bridge")
	w.AssertClean(t)
}

// TestDefaultNetworkComesBack checks that the default network is made on
// first use, can be removed, and is made again on next use.
func TestDefaultNetworkComesBack(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	pool := []string{"--default-address-pool", "base=10.61.0.0/16,size=24"}
	a := w.Name("a")
	for round := 0; round < 2; round++ {
		w.MustNsnet(t, append(pool, "sandbox", "create", a)...)
		n := inspectNetwork(t, w, "bridge")
		if n.Bridge != "nsnet0" || n.Subnet != "10.61.0.0/24" || n.Gateway != "10.61.0.1" {
			t.Fatalf("round %d: default network %+v", round, n)
		}
		if br := mustLink(t, w.Host, "nsnet0"); br.Kind() != "bridge" {
			t.Fatalf("nsnet0 is a %q", br.Kind())
		}
		w.MustNsnet(t, "sandbox", "rm", a)
		w.MustNsnet(t, "network", "rm", "bridge")
		w.AssertClean(t)
	}
}

// TestAdoptNamespace checks --netns with a named namespace and with a
// process's /proc/PID/ns/net: nsnet attaches to it and, on removal, detaches
// without destroying what it did not create (removing it while the process
// runs needs --force).
func TestAdoptNamespace(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.MustNsnet(t, "network", "create", "--subnet", "10.62.0.0/24", "n1")

	ext := w.Name("ext")
	if out, err := exec.Command("ip", "netns", "add", ext).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	sb := w.Name("adopted")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--netns", testenv.NSPath(ext), sb)
	if got := mustLink(t, ext, "eth0").IPs("inet"); len(got) != 1 || got[0] != "10.62.0.2/24" {
		t.Errorf("adopted namespace eth0: %v", got)
	}
	if got := mustLink(t, sb, "eth0").IPs("inet"); len(got) != 1 {
		t.Errorf("sandbox name does not reach the adopted namespace: %v", got)
	}
	w.MustNsnet(t, "sandbox", "rm", sb)
	if !contains(testenv.NamespaceNames(t), ext) {
		t.Fatalf("removing the sandbox destroyed namespace %s that nsnet did not create", ext)
	}
	if _, ok := testenv.FindLink(testenv.Links(t, ext), "eth0"); ok {
		t.Errorf("eth0 left in %s after sandbox rm", ext)
	}

	proc := startInNewNetns(t)
	pidSB := w.Name("pid")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--netns", "/proc/"+strconv.Itoa(proc.Pid)+"/ns/net", pidSB)
	if got := mustLink(t, pidSB, "eth0").IPs("inet"); len(got) != 1 || got[0] != "10.62.0.3/24" { // round-robin: the next one
		t.Errorf("process namespace eth0: %v", got)
	}
	// The adopted namespace's process still runs in it: refused, as docker
	// rm refuses a running container, unless --force.
	expectFail(t, w, 1, []string{pidSB, "running processes", "sleep (pid " + strconv.Itoa(proc.Pid) + ")", "--force"},
		"sandbox", "rm", pidSB)
	w.MustNsnet(t, "sandbox", "rm", "--force", pidSB)
	if err := proc.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the adopting process is gone after sandbox rm: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "del", ext).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v %s", ext, err, out)
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// startInNewNetns starts a sleeping process in a new network namespace.
func startInNewNetns(t *testing.T) *os.Process {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// unshare execs sleep once the namespace exists; wait until it has.
	self, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; i < 200; i++ {
		if ns, err := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"); err == nil && ns != self {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
			if strings.TrimSpace(string(comm)) == "sleep" {
				return cmd.Process
			}
		}
		exec.Command("sleep", "0.01").Run()
	}
	t.Fatalf("process never entered a new network namespace")
	return nil
}
