package e2e

import (
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/testenv"
)

// TestTwoRootsCoexist runs two state roots in one host namespace, each
// creating, publishing, collecting garbage and removing in turn: neither
// touches the other's links, table or ports, each one's gc finds nothing to
// do, their sandboxes stay isolated from each other, and the first root's
// table (with its 127.0.0.1 guard) outlives the second root's last network.
func TestTwoRootsCoexist(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	rootB := t.TempDir()
	b := func(args ...string) string { return w.MustNsnet(t, append([]string{"--root", rootB}, args...)...) }
	sa, sb := w.Name("a"), w.Name("b")
	tableB := owner.Table(rootB)

	w.MustNsnet(t, "network", "create", "--subnet", "10.83.0.0/24", "na")
	w.MustNsnet(t, "sandbox", "create", "--network", "na", "--ip", "10.83.0.10", "-p", "8080:80", sa)
	b("network", "create", "--subnet", "10.84.0.0/24", "nb")
	b("sandbox", "create", "--network", "nb", "--ip", "10.84.0.10", "-p", "8081:80", sb)
	defA := w.MustNsnet(t, "sandbox", "create", w.Name("defa"))
	defB := b("sandbox", "create", w.Name("defb"))
	testenv.StartTCPEcho(t, sa, "0.0.0.0:80")
	testenv.StartTCPEcho(t, sb, "0.0.0.0:80")
	if got := testenv.NftTables(t, w.Host); !contains(got, "inet "+w.Table()) || !contains(got, "inet "+tableB) {
		t.Fatalf("tables %v, want both roots' own", got)
	}
	bridgeA, bridgeB := inspectNetwork(t, w, "bridge").Bridge, defaultBridgeOf(t, w, rootB)
	if bridgeA == bridgeB {
		t.Errorf("both default networks use bridge %s", bridgeA)
	}

	for _, root := range []string{w.Root, rootB} {
		if out := w.MustNsnet(t, "--root", root, "gc"); !strings.Contains(out, "nothing to do") {
			t.Errorf("gc of %s acted on the other root's objects:\n%s", root, out)
		}
	}
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "root A's published port")
	reach(t, w.Inet, testenv.UplinkIP+":8081", true, "root B's published port")
	reach(t, sa, "10.84.0.10:80", false, "root A's sandbox to root B's")
	reach(t, sb, "10.83.0.10:80", false, "root B's sandbox to root A's")
	// Control: without the two roots' forward rules they do reach each other.
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "forward")
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", tableB, "forward")
	reach(t, sa, "10.84.0.10:80", true, "control: root A's sandbox to root B's without the rules")
	w.MustNsnet(t, "firewall", "reload")
	b("firewall", "reload")

	b("sandbox", "rm", sb, strings.TrimSpace(defB))
	b("network", "rm", "nb", "bridge")
	if got := testenv.NftTables(t, w.Host); !contains(got, "inet "+w.Table()) || contains(got, "inet "+tableB) {
		t.Errorf("after root B's last network: tables %v, want only root A's", got)
	}
	mustLink(t, w.Host, bridgeA)
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "root A's published port after root B left")
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("root A after root B left:\n%s", out)
	}
	w.MustNsnet(t, "sandbox", "rm", sa, strings.TrimSpace(defA))
	w.MustNsnet(t, "network", "rm", "na", "bridge")
	w.AssertClean(t)
}

func defaultBridgeOf(t *testing.T, w *testenv.World, root string) string {
	t.Helper()
	var out []network
	decode(t, w.MustNsnet(t, "--root", root, "network", "inspect", "bridge"), &out)
	return out[0].Bridge
}
