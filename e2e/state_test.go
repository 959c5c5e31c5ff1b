package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// TestStateAcrossReboot: the state file lives in /run/nsnet/state, the
// network definitions also in the state root. A reboot, made here by
// removing what a reboot removes (the resident process, the sandbox's
// namespace and marker, the bridge, nsnet's tables, /run/nsnet/state), leaves
// the network and no sandbox; gc makes the network's bridge and tables again,
// and a new sandbox on it reaches its gateway. A state root deleted and made
// anew starts empty even though its old state file is still in /run, and gc
// then removes what nsnet had made for it, by its owner marks.
func TestStateAcrossReboot(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s1, s2, s3 := w.Name("s1"), w.Name("s2"), w.Name("s3")
	w.MustNsnet(t, "network", "create", "--subnet", "10.94.0.0/24", "--bridge", "br-rb", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", s1)
	state := engine.StateDir("", w.Root)
	if _, err := os.Stat(filepath.Join(state, store.FileName)); err != nil {
		t.Errorf("no state file in %s: %v", state, err)
	}
	if _, err := os.Stat(filepath.Join(w.Root, store.FileName)); err == nil {
		t.Errorf("a state file in the state root %s", w.Root)
	}
	if got := listNames(t, w, "network"); got != "n1" {
		t.Errorf("networks %q, want n1", got)
	}

	simulateReboot(t, w, s1, false)
	afterReboot(t, w, s2, "after the reboot")

	// A reboot that leaves the run directory as it was (a /run that is not a
	// tmpfs): the state file names sandboxes of the boot before.
	simulateReboot(t, w, s2, true)
	afterReboot(t, w, s3, "after a reboot that kept /run")

	// The state root deleted and made anew.
	if err := os.RemoveAll(w.Root); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(w.Root, 0o700); err != nil {
		t.Fatal(err)
	}
	// Its resident, whose socket went with the old root, sees that and exits.
	if err := eventually(func() error {
		if exec.Command("pgrep", "-f", "__resident --root "+w.Root).Run() == nil {
			return os.ErrExist
		}
		return nil
	}); err != nil {
		t.Errorf("the resident of the deleted state root is still running")
	}
	if got := listNames(t, w, "network"); got != "" {
		t.Errorf("networks of a state root made anew: %q, want none", got)
	}
	out := w.MustNsnet(t, "gc")
	for _, want := range []string{"remove leftover bridge br-rb", "remove leftover namespace /run/netns/" + s3} {
		if !strings.Contains(out, want) {
			t.Errorf("gc of a state root made anew lacks %q:\n%s", want, out)
		}
	}
	w.AssertClean(t)
}

// simulateReboot removes what a reboot removes: the resident process, the
// sandbox's namespace, the bridge br-rb and nsnet's tables; and the
// sandbox's namespace name and marker and the state file with the rest of
// /run, unless keepRun. Then /run keeps the namespace name as the empty file
// it was mounted on, and the state file names another boot (store.BootFile).
func simulateReboot(t *testing.T, w *testenv.World, sandbox string, keepRun bool) {
	t.Helper()
	if out, err := exec.Command("pkill", "-KILL", "-f", "__resident --root "+w.Root).CombinedOutput(); err != nil {
		t.Fatalf("kill the resident: %v %s", err, out)
	}
	mustRun(t, w.Host, "ip", "link", "del", "br-rb")
	for _, family := range []string{"inet", "bridge"} {
		mustRun(t, w.Host, "nft", "delete", "table", family, w.Table())
	}
	state := engine.StateDir("", w.Root)
	if keepRun {
		mustRun(t, "/proc/self/ns/net", "umount", filepath.Join("/run/netns", sandbox))
		if err := os.WriteFile(filepath.Join(state, store.BootFile), []byte("the-boot-before"), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	mustRun(t, "/proc/self/ns/net", "ip", "netns", "del", sandbox)
	for _, p := range []string{filepath.Join("/run/nsnet/netns", sandbox), state} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

// afterReboot checks that the reboot left network n1 and no sandbox, that
// gc makes the bridge br-rb again, and that a sandbox made then reaches
// its gateway.
func afterReboot(t *testing.T, w *testenv.World, sandbox, when string) {
	t.Helper()
	if got := listNames(t, w, "sandbox"); got != "" {
		t.Errorf("sandboxes %s: %q, want none", when, got)
	}
	if got := listNames(t, w, "network"); got != "n1" {
		t.Errorf("networks %s: %q, want n1", when, got)
	}
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "br-rb") {
		t.Errorf("gc %s does not make the bridge br-rb again:\n%s", when, out)
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", sandbox)
	if err := testenv.Ping(sandbox, "10.94.0.1"); err != nil {
		t.Errorf("a sandbox made %s cannot reach its gateway: %v", when, err)
	}
	gcClean(t, w, when)
}

// listNames is the names `nsnet KIND ls` lists, space-separated.
func listNames(t *testing.T, w *testenv.World, kind string) string {
	t.Helper()
	var out []struct {
		Name string `json:"name"`
	}
	decode(t, w.MustNsnet(t, kind, "ls", "--format", "json"), &out)
	var names []string
	for _, o := range out {
		names = append(names, o.Name)
	}
	return strings.Join(names, " ")
}
