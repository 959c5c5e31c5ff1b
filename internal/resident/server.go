package resident

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/resolver"
)

// Args are the resident's flags.
type Args struct {
	Root string // the state root
}

// Main runs the resident. Its control socket, bound by nsnet, is fd 3; on fd
// 4 it says "ready" once it listens, or why it cannot start. It returns when
// told to stop, or when its state root or control socket is gone.
func Main(a Args) error {
	report := os.NewFile(4, "ready")
	s, err := newServer(a)
	if err != nil {
		fmt.Fprintln(report, err)
		report.Close()
		return err
	}
	fmt.Fprintln(report, "ready")
	report.Close()
	return s.run()
}

// server is a running resident.
type server struct {
	ln    *net.UnixListener
	marks []mark // the state root and the control socket
	stop  chan struct{}
	once  sync.Once

	mu        sync.Mutex
	sandboxes map[string]*sandbox // by name: those whose ports it holds
	zones     map[string]*book    // by network: what dns serves
	dns       *resolver.Server
}

// sandbox is the ports the resident holds for one sandbox, and its
// namespace, kept open: its ports go when the path names it no longer.
type sandbox struct {
	ns   mark
	id   Namespace
	held map[string]held
}

// held is a socket the resident holds and proxies, and where it proxies to.
type held struct {
	proxy  proxy
	target string
}

func newServer(a Args) (*server, error) {
	RaiseFileLimit(1 << 16) // sockets arrive later; without room, recvmsg drops them
	s := &server{stop: make(chan struct{}), sandboxes: map[string]*sandbox{}, zones: map[string]*book{}}
	for _, m := range []mark{
		{what: "state root", path: a.Root, pin: true},
		{what: "control socket", path: SocketPath(a.Root), own: true}, // the socket pins its inode
	} {
		m, err := m.take()
		if err != nil {
			s.unpin()
			return nil, err
		}
		s.marks = append(s.marks, m)
	}
	if err := succeed(s.marks[0]); err != nil {
		s.unpin()
		return nil, err
	}
	var err error
	if s.dns, err = resolver.New(); err != nil {
		s.unpin()
		return nil, err
	}
	if err := unix.Listen(3, 128); err != nil {
		s.unpin()
		return nil, fmt.Errorf("listen on the control socket: %w", err)
	}
	f := os.NewFile(3, "control")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		s.unpin()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s.ln = ln.(*net.UnixListener)
	return s, nil
}

// predecessorWait bounds how long a resident waits for the one it replaces,
// which exits within a second of its control socket naming another.
const predecessorWait = 3 * time.Second

// succeed takes the lock a resident holds on its state root (the directory
// it pins) while it runs; the kernel lets go of it when the process exits.
// A resident whose control socket was removed by hand still holds its ports
// and DNS listeners until it notices, within a second, and exits; the new
// one waits for that, so that binding them anew does not fail.
func succeed(root mark) error {
	for deadline := time.Now().Add(predecessorWait); ; time.Sleep(20 * time.Millisecond) {
		err := unix.Flock(int(root.f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil // locked, or the root's file system cannot lock: the control socket still tells residents apart
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another resident process of this state root (%s) still runs %v after its control socket was replaced: stop it, then retry",
				lockHolder(root), predecessorWait)
		}
	}
}

// lockHolder names the process that holds the flock on m's file, from
// /proc/locks, or says it is unknown.
func lockHolder(m mark) string {
	raw, err := os.ReadFile("/proc/locks")
	if err != nil {
		return "pid unknown"
	}
	file := fmt.Sprintf("%02x:%02x:%d", unix.Major(m.dev), unix.Minor(m.dev), m.ino)
	for _, line := range strings.Split(string(raw), "\n") {
		// 1: FLOCK  ADVISORY  WRITE 4242 00:2a:1234 0 EOF
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == file {
			return "pid " + f[4]
		}
	}
	return "pid unknown"
}

func (s *server) unpin() {
	for _, m := range s.marks {
		m.close()
	}
}

// mark is a path that must keep naming the file it named at start.
type mark struct {
	what, path string
	pin        bool // keep the file open, so that its inode is not freed and reused
	own        bool // the resident's own socket: removed when it exits
	dev, ino   uint64
	born       int64 // change time: for a namespace's file, when the kernel made it (see internal/netns.ID)
	f          *os.File
}

