// Package resident is the one process per state root that nsnet, which has
// no daemon, leaves running while the root needs it: `nsnet __resident
// --root ROOT`. It does two jobs for every sandbox and network of the root:
//
//   - It keeps published host ports bound while their sandbox publishes
//     them, as Docker's docker-proxy and Podman's conmon do, so that no host
//     process can take a port that nsnet's DNAT rules send elsewhere, and
//     proxies the host's own traffic to 127.0.0.0/8 that reaches them to the
//     sandbox, as docker-proxy does (proxy.go). nsnet binds the sockets
//     itself (so binding errors reach the user) and hands them over the
//     control socket with SCM_RIGHTS, each with its key and its target (the
//     sandbox's address and container port), by sandbox.
//   - It serves the embedded DNS of the root's user networks with an
//     internal/resolver Server, created in the host's namespace, where the
//     resident runs: a "serve" request replaces zones, and is answered once
//     the new listeners are bound and the old names are gone.
//
// It holds no state that the store does not: every change comes from an
// nsnet command, over the control socket ROOT/resident.sock, before that
// command returns (the command holds the store's lock while it talks to the
// resident; the resident never reads the store). A command that finds no
// resident answering starts one (Start) and gives it everything.
//
// Traffic to any address but 127.0.0.0/8 that reaches a held socket (after an
// outside `nft flush ruleset`, or while a port is still held after it was
// unpublished) is refused, so a held port never answers from outside by
// itself. Releasing a key closes its socket and every connection or flow it
// opened.
//
// The resident is known by its control socket, never by a pid or a command
// line: a client connects, takes the peer's pid from SO_PEERCRED (the
// resident itself listens, so that is its pid), opens a pidfd on it, and
// trusts the pidfd only once the resident has answered on that same
// connection with that same pid: a pid is not reused while its process
// lives, so the pidfd is the resident's (a Session's first request brings
// that answer; Stop and Alive send a ping for it). Stop asks it to exit and
// waits on the pidfd until the whole process is gone (its sockets close with
// its last thread), then kills it through the pidfd if it took more than two
// seconds. While it runs, a resident holds a lock (flock) on its state root's
// directory: one started while another whose control socket was removed by
// hand still runs (and holds its ports and DNS listeners until it notices)
// waits for that one to exit, three seconds at most, before it is ready.
//
// Invariants: the only sockets the resident opens itself are its connections
// to the targets of held ports, and its DNS listeners and upstream queries;
// it binds no port of its own for publishing. Each sandbox that has held
// ports has its namespace given with them (path and ID); the resident keeps
// it open, so its inode cannot be reused, and drops all the sandbox's ports
// within a second once that path no longer names that namespace. Its memory
// grows with the ports it holds (one goroutine waiting on each held socket,
// no buffer while waiting), the connections and flows it proxies (at most
// maxUDPFlows per UDP port) and its zones. It exits when asked, on SIGTERM,
// and by itself within a second when its state root or its control socket
// no longer names what it named at start. The process that starts it reaps
// it when it exits, waiting in Go's poller rather than on a thread, so a
// long-running program that embeds the engine keeps no zombies.
package resident

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/resolver"
)

// Command is the hidden nsnet subcommand that runs the resident.
const Command = "__resident"

// ErrNotRunning is wrapped when no live resident answers on the root's
// control socket.
var ErrNotRunning = errors.New("no resident process answers")

// timeout bounds each exchange with the resident, and its start.
const timeout = 10 * time.Second

// maxRights is how many descriptors one request carries (the kernel's
// SCM_MAX_FD is 253).
const maxRights = 250

// SocketPath is the control socket of root's resident.
func SocketPath(root string) string { return filepath.Join(root, "resident.sock") }

// Namespace names a sandbox's network namespace: the path to it and the ID
// (device and inode) of the namespace it must name.
type Namespace struct {
	Path string `json:"path"`
	Dev  uint64 `json:"dev"`
	Ino  uint64 `json:"ino"`
	Born int64  `json:"born,omitempty"` // when its nsfs file was made (see internal/netns.ID); 0: unknown
}

// ID is the namespace's ID.
func (n Namespace) ID() netns.ID { return netns.ID{Dev: n.Dev, Ino: n.Ino, Born: n.Born} }

// Same reports whether n and o are one namespace at one path (netns.ID.Same:
// Born is compared only where both know it, and a resident of an older nsnet
// does not).
func (n Namespace) Same(o Namespace) bool { return n.Path == o.Path && n.ID().Same(o.ID()) }

// Port is a host port for the resident to hold and proxy: its key, its
// bound socket (a listening TCP socket or a UDP socket), and its target, the
// sandbox's address and container port.
type Port struct {
	Key    string
	Sock   *os.File
	Target netip.AddrPort
}

