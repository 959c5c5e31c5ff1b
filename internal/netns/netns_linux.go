// Package netns creates, names, checks, enters and removes network namespaces.
//
// Named namespaces are bind mounts under Dir, exactly as `ip netns add` makes
// them, so `ip netns exec NAME` works on every sandbox.
//
// A namespace is known by its ID (device and inode of its nsfs file, and
// when the kernel made that file): two paths name the same namespace exactly
// when their IDs are the same (ID.Same), and a name that was removed and made
// again names another namespace with another ID, even when the kernel gave
// the new namespace the old one's inode number.
//
// Invariants: no function leaves the calling goroutine's OS thread in another
// namespace. A namespace is bound to a name through the descriptor that was
// checked, never by resolving a path a second time. Work inside a namespace runs on a fresh goroutine locked to its
// thread; if switching back fails the thread stays locked and dies with the
// goroutine instead of returning to Go's pool in the wrong namespace.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are mounted, as for iproute2.
var Dir = "/run/netns"

// Path is the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether something is present at path.
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Check reports whether path is a network namespace.
func Check(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer f.Close()
	return checkFd(path, int(f.Fd()))
}

func checkFd(path string, fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("%s is not a network namespace (expected a file like /proc/PID/ns/net or /run/netns/NAME)", path)
	}
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil || t != unix.CLONE_NEWNET {
		return fmt.Errorf("%s is not a network namespace (expected a file like /proc/PID/ns/net or /run/netns/NAME)", path)
	}
	return nil
}

// ID identifies a namespace: the device and inode of its nsfs file, and
// when the kernel made that file (its change time, in nanoseconds since the
// epoch; zero in records older than it). The kernel gives a destroyed
// namespace's inode number to a later one (lowest free first); the file's
// time tells them apart. The kernel makes the file when something first
// names or opens the namespace and keeps it while a mount or an open file
// holds it, so the time of a namespace named under /run/netns stays the same.
type ID struct {
	Dev  uint64 `json:"dev"`
	Ino  uint64 `json:"ino"`
	Born int64  `json:"born,omitempty"`
}

// IsZero reports whether the ID is unknown (records older than IDs).
func (id ID) IsZero() bool { return id == ID{} }

// Same reports whether id and o are one namespace: the same device and
// inode, made at the same time where both IDs know it.
func (id ID) Same(o ID) bool {
	return id.Dev == o.Dev && id.Ino == o.Ino && (id.Born == 0 || o.Born == 0 || id.Born == o.Born)
}

func (id ID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// IDOf returns the ID of an open namespace file.
func IDOf(f *os.File) (ID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return ID{}, fmt.Errorf("stat network namespace %s: %w", f.Name(), err)
	}
	return ID{Dev: st.Dev, Ino: st.Ino, Born: st.Ctim.Nano()}, nil
}

// Identify returns the ID of the network namespace at path, failing if path
// is not one.
func Identify(path string) (ID, error) {
	f, err := Open(path)
	if err != nil {
		return ID{}, err
	}
	defer f.Close()
	return IDOf(f)
}

// Self returns the ID of the network namespace the calling thread is in.
func Self() (ID, error) { return Identify("/proc/thread-self/ns/net") }

// Inode returns the inode of the namespace at path.
func Inode(path string) (uint64, error) {
	id, err := Identify(path)
	return id.Ino, err
}

// Open opens a network namespace file for use as a setns or netlink target.
func Open(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	if err := checkFd(path, int(f.Fd())); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Create makes a new, empty network namespace and bind-mounts it at path.
// The file at path must not exist yet. before, if not nil, is told the new
// namespace's ID before it is mounted, and runs on a thread inside it, so
// what it writes under /proc/sys/net goes to the new namespace; if it fails,
// nothing is mounted.
func Create(path string, before func(ID) error) error {
	prepared := false
	err := onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		// Held open until it is mounted, the namespace's file is the one
		// before is told about (see ID).
		self, err := Open("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		defer self.Close()
		if before != nil {
			id, err := IDOf(self)
			if err == nil {
				err = before(id)
			}
			if err != nil {
				return err
			}
		}
		if err := prepareMountPoint(path); err != nil {
			return err
		}
		prepared = true
		return bind(fmt.Sprintf("/proc/self/fd/%d", self.Fd()), path)
	})
	if err != nil {
		if prepared {
			os.Remove(path)
		}
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return nil
}

// Bind names an open, checked namespace (see Open): it bind-mounts the very
// namespace that f refers to at path.
func Bind(f *os.File, path string) error {
	if err := prepareMountPoint(path); err != nil {
		return err
	}
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := bind(src, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("name network namespace %s at %s: %w", f.Name(), path, err)
	}
	return nil
}

// Remove unmounts and deletes the namespace file at path. A namespace whose
// last reference was this mount is destroyed by the kernel. Remove tolerates a
// path that is already gone or not mounted.
func Remove(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace file %s: %w", path, err)
	}
	return nil
}

// Do runs fn on a dedicated OS thread that has entered the network namespace
// at path; the calling goroutine and its thread stay where they are. The
// thread is locked while fn runs and, if it cannot switch back, never reused.
func Do(path string, fn func() error) error {
	target, err := Open(path)
	if err != nil {
		return err
	}
	defer target.Close()
	return DoIn(target, fn)
}