// take records (and pins) the file that m's path names now.
func (m mark) take() (mark, error) {
	var st unix.Stat_t
	var err error
	if m.pin {
		if m.f, err = os.Open(m.path); err == nil {
			if err = unix.Fstat(int(m.f.Fd()), &st); err != nil {
				m.f.Close()
			}
		}
	} else {
		err = unix.Stat(m.path, &st)
	}
	if err != nil {
		return m, fmt.Errorf("%s %s: %w", m.what, m.path, err)
	}
	m.dev, m.ino, m.born = st.Dev, st.Ino, st.Ctim.Nano()
	return m, nil
}

// holds reports whether m's path still names the file it named at start.
func (m mark) holds() bool {
	var st unix.Stat_t
	return unix.Stat(m.path, &st) == nil && st.Dev == m.dev && st.Ino == m.ino
}

func (m mark) close() {
	if m.f != nil {
		m.f.Close()
	}
}

// run serves requests until the resident is told to stop or a mark no
// longer holds; every second it lets go of the ports of sandboxes whose
// namespace is gone. At the end it removes its control socket if that is
// still its own.
func (s *server) run() error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	go s.accept()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for s.allHold() {
		select {
		case <-sigs:
			return s.shutdown()
		case <-s.stop:
			return s.shutdown()
		case <-tick.C:
			s.dropVanished()
		}
	}
	return s.shutdown()
}

func (s *server) allHold() bool {
	for _, m := range s.marks {
		if !m.holds() {
			return false
		}
	}
	return true
}

// dropVanished lets go of the ports of every sandbox whose namespace path
// no longer names the namespace it was given with them.
func (s *server) dropVanished() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, sb := range s.sandboxes {
		if !sb.ns.holds() {
			s.drop(name)
		}
	}
}

// shutdown removes the control socket's path if it still names the
// resident's own socket, and then closes it: once closed, its inode number
// may be given to a socket that a command binds at that path for the next
// resident, which would then pass for this one's and be removed.
func (s *server) shutdown() error {
	for _, m := range s.marks {
		if m.own && m.holds() {
			os.Remove(m.path)
		}
	}
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dns.Close()
	return nil // the held sockets close as the process exits
}

func (s *server) accept() {
	for {
		c, err := s.ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // e.g. out of files for a moment
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go s.serve(c)
	}
}

// serve answers the requests of one connection, in order.
func (s *server) serve(c *net.UnixConn) {
	defer c.Close()
	in := &reader{c: c, buf: make([]byte, 64<<10), oob: make([]byte, unix.CmsgSpace(4*maxRights))}
	for {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		req, fds, err := in.next()
		var rep reply
		var bad badRequest
		switch {
		case errors.As(err, &bad):
			closeAll(fds)
			rep = reply{Pid: os.Getpid(), Error: bad.Error()}
		case err != nil:
			closeAll(fds)
			return
		default:
			rep = s.handle(req, fds)
		}
		raw, _ := json.Marshal(rep)
		if _, err := c.Write(append(raw, '\n')); err != nil {
			return
		}
		if req.Op == "stop" && rep.Error == "" {
			s.once.Do(func() { close(s.stop) })
			return
		}
	}
}

// handle carries out one request; fds are the descriptors that came with it.
func (s *server) handle(req request, fds []int) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Op != "hold" {
		closeAll(fds)
	}
	var err error
	switch req.Op {
	case "ping", "stop":
	case "status":
		return s.status()
	case "hold":
		err = s.hold(req, fds)
	case "release":
		s.release(req.Sandbox, req.Keys)
	case "retarget":
		err = s.retarget(req)
	case "drop":
		s.drop(req.Sandbox)
		if req.Names != nil {
			err = s.serveNames(req)
		}
	case "serve":
		err = s.serveNames(req)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		return reply{Pid: os.Getpid(), Error: err.Error()}
	}
	return reply{Pid: os.Getpid()}
}

// status answers with what is held, by sandbox, and the zones served.
func (s *server) status() reply {
	rep := reply{Pid: os.Getpid()}
	for _, name := range slices.Sorted(maps.Keys(s.sandboxes)) {
		sb := s.sandboxes[name]
		h := Held{Sandbox: name, NetNS: sb.id, Keys: slices.Sorted(maps.Keys(sb.held))}
		for _, k := range h.Keys {
			h.Targets = append(h.Targets, sb.held[k].target)
		}
		rep.Sandboxes = append(rep.Sandboxes, h)
	}
	for _, n := range slices.Sorted(maps.Keys(s.zones)) {
		rep.Zones = append(rep.Zones, s.zones[n].full())
	}
	return rep
}

