package engine

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/internal/store"
)

// processStart returns when pid started, in clock ticks since boot (field 22
// of /proc/PID/stat), which tells a process from a later one with its pid.
func processStart(pid int) (uint64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces: count after its end.
	i := strings.LastIndexByte(string(raw), ')')
	fields := strings.Fields(string(raw[i+1:]))
	if i < 0 || len(fields) < 20 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// thisRun identifies the calling process, for a sandbox that goes with it.
func thisRun(sandboxID string) (store.Run, error) {
	start, err := processStart(os.Getpid())
	return store.Run{SandboxID: sandboxID, PID: os.Getpid(), Start: start}, err
}

// runAlive reports whether the process of r still runs.
func runAlive(r store.Run) bool {
	start, err := processStart(r.PID)
	return err == nil && start == r.Start
}

// settleRuns removes the sandboxes of `run --rm` commands that were killed
// before they could remove them, once their program (and anything else in
// the sandbox's namespace) has exited. It returns what it did (or, with
// dryRun, would do), the sandboxes it removes (or tried to: their failures
// are in err), for gc to do nothing else to; a sandbox still in use is left
// for a later command.
func (e *Engine) settleRuns(dryRun bool) (actions, removing []string, err error) {
	var due []string
	e.view(func(tx *store.Tx) error {
		runs, err := tx.Runs()
		for name, r := range runs {
			if !runAlive(r) {
				due = append(due, name)
			}
		}
		return err
	})
	var errs []error
	for _, name := range due {
		if !e.runFinished(name) {
			continue
		}
		removing = append(removing, name)
		what := fmt.Sprintf("remove sandbox %s: the nsnet run --rm that made it is gone, and so is its program", name)
		if dryRun {
			actions = append(actions, "would "+what)
			continue
		}
		err := e.apply(func(tx *store.Tx, u *undo) error {
			sb, err := tx.Sandbox(name)
			if err != nil {
				return tx.DeleteRun(name) // removed meanwhile
			}
			return e.removeSandbox(tx, u, sb, false, nil, new([]string))
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			continue
		}
		actions = append(actions, what)
	}
	return actions, removing, errors.Join(errs...)
}

// runFinished reports whether the sandbox of a dead run is in use no more:
// no process is left in its namespace, and no sandbox shares it. (One that
// is gone meanwhile is finished too.)
func (e *Engine) runFinished(name string) bool {
	ok := true
	e.view(func(tx *store.Tx) error {
		sb, err := tx.Sandbox(name)
		if err != nil {
			return nil
		}
		sharers, err := sharersOf(tx, name)
		ok = err == nil && len(sharers) == 0 && e.checkNoProcesses(sb) == nil
		return nil
	})
	return ok
}
