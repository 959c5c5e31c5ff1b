package engine

import (
	"errors"
	"path/filepath"
	"testing"
)

// openTemp opens an engine on a fresh state root and run directory.
func openTemp(t *testing.T, o Options) *Engine {
	t.Helper()
	dir := t.TempDir()
	o.Root, o.RunDir = filepath.Join(dir, "root"), filepath.Join(dir, "run")
	if o.ReadOnly { // a read-only engine needs a state file to read
		e, err := Open(Options{Root: o.Root, RunDir: o.RunDir})
		if err != nil {
			t.Fatal(err)
		}
		e.Close()
	}
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestReadOnlyRefusesChanges: every mutating call of a read-only engine
// returns ErrReadOnly instead of panicking, and reads work.
func TestReadOnlyRefusesChanges(t *testing.T) {
	e := openTemp(t, Options{ReadOnly: true})
	calls := map[string]func() error{
		"CreateNetwork":  func() error { _, err := e.CreateNetwork(NetworkSpec{Name: "n1"}); return err },
		"RemoveNetwork":  func() error { return e.RemoveNetwork("n1") },
		"CreateSandbox":  func() error { _, err := e.CreateSandbox(SandboxSpec{Name: "s"}); return err },
		"RemoveSandbox":  func() error { _, err := e.RemoveSandbox("s", false); return err },
		"AddPorts":       func() error { _, err := e.AddPorts("s", []string{"80"}); return err },
		"RemovePorts":    func() error { _, err := e.RemovePorts("s", []string{"80"}); return err },
		"GC":             func() error { _, err := e.GC(true); return err },
		"ReloadFirewall": e.ReloadFirewall,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only engine: %v, want ErrReadOnly", name, err)
		}
	}
	if _, err := e.Networks(); err != nil {
		t.Errorf("Networks on a read-only engine: %v", err)
	}
}

// TestFaultPointOnlyFromOptions: the engine takes its fault point from
// Options alone, never from the environment a program inherited, and
// refuses one that does not exist.
func TestFaultPointOnlyFromOptions(t *testing.T) {
	t.Setenv("NSNET_FAULT", "before-commit")
	if e := openTemp(t, Options{}); e.fault != "" {
		t.Errorf("fault point %q taken from the environment", e.fault)
	}
	if e := openTemp(t, Options{FaultPoint: "after-commit"}); e.fault != "after-commit" {
		t.Errorf("fault point %q, want after-commit from Options", e.fault)
	}
	dir := t.TempDir()
	if _, err := Open(Options{Root: dir + "/r", RunDir: dir + "/run", FaultPoint: "nowhere"}); err == nil {
		t.Errorf("an unknown fault point was accepted")
	}
}