// hold starts proxying each socket of fds to its target, all or none; a key
// held already is replaced. The descriptors are consumed either way.
func (s *server) hold(req request, fds []int) error {
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("descriptor %d", i))
	}
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close() // what newProxy did not take
			}
		}
	}()
	targets, err := s.checkHold(req, files)
	if err != nil {
		return err
	}
	sb, err := s.sandboxIn(req.Sandbox, *req.NetNS)
	if err != nil {
		return err
	}
	started := make([]proxy, 0, len(files))
	for i, f := range files {
		files[i] = nil
		p, err := newProxy(f, targets[i])
		if err != nil {
			for _, p := range started {
				p.close()
			}
			if len(sb.held) == 0 {
				s.drop(req.Sandbox)
			}
			return fmt.Errorf("key %s: %w", req.Keys[i], err)
		}
		started = append(started, p)
	}
	for i, k := range req.Keys {
		if old, ok := sb.held[k]; ok {
			old.proxy.close()
		}
		sb.held[k] = held{proxy: started[i], target: targets[i].String()}
	}
	return nil
}

// checkHold validates a hold request before anything changes: a sandbox and
// its namespace, one socket and one IPv4 target per key.
func (s *server) checkHold(req request, files []*os.File) ([]netip.AddrPort, error) {
	if req.Sandbox == "" || req.NetNS == nil || req.NetNS.Path == "" {
		return nil, errors.New("hold needs a sandbox and its namespace")
	}
	if len(files) != len(req.Keys) || len(req.Targets) != len(req.Keys) {
		return nil, fmt.Errorf("got %d sockets and %d targets for %d keys", len(files), len(req.Targets), len(req.Keys))
	}
	targets, err := parseTargets(req.Keys, req.Targets)
	if err != nil {
		return nil, err
	}
	for i, k := range req.Keys {
		if _, err := socketKind(files[i]); err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
	}
	return targets, nil
}

func parseTargets(keys, raw []string) ([]netip.AddrPort, error) {
	if len(raw) != len(keys) {
		return nil, fmt.Errorf("got %d targets for %d keys", len(raw), len(keys))
	}
	out := make([]netip.AddrPort, len(keys))
	for i, k := range keys {
		t, err := netip.ParseAddrPort(raw[i])
		if err != nil || !t.Addr().Is4() {
			return nil, fmt.Errorf("key %s: bad target %q: want an IPv4 address and port", k, raw[i])
		}
		out[i] = t
	}
	return out, nil
}

// sandboxIn returns the entry of the named sandbox in namespace ns, making
// it (and pinning the namespace) if there is none; an entry of that name in
// another namespace is dropped first (a sandbox of the same name made anew).
func (s *server) sandboxIn(name string, ns Namespace) (*sandbox, error) {
	if sb := s.sandboxes[name]; sb != nil && sb.id == ns && sb.ns.holds() {
		return sb, nil
	}
	s.drop(name)
	m, err := mark{what: "namespace of sandbox " + name, path: ns.Path, pin: true}.take()
	if err != nil {
		return nil, err
	}
	if m.dev != ns.Dev || m.ino != ns.Ino || (ns.Born != 0 && m.born != ns.Born) {
		m.close()
		return nil, fmt.Errorf("namespace of sandbox %s: %s is namespace %d:%d made at %d, not %d:%d made at %d: it was replaced (nsnet gc forgets the sandbox)",
			name, ns.Path, m.dev, m.ino, m.born, ns.Dev, ns.Ino, ns.Born)
	}
	sb := &sandbox{ns: m, id: ns, held: map[string]held{}}
	s.sandboxes[name] = sb
	return sb, nil
}

// release closes the sockets of name's keys; a sandbox left with none is
// forgotten, and its namespace let go.
func (s *server) release(name string, keys []string) {
	sb := s.sandboxes[name]
	if sb == nil {
		return
	}
	for _, k := range keys {
		if h, ok := sb.held[k]; ok {
			h.proxy.close()
			delete(sb.held, k)
		}
	}
	if len(sb.held) == 0 {
		s.drop(name)
	}
}

// drop closes every socket of the named sandbox and lets go of its namespace.
func (s *server) drop(name string) {
	sb := s.sandboxes[name]
	if sb == nil {
		return
	}
	for _, h := range sb.held {
		h.proxy.close()
	}
	sb.ns.close()
	delete(s.sandboxes, name)
}

