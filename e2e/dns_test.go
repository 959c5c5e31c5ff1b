package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/testenv"
)

// The tests of the embedded DNS: real clients (dig, from dnsutils) in the
// sandboxes ask the resident process at their network's gateway; upstream
// resolvers are servers the test runs in its world's internet namespace.
// Nothing here can reach a resolver outside the world: every query goes to
// an address of the world, and the world's resolv.conf (which nsnet reads as
// the host's) names the world's internet namespace.

// answer is what dig got: the status and the answers' data, sorted.
type answer struct {
	status  string
	answers []string
}

func (a answer) String() string { return fmt.Sprintf("%s %v", a.status, a.answers) }

// dig asks server, from inside namespace ns, for name of type qtype, once
// (no retry), and returns the status and the answers; extra are more dig
// options (+tcp). A query that gets no reply fails the test unless noReply
// is wanted, which it reports as status "timeout".
func dig(t *testing.T, ns, server, name, qtype string, extra ...string) answer {
	t.Helper()
	args := append([]string{"--net=" + testenv.NSPath(ns), "--", "dig", "@" + server, name, qtype,
		"+noall", "+comments", "+answer", "+tries=1", "+time=2"}, extra...)
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if strings.Contains(string(out), "timed out") || strings.Contains(string(out), "refused") {
		return answer{status: "timeout"}
	}
	if err != nil {
		t.Fatalf("dig %s %s @%s in %s: %v\n%s", name, qtype, server, ns, err, out)
	}
	var a answer
	for _, l := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(l, "status: "); ok {
			a.status, _, _ = strings.Cut(rest, ",")
			continue
		}
		if f := strings.Fields(l); len(f) >= 5 && !strings.HasPrefix(l, ";") {
			a.answers = append(a.answers, f[4])
		}
	}
	slices.Sort(a.answers)
	if a.status == "" {
		t.Fatalf("dig %s %s @%s in %s: no status in\n%s", name, qtype, server, ns, out)
	}
	return a
}

// expectAnswer checks a dig answer.
func expectAnswer(t *testing.T, what string, got answer, status string, answers ...string) {
	t.Helper()
	slices.Sort(answers)
	if got.status != status || !slices.Equal(got.answers, answers) {
		t.Errorf("%s: %s, want %s %v", what, got, status, answers)
	}
}

// sandboxAddr is the address of sandbox s on network n, from inspect.
func sandboxAddr(t *testing.T, w *testenv.World, s, n string) string {
	t.Helper()
	sb := inspectOne[struct {
		ID       string `json:"id"`
		Networks map[string]struct {
			Address string `json:"address"`
		} `json:"networks"`
	}](t, w, "sandbox", s)
	p, err := netip.ParsePrefix(sb.Networks[n].Address)
	if err != nil {
		t.Fatalf("sandbox %s on network %s: address %q: %v", s, n, sb.Networks[n].Address, err)
	}
	return p.Addr().String()
}

// shortIDOf is the first 12 digits of sandbox s's ID.
func shortIDOf(t *testing.T, w *testenv.World, s string) string {
	t.Helper()
	return inspectOne[struct {
		ID string `json:"id"`
	}](t, w, "sandbox", s).ID[:12]
}

// upstreamDNS is a resolver in the world's internet namespace, on UDP and
// TCP at addr:53: the names in its table have their A record, every other
// name is NXDOMAIN. It records the names it was asked.
type upstreamDNS struct {
	names map[string]string
	mu    sync.Mutex
	asked []string
}

func startUpstreamDNS(t *testing.T, w *testenv.World, addr string, names map[string]string) *upstreamDNS {
	t.Helper()
	u := &upstreamDNS{names: names}
	var pc net.PacketConn
	var ln net.Listener
	err := testenv.InNS(w.InetPath(), func() (err error) {
		if pc, err = net.ListenPacket("udp4", addr+":53"); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", addr+":53")
		return err
	})
	if err != nil {
		t.Fatalf("upstream resolver at %s: %v", addr, err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: ln, Handler: u}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func (u *upstreamDNS) ServeDNS(rw dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	u.mu.Lock()
	u.asked = append(u.asked, strings.TrimSuffix(q.Name, "."))
	u.mu.Unlock()
	if a, ok := u.names[strings.TrimSuffix(q.Name, ".")]; ok && q.Qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(a)}}
	} else if !ok {
		m.Rcode = dns.RcodeNameError
	}
	rw.WriteMsg(m)
}

