package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/testenv"
)

// residentState mirrors the "resident" object of `sandbox inspect`.
type residentState struct {
	Pid   int  `json:"pid"`
	Alive bool `json:"alive"`
}

// inspectResidentState returns what `sandbox inspect` says of the resident
// process, for sandbox s (nil when it says nothing).
func inspectResidentState(t *testing.T, w *testenv.World, s string) *residentState {
	t.Helper()
	return inspectOne[struct {
		Resident *residentState `json:"resident"`
	}](t, w, "sandbox", s).Resident
}

// inspectResident returns the pid of the live resident process, as `sandbox
// inspect` of s shows it.
func inspectResident(t *testing.T, w *testenv.World, s string) int {
	t.Helper()
	r := inspectResidentState(t, w, s)
	if r == nil || !r.Alive || r.Pid <= 0 { // never kill(0) or kill(-1)
		t.Fatalf("sandbox %s has no live resident process: %+v", s, r)
	}
	return r.Pid
}

// startImpostor starts a process whose command line is that of root's
// resident process (the test binary, sleeping: see TestMain), but which has
// no control socket. It returns its pid; the test kills it at the end.
func startImpostor(t *testing.T, root string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "__resident", "--root", root)
	cmd.Env = append(os.Environ(), roleEnv+"=sleep")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// alive reports whether pid (our child) is still running, not a zombie.
func alive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// TestResidentIdentity checks that the resident process is known by its
// control socket, not by its command line: processes that only look like it
// are neither stopped nor taken for it, and `sandbox inspect` tells whether
// the real one is alive.
func TestResidentIdentity(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.70.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", s)
	pid := inspectResident(t, w, s)
	ghost := startImpostor(t, w.Root+".other")
	twin := startImpostor(t, w.Root)

	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "nothing to do") {
		t.Errorf("gc with look-alike residents running:\n%s", out)
	}
	if !alive(ghost) || !alive(twin) {
		t.Errorf("gc stopped processes that only look like the resident (ghost alive %t, twin alive %t)", alive(ghost), alive(twin))
	}
	if got := inspectResident(t, w, s); got != pid {
		t.Errorf("inspect names resident %d, want %d", got, pid)
	}

	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill resident %d: %v", pid, err)
	}
	waitExit(t, pid)
	if r := inspectResidentState(t, w, s); r == nil || r.Alive {
		t.Errorf("inspect after the resident was killed (a look-alike still runs): %+v, want alive false", r)
	}
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "start the resident process: 1 ports of 1 sandboxes to hold, 1 networks to serve") {
		t.Errorf("gc after the resident died:\n%s", out)
	}
	if got := inspectResident(t, w, s); got == pid || got == twin {
		t.Errorf("inspect after gc names resident %d (old %d, look-alike %d)", got, pid, twin)
	}
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	w.MustNsnet(t, "sandbox", "rm", s)
	canListen(t, w, "tcp4", "0.0.0.0:8080", true)
	if !alive(ghost) || !alive(twin) {
		t.Errorf("sandbox rm stopped processes that only look like the resident")
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestResidentLetsGoOfVanishedSandboxes checks that the resident process
// lets a sandbox's ports go by itself when the sandbox's namespace is gone,
// while it keeps another sandbox's port (the control), and that it exits
// when its state root is gone; gc then starts it again.
func TestResidentLetsGoOfVanishedSandboxes(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b := w.Name("a"), w.Name("b")
	w.MustNsnet(t, "network", "create", "--subnet", "10.71.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8081:81", "-p", "5353:53/udp", b)
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	canListen(t, w, "tcp4", "0.0.0.0:8081", false)
	pid := inspectResident(t, w, b)

	mustRun(t, w.Host, "ip", "netns", "del", a)
	waitBindable(t, w, "tcp4", "0.0.0.0:8080")
	canListen(t, w, "tcp4", "0.0.0.0:8081", false) // b's stays held
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "forget sandbox "+a) {
		t.Errorf("gc after a's namespace was deleted:\n%s", out)
	}

	away := w.Root + ".away"
	if err := os.Rename(w.Root, away); err != nil {
		t.Fatal(err)
	}
	waitExit(t, pid)
	canListen(t, w, "tcp4", "0.0.0.0:8081", true)
	canListen(t, w, "udp4", "0.0.0.0:5353", true)
	if err := os.Rename(away, w.Root); err != nil {
		t.Fatal(err)
	}
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "start the resident process: 2 ports of 1 sandboxes to hold, 1 networks to serve") {
		t.Errorf("gc after the state root came back:\n%s", out)
	}
	canListen(t, w, "tcp4", "0.0.0.0:8081", false)
	w.MustNsnet(t, "sandbox", "rm", b)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// waitBindable waits (10 s at most) until a host process can bind addr.
func waitBindable(t *testing.T, w *testenv.World, network, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := testenv.InNS(w.HostPath(), func() error { return tryBind(network, addr) })
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s still cannot be bound: %v", network, addr, err)
		}
	}
}