// DoIn is Do for a namespace that is open already (see Open).
func DoIn(target *os.File, fn func() error) error {
	return onLockedThread(func() error {
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", target.Name(), err)
		}
		return fn()
	})
}

// EtcDir holds, per namespace name, files that programs run in that
// namespace see in place of /etc's (resolv.conf, hosts), as for iproute2.
var EtcDir = "/etc/netns"

// DoPrivate is Do with, in addition, a private mount namespace in which the
// files of EtcDir/name are bound over /etc's and /sys shows the namespace's
// own devices, as `ip netns exec NAME` gives a program. fn runs on a thread
// that is never reused (it exits when fn returns), so no goroutine ever
// runs in that mount namespace afterwards; a process fn starts inherits it.
func DoPrivate(path, name string, fn func() error) error {
	target, err := Open(path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		if err := privateMounts(name); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// privateMounts gives the calling thread a mount namespace of its own, where
// EtcDir/name's files are bound over /etc's and /sys is the current network
// namespace's. Nothing mounted there propagates back to the host's.
func privateMounts(name string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "none", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err == nil {
		unix.Mount(name, "/sys", "sysfs", 0, "") // best effort, as ip netns exec
	}
	dir := filepath.Join(EtcDir, name)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join("/etc", e.Name())
		if err := unix.Mount(src, dst, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", src, dst, err)
		}
	}
	return nil
}

// Exec replaces the current process with argv, running in the network
// namespace at path with the private mounts DoPrivate gives for name (the
// sandbox's /etc/netns files). It returns only on failure: a *ProgramError
// when the namespace was entered but the program could not be executed.
func Exec(path, name, binary string, argv, env []string) error {
	target, err := Open(path)
	if err != nil {
		return err
	}
	runtime.LockOSThread() // never unlocked: the process image is replaced
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	target.Close()
	if err := privateMounts(name); err != nil {
		return err
	}
	return &ProgramError{Program: binary, Err: unix.Exec(binary, argv, env)}
}

// ProgramError is the failure of execve(2) itself, as opposed to entering
// the namespace: Err is the errno (ENOENT, EACCES, ENOEXEC, ...).
type ProgramError struct {
	Program string
	Err     error
}

func (e *ProgramError) Error() string { return "exec " + e.Program + ": " + e.Err.Error() }

func (e *ProgramError) Unwrap() error { return e.Err }

// onLockedThread runs fn on a new goroutine locked to its OS thread and
// switches the thread back to its original network namespace afterwards.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("switch back to original network namespace: %w", err))
			return // the thread stays locked and exits with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// prepareMountPoint makes Dir a shared mount point (as iproute2 does, so
// namespace mounts propagate between mount namespaces) and creates the empty
// file to mount on, failing if it exists.
func prepareMountPoint(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if dir == Dir {
		if err := makeShared(dir); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", path, err)
	}
	return f.Close()
}

func makeShared(dir string) error {
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return nil
}

func bind(src, path string) error {
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s at %s: %w", src, path, err)
	}
	return nil
}

// CheckNamesOutlive returns an error if a name this process mounts under Dir
// would be seen only in its own mount namespace, and vanish with it: when the
// mount that Dir lies on is a slave that is not shared, receiving mounts from
// another mount namespace and sending none back, as in the one that `ip netns
// exec` gives its command (or a service that systemd gives mounts of its
// own). nil when it cannot tell, and when the process shares its parent's
// mount namespace: the usual case, told apart without reading mountinfo, which
// grows with every name mounted (ip netns exec gives the command it runs a
// mount namespace of its own).
func CheckNamesOutlive() error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if parent, perr := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid())); err == nil && perr == nil && parent == self {
		return nil
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	if at, ok := receivesOnly(info, Dir); ok {
		return fmt.Errorf("nsnet runs in a mount namespace whose mount at %s only receives from another's (as under `ip netns exec`): "+
			"a namespace named under %s would be seen nowhere else and vanish with it; run nsnet in the host's mount namespace "+
			"(nsenter --net=/run/netns/NAME nsnet ..., not ip netns exec NAME nsnet ...)", at, Dir)
	}
	return nil
}

// receivesOnly finds, in a mountinfo file, the mount that path lies on (the
// topmost of those on the longest mount point above it) and reports whether
// it is a slave (optional field master:N) that is not shared (shared:N).
func receivesOnly(mountinfo []byte, path string) (mountPoint string, ok bool) {
	best, slave := "", false
	for _, line := range strings.Split(string(mountinfo), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 7 {
			continue
		}
		at := fields[4]
		if !under(path, at) || len(at) < len(best) {
			continue
		}
		best, slave = at, false
		master, shared := false, false
		for _, f := range fields[6:] {
			if f == "-" {
				break
			}
			master = master || strings.HasPrefix(f, "master:")
			shared = shared || strings.HasPrefix(f, "shared:")
		}
		slave = master && !shared
	}
	return best, slave
}

// under reports whether path is dir or lies below it.
func under(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}
