package resident

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// asResident makes the test binary run as the resident when Start starts it.
const asResident = "NSNET_RESIDENT_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asResident) == "1" {
		os.Exit(residentMain(os.Args[2:]))
	}
	os.Setenv(asResident, "1") // inherited by the residents that the tests start
	os.Exit(m.Run())
}

func residentMain(args []string) int {
	var a Args
	fs := flag.NewFlagSet(Command, flag.ContinueOnError)
	fs.StringVar(&a.Root, "root", "", "")
	if fs.Parse(args) != nil || Main(a) != nil {
		return 1
	}
	return 0
}

// world is a state root with files standing in for sandboxes' namespaces.
type world struct{ dir, root string }

func newWorld(t *testing.T) world {
	t.Helper()
	dir := t.TempDir()
	w := world{dir: dir, root: filepath.Join(dir, "root")}
	if err := os.Mkdir(w.root, 0o700); err != nil {
		t.Fatal(err)
	}
	return w
}

// netns makes a file standing in for a sandbox's namespace and returns it
// as Hold takes it.
func (w world) netns(t *testing.T, name string) Namespace {
	t.Helper()
	path := filepath.Join(w.dir, name)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return identify(t, path)
}

func identify(t *testing.T, path string) Namespace {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return Namespace{Path: path, Dev: st.Dev, Ino: st.Ino}
}

// start starts the resident and stops it when the test ends.
func (w world) start(t *testing.T) int {
	t.Helper()
	pid, err := Start(os.Args[0], w.root)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if pid <= 0 {
		t.Fatalf("Start returned pid %d", pid)
	}
	t.Cleanup(func() { Stop(w.root) })
	return pid
}

// sockets returns n UDP sockets that are bound nowhere (so they touch no
// network), for the resident to hold, and their keys.
func sockets(t *testing.T, n int) []Port {
	t.Helper()
	var out []Port
	for i := range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "udp")
		t.Cleanup(func() { f.Close() })
		out = append(out, Port{Key: fmt.Sprintf("k%04d", i), Sock: f, Target: netip.MustParseAddrPort("192.0.2.1:53")})
	}
	return out
}

// inode is the inode of f's open file, as /proc/PID/fd names it.
func inode(t *testing.T, f *os.File) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("socket:[%d]", st.Ino)
}

// openIn reports which of the files named (as inode gives them, or paths)
// process pid has open.
func openIn(t *testing.T, pid int, names ...string) map[string]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		link, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if slices.Contains(names, link) {
			out[link] = true
		}
	}
	return out
}

// gone waits until pid no longer exists, not even as a zombie (it was reaped).
func gone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Fatalf("process %d is still there: %s", pid, raw)
		}
	}
}

// heldKeys returns the keys the resident holds for sandbox, by Probe.
func heldKeys(t *testing.T, root, sandbox string) []string {
	t.Helper()
	st, err := Probe(root)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	for _, h := range st.Sandboxes {
		if h.Sandbox == sandbox {
			return h.Keys
		}
	}
	return nil
}

func TestHoldReleaseStop(t *testing.T) {
	w := newWorld(t)
	pid := w.start(t)
	if got, ok := Alive(w.root); !ok || got != pid {
		t.Fatalf("Alive = %d, %t; want %d, true", got, ok, pid)
	}
	ns := w.netns(t, "ns-s")
	ports := sockets(t, 3*maxRights+7) // several requests
	first, second, last := inode(t, ports[0].Sock), inode(t, ports[1].Sock), inode(t, ports[len(ports)-1].Sock)
	if err := Hold(w.root, "s", ns, ports); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	other := sockets(t, 1)
	if err := Hold(w.root, "t", w.netns(t, "ns-t"), other); err != nil {
		t.Fatalf("Hold for a second sandbox: %v", err)
	}
	for _, p := range append(ports, other...) {
		p.Sock.Close()
	}
	if open := openIn(t, pid, first, last, ns.Path); !open[first] || !open[last] || !open[ns.Path] {
		t.Fatalf("the resident does not hold the sockets and the namespace: %v", open)
	}
	keys := keys(ports)
	if err := Release(w.root, "s", keys[1:]); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if open := openIn(t, pid, first, second); open[second] || !open[first] {
		t.Errorf("after Release: second held %t (want false), first held %t (want true)", open[second], open[first])
	}
	st, err := Probe(w.root)
	want := []Held{
		{Sandbox: "s", NetNS: ns, Keys: keys[:1], Targets: []string{"192.0.2.1:53"}},
		{Sandbox: "t", NetNS: identify(t, filepath.Join(w.dir, "ns-t")), Keys: []string{"k0000"}, Targets: []string{"192.0.2.1:53"}},
	}
	if err != nil || st.Pid != pid || !equalHeld(st.Sandboxes, want) {
		t.Errorf("Probe = %+v, %v; want pid %d and %+v", st, err, pid, want)
	}
	if err := Release(w.root, "s", keys[:1]); err != nil {
		t.Fatalf("Release of the last port: %v", err)
	}
	if open := openIn(t, pid, ns.Path); open[ns.Path] {
		t.Error("the resident keeps the namespace of a sandbox whose last port it let go")
	}
	if err := Drop(w.root, "t"); err != nil || len(heldKeys(t, w.root, "t")) != 0 {
		t.Errorf("Drop: %v; still held: %v", err, heldKeys(t, w.root, "t"))
	}
	if err := Drop(w.root, "nobody"); err != nil {
		t.Errorf("Drop of a sandbox it holds nothing of: %v", err)
	}
	if err := Stop(w.root); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Lstat(SocketPath(w.root)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after Stop: %v", err)
	}
	gone(t, pid) // reaped by this process, its parent: its sockets are closed
	if err := Stop(w.root); err != nil {
		t.Errorf("Stop of a resident that is gone: %v", err)
	}
	if err := Release(w.root, "s", keys); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Release with no resident: %v, want ErrNotRunning", err)
	}
}

