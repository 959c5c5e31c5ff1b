// Package holder keeps published host ports bound while their sandbox
// exists, as Docker's docker-proxy and Podman's conmon do, so that no host
// process can take a port that nsnet's DNAT rules send elsewhere.
//
// nsnet is daemonless, so each sandbox that publishes ports gets one small
// holder process: `nsnet __hold-ports --root ROOT --sandbox NAME`, in its
// own session, that owns the bound sockets and does nothing else. nsnet binds
// the sockets itself (so binding errors reach the user), then hands them to
// the holder through the holder's control socket (ROOT/holders/NAME.sock)
// with SCM_RIGHTS, and asks it to close them the same way. The control socket
// is bound by nsnet before the holder starts, so it can be used at once.
//
// Invariants: a holder never opens a socket of its own, never reads the
// store, and exits on SIGTERM; it is found by its command line (Find), so
// gc can stop holders whose sandbox is gone even without the store.
package holder

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Command is the hidden nsnet subcommand that runs a holder.
const Command = "__hold-ports"

// SocketPath is the control socket of sandbox's holder under root.
func SocketPath(root, sandbox string) string {
	return filepath.Join(root, "holders", sandbox+".sock")
}

// request is one control message; "hold" requests carry one descriptor per
// key, in order.
type request struct {
	Op   string   `json:"op"` // "hold" or "release"
	Keys []string `json:"keys"`
}

// Spawn starts an empty holder for sandbox and returns its pid; Hold gives
// it sockets.
func Spawn(self, root, sandbox string) (int, error) {
	path := SocketPath(root, sandbox)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, fmt.Errorf("create holder directory: %w", err)
	}
	os.Remove(path) // a stale one of a holder that died
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return 0, fmt.Errorf("listen on holder socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the holder keeps serving it
	ctl, err := ln.File()
	ln.Close()
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	cmd := exec.Command(self, Command, "--root", root, "--sandbox", sandbox)
	cmd.ExtraFiles = []*os.File{ctl}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("start port holder of sandbox %s: %w", sandbox, err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}

// Hold hands sockets to the running holder of sandbox; the caller may close
// its copies afterwards.
func Hold(root, sandbox string, keys []string, socks []*os.File) error {
	return send(root, sandbox, request{Op: "hold", Keys: keys}, socks)
}

// Release asks the holder of sandbox to close the sockets of keys.
func Release(root, sandbox string, keys []string) error {
	return send(root, sandbox, request{Op: "release", Keys: keys}, nil)
}

// maxRights is how many descriptors one message carries (the kernel's
// SCM_MAX_FD is 253).
const maxRights = 250

func send(root, sandbox string, req request, socks []*os.File) error {
	for len(req.Keys) > maxRights && len(socks) == len(req.Keys) {
		head := request{Op: req.Op, Keys: req.Keys[:maxRights]}
		if err := sendOne(root, sandbox, head, socks[:maxRights]); err != nil {
			return err
		}
		req.Keys, socks = req.Keys[maxRights:], socks[maxRights:]
	}
	return sendOne(root, sandbox, req, socks)
}

func sendOne(root, sandbox string, req request, socks []*os.File) error {
	path := SocketPath(root, sandbox)
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return fmt.Errorf("reach the port holder of sandbox %s (%s): %w", sandbox, path, err)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	raw, _ := json.Marshal(req)
	fds := make([]int, len(socks))
	for i, f := range socks {
		fds[i] = int(f.Fd())
	}
	if _, _, err := uc.WriteMsgUnix(append(raw, '\n'), syscall.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("send to the port holder of sandbox %s: %w", sandbox, err)
	}
	reply, err := bufio.NewReader(uc).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from the port holder of sandbox %s: %w", sandbox, err)
	}
	if reply = strings.TrimSpace(reply); reply != "ok" {
		return fmt.Errorf("port holder of sandbox %s: %s", sandbox, reply)
	}
	return nil
}

// Stop ends the holder pid of sandbox (if it is one), waits until it is gone
// (so its ports are free again), and removes its socket. A holder already
// gone is not an error.
func Stop(root, sandbox string, pid int) error {
	if Alive(root, sandbox, pid) {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop the port holder of sandbox %s (pid %d): %w", sandbox, pid, err)
		}
		waitGone(pid)
	}
	if err := os.Remove(SocketPath(root, sandbox)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Find returns the running holders of root, by sandbox.
func Find(root string) map[string]int {
	out := map[string]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		raw, err := os.ReadFile(d)
		if err != nil || !isHolder(raw, root, "") {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if pid, err := strconv.Atoi(strings.Split(d, "/")[2]); err == nil {
			out[args[5]] = pid
		}
	}
	return out
}

// Alive reports whether pid is the running holder of sandbox under root.
func Alive(root, sandbox string, pid int) bool {
	if pid <= 0 {
		return false
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && isHolder(raw, root, sandbox)
}

// waitGone waits up to two seconds for pid to exit, then kills it and waits
// again. An exiting process drops its memory (and with it its command line)
// before it closes its files, so only a zombie or no process at all means
// its ports are free.
func waitGone(pid int) {
	for _, sig := range []syscall.Signal{0, syscall.SIGKILL} {
		if sig != 0 {
			syscall.Kill(pid, sig)
		}
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if Exited(pid) {
				return
			}
		}
	}
}

// Exited reports whether pid has closed its files for good: each of its
// threads is a zombie or gone (the files close with the last thread, and
// the leader turns zombie before the others are done).
func Exited(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, t := range tasks {
		raw, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
		if err != nil {
			continue
		}
		// The state follows the parenthesised command name: "pid (comm) S ...".
		i := strings.LastIndexByte(string(raw), ')')
		if i >= 0 && i+2 < len(raw) && raw[i+2] != 'Z' && raw[i+2] != 'X' {
			return false
		}
	}
	return true
}

// isHolder reports whether a /proc cmdline is that of root's holder of
// sandbox ("" matches any sandbox).
func isHolder(raw []byte, root, sandbox string) bool {
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	return len(args) >= 6 && args[1] == Command && args[2] == "--root" && args[3] == root &&
		args[4] == "--sandbox" && (sandbox == "" || args[5] == sandbox)
}

// RaiseFileLimit makes room for n more open files: it raises the soft limit,
// and the hard one if it must and may (CAP_SYS_RESOURCE), for commands and
// holders that hold many sockets.
func RaiseFileLimit(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	open, _ := os.ReadDir("/proc/self/fd")
	want := uint64(len(open) + n + 64)
	if want <= lim.Cur {
		return nil
	}
	if want <= lim.Max {
		lim.Cur = want
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	raised := syscall.Rlimit{Cur: want, Max: want}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		lim.Cur = lim.Max // as much as may be had
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		return fmt.Errorf("holding %d more ports needs %d open files, over the limit of %d: %w (raise it with ulimit -n)", n, want, lim.Max, err)
	}
	return nil
}
