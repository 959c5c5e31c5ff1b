// Package holder keeps published host ports bound while their sandbox
// exists, as Docker's docker-proxy and Podman's conmon do, so that no host
// process can take a port that nsnet's DNAT rules send elsewhere, and
// proxies what reaches those sockets to the sandbox, as docker-proxy does.
//
// nsnet is daemonless, so each sandbox that publishes TCP or UDP ports gets
// one small holder process, `nsnet __hold-ports --root ROOT --sandbox NAME
// --netns PATH`, in its own session (in the host's network namespace), that
// owns the bound sockets. nsnet binds the sockets itself (so binding errors
// reach the user), then hands them to the holder over the holder's control
// socket (ROOT/holders/NAME.sock) with SCM_RIGHTS, each with its target (the
// sandbox's address and container port), and asks it to close them the same
// way.
//
// The host's traffic to 127.0.0.0/8 that reaches a held socket is proxied to
// its target: nsnet's DNAT rules never translate packets addressed to
// 127.0.0.0/8, so that traffic arrives there, and no bridge needs
// route_localnet. Traffic to any other address that reaches a held socket
// (after an outside `nft flush ruleset`, or while a port is still held after
// it was unpublished) is refused, so a held port never answers from outside
// by itself. A TCP listener accepts, dials the target and copies both ways,
// passing half-closes on; a UDP socket keeps one connected socket to the
// target per client address, sends the replies back from the held socket,
// and forgets a flow after udpIdle without a datagram. Releasing a key
// closes its socket and every connection or flow it opened.
//
// A holder is known by its control socket, never by a pid or a command line:
// a client connects, takes the peer's pid from SO_PEERCRED (the holder itself
// listens, so that is its pid), opens a pidfd on it, and trusts the pidfd only
// once the holder has answered on that same connection with that same pid: a
// pid is not reused while its process lives, so the pidfd is the holder's.
// Stop asks the holder to exit and waits on the pidfd until the whole process
// is gone (its sockets close with its last thread), then kills it through the
// pidfd if it took more than two seconds.
//
// Invariants: the only sockets a holder opens itself are its connections to
// its targets (the sandbox's address); it binds no port of its own and never
// reads the store. Its memory grows with the ports it
// holds (one goroutine waiting on each held socket, no buffer while waiting)
// and the connections and flows it proxies (at most maxUDPFlows per UDP
// port). It exits when asked, on SIGTERM, and by itself within a second when
// its state root, its control socket or its sandbox's namespace path no
// longer names what it named at start (it keeps the root and the namespace
// open, so neither inode can be reused meanwhile). The process that starts a
// holder reaps it when it exits, waiting in Go's poller rather than on a
// thread, so a long-running program that embeds the engine keeps no zombies.
package holder

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Command is the hidden nsnet subcommand that runs a holder.
const Command = "__hold-ports"

// ErrNotRunning is wrapped when no live holder answers on a sandbox's
// control socket.
var ErrNotRunning = errors.New("no port holder answers")

// timeout bounds each exchange with a holder, and its start.
const timeout = 10 * time.Second

// maxRights is how many descriptors one request carries (the kernel's
// SCM_MAX_FD is 253).
const maxRights = 250

// SocketPath is the control socket of sandbox's holder under root.
func SocketPath(root, sandbox string) string {
	return filepath.Join(root, "holders", sandbox+".sock")
}

// request is one control message, a JSON line; "hold" requests carry one
// descriptor per key, in order.
type request struct {
	Op      string   `json:"op"` // "ping", "list", "hold", "release" or "stop"
	Keys    []string `json:"keys,omitempty"`
	Targets []string `json:"targets,omitempty"` // for "hold": where each key's traffic goes, "IP:PORT"
}

// reply answers a request, as a JSON line.
type reply struct {
	Pid     int      `json:"pid,omitempty"`     // the holder's own pid
	Keys    []string `json:"keys,omitempty"`    // for "list": the keys held, sorted
	Targets []string `json:"targets,omitempty"` // for "list": their targets, in the same order
	Error   string   `json:"error,omitempty"`
}

// Port is a host port for a holder to hold and proxy: its key, its bound
// socket (a listening TCP socket or a UDP socket), and its target, the
// sandbox's address and container port.
type Port struct {
	Key    string
	Sock   *os.File
	Target netip.AddrPort
}

// Spawn starts an empty holder for sandbox, serving the namespace at netns,
// and returns its pid once it listens; Hold gives it sockets. The calling
// process reaps it when it exits.
func Spawn(self, root, sandbox, netns string) (int, error) {
	path := SocketPath(root, sandbox)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, fmt.Errorf("create the port holder directory: %w (move what is in the way)", err)
	}
	ctl, err := bindControl(path)
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	pid, err := start(exec.Command(self, Command, "--root", root, "--sandbox", sandbox, "--netns", netns), ctl)
	if err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("start the port holder of sandbox %s: %w", sandbox, err)
	}
	return pid, nil
}