// request is one control message, a JSON line; "hold" requests carry one
// descriptor per key, in order.
type request struct {
	Op      string     `json:"op"` // ping, status, hold, release, retarget, drop, serve or stop
	Sandbox string     `json:"sandbox,omitempty"`
	NetNS   *Namespace `json:"netns,omitempty"`   // hold: the sandbox's namespace
	Keys    []string   `json:"keys,omitempty"`    // hold, release, retarget
	Targets []string   `json:"targets,omitempty"` // hold, retarget: where each key's traffic goes, "IP:PORT"
	Names   *Names     `json:"names,omitempty"`   // serve, drop
}

// Names is a change to the zones the resident serves: Zones replace those
// of Networks (every zone, if All), then each of Patches changes records of
// one zone. A command that adds or removes one sandbox sends a patch (its
// cost does not grow with the zone); starting the resident and gc send whole
// zones.
type Names struct {
	Zones    []resolver.Zone `json:"zones,omitempty"`
	Networks []string        `json:"networks,omitempty"`
	All      bool            `json:"all,omitempty"`
	Patches  []Patch         `json:"patches,omitempty"`
}

// Patch changes the zone of network Zone.Network: it drops the records at
// the addresses of Drop and puts those of Zone.Records (each replacing the
// record at its address), and gives the zone Zone's address, internal flag
// and upstream servers. A zone left without records is served no more.
type Patch = resolver.Patch

// reply answers a request, as a JSON line.
type reply struct {
	Pid       int             `json:"pid,omitempty"`       // the resident's own pid
	Sandboxes []Held          `json:"sandboxes,omitempty"` // status
	Zones     []resolver.Zone `json:"zones,omitempty"`     // status
	Error     string          `json:"error,omitempty"`
}

// Held is what the resident holds for one sandbox.
type Held struct {
	Sandbox string    `json:"sandbox"`
	NetNS   Namespace `json:"netns"`
	Keys    []string  `json:"keys"`    // sorted
	Targets []string  `json:"targets"` // where each key's traffic goes ("IP:PORT"), in the same order
}

// Status is what a live resident says of itself.
type Status struct {
	Pid       int
	Sandboxes []Held          // by sandbox name
	Zones     []resolver.Zone // by network name, as they were given
}

// Start starts an empty resident for root and returns its pid once it
// listens on root's control socket; the calling process reaps it when it
// exits. A socket left by a resident that is gone is replaced.
func Start(self, root string) (int, error) {
	path := SocketPath(root)
	ctl, err := bindControl(path)
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	pid, err := start(exec.Command(self, Command, "--root", root), ctl)
	if err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("start the resident process of state root %s: %w", root, err)
	}
	return pid, nil
}

