package engine

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/netns"
)

// unmountOwn removes the namespace name at path only if it still names the
// namespace want (zero: not known, any). A name that was removed and made
// again by someone else names a stranger: it is left alone, and the caller
// is told so through the returned note. A path that is gone is fine; an empty
// mount point that was never mounted (a command died before binding it) is
// removed.
func (e *Engine) unmountOwn(path string, want netns.ID) (note string, err error) {
	id, err := e.k.ns.Identify(path)
	switch {
	case err == nil && !want.IsZero() && !id.Same(want):
		return fmt.Sprintf("left %s alone: it is another namespace than the one nsnet made or adopted (%s)", path, strangerWhy(id, want)), nil
	case err == nil:
		return "", e.k.ns.Remove(path)
	}
	st, serr := os.Lstat(path)
	switch {
	case errors.Is(serr, os.ErrNotExist):
		return "", nil
	case serr == nil && st.Mode().IsRegular() && st.Size() == 0:
		return "", e.k.ns.Remove(path) // a mount point never mounted
	}
	return fmt.Sprintf("left %s alone: it is not a network namespace", path), nil
}

// strangerWhy tells how the namespace id differs from the namespace want.
func strangerWhy(id, want netns.ID) string {
	if id.Dev == want.Dev && id.Ino == want.Ino {
		return fmt.Sprintf("its number %s is the same, given again by the kernel to a namespace made at %s, not %s",
			id, time.Unix(0, id.Born).UTC().Format(time.StampNano), time.Unix(0, want.Born).UTC().Format(time.StampNano))
	}
	return fmt.Sprintf("now %s, then %s", id, want)
}

// removeMarkedMount removes the mount a marker of this root describes (at the
// path its name gives, never one read from the file) and then the marker.
func (e *Engine) removeMarkedMount(m journal.Marker) error {
	note, err := e.unmountOwn(e.k.ns.Path(m.Name), m.NetNS)
	if err != nil {
		return err
	}
	if note != "" {
		e.opts.Warn(note)
	}
	return e.markers.Delete(m.Name)
}
