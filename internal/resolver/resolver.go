// Package resolver is nsnet's embedded DNS server: one Server, in the
// resident process of a state root, answers for every user network of that
// root (a Zone each) on the network's gateway address, port 53, UDP and TCP,
// as Docker's embedded resolver and aardvark-dns do. It is built on
// github.com/miekg/dns and writes no DNS wire format itself.
//
// What a zone answers, to a query that arrives on its address:
//
//   - Only its members are answered: a query whose source address is not the
//     address of one of the zone's records gets REFUSED. A sandbox that
//     reaches another network's gateway learns no name of that network, and
//     the resolver is no open resolver for anyone who can route to it.
//   - Its names (a record's name, short ID and aliases; case-insensitive;
//     with or without the trailing dot) resolve to the addresses of every
//     record that holds the name: A for IPv4 addresses, AAAA for IPv6. Another
//     type of a known name gets NOERROR without answers (NODATA). The reverse
//     name of a record's address (in-addr.arpa, ip6.arpa) has a PTR to the
//     record's first name. These answers are authoritative, with TTL 0, so no
//     cache in a sandbox keeps a name after it is removed.
//   - Any other question is forwarded, with its OPT record (EDNS0), to the
//     upstream servers of the querying record, or else of the zone, one after
//     the other until one answers with neither SERVFAIL nor REFUSED, each
//     within forwardTimeout; the answer goes back as it came (NXDOMAIN and
//     NODATA included). A query that came over TCP is forwarded over TCP; an
//     answer truncated by the upstream keeps its TC bit, so the client retries
//     over TCP. An internal zone never forwards (CVE-2024-29018), nor does a
//     zone without upstream servers: SERVFAIL.
//   - A reply larger than the client takes over UDP (512 bytes, or its EDNS0
//     size) is truncated with TC set (dns.Msg.Truncate); over TCP it is whole.
//
// Invariants: Update is all-or-nothing. It validates the whole
// configuration, binds the new addresses (an error names the address and
// leaves the previous configuration serving), then swaps each kept zone's
// names atomically and closes the addresses no longer wanted. Once Update
// returns no reply from the previous names is sent: the swap waits for the
// local answers that read them (a TCP write gives up after
// tcpWriteTimeout). Sockets, the listeners' and the upstream ones, belong to
// the network namespace of the thread that called New. A zone costs two
// sockets, two goroutines and its maps; a query costs the goroutine
// miekg/dns gives it and, when forwarded, one upstream socket at a time.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/nsnet/nsnet/internal/netns"
)

// Port is where every zone answers, UDP and TCP.
const Port = 53

// TTL of the zone's own answers: 0, as aardvark-dns has used since 1.13,
// since sandboxes come and go and change addresses, and the resolver is one
// bridge away (Docker uses 600 s and answers removed names from caches).
const TTL = 0

const (
	forwardTimeout  = 2 * time.Second    // per upstream server
	tcpWriteTimeout = 2 * time.Second    // a TCP client that does not read
	ednsSize        = dns.DefaultMsgSize // our UDP size, in replies and for reading queries
)

// Record is one sandbox's address on a zone's network, and its names there.
type Record struct {
	Addr     netip.Addr       // the sandbox's address on the zone's network
	Names    []string         // name, 12-hex short ID, aliases; case-insensitive, trailing dot optional
	Upstream []netip.AddrPort // the sandbox's own upstream servers (empty: the zone's)
}

// Zone is one user network: its names, answered on Listen:53.
type Zone struct {
	Network  string           // for errors
	Listen   netip.Addr       // the network's gateway: answers on Listen:53, UDP and TCP
	Internal bool             // never forwards: other names get SERVFAIL
	Upstream []netip.AddrPort // servers for other names
	Records  []Record
}

// Server serves the zones of one state root. Its methods may be called
// concurrently.
type Server struct {
	ns *os.File // the namespace to bind and dial in; nil: the process's own

	mu        sync.Mutex // serialises Update and Close
	listeners map[netip.Addr]*listener
	closed    bool
}

