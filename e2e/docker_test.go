package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// TestGatewayFromFirstNonInternal checks Docker's meaning of a sandbox on
// several networks whose first is internal: the default route, the
// masquerade and the published ports use the first non-internal network,
// while the interfaces keep the order given. A sandbox only on internal
// networks still cannot publish.
func TestGatewayFromFirstNonInternal(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	sb, shut := w.Name("multi"), w.Name("shut")
	w.MustNsnet(t, "network", "create", "--internal", "--subnet", "10.101.0.0/24", "in1")
	w.MustNsnet(t, "network", "create", "--internal", "--subnet", "10.103.0.0/24", "in2")
	w.MustNsnet(t, "network", "create", "--subnet", "10.102.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "in1", "--network", "n1", "-p", "8080:80", sb)

	if got := mustLink(t, sb, "eth0").IPs("inet"); len(got) != 1 || got[0] != "10.101.0.2/24" {
		t.Errorf("eth0 (in1, given first) has %v, want 10.101.0.2/24", got)
	}
	if got := mustLink(t, sb, "eth1").IPs("inet"); len(got) != 1 || got[0] != "10.102.0.2/24" {
		t.Errorf("eth1 (n1, given second) has %v, want 10.102.0.2/24", got)
	}
	var defaults []testenv.Route
	for _, r := range testenv.Routes(t, sb) {
		if r.Dst == "default" {
			defaults = append(defaults, r)
		}
	}
	if len(defaults) != 1 || defaults[0].Gateway != "10.102.0.1" || defaults[0].Dev != "eth1" {
		t.Errorf("default routes %+v, want one via n1's gateway 10.102.0.1 on eth1", defaults)
	}
	if s := inspectSandbox(t, w, sb); s.Networks["n1"].Gateway != "10.102.0.1" || s.Networks["in1"].Gateway != "" {
		t.Errorf("inspect: gateways %+v, want only n1's", s.Networks)
	}

	testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":7777")
	got, err := testenv.TCPHello(sb, testenv.PublicIP+":7777", 3*time.Second)
	if err != nil || got != "from "+testenv.UplinkIP {
		t.Errorf("sandbox -> internet: %q, %v; want masqueraded to %s", got, err, testenv.UplinkIP)
	}
	testenv.StartTCPEcho(t, sb, "0.0.0.0:80")
	if got := reach(t, w.Inet, testenv.UplinkIP+":8080", true, "internet to the published port"); got != "from "+testenv.RouterIP {
		t.Errorf("published port: server saw %q, want the real client %s", got, testenv.RouterIP)
	}

	// Control: only internal networks, in either order, cannot publish.
	expectFail(t, w, 1, []string{"internal networks in1, in2", "cannot publish"},
		"sandbox", "create", "--network", "in1", "--network", "in2", "-p", "8081:80", shut)
	w.MustNsnet(t, "sandbox", "create", "--network", "in2", "--network", "in1", shut)
	if gw := defaultGateway(t, shut); gw != "" {
		t.Errorf("sandbox only on internal networks has a default route via %s", gw)
	}
	expectFail(t, w, 1, []string{"internal networks in2, in1", "cannot publish"}, "port", "add", shut, "8081:80")

	w.MustNsnet(t, "sandbox", "rm", sb, shut)
	w.MustNsnet(t, "network", "rm", "in1", "in2", "n1")
	w.AssertClean(t)
}

