package holder

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

// asHolder makes the test binary run as a holder when Spawn starts it.
const asHolder = "NSNET_HOLDER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asHolder) == "1" {
		os.Exit(holderMain(os.Args[2:]))
	}
	os.Setenv(asHolder, "1") // inherited by the holders that the tests spawn
	os.Exit(m.Run())
}

func holderMain(args []string) int {
	var a Args
	fs := flag.NewFlagSet(Command, flag.ContinueOnError)
	fs.StringVar(&a.Root, "root", "", "")
	fs.StringVar(&a.Sandbox, "sandbox", "", "")
	fs.StringVar(&a.NetNS, "netns", "", "")
	if fs.Parse(args) != nil || Main(a) != nil {
		return 1
	}
	return 0
}

// world is a state root with a file standing in for a sandbox's namespace.
type world struct{ root, netns string }

func newWorld(t *testing.T) world {
	t.Helper()
	dir := t.TempDir()
	w := world{root: filepath.Join(dir, "root"), netns: filepath.Join(dir, "netns")}
	if err := os.Mkdir(w.root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.netns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// spawn starts a holder for sandbox and stops it when the test ends.
func (w world) spawn(t *testing.T, sandbox string) int {
	t.Helper()
	pid, err := Spawn(os.Args[0], w.root, sandbox, w.netns)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if pid <= 0 {
		t.Fatalf("Spawn returned pid %d", pid)
	}
	t.Cleanup(func() { Stop(w.root, sandbox) })
	return pid
}

// sockets returns n UDP sockets that are bound nowhere (so they touch no
// network), for the holder to hold, and their keys.
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

// openIn reports which of the files named (as inode gives them) process pid
// has open.
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

func TestHoldReleaseStop(t *testing.T) {
	w := newWorld(t)
	pid := w.spawn(t, "s")
	if got, ok := Alive(w.root, "s"); !ok || got != pid {
		t.Fatalf("Alive = %d, %t; want %d, true", got, ok, pid)
	}
	ports := sockets(t, 3*maxRights+7) // several requests
	first, second, last := inode(t, ports[0].Sock), inode(t, ports[1].Sock), inode(t, ports[len(ports)-1].Sock)
	if err := Hold(w.root, "s", ports); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	for _, p := range ports {
		p.Sock.Close()
	}
	if open := openIn(t, pid, first, last); !open[first] || !open[last] {
		t.Fatal("the holder does not hold the sockets")
	}
	keys := keys(ports)
	if err := Release(w.root, "s", keys[1:]); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if open := openIn(t, pid, first, second); open[second] || !open[first] {
		t.Errorf("after Release: second held %t (want false), first held %t (want true)", open[second], open[first])
	}
	st, err := Probe(w.root, "s")
	if err != nil || st.Pid != pid || !slices.Equal(st.Keys, keys[:1]) || !slices.Equal(st.Targets, []string{"192.0.2.1:53"}) {
		t.Errorf("Probe = %+v, %v; want pid %d, keys %v and their target", st, err, pid, keys[:1])
	}
	if err := Stop(w.root, "s"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Lstat(SocketPath(w.root, "s")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after Stop: %v", err)
	}
	gone(t, pid) // reaped by this process, its parent: its sockets are closed
	if err := Stop(w.root, "s"); err != nil {
		t.Errorf("Stop of a holder that is gone: %v", err)
	}
}

// TestHoldRefusesWhatItCannotProxy checks that a hold request with a
// descriptor that is no TCP listener or UDP socket, or with a bad target,
// is refused whole: the holder keeps none of its descriptors.
func TestHoldRefusesWhatItCannotProxy(t *testing.T) {
	w := newWorld(t)
	pid := w.spawn(t, "s")
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
		bad        func(p *Port)
	}{
		{"a pipe", "descriptor 2 is not a socket", func(p *Port) { p.Sock = r }},
		{"a TCP socket that does not listen", "descriptor 2 is neither a listening TCP socket nor a UDP socket", func(p *Port) { p.Sock = tcp }},
		{"an IPv6 target", "bad target", func(p *Port) { p.Target = netip.MustParseAddrPort("[2001:db8::1]:53") }},
	} {
		ports := sockets(t, 3)
		c.bad(&ports[2])
		err := Hold(w.root, "s", ports)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Hold with %s: %v, want an error saying %q", c.what, err, c.want)
		}
		if open := openIn(t, pid, inode(t, ports[0].Sock)); len(open) != 0 {
			t.Errorf("after Hold with %s failed, the holder still has the good sockets", c.what)
		}
	}
	if st, err := Probe(w.root, "s"); err != nil || len(st.Keys) != 0 {
		t.Errorf("Probe = %+v, %v; want nothing held", st, err)
	}
}

// TestIdentityIsTheSocket checks that only a process that answers on the
// control socket with the pid that listens there counts as a holder.
func TestIdentityIsTheSocket(t *testing.T) {
	w := newWorld(t)
	if err := os.MkdirAll(filepath.Dir(SocketPath(w.root, "x")), 0o700); err != nil {
		t.Fatal(err)
	}
	dead, err := bindControl(SocketPath(w.root, "dead")) // bound, nobody listens
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	liar, err := net.Listen("unix", SocketPath(w.root, "liar")) // answers with another pid
	if err != nil {
		t.Fatal(err)
	}
	defer liar.Close()
	go func() {
		for {
			c, err := liar.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			c.Read(buf)
			raw, _ := json.Marshal(reply{Pid: 1})
			c.Write(append(raw, '\n'))
			c.Close()
		}
	}()
	for _, name := range []string{"dead", "liar", "missing"} {
		if pid, ok := Alive(w.root, name); ok {
			t.Errorf("Alive(%s) = %d, true", name, pid)
		}
	}
	if got := Find(w.root); got["dead"] != 0 || got["liar"] != 0 || len(got) != 2 {
		t.Errorf("Find = %v, want dead and liar with no pid", got)
	}
	if err := Stop(w.root, "dead"); err != nil {
		t.Errorf("Stop(dead): %v", err)
	}
	if _, err := os.Lstat(SocketPath(w.root, "dead")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left the dead holder's socket: %v", err)
	}
	pid := w.spawn(t, "real")
	if got := Find(w.root); got["real"] != pid {
		t.Errorf("Find = %v, want real: %d", got, pid)
	}
}

// TestExitsWhenGone checks that a holder exits by itself when its state
// root, its control socket or its namespace no longer is what it was.
func TestExitsWhenGone(t *testing.T) {
	for _, c := range []struct {
		what   string
		remove func(w world) error
	}{
		{"state root moved", func(w world) error { return os.Rename(w.root, w.root+".away") }},
		{"namespace removed", func(w world) error { return os.Remove(w.netns) }},
		{"namespace replaced", func(w world) error {
			return errors.Join(os.Remove(w.netns), os.WriteFile(w.netns, nil, 0o600))
		}},
		{"socket replaced", func(w world) error {
			path := SocketPath(w.root, "s")
			return errors.Join(os.Remove(path), os.WriteFile(path, nil, 0o600))
		}},
	} {
		t.Run(c.what, func(t *testing.T) {
			w := newWorld(t)
			pid := w.spawn(t, "s")
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if exited(fd, 1500*time.Millisecond) {
				t.Fatal("the holder exited before anything was removed")
			}
			if err := c.remove(w); err != nil {
				t.Fatal(err)
			}
			if !exited(fd, 10*time.Second) {
				t.Fatalf("the holder still runs after: %s", c.what)
			}
			gone(t, pid)
		})
	}
}

// TestStartFailure checks that a holder that cannot start is reported, and
// leaves neither a socket nor a process behind.
func TestStartFailure(t *testing.T) {
	w := newWorld(t)
	_, err := Spawn(os.Args[0], w.root, "s", filepath.Join(w.root, "no-such-namespace"))
	if err == nil || !strings.Contains(err.Error(), "no-such-namespace") {
		t.Fatalf("Spawn with a missing namespace: %v", err)
	}
	if _, err := os.Lstat(SocketPath(w.root, "s")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after a failed start: %v", err)
	}
	if _, ok := Alive(w.root, "s"); ok {
		t.Error("a holder answers after a failed start")
	}
}
