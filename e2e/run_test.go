package e2e

import (
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