// bindControl binds a holder's control socket at path; the holder listens on
// it itself, so that its peers see the holder's pid.
func bindControl(path string) (*os.File, error) {
	os.Remove(path) // the socket of a holder that is gone
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("port holder socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind the port holder socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// start runs cmd with the control socket as fd 3 and a pipe as fd 4, on which
// the holder says "ready" once it listens, or why it cannot start.
func start(cmd *exec.Cmd, ctl *os.File) (int, error) {
	ready, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer ready.Close()
	pidfd := -1
	cmd.ExtraFiles = []*os.File{ctl, readyW}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid // before Release, which sets it to -1
	if err = awaitReady(ready); err != nil {
		cmd.Process.Kill() // through the os package's own pidfd; nobody has reaped it yet
	}
	if pidfd >= 0 {
		cmd.Process.Release()
		reap(pidfd)
	} else {
		go cmd.Wait()
	}
	return pid, err
}

// awaitReady reads what the holder says on its ready pipe until it closes it.
func awaitReady(r *os.File) error {
	r.SetReadDeadline(time.Now().Add(timeout))
	msg, err := io.ReadAll(io.LimitReader(r, 4096))
	switch said := strings.TrimSpace(string(msg)); {
	case said == "ready":
		return nil
	case said != "":
		return errors.New(said)
	case err != nil:
		return fmt.Errorf("it did not say it was ready: %w", err)
	}
	return errors.New("it exited before it was ready")
}

// reap collects the child behind pidfd when it exits, so that it never stays
// a zombie of a long-running process. It waits in Go's poller (a pidfd polls
// readable once its process has exited), so no thread waits for it.
func reap(pidfd int) {
	unix.SetNonblock(pidfd, true)
	f := os.NewFile(uintptr(pidfd), "pidfd")
	go func() {
		defer f.Close()
		rc, err := f.SyscallConn()
		if err == nil {
			err = rc.Read(func(fd uintptr) bool {
				var info unix.Siginfo
				return unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED, nil) != unix.EAGAIN
			})
		}
		if err != nil { // not pollable after all: wait on this goroutine's thread
			var info unix.Siginfo
			unix.SetNonblock(pidfd, false)
			unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED, nil)
		}
	}()
}

// client is a connection to a holder whose identity was checked: pidfd
// refers to the very process that serves the control socket.
type client struct {
	sandbox string
	c       *net.UnixConn
	r       *bufio.Reader
	pid     int
	pidfd   int
}

// dial connects to sandbox's holder and checks who it is; an error wraps
// ErrNotRunning.
func dial(root, sandbox string) (*client, error) {
	path := SocketPath(root, sandbox)
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("port holder of sandbox %s (%s): %w: %w", sandbox, path, ErrNotRunning, err)
	}
	h := &client{sandbox: sandbox, c: c, r: bufio.NewReader(c), pidfd: -1}
	if err := h.identify(); err != nil {
		h.close()
		return nil, fmt.Errorf("port holder of sandbox %s (%s): %w: %w", sandbox, path, ErrNotRunning, err)
	}
	return h, nil
}