// TestCannotRun checks docker's exit codes for a program that exec and run
// cannot start: 126 when it exists but cannot be run, 127 when it is not
// there, each with a message naming the program.
func TestCannotRun(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	sb := w.Name("x")
	w.MustNsnet(t, "sandbox", "create", "--network", "none", sb)
	dir := t.TempDir()
	file := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		what, prog string
		code       int
		want       string
	}{
		{"no execute permission", file("plain", "#!/bin/sh\nexit 0\n", 0o644), 126, "permission denied"},
		{"a directory", dir, 126, "not an executable file"},
		{"text without #! marked executable", file("text", "just words\n", 0o755), 126, "exec format error"},
		{"missing #! interpreter", file("orphan", "#!/no/such/interpreter\n", 0o755), 127, "interpreter"},
		{"missing path", filepath.Join(dir, "absent"), 127, "not found"},
		{"missing name", "no-such-program-xyz", 127, "not found"},
		{"control: runnable", file("ok", "#!/bin/sh\nexit 5\n", 0o755), 5, ""},
	}
	for _, c := range cases {
		for _, args := range [][]string{
			{"exec", sb, "--", c.prog},
			{"run", "--rm", "--network", "none", "--name", w.Name("r"), "--", c.prog},
		} {
			r := w.Nsnet(args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.want) || (c.want != "" && !strings.Contains(r.Stderr, c.prog)) {
				t.Errorf("%s: nsnet %s: exit %d, stderr %q; want %d and %q naming the program",
					c.what, strings.Join(args, " "), r.Code, r.Stderr, c.code, c.want)
			}
		}
	}
	if out := w.MustNsnet(t, "sandbox", "ls"); strings.Contains(out, w.Name("r")) {
		t.Errorf("run --rm left its sandbox after a program that could not start:\n%s", out)
	}
	w.MustNsnet(t, "sandbox", "rm", sb)
	w.AssertClean(t)
}