// wasAsked reports whether the upstream was asked for name.
func (u *upstreamDNS) wasAsked(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.asked, name)
}

// TestNamesResolve checks what a sandbox's resolver answers: the names,
// short IDs and aliases of the sandboxes of its network, all holders of an
// alias, PTR for their addresses, NODATA for other types of a known name,
// over UDP and TCP; other names from the upstream named by the host's
// resolv.conf (NXDOMAIN passed on); a sandbox's own --dns; a new sandbox's
// name at the first query after `sandbox create` returns, and a removed
// one's never after `sandbox rm` returns.
func TestNamesResolve(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	host := startUpstreamDNS(t, w, testenv.PublicIP, map[string]string{"www.example.test": "192.0.2.80"})
	own := startUpstreamDNS(t, w, testenv.RouterIP, map[string]string{"www.example.test": "192.0.2.81"})
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	const gw = "10.80.0.1"
	w.MustNsnet(t, "network", "create", "--subnet", "10.80.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--alias", "web", "--alias", "shared", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--alias", "shared", b)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--dns", testenv.RouterIP, c)
	ipA, ipB, ipC := sandboxAddr(t, w, a, "n1"), sandboxAddr(t, w, b, "n1"), sandboxAddr(t, w, c, "n1")

	expectAnswer(t, "a's name", dig(t, c, gw, a, "A"), "NOERROR", ipA)
	expectAnswer(t, "a's name in capitals", dig(t, c, gw, strings.ToUpper(a), "A"), "NOERROR", ipA)
	expectAnswer(t, "a's short ID", dig(t, c, gw, shortIDOf(t, w, a), "A"), "NOERROR", ipA)
	expectAnswer(t, "a's alias", dig(t, c, gw, "web", "A"), "NOERROR", ipA)
	expectAnswer(t, "an alias of two", dig(t, c, gw, "shared", "A"), "NOERROR", ipA, ipB)
	expectAnswer(t, "an alias of two, over TCP", dig(t, b, gw, "shared", "A", "+tcp"), "NOERROR", ipA, ipB)
	expectAnswer(t, "a's own name, asked by a", dig(t, a, gw, a, "A"), "NOERROR", ipA)
	expectAnswer(t, "AAAA of a name with only an IPv4 address", dig(t, c, gw, a, "AAAA"), "NOERROR")
	expectAnswer(t, "PTR of b's address", dig(t, c, gw, "-x", ipB), "NOERROR", b+".")

	expectAnswer(t, "another name, from the host's resolver", dig(t, a, gw, "www.example.test", "A"), "NOERROR", "192.0.2.80")
	expectAnswer(t, "an unknown name, from the host's resolver", dig(t, a, gw, "nope.example.test", "A"), "NXDOMAIN")
	expectAnswer(t, "another name, from c's own --dns", dig(t, c, gw, "www.example.test", "A"), "NOERROR", "192.0.2.81")
	if !host.wasAsked("nope.example.test") || !own.wasAsked("www.example.test") {
		t.Errorf("the upstream resolvers were asked %v and %v", host.asked, own.asked)
	}

	d := w.Name("d")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--alias", "shared", d)
	expectAnswer(t, "a new sandbox's name, at once", dig(t, c, gw, d, "A"), "NOERROR", sandboxAddr(t, w, d, "n1"))

	w.MustNsnet(t, "sandbox", "rm", b)
	expectAnswer(t, "a removed sandbox's name, at once", dig(t, c, gw, b, "A"), "NXDOMAIN")
	expectAnswer(t, "an alias a removed sandbox held", dig(t, c, gw, "shared", "A"), "NOERROR", ipA, sandboxAddr(t, w, d, "n1"))
	expectAnswer(t, "PTR of a removed sandbox's address", dig(t, c, gw, "-x", ipB), "NXDOMAIN")

	expectAnswer(t, "c, asked by c", dig(t, c, gw, c, "A"), "NOERROR", ipC)
	w.MustNsnet(t, "sandbox", "rm", a, c, d)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestNamesAreIsolated checks that a sandbox learns the names of its own
// networks only: asked at its own gateway, another network's sandbox is not
// one of its names (the question goes upstream, which does not know it);
// asked at the other network's gateway, it is refused, while the other
// network's own sandbox gets its answer there (the control). A sandbox on
// both networks resolves the names of each at its gateway.
func TestNamesAreIsolated(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	up := startUpstreamDNS(t, w, testenv.PublicIP, nil)
	a, x, m := w.Name("a"), w.Name("x"), w.Name("m")
	w.MustNsnet(t, "network", "create", "--subnet", "10.81.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.82.0.0/24", "n2")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", "--alias", "db", x)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--network", "n2", m)
	ipX := sandboxAddr(t, w, x, "n2")

	expectAnswer(t, "x, from a on another network, at a's gateway", dig(t, a, "10.81.0.1", x, "A"), "NXDOMAIN")
	if !up.wasAsked(x) {
		t.Errorf("a's question for x did not go upstream: %v", up.asked)
	}
	expectAnswer(t, "x's alias, from a, at a's gateway", dig(t, a, "10.81.0.1", "db", "A"), "NXDOMAIN")
	expectAnswer(t, "x, from a, at x's network's gateway", dig(t, a, "10.82.0.1", x, "A"), "REFUSED")
	expectAnswer(t, "control: x, from m on x's network, at its gateway", dig(t, m, "10.82.0.1", x, "A"), "NOERROR", ipX)
	expectAnswer(t, "a, from m, at n1's gateway", dig(t, m, "10.81.0.1", a, "A"), "NOERROR", sandboxAddr(t, w, a, "n1"))
	expectAnswer(t, "m's address on n2, at n2's gateway", dig(t, x, "10.82.0.1", m, "A"), "NOERROR", sandboxAddr(t, w, m, "n2"))

	w.MustNsnet(t, "sandbox", "rm", a, x, m)
	w.MustNsnet(t, "network", "rm", "n1", "n2")
	w.AssertClean(t)
}

