package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// openBoot opens the store in run for the state root keep in the boot boot.
func openBoot(t *testing.T, run, keep, boot string, readOnly bool) *Store {
	t.Helper()
	s, err := Open(run, Options{LockTimeout: time.Second, Keep: keep, BootID: boot, ReadOnly: readOnly})
	if err != nil {
		t.Fatalf("Open(%s, keep %s, boot %s): %v", run, keep, boot, err)
	}
	return s
}

// TestStateFileOfAnEarlierBoot: a run directory that a reboot did not empty
// (not a tmpfs) still has the state file of the boot before; it is started
// anew with the kept networks, read-only or not, and only then. A state file
// without a BootFile (an older nsnet's) is taken as this boot's.
func TestStateFileOfAnEarlierBoot(t *testing.T) {
	keep, run := filepath.Join(t.TempDir(), "root"), filepath.Join(t.TempDir(), "run")
	s := openBoot(t, run, keep, "boot-1", false)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutNetwork(testNetwork("front", "192.168.88.0/24", "192.168.88.1")); err != nil {
			return err
		}
		return tx.PutSandbox(testSandbox("web"))
	})
	s.Close()
	if raw, _ := os.ReadFile(filepath.Join(run, BootFile)); string(raw) != "boot-1" {
		t.Errorf("BootFile %q, want boot-1", raw)
	}

	s = openBoot(t, run, keep, "boot-1", true)
	if nets, sbs := contents(t, s); !slices.Equal(nets, []string{"front"}) || !slices.Equal(sbs, []string{"web"}) {
		t.Errorf("the same boot: networks %v, sandboxes %v; want front and web", nets, sbs)
	}
	s.Close()

	// The control: a store opened without a boot ID reads what is there.
	s = openKept(t, run, keep, true)
	if _, sbs := contents(t, s); !slices.Equal(sbs, []string{"web"}) {
		t.Errorf("without a boot ID: sandboxes %v, want web", sbs)
	}
	s.Close()

	// The reboot, the run directory left as it was.
	s = openBoot(t, run, keep, "boot-2", true)
	if nets, sbs := contents(t, s); !slices.Equal(nets, []string{"front"}) || len(sbs) != 0 {
		t.Errorf("after a reboot: networks %v, sandboxes %v; want front and none", nets, sbs)
	}
	s.Close()
	if raw, _ := os.ReadFile(filepath.Join(run, BootFile)); string(raw) != "boot-2" {
		t.Errorf("BootFile %q after the reboot, want boot-2", raw)
	}

	// A state file from before boots were recorded is this boot's.
	s = openBoot(t, run, keep, "boot-2", false)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutSandbox(testSandbox("db")) })
	s.Close()
	mustDo(t, os.Remove(filepath.Join(run, BootFile)))
	s = openBoot(t, run, keep, "boot-3", false)
	if _, sbs := contents(t, s); !slices.Equal(sbs, []string{"db"}) {
		t.Errorf("a state file without a BootFile: sandboxes %v, want db", sbs)
	}
	s.Close()
	if raw, _ := os.ReadFile(filepath.Join(run, BootFile)); string(raw) != "boot-3" {
		t.Errorf("BootFile %q, want boot-3 recorded", raw)
	}
}

// TestStateFileSyncs: commits are synced unless the state file lasts one
// boot only.
func TestStateFileSyncs(t *testing.T) {
	for _, tc := range []struct {
		keep, boot string
		noSync     bool
	}{{"", "", false}, {"root", "", false}, {"", "boot-1", false}, {"root", "boot-1", true}} {
		dir := t.TempDir()
		keep := tc.keep
		if keep != "" {
			keep = filepath.Join(dir, keep)
		}
		s, err := Open(filepath.Join(dir, "run"), Options{LockTimeout: time.Second, Keep: keep, BootID: tc.boot})
		if err != nil {
			t.Fatal(err)
		}
		if s.db.NoSync != tc.noSync || s.db.NoGrowSync != tc.noSync {
			t.Errorf("keep %q, boot %q: NoSync %v, NoGrowSync %v; want %v", tc.keep, tc.boot, s.db.NoSync, s.db.NoGrowSync, tc.noSync)
		}
		s.Close()
	}
}

// TestEarlierBootOpensTogether: commands opening a state file of an earlier
// boot together start it anew once: none loses what another wrote.
func TestEarlierBootOpensTogether(t *testing.T) {
	keep, run := filepath.Join(t.TempDir(), "root"), filepath.Join(t.TempDir(), "run")
	s := openBoot(t, run, keep, "boot-1", false)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutSandbox(testSandbox("old")) })
	s.Close()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(run, Options{LockTimeout: 10 * time.Second, Keep: keep, BootID: "boot-2"})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Update(func(tx *Tx) error { return tx.PutSandbox(testSandbox(fmt.Sprintf("s%d", i))) })
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("command %d: %v", i, err)
		}
	}
	s = openBoot(t, run, keep, "boot-2", true)
	defer s.Close()
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("s%d", i))
	}
	if _, sbs := contents(t, s); !slices.Equal(sbs, want) {
		t.Errorf("sandboxes %v, want %v", sbs, want)
	}
}
