package netns_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestBornTellsFilesApart checks, on the running kernel, what ID.Born rests
// on. A namespace's file made anew by the kernel keeps the namespace's inode
// number and gets a new time: a namespace that reuses a destroyed one's number
// has a file of its own, so Same tells the two apart. A file held open (as a
// mount holds it) keeps its time, so Same keeps knowing the namespace.
func TestBornTellsFilesApart(t *testing.T) {
	testenv.NeedRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies in its own namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			return
		}
		// Nothing but this thread knows the namespace: each open makes its file.
		first := idOfSelf(t)
		time.Sleep(20 * time.Millisecond) // past the coarse clock's tick
		again := idOfSelf(t)
		if again.Ino != first.Ino || again.Born == first.Born || again.Same(first) {
			t.Errorf("the namespace's file made again: %+v, then %+v; want the same number, another time, not Same", first, again)
		}
		held, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			t.Error(err)
			return
		}
		defer held.Close()
		heldID, err := netns.IDOf(held)
		if err != nil {
			t.Error(err)
			return
		}
		time.Sleep(20 * time.Millisecond)
		if now := idOfSelf(t); now != heldID || !now.Same(heldID) {
			t.Errorf("while a file is held: %+v, then %+v; want the same ID", heldID, now)
		}
	}()
	<-done
}

// idOfSelf opens the calling thread's namespace, takes its ID and closes it
// (on any goroutine: it does not stop the test).
func idOfSelf(t *testing.T) netns.ID {
	t.Helper()
	id, err := netns.Identify("/proc/thread-self/ns/net")
	if err != nil {
		t.Error(err)
	}
	return id
}
