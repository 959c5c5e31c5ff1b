package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nsnet/nsnet/internal/store"
)

// checkTrusted refuses to use state that someone other than root could have
// changed: the state root, the directories nsnet keeps in it and in the run
// directory, the state file and the kept networks must be owned by root (or by the user nsnet
// runs as) and writable by nobody else. Paths that do not exist yet are
// fine: nsnet makes them itself, mode 0700.
func checkTrusted(o Options) error {
	state := StateDir(o.RunDir, o.Root)
	paths := []string{o.Root, filepath.Join(o.Root, "intents"), filepath.Join(o.Root, store.KeptFile),
		o.RunDir, filepath.Join(o.RunDir, "netns"), filepath.Dir(state), state, filepath.Join(state, store.FileName), filepath.Join(state, store.BootFile)}
	for _, p := range paths {
		if err := trusted(p); err != nil {
			return err
		}
	}
	return nil
}

func trusted(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check state path %s: %w", path, err)
	}
	why := "an unprivileged user could change nsnet's state and make it act on their behalf"
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("refusing state path %s: it is owned by uid %d, not root, and %s; fix it with: chown root:root %s (or use another --root)", path, sys.Uid, why, path)
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("refusing state path %s: its group or others may write it (mode %04o), and %s; fix it with: chmod go-w %s", path, perm, why, path)
	}
	return nil
}
