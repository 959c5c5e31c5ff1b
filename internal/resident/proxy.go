package resident

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds the connection to the sandbox that each proxied TCP
// connection opens.
const dialTimeout = 5 * time.Second

// udpIdle is how long a UDP flow lives without a datagram either way
// (docker-proxy's UDP timeout); its socket to the sandbox then closes.
const udpIdle = 60 * time.Second

// maxUDPFlows bounds the flows of one UDP port; datagrams of more clients
// are dropped until one expires.
const maxUDPFlows = 1024

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// A proxy is a held host-port socket that passes the host's traffic to
// 127.0.0.0/8 that reaches it on to its target, the sandbox's address and
// container port, as docker-proxy does. Nothing else reaches it while nsnet's
// DNAT rules are in place; what does reach it otherwise (after someone
// flushes the rules, or while a port is still held after it was unpublished)
// is refused, a TCP connection closed and a datagram dropped, so that a held
// port never answers from outside by itself.
type proxy interface {
	// retarget sends what reaches the socket from now on to target, and
	// closes the connections or flows opened to the previous one.
	retarget(target netip.AddrPort)
	// close closes the held socket and every connection or flow it opened.
	close()
}

// newProxy takes f, a bound TCP listener or UDP socket, and starts passing
// what reaches it to target. f is consumed (closed) either way.
func newProxy(f *os.File, target netip.AddrPort) (proxy, error) {
	defer f.Close() // the net package works on its own duplicate
	switch kind, err := socketKind(f); {
	case err != nil:
		return nil, err
	case kind == unix.SOCK_STREAM:
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, err
		}
		return startTCP(ln, target), nil
	default:
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return nil, err
		}
		return startUDP(pc.(*net.UDPConn), target), nil
	}
}

// socketKind checks that f is an IPv4 or IPv6 TCP socket that listens or
// an IPv4 or IPv6 UDP socket, and returns its type.
func socketKind(f *os.File) (int, error) {
	fd := int(f.Fd())
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return 0, fmt.Errorf("%s is not a socket: %w", f.Name(), err)
	}
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	listening, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	inet := domain == unix.AF_INET || domain == unix.AF_INET6
	switch {
	case inet && typ == unix.SOCK_STREAM && listening == 1:
	case inet && typ == unix.SOCK_DGRAM:
	default:
		return 0, fmt.Errorf("%s is neither a listening TCP socket nor a UDP socket", f.Name())
	}
	return typ, nil
}

// tcpProxy accepts on a held listener and joins each connection to a new
// one to the target.
type tcpProxy struct {
	ln     net.Listener
	ctx    context.Context // cancelled on close: dials in progress give up
	cancel context.CancelFunc
	mu     sync.Mutex
	target string                // "IP:PORT"
	conns  map[net.Conn]struct{} // both ends of every proxied connection; nil once closed
}

func startTCP(ln net.Listener, target netip.AddrPort) *tcpProxy {
	p := &tcpProxy{ln: ln, target: target.String(), conns: map[net.Conn]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.accept()
	return p
}

func (p *tcpProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // e.g. out of files for a moment
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go p.relay(c)
	}
}

// relay dials the target for client and copies both ways until both
// directions are done or one fails. A connection to any address but
// 127.0.0.0/8 is closed at once.
func (p *tcpProxy) relay(client net.Conn) {
	if !isLoopback(client.LocalAddr()) {
		client.Close()
		return
	}
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	d := net.Dialer{Timeout: dialTimeout}
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	server, err := d.DialContext(p.ctx, "tcp4", target)
	if err != nil { // the client sees its connection closed, as with docker-proxy
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{})
	go func() { copyHalf(server, client); close(done) }()
	copyHalf(client, server)
	<-done
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.AddrPort().Addr().Unmap().IsLoopback()
}

// copyHalf copies src to dst (with splice(2) between TCP sockets), then
// passes src's end of stream on. If the copy fails, both connections close,
// so that the other direction ends too.
func copyHalf(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// track records c as open, or closes it if the proxy is closed.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *tcpProxy) retarget(target netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target.String()
	for c := range p.conns {
		c.Close() // its relay untracks it
	}
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// udpProxy reads datagrams on a held socket and passes each client's on
// through a socket of its own connected to the target; replies go back to
// the client from the held socket.
type udpProxy struct {
	pc     *net.UDPConn
	mu     sync.Mutex
	target *net.UDPAddr
	flows  map[netip.AddrPort]*udpFlow // by client; nil once closed
}

// udpFlow is one client's socket to the target and the time of its last
// datagram either way (Unix nanoseconds).
type udpFlow struct {
	c    *net.UDPConn
	last atomic.Int64
}

func (f *udpFlow) touch() { f.last.Store(time.Now().UnixNano()) }

func startUDP(pc *net.UDPConn, target netip.AddrPort) *udpProxy {
	p := &udpProxy{pc: pc, target: net.UDPAddrFromAddrPort(target), flows: map[netip.AddrPort]*udpFlow{}}
	if rc, err := pc.SyscallConn(); err == nil { // without it, every datagram is dropped
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) // fails harmlessly on an IPv4 socket
		})
	}
	go p.serve()
	return p
}