// TestMACConflicts checks that no two interfaces on a network get one MAC: an
// address whose derived MAC another sandbox took with --mac is skipped, and a
// --ip whose derived MAC is taken is refused, naming the holder.
func TestMACConflicts(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--subnet", "10.104.0.0/29", "n1")
	// a takes .3 and the MAC nsnet derives for .2, the next free address.
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.104.0.3", "--mac", "02:42:0a:68:00:02", a)
	expectFail(t, w, 1, []string{"MAC 02:42:0a:68:00:02", "derived from --ip", "already used by sandbox " + a, "--mac"},
		"sandbox", "create", "--network", "n1", "--ip", "10.104.0.2", c)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", b)
	ethA, ethB := mustLink(t, a, "eth0"), mustLink(t, b, "eth0")
	if ethA.Address == ethB.Address {
		t.Errorf("sandboxes %s and %s share MAC %s", a, b, ethA.Address)
	}
	if got := ethB.IPs("inet"); len(got) != 1 || got[0] != "10.104.0.4/29" {
		t.Errorf("%s got %v, want 10.104.0.4/29 (.2's derived MAC is %s's)", b, got, a)
	}
	if err := testenv.Ping(b, "10.104.0.3"); err != nil {
		t.Errorf("%s -> %s: %v", b, a, err)
	}
	// Control: once a is gone its MAC is free again, for .2 and for --mac.
	w.MustNsnet(t, "sandbox", "rm", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.104.0.2", c)
	if got := mustLink(t, c, "eth0").Address; got != "02:42:0a:68:00:02" {
		t.Errorf("%s has MAC %s, want the derived 02:42:0a:68:00:02", c, got)
	}
	w.MustNsnet(t, "sandbox", "rm", b, c)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestRemoveRunningSandbox checks that sandbox rm refuses a sandbox whose
// namespace still has processes, naming them, as docker rm refuses a running
// container; that --force removes it anyway and prints every sandbox it
// removed; and that host-mode sandboxes and sharers, which only name a
// namespace, are never refused for its processes.
func TestRemoveRunningSandbox(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	web, owner, sh1, sh2, hostm := w.Name("web"), w.Name("owner"), w.Name("sh1"), w.Name("sh2"), w.Name("hostm")
	w.MustNsnet(t, "network", "create", "--subnet", "10.105.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", web)

	sleep := startSleep(t, testenv.NSPath(web))
	before := w.Snapshot(t)
	expectFail(t, w, 1, []string{"sandbox " + web + " has running processes", fmt.Sprintf("sleep (pid %d)", sleep.Process.Pid), "--force"},
		"sandbox", "rm", web)
	if d := before.Diff(w.Snapshot(t)); d != "" {
		t.Errorf("refused rm changed the world:\n%s", d)
	}
	stop(sleep)
	if out := w.MustNsnet(t, "sandbox", "rm", web); strings.TrimSpace(out) != web {
		t.Errorf("rm once the process is gone printed %q", out)
	}

	w.MustNsnet(t, "sandbox", "create", "--network", "n1", owner)
	w.MustNsnet(t, "sandbox", "create", "--network", "container:"+owner, sh1)
	w.MustNsnet(t, "sandbox", "create", "--network", "container:"+owner, sh2)
	sleep = startSleep(t, testenv.NSPath(owner))
	w.MustNsnet(t, "sandbox", "rm", sh1) // a sharer only names the namespace
	out := w.MustNsnet(t, "sandbox", "rm", "--force", owner)
	if strings.Fields(out) == nil || strings.Join(strings.Fields(out), " ") != sh2+" "+owner {
		t.Errorf("rm --force printed %q, want the sharer %s and then %s", out, sh2, owner)
	}
	if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("rm --force stopped the process in the namespace: %v", err)
	}
	for _, sb := range []string{owner, sh2} {
		expectFail(t, w, 1, []string{sb, "not found"}, "sandbox", "inspect", sb)
	}
	stop(sleep)

	w.MustNsnet(t, "sandbox", "create", "--network", "host", hostm)
	sleep = startSleep(t, w.HostPath())
	w.MustNsnet(t, "sandbox", "rm", hostm) // the host always has processes
	stop(sleep)

	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// startSleep starts `sleep 1000` in the network namespace at path and waits
// until it runs there; the test's cleanup kills it.
func startSleep(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	want, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+path, "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatalf("nsenter: %v", err)
	}
	t.Cleanup(func() { stop(cmd) })
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	for i := 0; i < 500; i++ { // nsenter execs sleep once it has entered
		comm, _ := os.ReadFile(proc + "/comm")
		if ns, err := os.Stat(proc + "/ns/net"); err == nil && os.SameFile(ns, want) && strings.TrimSpace(string(comm)) == "sleep" {
			return cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("sleep never ran in %s", path)
	return nil
}

// stop kills a process started by startSleep and reaps it.
func stop(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// TestStateFile checks that an empty state file is initialised, and that a
// corrupt one is refused with an error saying what to do, before anything
// changes; doing it (moving the file away, then gc) cleans the kernel.
func TestStateFile(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	path := filepath.Join(engine.StateDir("", w.Root), store.FileName)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := w.MustNsnet(t, "network", "ls", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("network ls on an empty state file: %q, want []", out)
	}
	sb := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.107.0.0/24", "--bridge", "br-sf", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", sb)

	if err := os.WriteFile(path, []byte("this is not a bbolt file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{path, "corrupt", "mv " + path + " " + path + ".corrupt", "nsnet gc"}
	before := w.Snapshot(t)
	expectFail(t, w, 1, want, "network", "ls")
	expectFail(t, w, 1, want, "sandbox", "create", "--network", "n1", w.Name("x"))
	expectFail(t, w, 1, want, "gc")
	if d := before.Diff(w.Snapshot(t)); d != "" {
		t.Errorf("commands on a corrupt state file changed the world:\n%s", d)
	}
	if err := os.Rename(path, path+".corrupt"); err != nil {
		t.Fatal(err)
	}
	out := w.MustNsnet(t, "gc") // the network is kept; its sandbox is gone
	if !strings.Contains(out, testenv.NSPath(sb)) {
		t.Errorf("gc after moving the state file away does not mention %s:\n%s", testenv.NSPath(sb), out)
	}
	if got := listNames(t, w, "network"); got != "n1" {
		t.Errorf("networks after moving the state file away: %q, want the kept n1", got)
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestIDs checks that every command taking a network or sandbox name also
// takes its ID or a unique ID prefix, as docker does: an exact name wins, then
// an exact ID, then a unique prefix; an ambiguous prefix is refused, naming
// the candidates; ls shows the 12-digit short IDs.
func TestIDs(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--subnet", "10.106.0.0/24", "n1")
	net := inspectNetwork(t, w, "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", net.ID[:8], "--ip", "10.106.0.10", a) // --network by ID prefix
	sa := inspectSandbox(t, w, a)
	if _, ok := sa.Networks["n1"]; !ok {
		t.Fatalf("--network %s (n1's ID prefix) attached %s to %v", net.ID[:8], a, sa.Networks)
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "container:"+sa.ID, b) // container: by full ID
	if sb := inspectSandbox(t, w, b); sb.Container != a {
		t.Errorf("container:%s stored as container %q, want %s", sa.ID, sb.Container, a)
	}

	if out := w.MustNsnet(t, "network", "ls"); !strings.Contains(out, net.ID[:12]) {
		t.Errorf("network ls lacks the short ID %s:\n%s", net.ID[:12], out)
	}
	if out := w.MustNsnet(t, "sandbox", "ls"); !strings.Contains(out, sa.ID[:12]) {
		t.Errorf("sandbox ls lacks the short ID %s:\n%s", sa.ID[:12], out)
	}
	for _, ref := range []string{net.ID, net.ID[:12], net.ID[:3]} {
		if got := inspectNetwork(t, w, ref); got.Name != "n1" {
			t.Errorf("network inspect %s: %s, want n1", ref, got.Name)
		}
	}
	for _, ref := range []string{sa.ID, sa.ID[:12]} {
		if got := inspectSandbox(t, w, ref); got.Name != a {
			t.Errorf("sandbox inspect %s: %s, want %s", ref, got.Name, a)
		}
	}
	if out := w.MustNsnet(t, "exec", sa.ID[:12], "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.106.0.10/24") {
		t.Errorf("exec by ID ran elsewhere: %q", out)
	}
	w.MustNsnet(t, "port", "add", sa.ID[:12], "8080:80")
	if out := w.MustNsnet(t, "port", "ls", sa.ID[:12]); !strings.Contains(out, "80/tcp") || !strings.Contains(out, a) {
		t.Errorf("port ls by ID: %q", out)
	}
	testenv.StartTCPEcho(t, a, "0.0.0.0:80")
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "published by ID")
	w.MustNsnet(t, "port", "rm", sa.ID[:12], "8080:80")
	reach(t, w.Inet, testenv.UplinkIP+":8080", false, "after port rm by ID")
	canListen(t, w, "tcp4", "0.0.0.0:8080", true) // released by the sandbox's holder

	// An exact name wins over another sandbox's ID prefix.
	w.MustNsnet(t, "sandbox", "create", "--network", "none", sa.ID[:12])
	if got := inspectSandbox(t, w, sa.ID[:12]); got.Name != sa.ID[:12] {
		t.Errorf("sandbox inspect %s gave %s, want the sandbox of that name", sa.ID[:12], got.Name)
	}
	if got := inspectSandbox(t, w, sa.ID[:13]); got.Name != a {
		t.Errorf("sandbox inspect %s gave %s, want %s", sa.ID[:13], got.Name, a)
	}
	w.MustNsnet(t, "sandbox", "rm", sa.ID[:12])

	// Of 17 sandboxes, two IDs share their first digit: that prefix is
	// ambiguous, and a command given it changes nothing.
	byDigit := map[byte][]sandbox{}
	for i := 0; i < 16; i++ {
		name := w.Name(fmt.Sprintf("m%d", i))
		w.MustNsnet(t, "sandbox", "create", "--network", "none", name)
		s := inspectSandbox(t, w, name)
		byDigit[s.ID[0]] = append(byDigit[s.ID[0]], s)
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "none", c)
	sc := inspectSandbox(t, w, c)
	byDigit[sc.ID[0]] = append(byDigit[sc.ID[0]], sc) // a and b make 18
	for _, s := range []sandbox{sa, inspectSandbox(t, w, b)} {
		byDigit[s.ID[0]] = append(byDigit[s.ID[0]], s)
	}
	for d, ss := range byDigit {
		if len(ss) < 2 {
			continue
		}
		prefix := string(d)
		want := []string{"sandbox " + prefix + " is ambiguous"}
		for _, s := range ss {
			want = append(want, s.Name+" ("+s.ID[:12])
		}
		before := w.Snapshot(t)
		expectFail(t, w, 1, want, "sandbox", "rm", prefix)
		if d := before.Diff(w.Snapshot(t)); d != "" {
			t.Errorf("rm of an ambiguous prefix changed the world:\n%s", d)
		}
		expectFail(t, w, 1, []string{"is ambiguous"}, "sandbox", "inspect", prefix)
		break
	}
	for i := 0; i < 16; i++ {
		w.MustNsnet(t, "sandbox", "rm", inspectSandbox(t, w, w.Name(fmt.Sprintf("m%d", i))).ID)
	}
	if out := w.MustNsnet(t, "sandbox", "rm", "--force", sa.ID[:12]); strings.Join(strings.Fields(out), " ") != b+" "+sa.ID[:12] {
		t.Errorf("rm --force by ID printed %q, want %s and the ID given", out, b)
	}
	w.MustNsnet(t, "sandbox", "rm", sc.ID[:12])
	w.MustNsnet(t, "network", "rm", net.ID[:12])
	w.AssertClean(t)
}
