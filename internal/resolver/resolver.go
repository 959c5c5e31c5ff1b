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
// Invariants: Update and Patch are all-or-nothing. Update validates the
// whole configuration, binds the new addresses (an error names the address
// and leaves the previous configuration serving), then swaps each kept
// zone's names atomically and closes the addresses no longer wanted. Patch
// changes records of zones already served in place, validating them first,
// at a cost that does not grow with the zones; it leaves to Update whatever
// starts or stops serving an address. A zone's tables are the same after a
// Patch as compiled anew from the configuration it leaves. Once Update or
// Patch returns no reply from the previous names is sent: they wait for the
// replies that read them (a TCP write gives up after tcpWriteTimeout).
// Sockets, the listeners' and the upstream ones, belong to the network
// namespace of the thread that called New. A zone costs two sockets, two
// goroutines (its UDP reader, which writes the zone's own replies itself,
// and miekg/dns's TCP accept loop) and its maps; a forwarded query costs a
// goroutine and one upstream socket at a time, a TCP connection miekg/dns's
// goroutine.
package resolver

import (
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

// TTL of the zone's own answers: 0, as aardvark-dns has used since 1.13:
// sandboxes come and go and change addresses, and the resolver is one
// bridge away. (Docker's 600 s lets a cache in a container answer a removed
// name for ten minutes.)
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
	// Sandbox identifies the sandbox across zones (its ID; empty: none). A
	// sandbox on several networks resolves, at any of their resolvers, the
	// names of all of them, as in Docker: each at its address on its own
	// network.
	Sandbox string
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

	mu        sync.Mutex // serialises Update, Patch and Close
	listeners map[netip.Addr]*listener
	members   map[string][]member // each sandbox's records, in the zones served
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
	return id.Same(proc.id), proc.err
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
	s.members = sandboxMembers(tables)
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

// bind opens the UDP and TCP sockets of ap in the Server's namespace.
func (s *Server) bind(ap netip.AddrPort) (pc *net.UDPConn, ln net.Listener, err error) {
	udp, tcp := "udp4", "tcp4"
	if ap.Addr().Is6() {
		udp, tcp = "udp6", "tcp6"
	}
	err = s.inNamespace(func() error {
		if pc, err = net.ListenUDP(udp, net.UDPAddrFromAddrPort(ap)); err != nil {
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