// serve passes on each datagram addressed to 127.0.0.0/8 (as IP_PKTINFO
// tells) and drops the others.
func (p *udpProxy) serve() {
	for {
		err := readDatagram(p.pc, func(b []byte, from netip.AddrPort, to netip.Addr) {
			if !to.IsLoopback() {
				return
			}
			if f := p.flow(from); f != nil {
				f.touch()
				f.c.Write(b)
			}
		})
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// flow returns client's flow, opening it if there is room.
func (p *udpProxy) flow(client netip.AddrPort) *udpFlow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.flows[client]; ok || p.flows == nil || len(p.flows) >= maxUDPFlows {
		return f
	}
	c, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		return nil
	}
	f := &udpFlow{c: c}
	f.touch()
	p.flows[client] = f
	go p.replies(client, f)
	return f
}

// replies passes the target's datagrams back to client until the flow has
// been idle for udpIdle, fails (e.g. the port is closed in the sandbox), or
// the proxy closes.
func (p *udpProxy) replies(client netip.AddrPort, f *udpFlow) {
	defer p.forget(client, f)
	for {
		f.c.SetReadDeadline(time.Unix(0, f.last.Load()).Add(udpIdle))
		err := readDatagram(f.c, func(b []byte, _ netip.AddrPort, _ netip.Addr) {
			f.touch()
			p.pc.WriteToUDPAddrPort(b, client)
		})
		if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, f.last.Load())) < udpIdle {
			continue // the client spoke meanwhile
		}
		if err != nil {
			return
		}
	}
}

func (p *udpProxy) forget(client netip.AddrPort, f *udpFlow) {
	f.c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.flows != nil && p.flows[client] == f {
		delete(p.flows, client)
	}
}

func (p *udpProxy) retarget(target netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = net.UDPAddrFromAddrPort(target)
	for client, f := range p.flows {
		f.c.Close() // its replies goroutine ends
		delete(p.flows, client)
	}
}

func (p *udpProxy) close() {
	p.pc.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.flows {
		f.c.Close()
	}
	p.flows = nil
}

// datagram is room for one datagram and its control messages.
type datagram struct {
	buf [maxDatagram]byte
	oob [64]byte
}

// buffers hold one datagram each, only while it is read and passed on, so
// that a goroutine waiting for a datagram holds no buffer.
var buffers = sync.Pool{New: func() any { return new(datagram) }}

// readDatagram waits in Go's poller (honouring c's read deadline) until c
// has a datagram, then reads it into a pooled buffer and calls use with it,
// its source and, if c has IP_PKTINFO on, its destination address.
func readDatagram(c *net.UDPConn, use func(b []byte, from netip.AddrPort, to netip.Addr)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var d *datagram
	var n, oobn int
	var from unix.Sockaddr
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		d = buffers.Get().(*datagram)
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), d.buf[:], d.oob[:], unix.MSG_DONTWAIT)
		if rerr == unix.EAGAIN {
			buffers.Put(d)
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	defer buffers.Put(d)
	if rerr != nil {
		return rerr
	}
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		use(d.buf[:n], netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), pktinfoDst(d.oob[:oobn]))
	case *unix.SockaddrInet6: // a dual-stack socket: IPv4 clients come IPv4-mapped
		use(d.buf[:n], netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), pktinfoDst(d.oob[:oobn]))
	}
	return nil
}

// pktinfoDst is the destination address in an IP_PKTINFO control message
// (struct in_pktinfo: ifindex, spec_dst, addr), or the zero Addr.
func pktinfoDst(oob []byte) netip.Addr {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo {
			return netip.AddrFrom4([4]byte(m.Data[8:12]))
		}
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo {
			return netip.AddrFrom16([16]byte(m.Data[:16])).Unmap()
		}
	}
	return netip.Addr{}
}
