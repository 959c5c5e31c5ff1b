package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
	"github.com/nsnet/nsnet/types"
)

// network and sandbox mirror the JSON printed by `inspect`.
type network struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Bridge     string `json:"bridge"`
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway"`
	Subnet6    string `json:"subnet6"`
	Gateway6   string `json:"gateway6"`
	Masquerade bool   `json:"masquerade"`
	Internal   bool   `json:"internal"`
	MTU        int    `json:"mtu"`
	Sandboxes  []struct {
		Sandbox string `json:"sandbox"`
		Address string `json:"address"`
		MAC     string `json:"mac"`
	} `json:"sandboxes"`
}

type endpoint struct {
	Interface string `json:"interface"`
	Address   string `json:"address"`
	MAC       string `json:"mac"`
	Gateway   string `json:"gateway"`
	Address6  string `json:"address6"`
	Gateway6  string `json:"gateway6"`
	HostVeth  string `json:"host_veth"`
}

type sandbox struct {
	Name      string              `json:"name"`
	ID        string              `json:"id"`
	Container string              `json:"container"`
	Mode      string              `json:"mode"`
	NetNS     string              `json:"netns"`
	OwnsNetNS bool                `json:"owns_netns"`
	Networks  map[string]endpoint `json:"networks"`
	Runtime   *types.Runtime      `json:"runtime"`
}

func inspectNetwork(t *testing.T, w *testenv.World, name string) network {
	t.Helper()
	return inspectOne[network](t, w, "network", name)
}

func inspectSandbox(t *testing.T, w *testenv.World, name string) sandbox {
	t.Helper()
	return inspectOne[sandbox](t, w, "sandbox", name)
}

// inspectOne runs `nsnet KIND inspect NAME` and decodes its one object.
func inspectOne[T any](t *testing.T, w *testenv.World, kind, name string) T {
	t.Helper()
	var out []T
	decode(t, w.MustNsnet(t, kind, "inspect", name), &out)
	if len(out) != 1 {
		t.Fatalf("%s inspect %s: got %d objects", kind, name, len(out))
	}
	return out[0]
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, s)
	}
}

// mustLink finds a link by name in ns or fails.
func mustLink(t *testing.T, ns, name string) testenv.Link {
	t.Helper()
	l, ok := testenv.FindLink(testenv.Addrs(t, ns), name)
	if !ok {
		t.Fatalf("no link %s in %s", name, ns)
	}
	return l
}

// defaultGateway returns the gateway of ns's default route, or "".
func defaultGateway(t *testing.T, ns string) string {
	t.Helper()
	for _, r := range testenv.Routes(t, ns) {
		if r.Dst == "default" {
			return r.Gateway
		}
	}
	return ""
}

// expectFail asserts that an nsnet command fails with code and a message
// containing every want.
func expectFail(t *testing.T, w *testenv.World, code int, want []string, args ...string) {
	t.Helper()
	r := w.Nsnet(args...)
	if r.Code != code {
		t.Fatalf("nsnet %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.Code, code, r.Stderr)
	}
	for _, s := range want {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("nsnet %s: stderr %q lacks %q", strings.Join(args, " "), r.Stderr, s)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func mustRun(t *testing.T, ns, name string, args ...string) {
	t.Helper()
	if out, err := testenv.RunIn(ns, name, args...); err != nil {
		t.Fatalf("%s %v in %s: %v\n%s", name, args, ns, err, out)
	}
}

// gcPending runs `gc --dry-run`, which must exit 2 (work pending) and print
// each want; it returns the plan.
func gcPending(t *testing.T, w *testenv.World, want ...string) string {
	t.Helper()
	r := w.Nsnet("gc", "--dry-run")
	if r.Code != 2 {
		t.Errorf("gc --dry-run: exit %d, want 2 (work pending)\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, s := range want {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("gc --dry-run plan lacks %q:\n%s", s, r.Stdout)
		}
	}
	return r.Stdout
}

// gcClean runs `gc --dry-run`, which must exit 0 and have nothing to do.
func gcClean(t *testing.T, w *testenv.World, when string) {
	t.Helper()
	r := w.Nsnet("gc", "--dry-run")
	if r.Code != 0 || !strings.Contains(r.Stdout, "nothing to do") {
		t.Errorf("%s: gc --dry-run: exit %d, want 0 and nothing to do\nstdout:\n%s\nstderr:\n%s", when, r.Code, r.Stdout, r.Stderr)
	}
}

// eventually retries check for up to five seconds, for state the kernel
// settles a moment after a command returns (links coming up, neighbours).
func eventually(check func() error) error {
	err := check()
	for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); err = check() {
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// openStore opens the state store of the state root root, where nsnet keeps
// it (in the run directory, with the root's kept networks).
func openStore(root string, o store.Options) (*store.Store, error) {
	o.Keep = root
	return store.Open(engine.StateDir("", root), o)
}
