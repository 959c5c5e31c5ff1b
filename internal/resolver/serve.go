package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// listener serves one zone's address: UDP with a loop of its own, one
// goroutine that reads each query and writes the zone's own reply itself,
// and starts another only to forward; TCP with miekg/dns's server.
type listener struct {
	s      *Server
	udp    *udpServer
	tcp    *dns.Server
	ctx    context.Context // cancelled on shutdown: ends forwarding
	cancel context.CancelFunc

	mu  sync.RWMutex
	cur *generation
}

// generation is one configuration of a listener's zone, and the replies
// being made from it.
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
	l.tcp = &dns.Server{Listener: deadlineListener{ln}, Handler: l}
	if err := start(l.tcp); err != nil {
		l.cancel()
		pc.Close()
		ln.Close()
		return nil, fmt.Errorf("serve on %s/tcp: %w", addr, err)
	}
	l.udp = serveUDP(pc, l)
	return l, nil
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
	l.udp.shutdown()
	l.tcp.Shutdown()
}

// swap makes t the zone's configuration and returns the previous one, whose
// busy group counts the replies still being made from it.
func (l *listener) swap(t *table) *generation {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur
	l.cur = &generation{t: t}
	return old
}

// current is the zone's table now.
func (l *listener) current() *table {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cur.t
}

// enter returns the current configuration, counted busy until its
// busy.Done.
func (l *listener) enter() *generation {
	l.mu.RLock()
	defer l.mu.RUnlock()
	g := l.cur
	g.busy.Add(1)
	return g
}

// respond gives req, from src, the zone's own reply through send, or
// returns forward with the upstream servers to ask instead. send returns
// before the configuration it answered from can be swapped out.
func (l *listener) respond(req *dns.Msg, src netip.Addr, send func(*dns.Msg)) (upstream []netip.AddrPort, forward bool) {
	if m := refuseEarly(req); m != nil {
		send(m)
		return nil, false
	}
	g := l.enter()
	defer g.busy.Done()
	m, upstream, member, internal := g.t.query(req, src)
	switch {
	case !member:
		send(failure(req, dns.RcodeRefused))
	case m != nil:
		send(m)
	case internal || len(upstream) == 0:
		send(failure(req, dns.RcodeServerFailure))
	default:
		return upstream, true
	}
	return nil, false
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

// ServeDNS answers one query over TCP (miekg/dns runs it on the goroutine
// of its connection); replies go whole.
func (l *listener) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	send := func(m *dns.Msg) {
		fit(req, m, true)
		w.WriteMsg(m) // a client that went away is no error of ours
	}
	var src netip.Addr
	if a, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		src = a.AddrPort().Addr().Unmap()
	}
	if upstream, forward := l.respond(req, src, send); forward {
		send(l.s.forward(l.ctx, req, upstream, true))
	}
}

// udpServer reads queries from one UDP socket and writes each reply from
// it, cut to the client's size with TC set. One goroutine reads and answers:
// a zone's own answers take about a microsecond of work
// (BenchmarkLocalAnswer), and a second reader on the same socket added no
// throughput in bench/dns.sh on 2 CPUs, only a fifth to a quarter more CPU
// per query (the two wake each other for the socket's read lock).
type udpServer struct {
	conn *net.UDPConn
	l    *listener
	wg   sync.WaitGroup // the reader and the forwards
}

func serveUDP(conn *net.UDPConn, l *listener) *udpServer {
	u := &udpServer{conn: conn, l: l}
	u.wg.Add(1)
	go u.read()
	return u
}

// shutdown closes the socket and waits for the reader and the forwards (the
// listener's context ends those first).
func (u *udpServer) shutdown() {
	u.conn.Close()
	u.wg.Wait()
}

func (u *udpServer) read() {
	defer u.wg.Done()
	in := make([]byte, ednsSize)
	out := make([]byte, ednsSize)
	for {
		n, from, err := u.conn.ReadFromUDPAddrPort(in)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err == nil {
			u.handle(in[:n], from, out)
		}
	}
}

// handle answers one datagram: the zone's reply at once, with out as
// buffer; a forwarded one from a goroutine of its own.
func (u *udpServer) handle(packet []byte, from netip.AddrPort, out []byte) {
	req, formerr := parseQuery(packet)
	if formerr != nil {
		u.write(req, formerr, from, out)
	}
	if req == nil || formerr != nil {
		return
	}
	send := func(m *dns.Msg) { u.write(req, m, from, out) }
	upstream, forward := u.l.respond(req, from.Addr().Unmap(), send)
	if forward {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			u.write(req, u.l.s.forward(u.l.ctx, req, upstream, false), from, nil)
		}()
	}
}

// parseQuery unpacks a query. It returns no query for a datagram that is
// not one (it gets no reply: any reply to junk can be used to amplify), and
// a FORMERR reply for a query with not exactly one question or with
// records in the answer or authority section, as miekg/dns's server does.
func parseQuery(packet []byte) (req, formerr *dns.Msg) {
	req = new(dns.Msg)
	if req.Unpack(packet) != nil || req.Response {
		return nil, nil
	}
	if len(req.Question) != 1 || len(req.Answer) > 0 || len(req.Ns) > 0 {
		return req, new(dns.Msg).SetRcodeFormatError(req)
	}
	return req, nil
}

// write sends m, the reply to req, to the client, cut to its UDP size.
func (u *udpServer) write(req, m *dns.Msg, to netip.AddrPort, buf []byte) {
	fit(req, m, false)
	if b, err := m.PackBuffer(buf); err == nil {
		u.conn.WriteToUDPAddrPort(b, to) // a client that went away is no error of ours
	}
}

// fit prepares m, the reply to req, for its transport: whole over TCP (with
// name compression), cut to the client's UDP size with TC set over UDP.
func fit(req, m *dns.Msg, tcp bool) {
	if tcp {
		m.Compress = true
		return
	}
	m.Truncate(udpSize(req))
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
