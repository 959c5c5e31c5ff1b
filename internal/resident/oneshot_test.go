package resident

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// One request each, on a session of its own, as the tests send them.

func Hold(root, sandbox string, ns Namespace, ports []Port) error {
	s := NewSession(root)
	defer s.Close()
	return s.Hold(sandbox, ns, ports)
}

func Release(root, sandbox string, keys []string) error {
	s := NewSession(root)
	defer s.Close()
	return s.Release(sandbox, keys)
}

func Retarget(root, sandbox string, keys []string, targets []netip.AddrPort) error {
	s := NewSession(root)
	defer s.Close()
	return s.Retarget(sandbox, keys, targets)
}

func Drop(root, sandbox string) error {
	s := NewSession(root)
	defer s.Close()
	return s.Drop(sandbox, Names{})
}

func Serve(root string, n Names) error {
	s := NewSession(root)
	defer s.Close()
	return s.Serve(n)
}

func Probe(root string) (Status, error) {
	s := NewSession(root)
	defer s.Close()
	return s.Probe()
}

// TestSessionReusesItsConnection checks that a session sends its requests
// over one connection, checked once; that a resident which exited meanwhile
// is reported as not running (the connection is dialled anew, not trusted);
// and that once another resident runs, the session talks to that one.
func TestSessionReusesItsConnection(t *testing.T) {
	w := newWorld(t)
	first := w.start(t)
	s := NewSession(w.root)
	defer s.Close()
	st, err := s.Probe()
	if err != nil || st.Pid != first {
		t.Fatalf("Probe: %+v, %v; want pid %d", st, err, first)
	}
	conn := s.h
	if err := s.Drop("nobody", Names{}); err != nil {
		t.Fatal(err)
	}
	if s.h != conn {
		t.Errorf("a second request dialled again")
	}
	if err := Stop(w.root); err != nil {
		t.Fatal(err)
	}
	if err := s.Drop("nobody", Names{}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after the resident exited: %v, want ErrNotRunning", err)
	}
	second, err := Start(os.Args[0], w.root)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.Probe(); err != nil || st.Pid != second || second == first {
		t.Errorf("after a new resident started: %+v, %v; want pid %d (not %d)", st, err, second, first)
	}
	if err := unix.Kill(second, 0); err != nil {
		t.Errorf("the new resident: %v", err)
	}
}