// TestInternalNetworkNeverForwards checks that the resolver of an internal
// network answers its own names and never asks upstream (CVE-2024-29018:
// Docker's did, which leaked out of internal networks): other names get
// SERVFAIL, and the upstream sees nothing. The control: the same question
// from a non-internal network, with the same upstream (--dns), is answered.
func TestInternalNetworkNeverForwards(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	up := startUpstreamDNS(t, w, testenv.PublicIP, map[string]string{"leak.example.test": "192.0.2.66", "ok.example.test": "192.0.2.67"})
	i1, i2, o := w.Name("i1"), w.Name("i2"), w.Name("o")
	w.MustNsnet(t, "network", "create", "--internal", "--dns", testenv.PublicIP, "--subnet", "10.85.0.0/24", "in")
	w.MustNsnet(t, "network", "create", "--dns", testenv.PublicIP, "--subnet", "10.86.0.0/24", "out")
	w.MustNsnet(t, "sandbox", "create", "--network", "in", i1)
	w.MustNsnet(t, "sandbox", "create", "--network", "in", "--dns", testenv.PublicIP, i2)
	w.MustNsnet(t, "sandbox", "create", "--network", "out", o)

	expectAnswer(t, "a name of the internal network", dig(t, i1, "10.85.0.1", i2, "A"), "NOERROR", sandboxAddr(t, w, i2, "in"))
	expectAnswer(t, "another name, from the internal network", dig(t, i1, "10.85.0.1", "leak.example.test", "A"), "SERVFAIL")
	expectAnswer(t, "another name, from a sandbox with its own --dns on the internal network", dig(t, i2, "10.85.0.1", "leak.example.test", "A"), "SERVFAIL")
	if up.wasAsked("leak.example.test") {
		t.Errorf("the internal network's resolver asked upstream: %v", up.asked)
	}
	expectAnswer(t, "control: another name, from a non-internal network", dig(t, o, "10.86.0.1", "ok.example.test", "A"), "NOERROR", "192.0.2.67")
	if !up.wasAsked("ok.example.test") {
		t.Errorf("control: the upstream was not asked: %v", up.asked)
	}
	w.MustNsnet(t, "sandbox", "rm", i1, i2, o)
	w.MustNsnet(t, "network", "rm", "in", "out")
	w.AssertClean(t)
}