// TestSCTPOnlyConverges checks that gc is content with a sandbox whose only
// published ports are SCTP (which the resident does not hold), on the
// default network (which has no resolver): no resident runs for it.
func TestSCTPOnlyConverges(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.72.0.0/24", "bridge")
	w.MustNsnet(t, "sandbox", "create", "-p", "9000:9000/sctp", s)
	w.MustNsnet(t, "gc")
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do: the store and the kernel agree") {
		t.Errorf("gc --dry-run after gc:\n%s", out)
	}
	if r := inspectResidentState(t, w, s); r != nil {
		t.Errorf("inspect of a sandbox with only SCTP ports on the default network shows a resident: %+v", r)
	}
	if _, err := os.Lstat(filepath.Join(w.Root, "resident.sock")); !os.IsNotExist(err) {
		t.Errorf("a resident process runs for nothing: %v", err)
	}
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "bridge")
	w.AssertClean(t)
}

// TestFailedPublishPrintsNothing checks that a command that fails prints no
// mapping as published and changes nothing, when it fails early (a host port
// taken in the middle of a range) or late (no resident process can be
// started: its control socket's path is taken).
func TestFailedPublishPrintsNothing(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s, s2 := w.Name("s"), w.Name("s2")
	w.MustNsnet(t, "network", "create", "--subnet", "10.73.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.73.1.0/24", "bridge")
	w.MustNsnet(t, "sandbox", "create", s) // the default network: no resident yet
	testenv.StartTCPEcho(t, w.Host, "0.0.0.0:7001")
	blocker := filepath.Join(w.Root, "resident.sock")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	before := w.Snapshot(t)
	for _, c := range []struct {
		code int
		args []string
	}{
		{1, []string{"port", "add", s, "7000-7002:80-82"}},
		{1, []string{"port", "add", s, "7070:80"}},
		{1, []string{"sandbox", "create", "--network", "n1", "-p", "7070:80", s2}},
		{1, []string{"sandbox", "create", "--network", "n1", s2}}, // its names need the resident too
		{125, []string{"run", "--network", "n1", "-p", "7070:80", "--", "true"}},
	} {
		r := w.Nsnet(c.args...)
		if r.Code != c.code || r.Stdout != "" {
			t.Errorf("nsnet %s: exit %d (want %d), stdout %q (want none)\nstderr: %s", strings.Join(c.args, " "), r.Code, c.code, r.Stdout, r.Stderr)
		}
	}
	if d := before.Diff(w.Snapshot(t)); d != "" {
		t.Errorf("failed commands changed the world:\n%s", d)
	}
	canListen(t, w, "tcp4", "0.0.0.0:7000", true)
	canListen(t, w, "tcp4", "0.0.0.0:7070", true)
	if out := w.MustNsnet(t, "port", "ls", s); strings.Contains(out, "707") || strings.Contains(out, "700") {
		t.Errorf("port ls after failed commands:\n%s", out)
	}

	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if out := w.MustNsnet(t, "port", "add", s, "7070:80"); out != "80/tcp -> 0.0.0.0:7070\n" {
		t.Errorf("port add printed %q", out)
	}
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "n1", "bridge")
	w.AssertClean(t)
}

// TestKilledPortChanges kills `port add` and `port rm` just before and just
// after their commit, and checks that a published port is never left unheld,
// that a port left held after it was unpublished does not answer from
// outside (the resident proxies only the host's traffic to 127.0.0.0/8), and
// that gc makes the resident hold exactly the published ports.
func TestKilledPortChanges(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.74.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", "-p", "8081:81", s)
	testenv.StartTCPEcho(t, s, "0.0.0.0:80")
	testenv.StartTCPEcho(t, s, "0.0.0.0:81")
	killedAt := func(point string, args ...string) {
		t.Helper()
		if r := nsnetEnv(t, w, []string{"NSNET_FAULT=" + point}, args...); r.Code != 137 && r.Code != -1 {
			t.Fatalf("nsnet %v at %s: exit %d, want death by SIGKILL\n%s", args, point, r.Code, r.Stderr)
		}
	}

	killedAt("before-commit", "port", "rm", s, "8080:80")
	canListen(t, w, "tcp4", "0.0.0.0:8080", false) // still published, so still held
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "rewrite nftables table") {
		t.Errorf("gc after port rm was killed before its commit:\n%s", out)
	}
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "the port whose removal was killed")

	killedAt("before-commit", "port", "add", s, "8082:82")
	reach(t, w.Inet, testenv.UplinkIP+":8081", true, "control: the port before its removal")
	killedAt("after-commit", "port", "rm", s, "8081:81")
	canListen(t, w, "tcp4", "0.0.0.0:8081", false) // unpublished, not yet released
	reach(t, w.Inet, testenv.UplinkIP+":8081", false, "a port unpublished but still held")
	w.MustNsnet(t, "gc")
	canListen(t, w, "tcp4", "0.0.0.0:8082", true) // never published
	canListen(t, w, "tcp4", "0.0.0.0:8081", true) // unpublished
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("gc --dry-run after gc:\n%s", out)
	}
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}
