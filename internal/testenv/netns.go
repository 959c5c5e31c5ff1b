package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// InNS runs fn on a fresh goroutine locked to its OS thread, after setns
// into the network namespace at path, and waits for it. Afterwards the
// thread goes back to its original namespace and is unlocked only if that
// worked; otherwise it stays locked and Go discards it when the goroutine
// ends (the pattern of containernetworking/plugins pkg/ns Do). Sockets
// created by fn belong to the namespace; goroutines started by fn do not
// run in it, nor does code needing name resolution or other threads.
func InNS(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("testenv: open netns: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() { errc <- runLocked(int(target.Fd()), fn) }()
	return <-errc
}

func runLocked(fd int, fn func() error) error {
	runtime.LockOSThread()
	self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	orig, err := os.Open(self)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testenv: open current netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("testenv: setns: %w", err)
	}
	defer func() {
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// EchoServer is a TCP server inside a namespace. For each connection it
// writes "from <remote ip>\n", then echoes whatever it reads.
type EchoServer struct {
	Addr string // the address actually listened on

	ln    net.Listener
	wg    sync.WaitGroup
	once  sync.Once
	mu    sync.Mutex
	seen  []string
	conns map[net.Conn]bool
}

// sockets are what each test opened in namespaces and has not closed yet.
var (
	socketsMu sync.Mutex
	sockets   = map[testing.TB][]io.Closer{}
)

// CloseAtEnd closes c, a socket (or server) t opened in a namespace, when t
// ends or calls AssertClean, whichever comes first: a socket keeps the
// namespace it was made in alive, and with it the veth pairs nsnet leaves to
// go with a removed sandbox's namespace.
func CloseAtEnd(t testing.TB, c io.Closer) {
	socketsMu.Lock()
	sockets[t] = append(sockets[t], c)
	socketsMu.Unlock()
	t.Cleanup(func() { closeSockets(t) })
}

// closeSockets closes what t registered with CloseAtEnd.
func closeSockets(t testing.TB) {
	socketsMu.Lock()
	cs := sockets[t]
	delete(sockets, t)
	socketsMu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// StartTCPEcho listens on addr (an IP literal and port, e.g.
// "198.51.100.7:7777" or "0.0.0.0:7777") inside netns ns and serves until
// the test ends (or calls AssertClean); a t.Cleanup stops it and closes its
// connections.
func StartTCPEcho(t testing.TB, ns, addr string) *EchoServer {
	t.Helper()
	var ln net.Listener
	err := InNS(nsPath(ns), func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("testenv: echo server on %s in %s: %v", addr, ns, err)
	}
	s := &EchoServer{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	CloseAtEnd(t, s)
	return s
}

// Seen returns the remote IP of every connection accepted so far, in order.
func (s *EchoServer) Seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Close stops the server, closes open connections and waits for them.
func (s *EchoServer) Close() error {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			reset(c)
		}
		s.conns = nil
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

func (s *EchoServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		ip := remoteIP(c)
		s.mu.Lock()
		open := s.conns != nil
		if open {
			s.conns[c] = true
			s.seen = append(s.seen, ip)
			s.wg.Add(1)
		}
		s.mu.Unlock()
		if !open {
			c.Close()
			return
		}
		go s.handle(c, ip)
	}
}

func (s *EchoServer) handle(c net.Conn, ip string) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		reset(c)
	}()
	if _, err := fmt.Fprintf(c, "from %s\n", ip); err == nil {
		io.Copy(c, c)
	}
}

// reset closes a TCP connection with a reset instead of the closing
// handshake, which leaves nothing of it in the kernel: a connection still
// closing keeps its namespace alive (for up to minutes if the other end was
// cut off meanwhile), and with it the veth pairs nsnet leaves to go with a
// removed sandbox's namespace.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// TCPHello dials addr (IP literal and port) from inside netns ns, the
// socket being created via InNS, and returns the first line the server
// sends, without its newline (e.g. "from 203.0.113.2"). timeout bounds the
// dial and, separately, the read.
func TCPHello(ns, addr string, timeout time.Duration) (string, error) {
	c, err := DialIn(ns, addr, timeout)
	if err != nil {
		return "", err
	}
	defer reset(c)
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("testenv: reading from %s in %s: %w", addr, ns, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// DialIn opens a TCP connection to addr (IP literal and port) from inside
// netns ns.
func DialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := InNS(nsPath(ns), func() (err error) {
		c, err = (&net.Dialer{Timeout: timeout}).Dial("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: dial %s in %s: %w", addr, ns, err)
	}
	return c, nil
}