// bindControl binds the control socket at path; the resident listens on it
// itself, so that its peers see the resident's pid.
func bindControl(path string) (*os.File, error) {
	os.Remove(path) // the socket of a resident that is gone
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("resident control socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind the resident control socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// start runs cmd with the control socket as fd 3 and a pipe as fd 4, on which
// the resident says "ready" once it listens, or why it cannot start.
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

// awaitReady reads what the resident says on its ready pipe until it closes it.
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

// client is a connection to a resident. peer is the pid SO_PEERCRED gave
// and pidfd refers to it; pid is set once the process has answered as peer
// on this connection (the first answer to call: dial's ping, or a Session's
// first request), and only then is pidfd known to be the resident's.
type client struct {
	c     *net.UnixConn
	r     *bufio.Reader
	peer  int
	pid   int
	pidfd int
}

// dial connects to root's resident and checks who it is, with a round trip
// of its own; an error wraps ErrNotRunning.
func dial(root string) (*client, error) {
	h, err := connect(root)
	if err != nil {
		return nil, err
	}
	if _, err := h.call(request{Op: "ping"}, nil); err != nil {
		h.close()
		if errors.Is(err, ErrNotRunning) {
			return nil, err
		}
		return nil, fmt.Errorf("resident process (%s): %w: %w", SocketPath(root), ErrNotRunning, err)
	}
	return h, nil
}

// connect connects to root's resident and opens a pidfd on the socket's
// peer, which the first answer on the connection proves (call); an error
// wraps ErrNotRunning. A Session's requests go on it at once, saving the
// ping's round trip: a request is only ever sent to the process that listens
// on root's control socket, in a directory only root can write (checkTrusted
// in the engine), so what the first answer proves is that the pidfd is its.
func connect(root string) (*client, error) {
	path := SocketPath(root)
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("resident process (%s): %w: %w", path, ErrNotRunning, err)
	}
	h := &client{c: c, r: bufio.NewReader(c), pidfd: -1}
	if err := h.openPeer(); err != nil {
		h.close()
		return nil, fmt.Errorf("resident process (%s): %w: %w", path, ErrNotRunning, err)
	}
	return h, nil
}

// openPeer opens a pidfd on the socket's peer.
func (h *client) openPeer() error {
	cred, err := peerCred(h.c)
	if err != nil {
		return err
	}
	if cred.Pid <= 0 {
		return fmt.Errorf("the socket's peer has no pid (%d)", cred.Pid)
	}
	if h.pidfd, err = unix.PidfdOpen(int(cred.Pid), 0); err != nil {
		return fmt.Errorf("pidfd_open %d: %w", cred.Pid, err)
	}
	h.peer = int(cred.Pid)
	return nil
}

// identified checks, on the connection's first answer, that the process
// answering is the socket's peer: a pid is not reused while its process
// lives, so the pidfd is then the resident's.
func (h *client) identified(rep reply) error {
	if h.pid != 0 {
		return nil
	}
	if rep.Pid != h.peer {
		return fmt.Errorf("resident process (%s): %w: it answers as pid %d, but pid %d listens on the socket",
			h.c.RemoteAddr(), ErrNotRunning, rep.Pid, h.peer)
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

// transportError is a request the connection failed to carry, or whose
// answer it did not bring (in time, if timedOut: the resident may still
// apply it).
type transportError struct {
	err      error
	timedOut bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

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
		return reply{}, &transportError{err: fmt.Errorf("send %s to the resident process: %w", req.Op, err)}
	}
	line, err := h.r.ReadBytes('\n')
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return reply{}, &transportError{timedOut: true, err: fmt.Errorf(
			"no answer from the resident process to %s within %v: the process listening on %s (pid %d) may be stopped or stuck: stop it (kill -9 %d), then run nsnet gc to start another",
			req.Op, timeout, h.c.RemoteAddr(), h.peer, h.peer)}
	}
	if err != nil {
		return reply{}, &transportError{err: fmt.Errorf("no answer from the resident process to %s: %w", req.Op, err)}
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return reply{}, fmt.Errorf("bad answer from the resident process to %s: %w", req.Op, err)
	}
	if err := h.identified(rep); err != nil {
		return reply{}, err
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("resident process: %s", rep.Error)
	}
	return rep, nil
}

// Session talks to root's resident over one checked connection, dialled at
// its first request and kept for the next ones (one operation of a command
// sends several: the ports and the names of a sandbox), until Close. If the
// connection breaks, the next request dials again, so a resident that died
// meanwhile is reported as ErrNotRunning, as a fresh dial would.
type Session struct {
	root string
	h    *client
}

// NewSession is a session with root's resident; it dials nothing yet.
func NewSession(root string) *Session { return &Session{root: root} }

// Close closes the session's connection, if one is open.
func (s *Session) Close() {
	if s.h != nil {
		s.h.close()
		s.h = nil
	}
}

// conn returns the session's connection, dialling it if none is open.
func (s *Session) conn() (*client, error) {
	if s.h == nil {
		h, err := connect(s.root)
		if err != nil {
			return nil, err
		}
		s.h = h
	}
	return s.h, nil
}

// call sends req with fds on the session's connection. A connection that
// was open already and fails to carry it (the resident exited since) is
// dialled anew and req sent again: a resident that exited did not apply it
// (it applies a request before it answers, and answers before it exits).
// One that does not answer in time is not asked again, and its connection,
// on which the late answer could still come, is closed.
func (s *Session) call(req request, fds []int) (reply, error) {
	reused := s.h != nil
	h, err := s.conn()
	if err != nil {
		return reply{}, err
	}
	rep, err := h.call(req, fds)
	var broken *transportError
	if h.pid == 0 { // the process answering is not the socket's peer, or none answered
		s.Close()
		if errors.As(err, &broken) && !broken.timedOut {
			// Closed without an answer, as by a resident that is exiting: one
			// started now is given the whole state, whatever this one applied.
			return rep, fmt.Errorf("resident process (%s): %w: %w", SocketPath(s.root), ErrNotRunning, err)
		}
		return rep, err
	}
	if errors.As(err, &broken) {
		s.Close()
		if reused && !broken.timedOut {
			return s.call(req, fds)
		}
	}
	return rep, err
}

// Hold hands ports of sandbox, whose namespace is ns, to root's resident,
// all or none; the caller may close its copies of the sockets afterwards. A
// key held already is replaced. If the resident holds ports of a sandbox of
// that name in another namespace, those are let go first.
func (s *Session) Hold(sandbox string, ns Namespace, ports []Port) error {
	for i := 0; i < len(ports); i += maxRights {
		req := request{Op: "hold", Sandbox: sandbox, NetNS: &ns}
		var fds []int
		for _, p := range ports[i:min(i+maxRights, len(ports))] {
			req.Keys = append(req.Keys, p.Key)
			req.Targets = append(req.Targets, p.Target.String())
			fds = append(fds, int(p.Sock.Fd()))
		}
		if _, err := s.call(req, fds); err != nil {
			if i > 0 {
				s.call(request{Op: "release", Sandbox: sandbox, Keys: keys(ports[:i])}, nil)
			}
			return fmt.Errorf("hold the ports of sandbox %s: %w", sandbox, err)
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

// Release asks root's resident to close the sockets of sandbox's keys (those
// it does not hold are no error); an error wraps ErrNotRunning if no
// resident answers (so none holds them).
func (s *Session) Release(sandbox string, keys []string) error {
	_, err := s.call(request{Op: "release", Sandbox: sandbox, Keys: keys}, nil)
	return err
}

// Retarget points sandbox's held keys at new targets, all or none; the
// connections and flows proxied to the old ones are closed.
func (s *Session) Retarget(sandbox string, keys []string, targets []netip.AddrPort) error {
	req := request{Op: "retarget", Sandbox: sandbox, Keys: keys}
	for _, t := range targets {
		req.Targets = append(req.Targets, t.String())
	}
	_, err := s.call(req, nil)
	return err
}

// Drop asks root's resident to let go of every port of sandbox (a sandbox
// it holds nothing of is no error), then to serve its zones as names
// changes them (usually: patches that drop the sandbox's records), in one
// request.
func (s *Session) Drop(sandbox string, names Names) error {
	req := request{Op: "drop", Sandbox: sandbox}
	if !names.empty() {
		req.Names = &names
	}
	_, err := s.call(req, nil)
	return err
}

// empty says whether n changes nothing.
func (n Names) empty() bool {
	return len(n.Zones) == 0 && len(n.Networks) == 0 && !n.All && len(n.Patches) == 0
}

// Serve makes root's resident serve the zones as n changes them, all or
// none; it returns once the new zones' listeners are bound and the names
// taken away are never answered again.
func (s *Session) Serve(n Names) error {
	_, err := s.call(request{Op: "serve", Names: &n}, nil)
	return err
}

// Probe asks root's resident what it holds and serves; an error wraps
// ErrNotRunning if no resident answers.
func (s *Session) Probe() (Status, error) {
	rep, err := s.call(request{Op: "status"}, nil)
	if err != nil {
		return Status{}, err
	}
	return Status{Pid: s.h.pid, Sandboxes: rep.Sandboxes, Zones: rep.Zones}, nil
}

// Start closes the session's connection and starts a resident (see Start).
func (s *Session) Start(self string) (int, error) {
	s.Close()
	return Start(self, s.root)
}

// Stop closes the session's connection and stops the resident (see Stop).
func (s *Session) Stop() error {
	s.Close()
	return Stop(s.root)
}

// Alive returns the pid of root's resident if it is alive and answers.
func Alive(root string) (int, bool) {
	h, err := dial(root)
	if err != nil {
		return 0, false
	}
	defer h.close()
	return h.pid, true
}

// Stop ends root's resident if one answers, waits until it has exited (so
// its ports are free again and its DNS listeners closed), and removes its
// control socket. A resident that is already gone is not an error.
func Stop(root string) error {
	path := SocketPath(root)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil // no socket: no resident answers, and nothing to remove
	}
	h, err := dial(root)
	if err == nil {
		err = h.stop()
		h.close()
	}
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the resident's control socket: %w", err)
	}
	return nil
}

// stop asks the resident to exit (or sends it SIGTERM if it does not
// answer), and kills it if it has not exited two seconds later. Signals go
// through the pidfd only, never to a pid.
func (h *client) stop() error {
	if _, err := h.call(request{Op: "stop"}, nil); err != nil {
		unix.PidfdSendSignal(h.pidfd, unix.SIGTERM, nil, 0)
	}
	if exited(h.pidfd, 2*time.Second) {
		return nil
	}
	if err := unix.PidfdSendSignal(h.pidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill the resident process (pid %d): %w", h.pid, err)
	}
	if exited(h.pidfd, timeout) {
		return nil
	}
	return fmt.Errorf("the resident process (pid %d) has not exited %v after SIGKILL", h.pid, timeout)
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

// RaiseFileLimit makes room for n more open files: it raises the soft limit,
// and the hard one if it must and may (CAP_SYS_RESOURCE), for commands and
// the resident, which hold many sockets.
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