func equalHeld(a, b []Held) bool {
	return slices.EqualFunc(a, b, func(x, y Held) bool {
		return x.Sandbox == y.Sandbox && x.NetNS == y.NetNS && slices.Equal(x.Keys, y.Keys) && slices.Equal(x.Targets, y.Targets)
	})
}

// TestHoldRefusesWhatItCannotProxy checks that a hold request with a
// descriptor that is no TCP listener or UDP socket, with a bad target, or
// with a namespace that is not the one named, is refused whole: the
// resident keeps none of its descriptors.
func TestHoldRefusesWhatItCannotProxy(t *testing.T) {
	w := newWorld(t)
	pid := w.start(t)
	ns := w.netns(t, "ns")
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer wr.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tcp := os.NewFile(uintptr(fd), "tcp")
	defer tcp.Close()
	for _, c := range []struct {
		what, want string
		bad        func(p *Port, ns *Namespace)
	}{
		{"a pipe", "descriptor 2 is not a socket", func(p *Port, _ *Namespace) { p.Sock = r }},
		{"a TCP socket that does not listen", "descriptor 2 is neither a listening TCP socket nor a UDP socket", func(p *Port, _ *Namespace) { p.Sock = tcp }},
		{"an IPv6 target", "bad target", func(p *Port, _ *Namespace) { p.Target = netip.MustParseAddrPort("[2001:db8::1]:53") }},
		{"another namespace's ID", "it was replaced", func(_ *Port, ns *Namespace) { ns.Ino++ }},
		{"a missing namespace", "no such file", func(_ *Port, ns *Namespace) { ns.Path += ".missing" }},
	} {
		ports := sockets(t, 3)
		given := ns
		c.bad(&ports[2], &given)
		err := Hold(w.root, "s", given, ports)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Hold with %s: %v, want an error saying %q", c.what, err, c.want)
		}
		if open := openIn(t, pid, inode(t, ports[0].Sock), ns.Path); len(open) != 0 {
			t.Errorf("after Hold with %s failed, the resident still has %v", c.what, open)
		}
	}
	if st, err := Probe(w.root); err != nil || len(st.Sandboxes) != 0 {
		t.Errorf("Probe = %+v, %v; want nothing held", st, err)
	}
}

// TestRetarget checks that Retarget changes where held keys go, all or
// none: a key that is not held fails the whole request.
func TestRetarget(t *testing.T) {
	w := newWorld(t)
	w.start(t)
	ports := sockets(t, 2)
	if err := Hold(w.root, "s", w.netns(t, "ns"), ports); err != nil {
		t.Fatal(err)
	}
	to := netip.MustParseAddrPort("192.0.2.9:80")
	if err := Retarget(w.root, "s", []string{"k0000", "nope"}, []netip.AddrPort{to, to}); err == nil || !strings.Contains(err.Error(), "key nope is not held") {
		t.Errorf("Retarget of a key not held: %v", err)
	}
	if err := Retarget(w.root, "s", []string{"k0001"}, []netip.AddrPort{to}); err != nil {
		t.Fatalf("Retarget: %v", err)
	}
	st, err := Probe(w.root)
	if err != nil || len(st.Sandboxes) != 1 || !slices.Equal(st.Sandboxes[0].Targets, []string{"192.0.2.1:53", "192.0.2.9:80"}) {
		t.Errorf("Probe after Retarget = %+v, %v", st, err)
	}
}

