package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

// TestExecAndRun checks that exec and run place commands in the sandbox's
// namespace and pass exit codes through, as docker exec and docker run do.
func TestExecAndRun(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	sb := w.Name("x")
	w.MustNsnet(t, "network", "create", "--subnet", "10.72.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.72.0.9", sb)
	if out := w.MustNsnet(t, "exec", sb, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.72.0.9/24") {
		t.Errorf("exec ip addr: %q", out)
	}
	if r := w.Nsnet("exec", sb, "--", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Errorf("exec exit code %d, want 3", r.Code)
	}
	if r := w.Nsnet("exec", sb, "--", "no-such-command-xyz"); r.Code != 127 {
		t.Errorf("exec of a missing command: exit %d, want 127 (%s)", r.Code, r.Stderr)
	}
	expectFail(t, w, 125, []string{"nope", "not found"}, "exec", "nope", "--", "true")

	r := w.Nsnet("run", "--rm", "--name", w.Name("r"), "--network", "n1", "--", "sh", "-c", "ip -4 -o addr show dev eth0; exit 7")
	if r.Code != 7 || !strings.Contains(r.Stdout, "10.72.0.2/24") {
		t.Errorf("run: exit %d, stdout %q, stderr %q; want 7 and 10.72.0.2/24", r.Code, r.Stdout, r.Stderr)
	}
	if out := w.MustNsnet(t, "sandbox", "ls"); strings.Contains(out, w.Name("r")) {
		t.Errorf("run --rm left its sandbox:\n%s", out)
	}
	kept := w.Name("kept")
	w.MustNsnet(t, "run", "--name", kept, "--network", "none", "--", "true")
	if s := inspectSandbox(t, w, kept); s.Mode != "none" {
		t.Errorf("run without --rm: sandbox %+v", s)
	}
	w.MustNsnet(t, "sandbox", "rm", sb, kept)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestKilledRunRmLeavesNothing kills (SIGKILL) `nsnet run --rm` while its
// program runs: the sandbox stays while the program does, and the next
// nsnet command removes it once the program has exited. The control, a
// killed `run` without --rm, keeps its sandbox.
func TestKilledRunRmLeavesNothing(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.MustNsnet(t, "network", "create", "--subnet", "10.90.1.0/24", "n1")
	withRm, without := w.Name("rm"), w.Name("keep")
	for _, c := range []struct {
		name string
		args []string
	}{{withRm, []string{"--rm"}}, {without, nil}} {
		args := append(append([]string{"run", "--name", c.name, "--network", "n1"}, c.args...), "--", "sleep", "2")
		killWhileRunning(t, w, c.name, args)
	}
	w.MustNsnet(t, "firewall", "reload") // a command while the programs still run
	inspectSandbox(t, w, withRm)
	for _, s := range []string{withRm, without} {
		if err := eventually(func() error { return noPids(s) }); err != nil {
			t.Fatal(err)
		}
	}
	gcPending(t, w, "would remove sandbox "+withRm+": the nsnet run --rm that made it is gone")
	w.MustNsnet(t, "firewall", "reload") // the next command removes it
	expectFail(t, w, 1, []string{"not found"}, "sandbox", "inspect", withRm)
	if contains(testenv.NamespaceNames(t), withRm) {
		t.Errorf("namespace %s left behind", withRm)
	}
	inspectSandbox(t, w, without) // control: kept
	gcClean(t, w, "after the killed run was settled")
	w.MustNsnet(t, "sandbox", "rm", without)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// killWhileRunning starts nsnet with args and kills it with SIGKILL once its
// program runs in sandbox name.
func killWhileRunning(t *testing.T, w *testenv.World, name string, args []string) {
	t.Helper()
	cmd := nsnetCmd(context.Background(), t, w, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := eventually(func() error {
		if out, err := pids(name); err != nil || out == "" {
			return fmt.Errorf("no program runs in %s yet (%v)", name, err)
		}
		return nil
	})
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
}

// pids lists the processes in the named namespace (ip netns pids).
func pids(name string) (string, error) {
	out, err := testenv.RunIn("/proc/self/ns/net", "ip", "netns", "pids", name)
	return strings.TrimSpace(out), err
}

// noPids is nil when the named namespace exists and no process runs in it.
func noPids(name string) error {
	out, err := pids(name)
	if err != nil || out != "" {
		return fmt.Errorf("processes in %s: %q %v", name, out, err)
	}
	return nil
}

// TestExecSeesTheSandboxsEtc: `nsnet exec` and `nsnet run` see the files of
// /etc/netns/NAME in place of /etc's, as `ip netns exec` does, in a mount
// namespace of their own: the host's /etc is left as it was.
func TestExecSeesTheSandboxsEtc(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.71.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", s)
	dir := filepath.Join("/etc/netns", s)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	const marker = "192.0.2.77 only-in-the-sandbox\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	hostHosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if out := w.MustNsnet(t, "exec", s, "--", "cat", "/etc/hosts"); out != marker {
		t.Errorf("exec sees /etc/hosts %q, want the sandbox's %q", out, marker)
	}
	if out := w.MustNsnet(t, "run", "--rm", "--network", "n1", "--name", s+"x", "--", "cat", "/etc/hostname"); out == "" {
		t.Errorf("run without /etc/netns files sees no /etc/hostname")
	}
	if out := w.MustNsnet(t, "exec", s, "--", "ls", "/sys/class/net"); !strings.Contains(out, "eth0") {
		t.Errorf("exec's /sys/class/net lists %q, want the sandbox's eth0", out)
	}
	if after, _ := os.ReadFile("/etc/hosts"); string(after) != string(hostHosts) {
		t.Errorf("the host's /etc/hosts changed")
	}
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}