// New returns a Server with no zone, that binds its listeners and sends its
// upstream queries from the network namespace of the calling thread.
func New() (*Server, error) {
	self, err := netns.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("resolver: %w", err)
	}
	same, err := sameNamespace(self)
	if err != nil {
		self.Close()
		return nil, fmt.Errorf("resolver: %w", err)
	}
	s := &Server{ns: self, listeners: map[netip.Addr]*listener{}}
	if same {
		self.Close()
		s.ns = nil
	}
	return s, nil
}

// sameNamespace reports whether f is the namespace of the process: the one
// of every thread not locked to a goroutine, where a fresh goroutine runs.
// (/proc/self/ns/net will not do: it is the first thread's, and a locked
// goroutine may have taken that thread into another namespace.)
func sameNamespace(f *os.File) (bool, error) {
	id, err := netns.IDOf(f)
	if err != nil {
		return false, err
	}
	type result struct {
		id  netns.ID
		err error
	}
	c := make(chan result, 1)
	go func() {
		id, err := netns.Self()
		c <- result{id, err}
	}()
	proc := <-c
	return id == proc.id, proc.err
}

// inNamespace runs fn where the Server's sockets belong.
func (s *Server) inNamespace(fn func() error) error {
	if s.ns == nil {
		return fn()
	}
	return netns.DoIn(s.ns, fn)
}

// Update makes zones the whole configuration: zones with a new address are
// bound and served, kept addresses answer their new names, and addresses no
// longer listed are closed, all before it returns. On error nothing changed.
func (s *Server) Update(zones []Zone) error {
	tables, err := compile(zones)
	if err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("resolver: update after close: make a new server")
	}
	started, err := s.startNew(tables)
	if err != nil {
		return err
	}
	var old []*generation
	for addr, l := range s.listeners {
		if t, kept := tables[addr]; kept {
			old = append(old, l.swap(t))
		} else {
			l.shutdown()
			delete(s.listeners, addr)
		}
	}
	for _, g := range old {
		g.busy.Wait()
	}
	for addr, l := range started {
		s.listeners[addr] = l
	}
	return nil
}

// startNew binds and serves the addresses of tables that are not served yet,
// in address order; if one fails, it closes those it started.
func (s *Server) startNew(tables map[netip.Addr]*table) (map[netip.Addr]*listener, error) {
	started := map[netip.Addr]*listener{}
	for _, addr := range slices.SortedFunc(maps.Keys(tables), netip.Addr.Compare) {
		if s.listeners[addr] != nil {
			continue
		}
		t := tables[addr]
		l, err := s.listen(addr, t)
		if err != nil {
			for _, l := range started {
				l.shutdown()
			}
			return nil, fmt.Errorf("resolver: network %s: %w", t.network, err)
		}
		started[addr] = l
	}
	return started, nil
}

// Close stops serving every zone and closes their sockets. The Server cannot
// be updated afterwards.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, l := range s.listeners {
		l.shutdown()
		delete(s.listeners, addr)
	}
	s.closed = true
	if s.ns != nil {
		err := s.ns.Close()
		s.ns = nil
		return err
	}
	return nil
}

// listener serves one zone's address.
type listener struct {
	s        *Server
	udp, tcp *dns.Server
	ctx      context.Context // cancelled on shutdown: ends forwarding
	cancel   context.CancelFunc

	mu  sync.RWMutex
	cur *generation
}

// generation is one configuration of a listener's zone, and the local
// answers being made from it.
type generation struct {
	t    *table
	busy sync.WaitGroup
}

