package e2e

import (
	"flag"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestRulesetGolden and TestInspectGolden")

// TestRulesetGolden shows the exact ruleset for each kind of network and
// mapping (testdata/*.golden, as `nft list table inet nsnet` prints it; a
// network with Docker's driver options in options.golden), the
// anti-spoofing table without and with a sandbox (bridge*.golden), and
// that removing them restores the table to its earlier form, then to nothing.
func TestRulesetGolden(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.96.0.0/24", "--bridge", "br-g1", "g1")
	golden(t, w, "network")
	w.MustNsnet(t, "network", "create", "--internal", "--subnet", "10.97.0.0/24", "--bridge", "br-g2", "g2")
	golden(t, w, "internal")
	goldenBridge(t, w, "bridge", nil)
	w.MustNsnet(t, "sandbox", "create", "--network", "g1", "--ip", "10.96.0.10", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", s)
	golden(t, w, "ports")
	goldenBridge(t, w, "bridge-sandbox", []string{inspectSandbox(t, w, s).Networks["g1"].HostVeth})
	w.MustNsnet(t, "port", "rm", s, "80", "53/udp")
	golden(t, w, "internal")
	veth := inspectSandbox(t, w, s).Networks["g1"].HostVeth
	w.MustNsnet(t, "sandbox", "rm", s)
	goldenBridge(t, w, "bridge-released", []string{veth}) // its port still guarded, blocked, for ten minutes
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
	compareGolden(t, name, got)
}

var (
	expiringSoon = regexp.MustCompile(` expires [0-9]+(ms|s)\b`) // within a minute
	blockedFor   = regexp.MustCompile(`timeout 10m expires [0-9a-z]+`)
)

// goldenBridge compares the anti-spoofing table, `nft list table bridge
// nsnet`, with testdata/name.golden; the sandboxes' host veths, whose names
// come from random IDs, are VETH1, VETH2... there.
func goldenBridge(t *testing.T, w *testenv.World, name string, veths []string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var err error
		if got, err = testenv.RunIn(w.Host, "nft", "list", "table", "bridge", w.Table()); err != nil {
			t.Fatalf("nft list table: %v\n%s", err, got)
		}
		// The elements of a port that went expire within a second; a port
		// released up stays in the guarded set for ten minutes.
		if !expiringSoon.MatchString(got) || time.Now().After(deadline) {
			break
		}
	}
	got = blockedFor.ReplaceAllString(got, "timeout 10m expires ...")
	got = strings.Replace(got, "table bridge "+w.Table()+" {", "table bridge nsnet {", 1)
	for i, v := range veths {
		got = strings.ReplaceAll(got, `"`+v+`"`, fmt.Sprintf(`"VETH%d"`, i+1))
	}
	compareGolden(t, name, got)
}