// identify opens a pidfd on the peer's pid and proves, with one round trip,
// that it is the live process answering.
func (h *client) identify() error {
	cred, err := peerCred(h.c)
	if err != nil {
		return err
	}
	if h.pidfd, err = unix.PidfdOpen(int(cred.Pid), 0); err != nil {
		return fmt.Errorf("pidfd_open %d: %w", cred.Pid, err)
	}
	rep, err := h.call(request{Op: "ping"}, nil)
	if err != nil {
		return err
	}
	if rep.Pid != int(cred.Pid) {
		return fmt.Errorf("it answers as pid %d, but pid %d listens on the socket", rep.Pid, cred.Pid)
	}
	h.pid = rep.Pid
	return nil
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

func (h *client) close() {
	h.c.Close()
	if h.pidfd >= 0 {
		unix.Close(h.pidfd)
	}
}

// call sends one request, with fds, and reads the answer.
func (h *client) call(req request, fds []int) (reply, error) {
	h.c.SetDeadline(time.Now().Add(timeout))
	raw, _ := json.Marshal(req)
	raw = append(raw, '\n')
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, _, err := h.c.WriteMsgUnix(raw, oob, nil)
	if err == nil && n < len(raw) { // a stream socket may take a long request in parts
		_, err = h.c.Write(raw[n:])
	}
	if err != nil {
		return reply{}, fmt.Errorf("send to the port holder of sandbox %s: %w", h.sandbox, err)
	}
	line, err := h.r.ReadBytes('\n')
	if err != nil {
		return reply{}, fmt.Errorf("no answer from the port holder of sandbox %s: %w", h.sandbox, err)
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return reply{}, fmt.Errorf("bad answer from the port holder of sandbox %s: %w", h.sandbox, err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("port holder of sandbox %s: %s", h.sandbox, rep.Error)
	}
	return rep, nil
}

// Hold hands ports to the running holder of sandbox, all or none; the
// caller may close its copies of the sockets afterwards.
func Hold(root, sandbox string, ports []Port) error {
	h, err := dial(root, sandbox)
	if err != nil {
		return err
	}
	defer h.close()
	for i := 0; i < len(ports); i += maxRights {
		req := request{Op: "hold"}
		var fds []int
		for _, p := range ports[i:min(i+maxRights, len(ports))] {
			req.Keys = append(req.Keys, p.Key)
			req.Targets = append(req.Targets, p.Target.String())
			fds = append(fds, int(p.Sock.Fd()))
		}
		if _, err := h.call(req, fds); err != nil {
			if i > 0 {
				h.call(request{Op: "release", Keys: keys(ports[:i])}, nil)
			}
			return err
		}
	}
	return nil
}

func keys(ports []Port) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = p.Key
	}
	return out
}

// Release asks the holder of sandbox to close the sockets of keys; an error
// wraps ErrNotRunning if no holder answers (so none holds them).
func Release(root, sandbox string, keys []string) error {
	h, err := dial(root, sandbox)
	if err != nil {
		return err
	}
	defer h.close()
	_, err = h.call(request{Op: "release", Keys: keys}, nil)
	return err
}

// Alive returns the pid of sandbox's holder if it is alive and answers.
func Alive(root, sandbox string) (int, bool) {
	h, err := dial(root, sandbox)
	if err != nil {
		return 0, false
	}
	defer h.close()
	return h.pid, true
}

// Status is what a live holder says of itself.
type Status struct {
	Pid     int
	Keys    []string // the keys of the sockets it holds, sorted
	Targets []string // where each key's traffic goes ("IP:PORT"), in the same order
}

// Probe asks sandbox's holder what it holds; an error wraps ErrNotRunning if
// no holder answers.
func Probe(root, sandbox string) (Status, error) {
	h, err := dial(root, sandbox)
	if err != nil {
		return Status{}, err
	}
	defer h.close()
	rep, err := h.call(request{Op: "list"}, nil)
	return Status{Pid: h.pid, Keys: rep.Keys, Targets: rep.Targets}, err
}

// Stop ends sandbox's holder if one answers, waits until it has exited (so
// its ports are free again), and removes its control socket. A holder that
// is already gone is not an error.
func Stop(root, sandbox string) error {
	if _, err := os.Lstat(SocketPath(root, sandbox)); errors.Is(err, os.ErrNotExist) {
		return nil // no socket: no holder answers, and nothing to remove
	}
	h, err := dial(root, sandbox)
	if err == nil {
		err = h.stop()
		h.close()
	}
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if err := os.Remove(SocketPath(root, sandbox)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the port holder socket of sandbox %s: %w", sandbox, err)
	}
	return nil
}

// stop asks the holder to exit (or sends it SIGTERM if it does not answer),
// and kills it if it has not exited two seconds later.
func (h *client) stop() error {
	if _, err := h.call(request{Op: "stop"}, nil); err != nil {
		unix.PidfdSendSignal(h.pidfd, unix.SIGTERM, nil, 0)
	}
	if exited(h.pidfd, 2*time.Second) {
		return nil
	}
	if err := unix.PidfdSendSignal(h.pidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill the port holder of sandbox %s (pid %d): %w", h.sandbox, h.pid, err)
	}
	if exited(h.pidfd, timeout) {
		return nil
	}
	return fmt.Errorf("the port holder of sandbox %s (pid %d) has not exited %v after SIGKILL", h.sandbox, h.pid, timeout)
}

// exited waits up to d for the process behind pidfd to have exited with all
// its threads.
func exited(pidfd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(max(time.Until(deadline), 0).Milliseconds()))
		switch {
		case n > 0:
			return true
		case err != unix.EINTR:
			return false
		}
	}
}

// Find returns, by sandbox, the pid of each holder of root that answers on
// its control socket; a socket that no live holder answers on maps to 0.
func Find(root string) map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir(filepath.Join(root, "holders"))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sock")
		if ok && e.Type()&fs.ModeSocket != 0 {
			out[name], _ = Alive(root, name)
		}
	}
	return out
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