// listen binds addr:53 over UDP and TCP and serves t there.
func (s *Server) listen(addr netip.Addr, t *table) (*listener, error) {
	pc, ln, err := s.bind(netip.AddrPortFrom(addr, Port))
	if err != nil {
		return nil, err
	}
	l := &listener{s: s, cur: &generation{t: t}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.udp = &dns.Server{PacketConn: pc, Handler: l, UDPSize: ednsSize}
	l.tcp = &dns.Server{Listener: deadlineListener{ln}, Handler: l}
	if err := errors.Join(start(l.udp), start(l.tcp)); err != nil {
		l.shutdown()
		pc.Close()
		ln.Close()
		return nil, fmt.Errorf("serve on %s: %w", addr, err)
	}
	return l, nil
}

// bind opens the UDP and TCP sockets of ap in the Server's namespace.
func (s *Server) bind(ap netip.AddrPort) (pc net.PacketConn, ln net.Listener, err error) {
	udp, tcp := "udp4", "tcp4"
	if ap.Addr().Is6() {
		udp, tcp = "udp6", "tcp6"
	}
	err = s.inNamespace(func() error {
		if pc, err = net.ListenPacket(udp, ap.String()); err != nil {
			return fmt.Errorf("listen on %s/udp: %w (is the address on its bridge, and the port free?)", ap, err)
		}
		if ln, err = net.Listen(tcp, ap.String()); err != nil {
			pc.Close()
			return fmt.Errorf("listen on %s/tcp: %w (is the address on its bridge, and the port free?)", ap, err)
		}
		return nil
	})
	return pc, ln, err
}

// start runs srv and returns once it serves, or its error if it cannot.
func start(srv *dns.Server) error {
	up := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(up) }
	failed := make(chan error, 1)
	go func() { failed <- srv.ActivateAndServe() }()
	select {
	case <-up:
		return nil
	case err := <-failed:
		return err
	}
}

// shutdown ends forwarding, closes the sockets and waits for the queries
// being answered.
func (l *listener) shutdown() {
	l.cancel()
	for _, srv := range []*dns.Server{l.udp, l.tcp} {
		srv.Shutdown() // fails only if srv never started; its socket is the caller's then
	}
}

// swap makes t the zone's configuration and returns the previous one, whose
// busy group counts the local answers still being made from it.
func (l *listener) swap(t *table) *generation {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur
	l.cur = &generation{t: t}
	return old
}

// enter returns the current configuration, counted busy until leave.
func (l *listener) enter() *generation {
	l.mu.RLock()
	defer l.mu.RUnlock()
	g := l.cur
	g.busy.Add(1)
	return g
}

// ServeDNS answers one query (miekg/dns runs it on a goroutine of its own).
func (l *listener) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	src, tcp := peer(w)
	if m := refuseEarly(req); m != nil {
		send(w, req, m, tcp)
		return
	}
	g := l.enter()
	upstream, member := g.t.member(src)
	if !member {
		g.busy.Done()
		send(w, req, failure(req, dns.RcodeRefused), tcp)
		return
	}
	if m := g.t.answer(req); m != nil {
		send(w, req, m, tcp)
		g.busy.Done()
		return
	}
	internal := g.t.internal
	g.busy.Done()
	if internal || len(upstream) == 0 {
		send(w, req, failure(req, dns.RcodeServerFailure), tcp)
		return
	}
	send(w, req, l.s.forward(l.ctx, req, upstream, tcp), tcp)
}

// refuseEarly answers what no zone takes: opcodes other than QUERY (NOTIMP)
// and EDNS versions other than 0 (BADVERS, RFC 6891 6.1.3).
func refuseEarly(req *dns.Msg) *dns.Msg {
	if req.Opcode != dns.OpcodeQuery {
		return failure(req, dns.RcodeNotImplemented)
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return failure(req, dns.RcodeBadVers)
	}
	return nil
}

// peer returns the source address of the query w answers, and whether it
// came over TCP.
func peer(w dns.ResponseWriter) (netip.Addr, bool) {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap(), false
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// send writes m, the reply to req: whole over TCP, cut to the client's size
// with TC set over UDP.
func send(w dns.ResponseWriter, req, m *dns.Msg, tcp bool) {
	if tcp {
		m.Compress = true
	} else {
		m.Truncate(udpSize(req))
	}
	w.WriteMsg(m) // a client that went away is no error of ours
}

// deadlineListener gives every TCP write tcpWriteTimeout, which miekg/dns
// does not, so that a client that stops reading holds no query forever.
type deadlineListener struct{ net.Listener }

func (l deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return deadlineConn{c}, nil
}

type deadlineConn struct{ net.Conn }

func (c deadlineConn) Write(b []byte) (int, error) {
	c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	return c.Conn.Write(b)
}