// TestIdentityIsTheSocket checks that only a process that answers on the
// control socket with the pid that listens there counts as the resident.
func TestIdentityIsTheSocket(t *testing.T) {
	dead, liar, missing, real := newWorld(t), newWorld(t), newWorld(t), newWorld(t)
	f, err := bindControl(SocketPath(dead.root)) // bound, nobody listens
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	impostor(t, liar.root, func(c net.Conn) { // answers with another pid
		buf := make([]byte, 512)
		c.Read(buf)
		raw, _ := json.Marshal(reply{Pid: 1})
		c.Write(append(raw, '\n'))
	})
	for name, w := range map[string]world{"dead": dead, "liar": liar, "missing": missing} {
		if pid, ok := Alive(w.root); ok {
			t.Errorf("Alive(%s) = %d, true", name, pid)
		}
		if _, err := Probe(w.root); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Probe(%s) = %v, want ErrNotRunning", name, err)
		}
	}
	if err := Stop(dead.root); err != nil {
		t.Errorf("Stop(dead): %v", err)
	}
	if _, err := os.Lstat(SocketPath(dead.root)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left the dead resident's socket: %v", err)
	}
	pid := real.start(t)
	if got, ok := Alive(real.root); !ok || got != pid {
		t.Errorf("Alive = %d, %t; want %d", got, ok, pid)
	}
}

// TestExitsWhenGone checks that the resident exits by itself when its state
// root or its control socket no longer is what it was.
func TestExitsWhenGone(t *testing.T) {
	for _, c := range []struct {
		what   string
		remove func(w world) error
	}{
		{"state root moved", func(w world) error { return os.Rename(w.root, w.root+".away") }},
		{"socket replaced", func(w world) error {
			path := SocketPath(w.root)
			return errors.Join(os.Remove(path), os.WriteFile(path, nil, 0o600))
		}},
	} {
		t.Run(c.what, func(t *testing.T) {
			w := newWorld(t)
			pid := w.start(t)
			fd := pidfd(t, pid)
			if exited(fd, 1500*time.Millisecond) {
				t.Fatal("the resident exited before anything was removed")
			}
			if err := c.remove(w); err != nil {
				t.Fatal(err)
			}
			if !exited(fd, 10*time.Second) {
				t.Fatalf("the resident still runs after: %s", c.what)
			}
			gone(t, pid)
		})
	}
}

// TestDropsWhenNamespaceGone checks that the resident lets go of a
// sandbox's ports, and of its namespace, within a second or two once the
// namespace's path is removed or names another file, while it keeps
// another sandbox's (the control), and goes on running.
func TestDropsWhenNamespaceGone(t *testing.T) {
	for _, c := range []struct {
		what   string
		remove func(path string) error
	}{
		{"namespace removed", os.Remove},
		{"namespace replaced", func(path string) error {
			return errors.Join(os.Remove(path), os.WriteFile(path, nil, 0o600))
		}},
	} {
		t.Run(c.what, func(t *testing.T) {
			w := newWorld(t)
			pid := w.start(t)
			ns := w.netns(t, "ns-a")
			a, b := sockets(t, 1), sockets(t, 1)
			if err := errors.Join(Hold(w.root, "a", ns, a), Hold(w.root, "b", w.netns(t, "ns-b"), b)); err != nil {
				t.Fatal(err)
			}
			sockA := inode(t, a[0].Sock)
			if err := c.remove(ns.Path); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); len(heldKeys(t, w.root, "a")) > 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the resident still holds a's ports after: %s", c.what)
				}
			}
			if open := openIn(t, pid, sockA); open[sockA] {
				t.Error("a's socket is still open in the resident")
			}
			if got := heldKeys(t, w.root, "b"); !slices.Equal(got, []string{"k0000"}) {
				t.Errorf("b's ports: %v, want them still held", got)
			}
		})
	}
}

// TestStartFailure checks that a resident that cannot start is reported,
// and leaves neither a socket nor a process behind.
func TestStartFailure(t *testing.T) {
	w := newWorld(t)
	_, err := Start("/bin/true", w.root) // exits without saying it is ready
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("Start of a program that exits: %v", err)
	}
	if _, err := os.Lstat(SocketPath(w.root)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after a failed start: %v", err)
	}
	if _, ok := Alive(w.root); ok {
		t.Error("a resident answers after a failed start")
	}
	if _, err := Start(os.Args[0], filepath.Join(w.root, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Start in a missing root: %v", err)
	}
}

