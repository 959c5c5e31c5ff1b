package resolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nsnet/nsnet/internal/testenv"
)

// The helpers of the privileged tests: a throwaway world (internal/testenv)
// whose host namespace gets two bridges made by the test (no nsnet), network
// A 10.1.0.0/24 and network B 10.2.0.0/24, with sandbox namespaces on them;
// a Server created in the host namespace; and two upstream resolvers in the
// internet namespace. Nothing here can reach a resolver outside the world:
// every upstream is one of the test's own.

const (
	gwA = "10.1.0.1"
	gwB = "10.2.0.1"
)

// World addresses of the sandboxes.
var (
	addrA1 = netip.MustParseAddr("10.1.0.2")
	addrA2 = netip.MustParseAddr("10.1.0.3")
	addrB1 = netip.MustParseAddr("10.2.0.2")
	mainUp = netip.MustParseAddrPort(testenv.PublicIP + ":53")
	altUp  = netip.MustParseAddrPort(testenv.RouterIP + ":53")
)

type lab struct {
	t          *testing.T
	w          *testenv.World
	srv        *Server
	up, alt    *upstream
	a1, a2, b1 string // sandbox namespaces: a1 and a2 on A, b1 on B
}

func newLab(t *testing.T) *lab {
	t.Helper()
	w := testenv.New(t)
	l := &lab{t: t, w: w, a1: w.Name("a1"), a2: w.Name("a2"), b1: w.Name("b1")}
	l.bridge("br-a", gwA+"/24")
	l.bridge("br-b", gwB+"/24")
	l.sandbox(l.a1, "br-a", addrA1, gwA)
	l.sandbox(l.a2, "br-a", addrA2, gwA)
	l.sandbox(l.b1, "br-b", addrB1, gwB)
	l.up = startUpstream(t, w, mainUp, netip.MustParseAddr("192.0.2.80"))
	l.alt = startUpstream(t, w, altUp, netip.MustParseAddr("192.0.2.81"))
	err := testenv.InNS(w.HostPath(), func() (err error) {
		l.srv, err = New()
		return err
	})
	if err != nil {
		t.Fatalf("new server in the host namespace: %v", err)
	}
	t.Cleanup(func() { l.srv.Close() })
	return l
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// bridge makes a bridge with address cidr in the world's host namespace.
func (l *lab) bridge(name, cidr string) {
	h := l.w.Host
	l.ip("-n", h, "link", "add", name, "type", "bridge")
	l.ip("-n", h, "addr", "add", cidr, "dev", name)
	l.ip("-n", h, "link", "set", name, "up")
}

// sandbox makes namespace ns with eth0 at addr/24 on bridge, its default
// route via gw.
func (l *lab) sandbox(ns, bridge string, addr netip.Addr, gw string) {
	h := l.w.Host
	peer := "v-" + ns[len(ns)-2:]
	l.ip("netns", "add", ns)
	l.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", h)
	l.ip("-n", h, "link", "set", peer, "master", bridge, "up")
	l.ip("-n", ns, "addr", "add", addr.String()+"/24", "dev", "eth0")
	l.ip("-n", ns, "link", "set", "eth0", "up")
	l.ip("-n", ns, "link", "set", "lo", "up")
	l.ip("-n", ns, "route", "add", "default", "via", gw)
}

// update calls Update and fails the test on error.
func (l *lab) update(zones ...Zone) {
	l.t.Helper()
	if err := l.srv.Update(zones); err != nil {
		l.t.Fatalf("update: %v", err)
	}
}

// zoneA is network A: a1 is "alpha" with short ID 0a1a1a1a1a1a and alias
// "shared", a2 is "Bravo" with alias "shared"; upstream is the main one.
func zoneA() Zone {
	return Zone{Network: "net-a", Listen: netip.MustParseAddr(gwA), Upstream: []netip.AddrPort{mainUp}, Records: []Record{
		{Addr: addrA1, Names: []string{"alpha", "0a1a1a1a1a1a", "shared"}},
		{Addr: addrA2, Names: []string{"Bravo", "0a2a2a2a2a2a", "shared", "db.internal.test"}},
	}}
}

// zoneB is network B: b1 is "charlie".
func zoneB() Zone {
	return Zone{Network: "net-b", Listen: netip.MustParseAddr(gwB), Upstream: []netip.AddrPort{mainUp}, Records: []Record{
		{Addr: addrB1, Names: []string{"charlie", "0b1b1b1b1b1b"}},
	}}
}

// ask sends m from namespace ns to server:53 with miekg/dns, over TCP if
// tcp, else UDP.
func ask(ns, server string, tcp bool, m *dns.Msg) (*dns.Msg, error) {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	var c net.Conn
	err := testenv.InNS(testenv.NSPath(ns), func() (err error) {
		c, err = net.DialTimeout(network, net.JoinHostPort(server, "53"), 2*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	client := &dns.Client{Net: network, Timeout: 3 * time.Second}
	r, _, err := client.ExchangeWithConn(m, &dns.Conn{Conn: c})
	return r, err
}

// lookup asks name/qtype from ns to server over UDP and fails the test if
// no reply comes.
func (l *lab) lookup(ns, server, name string, qtype uint16) *dns.Msg {
	l.t.Helper()
	r, err := ask(ns, server, false, query(name, qtype))
	if err != nil {
		l.t.Fatalf("%s %s from %s to %s: %v", name, dns.TypeToString[qtype], ns, server, err)
	}
	return r
}

// expect checks r's rcode and its A/AAAA/PTR answers, in order.
func expect(t *testing.T, what string, r *dns.Msg, rcode int, answers ...string) {
	t.Helper()
	var got []string
	for _, rr := range r.Answer {
		switch a := rr.(type) {
		case *dns.A:
			got = append(got, a.A.String())
		case *dns.AAAA:
			got = append(got, a.AAAA.String())
		case *dns.PTR:
			got = append(got, a.Ptr)
		default:
			got = append(got, rr.String())
		}
	}
	if r.Rcode != rcode || !slices.Equal(got, answers) {
		t.Errorf("%s: %s %v, want %s %v", what, dns.RcodeToString[r.Rcode], got, dns.RcodeToString[rcode], answers)
	}
}

// upstream is a resolver in the world's internet namespace, on UDP and TCP:
// www.example.test has A answer and no other type; big.example.test has 40
// A records; every other name is NXDOMAIN. It records what it was asked.
type upstream struct {
	answer netip.Addr

	mu   sync.Mutex
	seen []seen
}

type seen struct {
	name    string
	qtype   uint16
	id      uint16
	tcp     bool
	edns    bool
	udpSize uint16
	do      bool
}

func startUpstream(t *testing.T, w *testenv.World, at netip.AddrPort, answer netip.Addr) *upstream {
	t.Helper()
	u := &upstream{answer: answer}
	var pc net.PacketConn
	var ln net.Listener
	err := testenv.InNS(w.InetPath(), func() (err error) {
		if pc, err = net.ListenPacket("udp4", at.String()); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", at.String())
		return err
	})
	if err != nil {
		t.Fatalf("upstream on %s: %v", at, err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: ln, Handler: u}} {
		if err := start(srv); err != nil {
			t.Fatalf("upstream on %s: %v", at, err)
		}
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	s := seen{name: canonical(q.Name), qtype: q.Qtype, id: req.Id, tcp: tcp}
	if opt := req.IsEdns0(); opt != nil {
		s.edns, s.udpSize, s.do = true, opt.UDPSize(), opt.Do()
	}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	u.mu.Unlock()

	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns.example.test.", Mbox: "root.example.test.", Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 60}
	switch {
	case s.name == "www.example.test" && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: header(q, dns.TypeA), A: u.answer.AsSlice()}}
	case s.name == "www.example.test":
		m.Ns = []dns.RR{soa}
	case s.name == "big.example.test" && q.Qtype == dns.TypeA:
		for i := range 40 {
			m.Answer = append(m.Answer, &dns.A{Hdr: header(q, dns.TypeA), A: net.IPv4(192, 0, 2, byte(i+1))})
		}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	}
	withEdns(m, req)
	fit(req, m, tcp)
	w.WriteMsg(m)
}

// asked returns what the upstream was asked so far, and forgets it.
func (u *upstream) asked() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// names returns the names of queries.
func names(qs []seen) []string {
	var out []string
	for _, q := range qs {
		out = append(out, q.name)
	}
	return out
}

// dig runs Debian's dig (dnsutils) in ns against server; it must be there.
func dig(t *testing.T, ns, server string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatalf("dig not found (apt-get install dnsutils; .ci/run installs it): %v", err)
	}
	argv := append([]string{"@" + server, "+tries=1", "+time=3"}, args...)
	out, err := testenv.RunIn(ns, "dig", argv...)
	if err != nil {
		t.Fatalf("dig %v: %v", argv, err)
	}
	return out
}

// digAnswers returns the rdata of the answer section lines of dig's output
// whose type is rrtype.
func digAnswers(out, rrtype string) []string {
	var got []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && !strings.HasPrefix(f[0], ";") && f[2] == "IN" && f[3] == rrtype {
			got = append(got, f[4])
		}
	}
	return got
}

// goResolver is Go's own resolver (PreferGo) with every connection dialled
// from namespace ns to server:53, whatever /etc/resolv.conf names.
func goResolver(ns, server string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var c net.Conn
		err := testenv.InNS(testenv.NSPath(ns), func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(server, "53"))
			return err
		})
		return c, err
	}}
}

// bindable reports whether addr:53 can be bound over UDP and TCP in the
// host namespace (then nothing holds it).
func (l *lab) bindable(addr string) error {
	return testenv.InNS(l.w.HostPath(), func() error {
		pc, err := net.ListenPacket("udp4", addr+":53")
		if err != nil {
			return err
		}
		defer pc.Close()
		ln, err := net.Listen("tcp4", addr+":53")
		if err != nil {
			return err
		}
		return ln.Close()
	})
}

func ptrName(t *testing.T, addr netip.Addr) string {
	t.Helper()
	rev, err := dns.ReverseAddr(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func describe(rs ...*dns.Msg) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s tc=%v answers=%d; ", dns.RcodeToString[r.Rcode], r.Truncated, len(r.Answer))
	}
	return b.String()
}
