package holder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Args are a holder's flags.
type Args struct {
	Root    string // the state root
	Sandbox string // the sandbox whose ports it holds
	NetNS   string // the sandbox's namespace path (none: not watched)
}

// Main runs a holder. Its control socket, bound by nsnet, is fd 3; on fd 4 it
// says "ready" once it listens, or why it cannot start. It returns when told
// to stop, or when its state root, control socket or namespace is gone.
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

// server is a running holder.
type server struct {
	ln    *net.UnixListener
	mu    sync.Mutex
	held  map[string]held
	marks []mark
	stop  chan struct{}
	once  sync.Once
}

func newServer(a Args) (*server, error) {
	RaiseFileLimit(1 << 16) // sockets arrive later; without room, recvmsg drops them
	s := &server{held: map[string]held{}, stop: make(chan struct{})}
	watched := []mark{
		{what: "state root", path: a.Root, pin: true},
		{what: "control socket", path: SocketPath(a.Root, a.Sandbox), own: true}, // the socket pins its inode
		{what: "namespace of sandbox " + a.Sandbox, path: a.NetNS, pin: true},
	}
	for _, m := range watched {
		if m.path == "" {
			continue
		}
		m, err := m.take()
		if err != nil {
			return nil, err
		}
		s.marks = append(s.marks, m)
	}
	if err := unix.Listen(3, 128); err != nil {
		return nil, fmt.Errorf("listen on the control socket: %w", err)
	}
	f := os.NewFile(3, "control")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s.ln = ln.(*net.UnixListener)
	return s, nil
}

// mark is a path that must keep naming the file it named at start.
type mark struct {
	what, path string
	pin        bool // keep the file open, so that its inode is not freed and reused
	own        bool // the holder's own socket: removed when the holder exits
	dev, ino   uint64
	f          *os.File
}

// take records (and pins) the file that m's path names now.
func (m mark) take() (mark, error) {
	var st unix.Stat_t
	var err error
	if m.pin {
		if m.f, err = os.Open(m.path); err == nil {
			err = unix.Fstat(int(m.f.Fd()), &st)
		}
	} else {
		err = unix.Stat(m.path, &st)
	}
	if err != nil {
		return m, fmt.Errorf("%s %s: %w", m.what, m.path, err)
	}
	m.dev, m.ino = st.Dev, st.Ino
	return m, nil
}

// holds reports whether m's path still names the file it named at start.
func (m mark) holds() bool {
	var st unix.Stat_t
	return unix.Stat(m.path, &st) == nil && st.Dev == m.dev && st.Ino == m.ino
}

// run serves requests until the holder is told to stop or a mark no longer
// holds; then it removes its control socket if that is still its own.
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

func (s *server) shutdown() error {
	s.ln.Close()
	for _, m := range s.marks {
		if m.own && m.holds() {
			os.Remove(m.path)
		}
	}
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
			rep = reply{Error: bad.Error()}
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

// held is a socket the holder holds and proxies, and where it proxies to.
type held struct {
	proxy  proxy
	target string
}

// handle carries out one request; fds are the descriptors that came with it.
func (s *server) handle(req request, fds []int) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Op != "hold" {
		closeAll(fds)
	}
	switch req.Op {
	case "ping", "stop":
	case "list":
		return s.list()
	case "hold":
		if err := s.hold(req, fds); err != nil {
			return reply{Error: err.Error()}
		}
	case "release":
		for _, k := range req.Keys {
			if h, ok := s.held[k]; ok {
				h.proxy.close()
				delete(s.held, k)
			}
		}
	default:
		return reply{Error: fmt.Sprintf("unknown op %q", req.Op)}
	}
	return reply{Pid: os.Getpid()}
}

// list answers with the keys held, sorted, and their targets.
func (s *server) list() reply {
	keys := make([]string, 0, len(s.held))
	for k := range s.held {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	targets := make([]string, len(keys))
	for i, k := range keys {
		targets[i] = s.held[k].target
	}
	return reply{Pid: os.Getpid(), Keys: keys, Targets: targets}
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
			f.Close() // what newProxy did not take
		}
	}()
	if len(fds) != len(req.Keys) || len(req.Targets) != len(req.Keys) {
		return fmt.Errorf("got %d sockets and %d targets for %d keys", len(fds), len(req.Targets), len(req.Keys))
	}
	targets := make([]netip.AddrPort, len(req.Keys))
	for i, k := range req.Keys {
		t, err := netip.ParseAddrPort(req.Targets[i])
		if err != nil || !t.Addr().Is4() {
			return fmt.Errorf("key %s: bad target %q: want an IPv4 address and port", k, req.Targets[i])
		}
		if _, err := socketKind(files[i]); err != nil {
			return fmt.Errorf("key %s: %w", k, err)
		}
		targets[i] = t
	}
	started := make([]proxy, 0, len(files))
	for i, f := range files {
		files[i] = nil
		p, err := newProxy(f, targets[i])
		if err != nil {
			for _, p := range started {
				p.close()
			}
			return fmt.Errorf("key %s: %w", req.Keys[i], err)
		}
		started = append(started, p)
	}
	for i, k := range req.Keys {
		if old, ok := s.held[k]; ok {
			old.proxy.close()
		}
		s.held[k] = held{proxy: started[i], target: targets[i].String()}
	}
	return nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// badRequest is a request that was read but cannot be carried out.
type badRequest string

func (b badRequest) Error() string { return string(b) }

// maxRequest bounds a request line (a release of every port of a sandbox).
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
				return req, fds, badRequest("sockets were dropped: the port holder is out of open files (raise the limit with ulimit -n)")
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
