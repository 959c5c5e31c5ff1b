package store

// Boots. A state file in a run directory describes namespaces, veths,
// leases and ports, which all end at boot; the run directory is usually a
// tmpfs that ends with them, but not on every machine (a VM or a container
// whose /run is on its root disk keeps it). With Options.BootID, BootFile
// beside the state file names the boot it was made in, and a state file of
// an earlier boot is started anew (with the kept networks) before anything
// reads it. Its commits then skip bbolt's fsyncs: a command killed at any
// point leaves its writes in the page cache for the next command to read,
// and a state file cut short by a power failure is one of an earlier boot,
// never read again. A state file without a BootFile (made by an nsnet
// before this one) is taken as this boot's.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// BootFile, beside a state file in a run directory, holds the ID of the boot
// it was made in (Options.BootID).
const BootFile = "boot"

// bootIDPath is where the kernel gives this boot's ID.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// CurrentBoot is this boot's ID, as the kernel gives it; empty if it cannot
// be read (then Open checks no boot, and syncs every commit).
var CurrentBoot = sync.OnceValue(func() string {
	raw, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(raw))
})

// prepareBoot removes the state file at path if dir's BootFile names a boot
// other than boot, and records boot there if it names none. It reports
// whether it removed the state file. The check costs one small read unless
// the BootFile is missing or stale; then it is redone under an exclusive
// lock of dir, so that of commands opening the state file together after a
// reboot only the first removes it (the others find the BootFile current).
func prepareBoot(dir, path, boot string) (removed bool, err error) {
	bootFile := filepath.Join(dir, BootFile)
	if recorded, err := os.ReadFile(bootFile); err == nil && string(recorded) == boot {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create state directory %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	recorded, err := os.ReadFile(bootFile)
	switch {
	case err == nil && string(recorded) == boot:
		return false, nil
	case err == nil: // an earlier boot's state: its objects are gone
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("remove the state file %s of an earlier boot: %w", path, err)
		}
		removed = true
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", bootFile, err)
	}
	if err := writeDurably(bootFile, []byte(boot)); err != nil {
		return false, fmt.Errorf("record the boot of the state file in %s: %w", bootFile, err)
	}
	return removed, nil
}

// lockDir takes an exclusive lock of dir, waiting for it.
func lockDir(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}
