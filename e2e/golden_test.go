package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestRulesetGolden and TestInspectGolden")

// TestRulesetGolden shows the exact ruleset for each kind of network and
// mapping (testdata/*.golden, as `nft list table inet nsnet` prints it; a
// network with Docker's driver options in options.golden), and
// that removing them restores the table to its earlier form, then to nothing.
func TestRulesetGolden(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.96.0.0/24", "--bridge", "br-g1", "g1")
	golden(t, w, "network")
	w.MustNsnet(t, "network", "create", "--internal", "--subnet", "10.97.0.0/24", "--bridge", "br-g2", "g2")
	golden(t, w, "internal")
	w.MustNsnet(t, "sandbox", "create", "--network", "g1", "--ip", "10.96.0.10", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", s)
	golden(t, w, "ports")
	w.MustNsnet(t, "port", "rm", s, "80", "53/udp")
	golden(t, w, "internal")
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "g2")
	golden(t, w, "network")
	w.MustNsnet(t, "network", "create", "--subnet", "10.98.0.0/24", "--bridge", "br-g3",
		"-o", optICC+"=false", "-o", optMasquerade+"=false", "g3") // no "within the network", no masquerade
	golden(t, w, "options")
	w.MustNsnet(t, "network", "rm", "g3")
	golden(t, w, "network")
	w.MustNsnet(t, "network", "rm", "g1")
	if tables := testenv.NftTables(t, w.Host); len(tables) != 0 {
		t.Errorf("tables left after the last network: %v", tables)
	}
	w.AssertClean(t)
}

func golden(t *testing.T, w *testenv.World, name string) {
	t.Helper()
	got, err := testenv.RunIn(w.Host, "nft", "list", "table", "inet", w.Table())
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, got)
	}
	// The table's name depends on the state root; the golden files call it nsnet.
	got = strings.Replace(got, "table inet "+w.Table()+" {", "table inet nsnet {", 1)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (run with -update to create it): %v", path, err)
	}
	if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("ruleset differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