// TestResidentKilledIsRestoredByGC kills the resident process with SIGKILL:
// names go unanswered and the published port is free; gc starts it again
// with the names and the ports of the store, and so does the next command
// that needs it (a sandbox create, here).
func TestResidentKilledIsRestoredByGC(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b := w.Name("a"), w.Name("b")
	const gw = "10.87.0.1"
	w.MustNsnet(t, "network", "create", "--subnet", "10.87.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", "--alias", "web", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", b)
	ipA := sandboxAddr(t, w, a, "n1")
	expectAnswer(t, "control: web before the kill", dig(t, b, gw, "web", "A"), "NOERROR", ipA)

	pid := inspectResident(t, w, a)
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill resident %d: %v", pid, err)
	}
	waitExit(t, pid)
	expectAnswer(t, "web with the resident dead", dig(t, b, gw, "web", "A"), "timeout")
	canListen(t, w, "tcp4", "0.0.0.0:8080", true)
	gcPending(t, w, "would start the resident process: 1 ports of 1 sandboxes to hold, 1 networks to serve")
	w.MustNsnet(t, "gc")
	expectAnswer(t, "web after gc", dig(t, b, gw, "web", "A"), "NOERROR", ipA)
	expectAnswer(t, "b after gc", dig(t, a, gw, b, "A"), "NOERROR", sandboxAddr(t, w, b, "n1"))
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("gc --dry-run after gc:\n%s", out)
	}

	// Killed again, a command that needs it starts it with everything too.
	pid = inspectResident(t, w, a)
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill resident %d: %v", pid, err)
	}
	waitExit(t, pid)
	c := w.Name("c")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", c)
	expectAnswer(t, "web after the next sandbox create", dig(t, c, gw, "web", "A"), "NOERROR", ipA)
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("gc --dry-run after the resident was started by sandbox create:\n%s", out)
	}
	pid = inspectResident(t, w, a)
	w.MustNsnet(t, "sandbox", "rm", a, b, c)
	waitExit(t, pid) // nothing left to hold or serve
	if _, err := os.Lstat(filepath.Join(w.Root, "resident.sock")); !os.IsNotExist(err) {
		t.Errorf("the resident's control socket after the last sandbox went: %v", err)
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestResidentSocketRemovedByHand removes the resident's control socket by
// hand: the next command finds no resident answering and starts one, while
// the old one still holds the published port and the network's DNS listener
// until it notices, within a second. The new one waits for it to exit, so the
// command succeeds (it used to fail binding the DNS listener), and afterwards
// the names are answered and the port is held by the new resident alone.
func TestResidentSocketRemovedByHand(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b := w.Name("a"), w.Name("b")
	const gw = "10.100.0.1"
	w.MustNsnet(t, "network", "create", "--subnet", "10.100.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", "--alias", "web", a)
	old := inspectResident(t, w, a)
	if err := os.Remove(filepath.Join(w.Root, "resident.sock")); err != nil {
		t.Fatal(err)
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", b)
	waitExit(t, old)
	if pid := inspectResident(t, w, a); pid == old {
		t.Errorf("the resident is still the old one, pid %d", pid)
	}
	expectAnswer(t, "web from the new sandbox", dig(t, b, gw, "web", "A"), "NOERROR", sandboxAddr(t, w, a, "n1"))
	expectAnswer(t, "the new sandbox from the old", dig(t, a, gw, b, "A"), "NOERROR", sandboxAddr(t, w, b, "n1"))
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("gc --dry-run after the resident was replaced:\n%s", out)
	}
	w.MustNsnet(t, "sandbox", "rm", a, b)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// TestTwoRootsHaveTheirOwnResident runs two state roots in one host
// namespace: each starts its own resident process, serving only its own
// networks' names; killing one leaves the other's names answered.
func TestTwoRootsHaveTheirOwnResident(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	rootB := t.TempDir()
	b := func(args ...string) string { return w.MustNsnet(t, append([]string{"--root", rootB}, args...)...) }
	sa, sa2, sb, sb2 := w.Name("a"), w.Name("a2"), w.Name("b"), w.Name("b2")
	w.MustNsnet(t, "network", "create", "--subnet", "10.88.0.0/24", "na")
	w.MustNsnet(t, "sandbox", "create", "--network", "na", sa)
	w.MustNsnet(t, "sandbox", "create", "--network", "na", sa2)
	b("network", "create", "--subnet", "10.89.0.0/24", "nb")
	b("sandbox", "create", "--network", "nb", sb)
	b("sandbox", "create", "--network", "nb", sb2)

	pidA := inspectResident(t, w, sa)
	var rb []struct {
		Resident *residentState `json:"resident"`
	}
	decode(t, b("sandbox", "inspect", sb), &rb)
	if len(rb) != 1 || rb[0].Resident == nil || !rb[0].Resident.Alive || rb[0].Resident.Pid <= 0 || rb[0].Resident.Pid == pidA {
		t.Fatalf("root B's resident %+v, root A's pid %d: want one of its own", rb, pidA)
	}
	pidB := rb[0].Resident.Pid
	expectAnswer(t, "root A's name in root A", dig(t, sa2, "10.88.0.1", sa, "A"), "NOERROR", sandboxAddr(t, w, sa, "na"))
	expectAnswer(t, "root B's name in root B", dig(t, sb2, "10.89.0.1", sb, "A"), "NOERROR", "10.89.0.2")
	expectAnswer(t, "root B's name, from root A's sandbox at root B's gateway", dig(t, sa, "10.89.0.1", sb, "A"), "REFUSED")

	if err := unix.Kill(pidA, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, pidA)
	expectAnswer(t, "root B's name, root A's resident killed", dig(t, sb2, "10.89.0.1", sb, "A"), "NOERROR", "10.89.0.2")
	expectAnswer(t, "root A's name, its resident killed", dig(t, sa2, "10.88.0.1", sa, "A"), "timeout")
	if out := b("gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("root B's gc after root A's resident died:\n%s", out)
	}
	w.MustNsnet(t, "gc")
	expectAnswer(t, "root A's name after its gc", dig(t, sa2, "10.88.0.1", sa, "A"), "NOERROR", sandboxAddr(t, w, sa, "na"))

	b("sandbox", "rm", sb, sb2)
	waitExit(t, pidB)
	b("network", "rm", "nb")
	w.MustNsnet(t, "sandbox", "rm", sa, sa2)
	w.MustNsnet(t, "network", "rm", "na")
	w.AssertClean(t)
}

// TestNamesFollowConnect checks that names follow network connect and
// disconnect at once: connected, a sandbox's name and its alias on the new
// network resolve there, to its address there, at the first query, and it
// resolves the new network's names; disconnected, they are gone at the
// first query (before the connect, the same questions were not answered:
// the control).
func TestNamesFollowConnect(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	startUpstreamDNS(t, w, testenv.PublicIP, nil)
	a, b := w.Name("a"), w.Name("b")
	const gw1, gw2 = "10.84.0.1", "10.84.1.1"
	w.MustNsnet(t, "network", "create", "--subnet", "10.84.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.84.1.0/24", "n2")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", "--alias", "db", b)

	expectAnswer(t, "a from b, before the connect", dig(t, b, gw2, a, "A"), "NXDOMAIN")
	expectAnswer(t, "db from a, before the connect", dig(t, a, gw1, "db", "A"), "NXDOMAIN")

	w.MustNsnet(t, "network", "connect", "--ip", "10.84.1.50", "--alias", "web", "n2", a)
	expectAnswer(t, "a from b, at once after the connect", dig(t, b, gw2, a, "A"), "NOERROR", "10.84.1.50")
	expectAnswer(t, "a's alias on n2 from b", dig(t, b, gw2, "web", "A"), "NOERROR", "10.84.1.50")
	expectAnswer(t, "db from a, at n2's gateway", dig(t, a, gw2, "db", "A"), "NOERROR", sandboxAddr(t, w, b, "n2"))
	expectAnswer(t, "db from a, at n1's gateway", dig(t, a, gw1, "db", "A"), "NOERROR", sandboxAddr(t, w, b, "n2"))

	w.MustNsnet(t, "network", "disconnect", "n2", a)
	expectAnswer(t, "a from b, at once after the disconnect", dig(t, b, gw2, a, "A"), "NXDOMAIN")
	expectAnswer(t, "a's alias from b, after the disconnect", dig(t, b, gw2, "web", "A"), "NXDOMAIN")
	expectAnswer(t, "db from a, after the disconnect", dig(t, a, gw1, "db", "A"), "NXDOMAIN")
	expectAnswer(t, "a's own name, on n1 still", dig(t, a, gw1, a, "A"), "NOERROR", sandboxAddr(t, w, a, "n1"))

	w.MustNsnet(t, "sandbox", "rm", a, b)
	w.MustNsnet(t, "network", "rm", "n1", "n2")
	w.AssertClean(t)
}
