package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// openKept opens the store in run for the state root keep.
func openKept(t *testing.T, run, keep string, readOnly bool) *Store {
	t.Helper()
	s, err := Open(run, Options{LockTimeout: time.Second, Keep: keep, ReadOnly: readOnly})
	if err != nil {
		t.Fatalf("Open(%s, keep %s): %v", run, keep, err)
	}
	return s
}

// contents lists the store's networks and sandboxes by name.
func contents(t *testing.T, s *Store) (nets, sbs []string) {
	t.Helper()
	mustView(t, s, func(tx *Tx) error {
		ns, err := tx.Networks()
		for _, n := range ns {
			nets = append(nets, n.Name)
		}
		ss, err2 := tx.Sandboxes()
		for _, sb := range ss {
			sbs = append(sbs, sb.Name)
		}
		if err != nil {
			return err
		}
		return err2
	})
	return nets, sbs
}

// keptNames reads the names in the state root's KeptFile.
func keptNames(t *testing.T, keep string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(keep, KeptFile))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"name": "`); ok {
			names = append(names, strings.TrimSuffix(v, `",`))
		}
	}
	return strings.Join(names, " ")
}

// TestKeptNetworks: with the state file in a run directory, the networks,
// and only they, survive the loss of that file (a reboot); a state root made
// anew starts empty; a network change writes the KeptFile before it
// commits, and a KeptFile that the state file did not write last is written
// again by the next read-write open, never by a read-only one.
func TestKeptNetworks(t *testing.T) {
	keep, run := filepath.Join(t.TempDir(), "root"), filepath.Join(t.TempDir(), "run")
	s := openKept(t, run, keep, false)
	if got := keptNames(t, keep); got != "" {
		t.Errorf("a new state root keeps %q, want no networks", got)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutNetwork(testNetwork("front", "192.168.88.0/24", "192.168.88.1")); err != nil {
			return err
		}
		if err := tx.PutNetwork(testNetwork("back", "10.9.0.0/16", "10.9.0.1")); err != nil {
			return err
		}
		return tx.PutSandbox(testSandbox("web"))
	})
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteNetwork("back") })
	if got := keptNames(t, keep); got != "front" {
		t.Errorf("kept %q after creating front and back and deleting back, want front", got)
	}
	s.Close()

	// A reboot empties the run directory.
	mustDo(t, os.RemoveAll(run))
	s = openKept(t, run, keep, true)
	if nets, sbs := contents(t, s); !slices.Equal(nets, []string{"front"}) || len(sbs) != 0 {
		t.Errorf("after a reboot: networks %v, sandboxes %v; want front and none", nets, sbs)
	}
	s.Close()

	// A KeptFile the state file did not write last (a command killed after
	// writing it, before its commit).
	mustDo(t, writeDurably(filepath.Join(keep, KeptFile), []byte(`{"networks": []}`)))
	openKept(t, run, keep, true).Close()
	if got := keptNames(t, keep); got != "" {
		t.Errorf("a read-only open rewrote the KeptFile: %q", got)
	}
	openKept(t, run, keep, false).Close()
	if got := keptNames(t, keep); got != "front" {
		t.Errorf("kept %q after a read-write open, want front again", got)
	}

	// The state root deleted and made anew.
	mustDo(t, os.RemoveAll(keep))
	s = openKept(t, run, keep, true)
	if nets, sbs := contents(t, s); len(nets)+len(sbs) != 0 {
		t.Errorf("a state root made anew has networks %v and sandboxes %v", nets, sbs)
	}
	s.Close()
}

// TestKeptMovesOlderStateFile: a state root with a state file of its own
// (as older nsnet versions kept it) has it moved to the run directory on
// the first open, with everything in it, and the networks kept.
func TestKeptMovesOlderStateFile(t *testing.T) {
	keep, run := t.TempDir(), filepath.Join(t.TempDir(), "run")
	old, err := Open(keep, Options{LockTimeout: time.Second})
	mustDo(t, err)
	mustUpdate(t, old, func(tx *Tx) error {
		if err := tx.PutNetwork(testNetwork("front", "192.168.88.0/24", "192.168.88.1")); err != nil {
			return err
		}
		return tx.PutSandbox(testSandbox("web"))
	})
	old.Close()
	s := openKept(t, run, keep, true)
	defer s.Close()
	if nets, sbs := contents(t, s); !slices.Equal(nets, []string{"front"}) || !slices.Equal(sbs, []string{"web"}) {
		t.Errorf("moved state file: networks %v, sandboxes %v; want front and web", nets, sbs)
	}
	if got := keptNames(t, keep); got != "front" {
		t.Errorf("kept %q, want front", got)
	}
	if _, err := os.Stat(filepath.Join(keep, FileName)); err == nil {
		t.Errorf("the older state file is still in the state root")
	}
	if _, err := os.Stat(filepath.Join(keep, FileName+".moved")); err != nil {
		t.Errorf("no copy of the older state file left behind: %v", err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeptFirstOpensTogether: commands that open a new state root at the
// same time each add a network, and none of them takes the state file
// another is making for one of a root made anew: every network is there,
// and kept.
func TestKeptFirstOpensTogether(t *testing.T) {
	keep, run := filepath.Join(t.TempDir(), "root"), filepath.Join(t.TempDir(), "run")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(run, Options{LockTimeout: 10 * time.Second, Keep: keep})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Update(func(tx *Tx) error {
				return tx.PutNetwork(testNetwork(fmt.Sprintf("n%d", i), fmt.Sprintf("10.%d.0.0/16", i), fmt.Sprintf("10.%d.0.1", i)))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("command %d: %v", i, err)
		}
	}
	s := openKept(t, run, keep, true)
	defer s.Close()
	if nets, _ := contents(t, s); len(nets) != n {
		t.Errorf("networks %v, want %d", nets, n)
	}
	if got := strings.Fields(keptNames(t, keep)); len(got) != n {
		t.Errorf("kept %v, want %d networks", got, n)
	}
}