// TestSuccessorWaitsForPredecessor checks that a resident started while the
// one it replaces still runs (its control socket removed by hand, so that a
// command found none answering) becomes ready only once that one has exited,
// and so has let go of its ports and DNS listeners; and that it gives up,
// naming it, when that one does not exit.
func TestSuccessorWaitsForPredecessor(t *testing.T) {
	t.Run("exits", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		old := pidfd(t, w.start(t))
		if exited(old, 200*time.Millisecond) { // and so it waits for its next look at its socket
			t.Fatal("the resident exited before anything was removed")
		}
		if err := os.Remove(SocketPath(w.root)); err != nil {
			t.Fatal(err)
		}
		pid := w.start(t)
		// The old one let go of the lock with its files, just before it
		// became a zombie (what the pidfd reports): allow for that moment.
		if !exited(old, 50*time.Millisecond) {
			t.Fatal("the new resident was ready while the one it replaces still ran")
		}
		if got, ok := Alive(w.root); !ok || got != pid {
			t.Errorf("Alive = %d, %t; want the new resident, %d", got, ok, pid)
		}
	})
	t.Run("stuck", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		stuck := w.start(t)
		old := pidfd(t, stuck)
		stop(t, stuck)
		if err := os.Remove(SocketPath(w.root)); err != nil {
			t.Fatal(err)
		}
		_, err := Start(os.Args[0], w.root)
		want := fmt.Sprintf("start the resident process of state root %s: another resident process of this state root (pid %d) still runs", w.root, stuck)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Start beside a stuck resident: %v; want an error saying %q", err, want)
		}
		unix.Kill(stuck, unix.SIGCONT)
		if !exited(old, 10*time.Second) {
			t.Fatal("the stuck resident did not exit once let go")
		}
	})
}

func pidfd(t *testing.T, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestStoppedResidentIsNamed stops a resident (SIGSTOP) between two requests
// of one session: the second fails once, after one timeout (it is not sent
// again, as it is to a resident that exited: this one may still apply it),
// naming the process and what to do, and the session lets go of the
// connection on which the late answer could come.
func TestStoppedResidentIsNamed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pid := w.start(t)
	s := NewSession(w.root)
	defer s.Close()
	if _, err := s.Probe(); err != nil {
		t.Fatalf("Probe of a running resident: %v", err)
	}
	stop(t, pid)
	start := time.Now()
	_, err := s.Probe()
	took := time.Since(start)
	want := fmt.Sprintf("(pid %d) may be stopped or stuck: stop it (kill -9 %d), then run nsnet gc", pid, pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Probe of a stopped resident: %v; want an error saying %q", err, want)
	}
	if took > timeout*3/2 {
		t.Errorf("Probe of a stopped resident took %v: asked again after the first timeout (%v)", took, timeout)
	}
	if s.h != nil {
		t.Error("the session kept the connection of the unanswered request")
	}
}

// stop stops process pid (SIGSTOP) and returns once every thread of it has
// stopped (the signal reaches them a moment after kill returns); it is let
// go on (SIGCONT) when t is done.
func stop(t *testing.T, pid int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(pid, unix.SIGCONT) })
	for deadline := time.Now().Add(10 * time.Second); !allStopped(pid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d has not stopped", pid)
		}
	}
}

// allStopped reports whether every thread of pid is stopped (state T).
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		i := strings.LastIndexByte(string(raw), ')')
		if err != nil || i < 0 || i+2 >= len(raw) || raw[i+2] != 'T' {
			return false
		}
	}
	return true
}

// TestClosedUnansweredIsNotRunning checks that a first request whose
// connection the listener closes without an answer (as a resident that is
// exiting does) counts as no resident running, so that the command starts
// one and gives it the whole state, instead of failing.
func TestClosedUnansweredIsNotRunning(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	impostor(t, w.root, func(net.Conn) {})
	s := NewSession(w.root)
	defer s.Close()
	if _, err := s.Probe(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Probe of a socket closed without an answer: %v; want ErrNotRunning", err)
	}
}

// impostor listens on root's control socket until t is done, and has serve
// answer each connection before it closes it.
func impostor(t *testing.T, root string, serve func(net.Conn)) {
	t.Helper()
	ln, err := net.Listen("unix", SocketPath(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	}()
}
