package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

func etcFile(t *testing.T, sandbox, file string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/etc/netns", sandbox, file))
	if err != nil {
		t.Fatalf("read %s of %s: %v", file, sandbox, err)
	}
	return string(raw)
}

// TestSandboxEtcFiles checks the resolv.conf and hosts nsnet writes for a
// sandbox in /etc/netns/NAME, as Docker writes a container's: the resolver
// of its first user network (or its --dns servers), its own name and short
// ID on each address; that programs see them (exec), that they follow
// connect and disconnect, go with the sandbox, come back with gc, and that a
// file nsnet did not write is left alone.
func TestSandboxEtcFiles(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s, d, mine := w.Name("s"), w.Name("d"), w.Name("mine")
	w.MustNsnet(t, "network", "create", "--subnet", "10.69.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.69.1.0/24", "n2")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.69.0.5", "--alias", "web", s)
	id := inspectSandboxID(t, w, s)

	resolv, hosts := etcFile(t, s, "resolv.conf"), etcFile(t, s, "hosts")
	for _, want := range []string{"nameserver 10.69.0.1\n", "ndots:0"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.69.0.5\t" + s + " " + id[:12] + "\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	if got := w.MustNsnet(t, "exec", s, "--", "cat", "/etc/resolv.conf"); got != resolv {
		t.Errorf("exec sees resolv.conf %q, want %q", got, resolv)
	}

	w.MustNsnet(t, "sandbox", "create", "--dns", "192.0.2.53", d) // on the default network: no resolver
	if got := etcFile(t, d, "resolv.conf"); !strings.Contains(got, "nameserver 192.0.2.53\n") || strings.Contains(got, "ndots:0") {
		t.Errorf("resolv.conf of a default-network sandbox with --dns:\n%s", got)
	}

	w.MustNsnet(t, "network", "connect", "--ip", "10.69.1.5", "n2", s)
	if got := etcFile(t, s, "hosts"); !strings.Contains(got, "10.69.1.5\t"+s) {
		t.Errorf("after connect, hosts lacks the new address:\n%s", got)
	}
	w.MustNsnet(t, "network", "disconnect", "n1", s)
	if got := etcFile(t, s, "resolv.conf"); !strings.Contains(got, "nameserver 10.69.1.1\n") {
		t.Errorf("after disconnecting n1, resolv.conf should name n2's resolver:\n%s", got)
	}

	os.Remove(filepath.Join("/etc/netns", s, "hosts"))
	gcPending(t, w, "rewrite resolv.conf and hosts of sandbox "+s)
	w.MustNsnet(t, "gc")
	if got := etcFile(t, s, "hosts"); !strings.Contains(got, "10.69.1.5\t"+s) {
		t.Errorf("gc did not write hosts again:\n%s", got)
	}

	// A file nsnet did not write is the user's: left as it is.
	dir := filepath.Join("/etc/netns", mine)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 192.0.2.99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := w.Nsnet("sandbox", "create", "--network", "n2", mine)
	if r.Code != 0 || !strings.Contains(r.Stderr, "is not nsnet's") {
		t.Errorf("create over a user's resolv.conf: exit %d, stderr %q", r.Code, r.Stderr)
	}
	gcClean(t, w, "with a user's resolv.conf") // gc leaves it too (it used to plan a rewrite it never made)
	w.MustNsnet(t, "sandbox", "rm", s, d, mine)
	if got := etcFile(t, mine, "resolv.conf"); got != "nameserver 192.0.2.99\n" {
		t.Errorf("the user's resolv.conf became %q", got)
	}
	os.RemoveAll(dir)
	for _, sb := range []string{s, d} {
		if _, err := os.Stat(filepath.Join("/etc/netns", sb)); !os.IsNotExist(err) {
			t.Errorf("/etc/netns/%s is left after sandbox rm (%v)", sb, err)
		}
	}
	w.MustNsnet(t, "network", "rm", "n1", "n2", "bridge")
	w.AssertClean(t)
}

func inspectSandboxID(t *testing.T, w *testenv.World, name string) string {
	t.Helper()
	var out []struct {
		ID string `json:"id"`
	}
	decode(t, w.MustNsnet(t, "sandbox", "inspect", name), &out)
	return out[0].ID
}