// retarget points keys of a sandbox at new targets, all or none.
func (s *server) retarget(req request) error {
	targets, err := parseTargets(req.Keys, req.Targets)
	if err != nil {
		return err
	}
	sb := s.sandboxes[req.Sandbox]
	for _, k := range req.Keys {
		if sb == nil || sb.held[k].proxy == nil {
			return fmt.Errorf("sandbox %s: key %s is not held", req.Sandbox, k)
		}
	}
	for i, k := range req.Keys {
		h := sb.held[k]
		h.proxy.retarget(targets[i])
		h.target = targets[i].String()
		sb.held[k] = h
	}
	return nil
}

// serveNames changes the zones as req.Names says, all or none:
// resolver.Update returns once new listeners are bound and the names taken
// away are answered no more.
func (s *server) serveNames(req request) error {
	n := req.Names
	if n == nil {
		return errors.New("serve needs names")
	}
	if patched, err := s.patchNames(n); patched || err != nil {
		return err
	}
	next := map[string]*book{}
	if !n.All {
		for nw, b := range s.zones {
			next[nw] = b.clone()
		}
		for _, nw := range n.Networks {
			delete(next, nw)
		}
	}
	for _, z := range n.Zones {
		if err := checkRecords(z.Network, z.Records); err != nil {
			return err
		}
		if !n.All && !slices.Contains(n.Networks, z.Network) {
			return fmt.Errorf("zone of network %s given, but not named among the networks to replace", z.Network)
		}
		if _, dup := next[z.Network]; dup {
			return fmt.Errorf("network %s is given twice", z.Network)
		}
		next[z.Network] = bookOf(z)
	}
	for _, p := range n.Patches {
		if err := checkRecords(p.Zone.Network, p.Zone.Records); err != nil {
			return err
		}
		b := next[p.Zone.Network]
		if b == nil {
			b = bookOf(resolver.Zone{})
		}
		if b.patch(p); len(b.records) > 0 {
			next[p.Zone.Network] = b
		} else {
			delete(next, p.Zone.Network)
		}
	}
	all := make([]resolver.Zone, 0, len(next))
	for _, nw := range slices.Sorted(maps.Keys(next)) {
		all = append(all, next[nw].full())
	}
	if err := s.dns.Update(all); err != nil {
		return err
	}
	s.zones = next
	return nil
}

// patchNames applies a request of patches alone in place (resolver.Patch),
// where the resolver can; patched says it did.
func (s *server) patchNames(n *Names) (patched bool, err error) {
	if n.All || len(n.Zones) > 0 || len(n.Networks) > 0 || len(n.Patches) == 0 {
		return false, nil
	}
	for _, p := range n.Patches {
		if s.zones[p.Zone.Network] == nil {
			return false, nil
		}
	}
	if patched, err = s.dns.Patch(n.Patches); !patched || err != nil {
		return false, err
	}
	for _, p := range n.Patches {
		s.zones[p.Zone.Network].patch(p)
	}
	return true, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// badRequest is a request that was read but cannot be carried out.
type badRequest string

func (b badRequest) Error() string { return string(b) }

// maxRequest bounds a request line (the zones of every network, or a
// release of every port of a sandbox).
const maxRequest = 64 << 20

// reader splits a control connection into requests: one JSON line each,
// with the descriptors that came with it.
type reader struct {
	c        *net.UnixConn
	pending  []byte
	buf, oob []byte
}

func (r *reader) next() (request, []int, error) {
	var fds []int
	truncated := false
	for {
		if i := bytes.IndexByte(r.pending, '\n'); i >= 0 {
			line := r.pending[:i]
			r.pending = slices.Clone(r.pending[i+1:])
			var req request
			switch err := json.Unmarshal(line, &req); {
			case err != nil:
				return req, fds, badRequest(fmt.Sprintf("bad request: %v", err))
			case truncated:
				return req, fds, badRequest("sockets were dropped: the resident process is out of open files (raise the limit with ulimit -n)")
			}
			return req, fds, nil
		}
		if len(r.pending) > maxRequest {
			return request{}, fds, errors.New("request too long")
		}
		n, oobn, flags, _, err := r.c.ReadMsgUnix(r.buf, r.oob)
		fds = append(fds, parseRights(r.oob[:oobn])...)
		truncated = truncated || flags&unix.MSG_CTRUNC != 0
		r.pending = append(r.pending, r.buf[:n]...)
		if err != nil {
			if err == io.EOF && len(r.pending) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return request{}, fds, err
		}
	}
}

func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if rights, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, rights...)
		}
	}
	return fds
}
