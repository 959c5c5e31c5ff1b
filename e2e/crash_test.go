package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// crashCase is a command killed at a fault point, with what makes its
// precondition true before and what resets the world after.
type crashCase struct {
	points []string
	setup  [][]string
	cmd    []string
	reset  [][]string // run with --force semantics; failures ignored
}

// TestFaultInjection kills create and remove commands at every fault point,
// then checks that gc (or the next command) leaves store and kernel in
// agreement with nothing leaked.
func TestFaultInjection(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	pool := []string{"--default-address-pool", "base=10.82.0.0/16,size=24"}
	w.MustNsnet(t, "network", "create", "--subnet", "10.80.0.0/24", "n1")
	common := []string{"before-commit", "after-commit"}
	cases := []crashCase{
		{points: append([]string{"network-create:after-intent", "network-create:after-bridge"}, common...),
			cmd: []string{"network", "create", "--subnet", "10.81.0.0/24", "n2"}, reset: [][]string{{"network", "rm", "n2"}}},
		{points: append([]string{"sandbox-create:after-intent", "sandbox-create:after-netns", "sandbox-create:after-veth"}, common...),
			cmd: []string{"sandbox", "create", "--network", "n1", s}, reset: [][]string{{"sandbox", "rm", s}}},
		{points: append([]string{"sandbox-create:after-veth"}, common...),
			cmd: []string{"sandbox", "create", "--network", "n1", "-p", "8080:80", "-p", "127.0.0.1::81/udp", s}, reset: [][]string{{"sandbox", "rm", s}}},
		{points: append([]string{"network-create:after-bridge", "sandbox-create:after-veth"}, common...),
			cmd: append(pool, "sandbox", "create", s), reset: [][]string{{"sandbox", "rm", s}, {"network", "rm", "bridge"}}},
		{points: append([]string{"sandbox-rm:after-intent", "sandbox-rm:after-teardown"}, common...),
			setup: [][]string{{"sandbox", "create", "--network", "n1", s}}, cmd: []string{"sandbox", "rm", s}, reset: [][]string{{"sandbox", "rm", s}}},
		{points: append([]string{"network-rm:after-intent", "network-rm:after-teardown"}, common...),
			setup: [][]string{{"network", "create", "--subnet", "10.81.0.0/24", "n2"}}, cmd: []string{"network", "rm", "n2"}, reset: [][]string{{"network", "rm", "n2"}}},
		{points: append([]string{"network-connect:after-intent", "network-connect:after-veth"}, common...),
			setup: [][]string{{"network", "create", "--subnet", "10.81.0.0/24", "n2"}, {"sandbox", "create", "--network", "n1", s}},
			cmd:   []string{"network", "connect", "n2", s}, reset: [][]string{{"sandbox", "rm", s}, {"network", "rm", "n2"}}},
		{points: append([]string{"network-disconnect:after-intent", "network-disconnect:after-teardown"}, common...),
			setup: [][]string{{"network", "create", "--subnet", "10.81.0.0/24", "n2"}, {"sandbox", "create", "--network", "n1", "--network", "n2", "-p", "8080:80", s}},
			cmd:   []string{"network", "disconnect", "n1", s}, reset: [][]string{{"sandbox", "rm", s}, {"network", "rm", "n2"}}},
	}
	tested := map[string]bool{}
	for _, c := range cases {
		for _, p := range c.points {
			tested[p] = true
			for _, args := range c.setup {
				w.MustNsnet(t, args...)
			}
			r := nsnetEnv(t, w, []string{"NSNET_FAULT=" + p}, c.cmd...)
			if r.Code != 137 && r.Code != -1 {
				t.Fatalf("%v at %s: exit %d, want death by SIGKILL\n%s", c.cmd, p, r.Code, r.Stderr)
			}
			w.MustNsnet(t, "gc")
			assertConsistent(t, w, fmt.Sprintf("%v killed at %s", c.cmd, p))
			for _, args := range c.reset {
				w.Nsnet(args...)
			}
			assertConsistent(t, w, fmt.Sprintf("reset after %v at %s", c.cmd, p))
		}
	}
	for _, p := range engine.FaultPoints {
		if !tested[p] {
			t.Errorf("fault point %s is never tested: add it to a case", p)
		}
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestReleaseBinaryIgnoresFaults: a binary built without -tags nsnet_faults
// (as released) does not read NSNET_FAULT, so no program or user that
// happens to have it in its environment can make nsnet kill itself; the test
// binary does (the control).
func TestReleaseBinaryIgnoresFaults(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	fault := []string{"NSNET_FAULT=before-commit"}
	if r := nsnetEnv(t, w, fault, "network", "create", "--subnet", "10.84.1.0/24", "n1"); r.Code != 137 && r.Code != -1 {
		t.Fatalf("control: the test binary did not die at the fault point: exit %d", r.Code)
	}
	w.MustNsnet(t, "gc")
	w.Bin = testenv.ReleaseBinary(t)
	cmd := exec.Command("nsenter", "--net="+w.HostPath(), "--", w.Bin, "--root", w.Root, "network", "create", "--subnet", "10.84.1.0/24", "n1")
	cmd.Env = append(os.Environ(), fault...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release binary with NSNET_FAULT set: %v\n%s", err, out)
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestRandomKills sends real SIGKILLs to create and remove commands at
// random moments, then checks the same agreement after gc.
func TestRandomKills(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.MustNsnet(t, "network", "create", "--subnet", "10.83.0.0/24", "n1")
	rounds := 200
	if testing.Short() {
		rounds = 10
	}
	names := []string{w.Name("k1"), w.Name("k2"), w.Name("k3")}
	for i := 0; i < rounds; i++ {
		sb := names[i%len(names)]
		args := []string{"sandbox", "create", "--network", "n1", sb}
		if exists(t, w, sb) {
			args = []string{"sandbox", "rm", sb}
		}
		killAfter(t, w, time.Duration(rand.IntN(8000))*time.Microsecond, args...)
		w.MustNsnet(t, "gc")
		assertConsistent(t, w, fmt.Sprintf("round %d: %v killed", i, args))
	}
	for _, n := range names {
		w.Nsnet("sandbox", "rm", n)
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

func exists(t *testing.T, w *testenv.World, sb string) bool {
	return w.Nsnet("sandbox", "inspect", sb).Code == 0
}

// killAfter starts nsnet and SIGKILLs it after d (if it is still running).
func killAfter(t *testing.T, w *testenv.World, d time.Duration, args ...string) {
	t.Helper()
	cmd := nsnetCmd(context.Background(), t, w, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	cmd.Process.Kill() // nsenter execs nsnet: same process
	cmd.Wait()
}

// TestConcurrentProcesses runs 8 nsnet processes at once, each creating 30
// sandboxes on one /24 and then removing them.
func TestConcurrentProcesses(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.MustNsnet(t, "network", "create", "--subnet", "10.84.0.0/24", "n1")
	const procs, each = 8, 30
	run := func(op string) {
		var wg sync.WaitGroup
		for p := 0; p < procs; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					args := []string{"sandbox", "create", "--network", "n1", w.Name(fmt.Sprintf("c%d-%d", p, i))}
					if op == "rm" {
						args = []string{"sandbox", "rm", w.Name(fmt.Sprintf("c%d-%d", p, i))}
					}
					if r := w.Nsnet(args...); r.Code != 0 {
						t.Errorf("%v: exit %d: %s", args, r.Code, r.Stderr)
					}
				}
			}()
		}
		wg.Wait()
	}
	run("create")
	s := readStore(t, w)
	seen := map[string]string{}
	for _, sb := range s.sandboxes {
		a := sb.Endpoints[0].Address.String()
		if other, dup := seen[a]; dup {
			t.Errorf("address %s given to %s and %s", a, other, sb.Name)
		}
		seen[a] = sb.Name
	}
	if len(s.sandboxes) != procs*each || len(seen) != procs*each {
		t.Errorf("%d sandboxes with %d distinct addresses, want %d", len(s.sandboxes), len(seen), procs*each)
	}
	assertConsistent(t, w, "after concurrent creates")
	run("rm")
	assertConsistent(t, w, "after concurrent removes")
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestDrift changes the kernel behind nsnet's back and checks that gc reports
// it and that firewall reload, the next command, or gc restores it.
func TestDrift(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--subnet", "10.85.0.0/24", "--bridge", "br-drift", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", b)

	mustRun(t, w.Host, "nft", "flush", "ruleset")
	gcPending(t, w, "rewrite nftables table")
	w.MustNsnet(t, "firewall", "reload")
	srv := testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":7777")
	if got, err := testenv.TCPHello(a, testenv.PublicIP+":7777", 3*time.Second); err != nil || got != "from "+testenv.UplinkIP {
		t.Errorf("after firewall reload: %q %v", got, err)
	}
	_ = srv

	mustRun(t, w.Host, "ip", "link", "del", "br-drift")
	gcPending(t, w, "recreate bridge br-drift")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", c)
	if err := testenv.Ping(c, "10.85.0.2"); err != nil {
		t.Errorf("after the next command restored the bridge, old sandbox unreachable: %v", err)
	}
	assertConsistent(t, w, "after bridge restore")

	mustRun(t, w.Host, "ip", "netns", "del", b) // the veth pair dies with it
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "forget sandbox "+b) {
		t.Errorf("gc does not report the vanished namespace:\n%s", out)
	}
	assertConsistent(t, w, "after vanished namespace")

	// Lose the whole store, the kept networks too: gc finds nsnet's links by
	// their alias and its namespaces by their markers.
	for _, f := range []string{filepath.Join(engine.StateDir("", w.Root), store.FileName), filepath.Join(w.Root, store.KeptFile)} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	out := w.MustNsnet(t, "gc")
	for _, want := range []string{"remove leftover bridge br-drift", "remove leftover namespace /run/netns/" + a, "remove leftover namespace /run/netns/" + c} {
		if !strings.Contains(out, want) {
			t.Errorf("gc after losing the store lacks %q:\n%s", want, out)
		}
	}
	w.AssertClean(t)
}

// TestBusy holds the store's lock and checks that a command gives up after
// --lock-timeout with a clear "busy" error and changes nothing.
func TestBusy(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.MustNsnet(t, "network", "ls")
	st, err := openStore(w.Root, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	before := w.Snapshot(t)
	expectFail(t, w, 1, []string{"busy", "another nsnet command", "retry"},
		"--lock-timeout", "200ms", "network", "create", "--subnet", "10.86.0.0/24", "n1")
	// --lock-timeout 0 does not wait at all (bbolt's own 0 waits forever).
	expectFail(t, w, 1, []string{"busy", "--lock-timeout 0 does not wait", "retry"},
		"--lock-timeout", "0", "network", "create", "--subnet", "10.86.0.0/24", "n1")
	expectFail(t, w, 1, []string{"busy", "--lock-timeout 0 does not wait"}, "--lock-timeout", "0", "network", "ls")
	if d := before.Diff(w.Snapshot(t)); d != "" {
		t.Errorf("busy command changed the world:\n%s", d)
	}
	st.Close()
	w.MustNsnet(t, "--lock-timeout", "200ms", "network", "create", "--subnet", "10.86.0.0/24", "n1")
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}
