package resolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/nsnet/nsnet/internal/testenv"
)

// These tests bind sockets, so each runs in a world of its own (see
// world_test.go); they need root.

// TestLocalNames resolves names, short IDs and aliases, a name held by two
// sandboxes, PTR and NODATA, from a sandbox over UDP and TCP with
// miekg/dns, with dig and with Go's resolver.
func TestLocalNames(t *testing.T) {
	l := newLab(t)
	l.update(zoneA())
	for _, tcp := range []bool{false, true} {
		for _, c := range []struct {
			name  string
			qtype uint16
			want  []string
		}{
			{"alpha.", dns.TypeA, []string{"10.1.0.2"}},
			{"ALPHA.", dns.TypeA, []string{"10.1.0.2"}},
			{"0a1a1a1a1a1a.", dns.TypeA, []string{"10.1.0.2"}},
			{"bravo.", dns.TypeA, []string{"10.1.0.3"}},
			{"db.internal.test.", dns.TypeA, []string{"10.1.0.3"}},
			{"shared.", dns.TypeA, []string{"10.1.0.2", "10.1.0.3"}},
			{"alpha.", dns.TypeAAAA, nil}, // NODATA
			{"alpha.", dns.TypeMX, nil},
			{ptrName(t, addrA1), dns.TypePTR, []string{"alpha."}},
			{ptrName(t, addrA2), dns.TypePTR, []string{"Bravo."}},
		} {
			r, err := ask(l.a1, gwA, tcp, query(c.name, c.qtype))
			if err != nil {
				t.Fatalf("%s over tcp=%v: %v", c.name, tcp, err)
			}
			expect(t, fmt.Sprintf("%s %s tcp=%v", c.name, dns.TypeToString[c.qtype], tcp), r, dns.RcodeSuccess, c.want...)
			if !r.Authoritative || len(r.Ns) != 0 {
				t.Errorf("%s: aa=%v authority %v, want an authoritative answer without authority", c.name, r.Authoritative, r.Ns)
			}
		}
	}
	if l.up.asked() != nil {
		t.Errorf("local names were forwarded")
	}

	// dig, a real resolver client.
	if got := digAnswers(dig(t, l.a2, gwA, "Shared"), "A"); !slices.Equal(got, []string{"10.1.0.2", "10.1.0.3"}) {
		t.Errorf("dig shared: %v", got)
	}
	if got := digAnswers(dig(t, l.a2, gwA, "-x", "10.1.0.2"), "PTR"); !slices.Equal(got, []string{"alpha."}) {
		t.Errorf("dig -x 10.1.0.2: %v", got)
	}
	out := dig(t, l.a2, gwA, "alpha", "AAAA")
	if !strings.Contains(out, "status: NOERROR") || strings.Contains(out, "ANSWER SECTION") {
		t.Errorf("dig alpha AAAA: want NOERROR without answers (NODATA):\n%s", out)
	}

	// Go's resolver, as a Go program in the sandbox would resolve.
	ctx := context.Background()
	res := goResolver(l.a2, gwA)
	if addrs, err := res.LookupHost(ctx, "0a1a1a1a1a1a"); err != nil || !slices.Equal(addrs, []string{"10.1.0.2"}) {
		t.Errorf("Go LookupHost short ID: %v %v", addrs, err)
	}
	if addrs, err := res.LookupHost(ctx, "shared"); err != nil || !slices.Equal(addrs, []string{"10.1.0.2", "10.1.0.3"}) {
		t.Errorf("Go LookupHost shared: %v %v", addrs, err)
	}
	if names, err := res.LookupAddr(ctx, "10.1.0.3"); err != nil || !slices.Equal(names, []string{"Bravo."}) {
		t.Errorf("Go LookupAddr 10.1.0.3: %v %v", names, err)
	}
}

// TestZonesAreIsolated serves two networks: each address answers its own
// names only, and only to its own sandboxes.
func TestZonesAreIsolated(t *testing.T) {
	l := newLab(t)
	l.update(zoneA(), zoneB())

	// Controls: each sandbox resolves the names of its own network.
	expect(t, "alpha on A from a1", l.lookup(l.a1, gwA, "alpha.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
	expect(t, "charlie on B from b1", l.lookup(l.b1, gwB, "charlie.", dns.TypeA), dns.RcodeSuccess, "10.2.0.2")

	// A's names are not B's: B forwards them, and the upstream knows them not.
	l.up.asked()
	for _, name := range []string{"alpha.", "shared.", "0a1a1a1a1a1a."} {
		expect(t, name+" on B from b1", l.lookup(l.b1, gwB, name, dns.TypeA), dns.RcodeNameError)
	}
	expect(t, "PTR of a1 on B", l.lookup(l.b1, gwB, ptrName(t, addrA1), dns.TypePTR), dns.RcodeNameError)
	if got := names(l.up.asked()); len(got) != 4 {
		t.Errorf("B forwarded %v, want the 4 names of A", got)
	}

	// a1 reaches B's address (the control: b1 is answered there), but is no
	// member of B: refused, for B's names and for names B would forward.
	for _, name := range []string{"charlie.", "www.example.test."} {
		r := l.lookup(l.a1, gwB, name, dns.TypeA)
		expect(t, name+" on B from a1", r, dns.RcodeRefused)
		if len(r.Ns)+len(r.Extra) != 0 {
			t.Errorf("refusal carries records: %v", r)
		}
	}
	if got := l.up.asked(); got != nil {
		t.Errorf("a query of a non-member was forwarded: %v", got)
	}
	expect(t, "www on B from b1", l.lookup(l.b1, gwB, "www.example.test.", dns.TypeA), dns.RcodeSuccess, "192.0.2.80")
}

// TestForwarding sends other names upstream: answers, NXDOMAIN and NODATA
// as they come, EDNS0 kept, TCP forwarded over TCP, a truncated answer
// passed on with TC (and a real client then retrying over TCP), a
// sandbox's own upstream, and a dead upstream skipped.
func TestForwarding(t *testing.T) {
	l := newLab(t)
	z := zoneA()
	z.Records[1].Upstream = []netip.AddrPort{altUp} // a2 has its own --dns
	l.update(z)

	expect(t, "www from a1", l.lookup(l.a1, gwA, "www.example.test.", dns.TypeA), dns.RcodeSuccess, "192.0.2.80")
	nx := l.lookup(l.a1, gwA, "nope.example.test.", dns.TypeA)
	expect(t, "nope from a1", nx, dns.RcodeNameError)
	nodata := l.lookup(l.a1, gwA, "www.example.test.", dns.TypeAAAA)
	expect(t, "www AAAA from a1", nodata, dns.RcodeSuccess)
	if len(nx.Ns) != 1 || len(nodata.Ns) != 1 {
		t.Errorf("the upstream's SOA did not come through: %v %v", nx.Ns, nodata.Ns)
	}
	asked := l.up.asked()
	if !slices.Equal(names(asked), []string{"www.example.test", "nope.example.test", "www.example.test"}) {
		t.Errorf("upstream saw %v", names(asked))
	}

	// EDNS0: the OPT record goes up and comes back; over TCP, TCP upstream.
	for _, tcp := range []bool{false, true} {
		m := query("www.example.test.", dns.TypeA)
		m.SetEdns0(1400, true)
		r, err := ask(l.a1, gwA, tcp, m)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, fmt.Sprintf("www with EDNS0 tcp=%v", tcp), r, dns.RcodeSuccess, "192.0.2.80")
		s := l.up.asked()
		if r.IsEdns0() == nil || r.Id != m.Id || len(s) != 1 || !s[0].edns || s[0].udpSize != 1400 || !s[0].do || s[0].tcp != tcp || s[0].id == m.Id {
			t.Errorf("tcp=%v: reply OPT %v id %d (query %d); upstream saw %+v; want OPT 1400 DO both ways, tcp=%v upstream, another ID upstream",
				tcp, r.IsEdns0(), r.Id, m.Id, s, tcp)
		}
	}

	// A truncated upstream answer keeps TC over UDP; TCP brings it whole.
	r := l.lookup(l.a1, gwA, "big.example.test.", dns.TypeA)
	if !r.Truncated || len(r.Answer) >= 40 {
		t.Errorf("big over UDP: %s, want TC with part of the 40 answers", describe(r))
	}
	r, err := ask(l.a1, gwA, true, query("big.example.test.", dns.TypeA))
	if err != nil || r.Truncated || len(r.Answer) != 40 {
		t.Fatalf("big over TCP: %v %v, want all 40 answers", err, r)
	}
	s := l.up.asked()
	if len(s) != 2 || s[0].tcp || !s[1].tcp {
		t.Errorf("upstream saw %+v, want UDP then TCP", s)
	}
	out := dig(t, l.a1, gwA, "+noedns", "big.example.test")
	if got := digAnswers(out, "A"); len(got) != 40 || !strings.Contains(out, "Truncated, retrying in TCP mode") {
		t.Errorf("dig big: %d answers, want 40 after a retry over TCP:\n%s", len(got), out)
	}

	// a2's own upstream answers for a2; a1 still gets the zone's.
	l.alt.asked()
	expect(t, "www from a2", l.lookup(l.a2, gwA, "www.example.test.", dns.TypeA), dns.RcodeSuccess, "192.0.2.81")
	expect(t, "www from a1 again", l.lookup(l.a1, gwA, "www.example.test.", dns.TypeA), dns.RcodeSuccess, "192.0.2.80")
	if got := names(l.alt.asked()); !slices.Equal(got, []string{"www.example.test"}) {
		t.Errorf("a2's upstream saw %v", got)
	}

	// An upstream where nothing listens is skipped for the next.
	z.Upstream = []netip.AddrPort{netip.MustParseAddrPort(testenv.PublicIP + ":5353"), mainUp}
	l.update(z)
	expect(t, "www via the second upstream", l.lookup(l.a1, gwA, "www.example.test.", dns.TypeA), dns.RcodeSuccess, "192.0.2.80")
	z.Upstream = z.Upstream[:1]
	l.update(z)
	expect(t, "www with no upstream answering", l.lookup(l.a1, gwA, "www.example.test.", dns.TypeA), dns.RcodeServerFailure)
}

// TestInternalNeverForwards: an internal network answers its own names and
// SERVFAIL for any other, and its upstream never hears of them; the same
// zone not internal forwards. A zone without upstream fails alike.
func TestInternalNeverForwards(t *testing.T) {
	l := newLab(t)
	z := zoneA()
	z.Internal = true
	l.update(z)
	expect(t, "alpha on internal A", l.lookup(l.a1, gwA, "alpha.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
	for _, tcp := range []bool{false, true} {
		r, err := ask(l.a1, gwA, tcp, query("www.example.test.", dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		expect(t, fmt.Sprintf("www on internal A tcp=%v", tcp), r, dns.RcodeServerFailure)
	}
	expect(t, "PTR of an outside address on internal A", l.lookup(l.a1, gwA, ptrName(t, netip.MustParseAddr("192.0.2.80")), dns.TypePTR), dns.RcodeServerFailure)
	if got := l.up.asked(); got != nil {
		t.Errorf("an internal network forwarded %v", names(got))
	}

	z.Internal = false // the control
	l.update(z)
	expect(t, "www on A", l.lookup(l.a1, gwA, "www.example.test.", dns.TypeA), dns.RcodeSuccess, "192.0.2.80")
	if got := names(l.up.asked()); !slices.Equal(got, []string{"www.example.test"}) {
		t.Errorf("upstream saw %v", got)
	}

	z.Upstream = nil
	l.update(z)
	expect(t, "www on A without upstream", l.lookup(l.a1, gwA, "www.example.test.", dns.TypeA), dns.RcodeServerFailure)
}

// TestRemovedNamesAreGoneAtOnce: once Update returns, a removed name is
// not answered (it is forwarded, and the upstream does not know it), a
// removed zone's address is closed, and a renamed sandbox answers only its
// new name; many times over, with queries running meanwhile.
func TestRemovedNamesAreGoneAtOnce(t *testing.T) {
	l := newLab(t)
	with := zoneA()
	without := zoneA()
	without.Records[1].Names = []string{"bravo2"} // a2 renamed: Bravo, its ID and aliases gone
	ctx, cancel := context.WithCancel(context.Background())
	loaded := make(chan struct{})
	go func() { // load meanwhile, from b1 on B
		defer close(loaded)
		for ctx.Err() == nil {
			ask(l.b1, gwB, false, query("charlie.", dns.TypeA))
		}
	}()
	defer func() { cancel(); <-loaded }()
	for i := range 50 {
		l.update(with, zoneB())
		expect(t, fmt.Sprintf("round %d: Bravo before", i), l.lookup(l.a1, gwA, "bravo.", dns.TypeA), dns.RcodeSuccess, "10.1.0.3")
		l.update(without, zoneB())
		for _, name := range []string{"bravo.", "0a2a2a2a2a2a.", "db.internal.test."} {
			expect(t, fmt.Sprintf("round %d: %s after", i, name), l.lookup(l.a1, gwA, name, dns.TypeA), dns.RcodeNameError)
		}
		expect(t, fmt.Sprintf("round %d: shared after", i), l.lookup(l.a1, gwA, "shared.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
		expect(t, fmt.Sprintf("round %d: bravo2 after", i), l.lookup(l.a1, gwA, "bravo2.", dns.TypeA), dns.RcodeSuccess, "10.1.0.3")
		if t.Failed() {
			return
		}
	}

	// A zone removed: its address no longer answers and is free. (The load
	// stops first: the host's ICMP port unreachables to b1 are rate limited.)
	cancel()
	<-loaded
	expect(t, "charlie before B is removed", l.lookup(l.b1, gwB, "charlie.", dns.TypeA), dns.RcodeSuccess, "10.2.0.2")
	l.update(without)
	for _, tcp := range []bool{false, true} {
		if r, err := ask(l.b1, gwB, tcp, query("charlie.", dns.TypeA)); err == nil {
			t.Errorf("B removed, tcp=%v: answered %v", tcp, r)
		}
	}
	if err := l.bindable(gwB); err != nil {
		t.Errorf("B removed, its port is still held: %v", err)
	}
	if err := l.bindable(gwA); err == nil {
		t.Errorf("the control: A's port is free, though A is served")
	}
}

// TestTruncationAndTCPRetry: 60 sandboxes hold one name; over UDP without
// EDNS0 the answer is cut with TC, over TCP or with a large EDNS0 size it
// is whole, and dig and Go's resolver get all 60.
func TestTruncationAndTCPRetry(t *testing.T) {
	l := newLab(t)
	z := zoneA()
	var want []string
	for i := range 60 {
		a := netip.AddrFrom4([4]byte{10, 1, 0, byte(100 + i)})
		z.Records = append(z.Records, Record{Addr: a, Names: []string{fmt.Sprintf("sb%d", i), "many"}})
		want = append(want, a.String())
	}
	l.update(z)

	udp := l.lookup(l.a1, gwA, "many.", dns.TypeA)
	tcp, err := ask(l.a1, gwA, true, query("many.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	big := query("many.", dns.TypeA)
	big.SetEdns0(4096, false)
	edns, err := ask(l.a1, gwA, false, big)
	if err != nil {
		t.Fatal(err)
	}
	small := query("many.", dns.TypeA)
	small.SetEdns0(512, false)
	edns512, err := ask(l.a1, gwA, false, small)
	if err != nil {
		t.Fatal(err)
	}
	if !udp.Truncated || len(udp.Answer) == 0 || len(udp.Answer) >= 60 || !edns512.Truncated || len(edns512.Answer) >= 60 {
		t.Errorf("UDP without EDNS0 and with 512: %s want TC with part of the answers", describe(udp, edns512))
	}
	expect(t, "many over TCP", tcp, dns.RcodeSuccess, want...)
	expect(t, "many over UDP with EDNS0 4096", edns, dns.RcodeSuccess, want...)
	if tcp.Truncated || edns.Truncated || edns.IsEdns0() == nil {
		t.Errorf("TCP and EDNS0 4096: %s want whole answers, the second with OPT", describe(tcp, edns))
	}

	out := dig(t, l.a1, gwA, "+noedns", "many")
	if got := digAnswers(out, "A"); !slices.Equal(got, want) || !strings.Contains(out, "Truncated, retrying in TCP mode") {
		t.Errorf("dig many: %d answers, want 60 after a retry over TCP:\n%s", len(got), out)
	}
	addrs, err := goResolver(l.a1, gwA).LookupHost(context.Background(), "many")
	if slices.Sort(addrs); err != nil || len(addrs) != 60 {
		t.Errorf("Go LookupHost many: %d addresses, %v", len(addrs), err)
	}
}

// TestUpdateKeepsServingWhenBindFails: an Update whose new address cannot
// be bound (not on any interface, or its port taken) fails naming it and
// changes nothing; the same Update succeeds once the address can be bound.
func TestUpdateKeepsServingWhenBindFails(t *testing.T) {
	l := newLab(t)
	l.update(zoneA())
	renamed := zoneA()
	renamed.Records[0].Names = []string{"alpha2"}
	gone := Zone{Network: "net-c", Listen: netip.MustParseAddr("10.3.0.1")} // on no interface yet

	still := func(what string) {
		t.Helper()
		expect(t, what+": alpha", l.lookup(l.a1, gwA, "alpha.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
		expect(t, what+": alpha2", l.lookup(l.a1, gwA, "alpha2.", dns.TypeA), dns.RcodeNameError)
	}
	// B's address comes before C's, so B is bound, and must be let go again.
	err := l.srv.Update([]Zone{renamed, zoneB(), gone})
	if err == nil || !strings.Contains(err.Error(), "10.3.0.1:53") || !strings.Contains(err.Error(), "net-c") {
		t.Errorf("update with an address on no interface: %v, want an error naming net-c and 10.3.0.1:53", err)
	}
	still("after the failed update")
	if err := l.bindable(gwB); err != nil {
		t.Errorf("the failed update left B's address held: %v", err)
	}

	// The port taken by someone else.
	l.ip("-n", l.w.Host, "addr", "add", "10.3.0.1/32", "dev", "lo")
	var taken net.Listener
	err = testenv.InNS(l.w.HostPath(), func() (err error) {
		taken, err = net.Listen("tcp4", "10.3.0.1:53")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = l.srv.Update([]Zone{renamed, gone})
	if err == nil || !strings.Contains(err.Error(), "10.3.0.1:53/tcp") {
		t.Errorf("update with a taken port: %v, want an error naming 10.3.0.1:53/tcp", err)
	}
	expect(t, "alpha after the second failed update", l.lookup(l.a1, gwA, "alpha.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
	err = testenv.InNS(l.w.HostPath(), func() error {
		pc, err := net.ListenPacket("udp4", "10.3.0.1:53")
		if err == nil {
			pc.Close()
		}
		return err
	})
	if err != nil {
		t.Errorf("the failed update left 10.3.0.1:53/udp bound: %v", err)
	}

	// The control: the same update, once the port is free.
	taken.Close()
	l.update(renamed, gone)
	expect(t, "alpha2 after the update", l.lookup(l.a1, gwA, "alpha2.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
	expect(t, "alpha after the update", l.lookup(l.a1, gwA, "alpha.", dns.TypeA), dns.RcodeNameError)
	if err := l.bindable("10.3.0.1"); err == nil {
		t.Errorf("10.3.0.1:53 is not served after the update")
	}
}

// TestClose: a closed Server answers nothing, holds no port and takes no
// update.
func TestClose(t *testing.T) {
	l := newLab(t)
	l.update(zoneA(), zoneB())
	expect(t, "alpha before close", l.lookup(l.a1, gwA, "alpha.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
	if err := l.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tcp := range []bool{false, true} {
		if r, err := ask(l.a1, gwA, tcp, query("alpha.", dns.TypeA)); err == nil {
			t.Errorf("closed, tcp=%v: answered %v", tcp, r)
		}
	}
	for _, gw := range []string{gwA, gwB} {
		if err := l.bindable(gw); err != nil {
			t.Errorf("closed, %s:53 still held: %v", gw, err)
		}
	}
	if err := l.srv.Update([]Zone{zoneA()}); err == nil || !strings.Contains(err.Error(), "after close") {
		t.Errorf("update after close: %v", err)
	}
}

// TestSlowUpstreamHoldsNoLocalAnswer: while a forwarded query waits for its
// upstream, the zone's own names are answered. The upstream here answers
// only once the local name was: if the local answer waited for the
// forwarded one, the upstream would answer too late (after forwardTimeout)
// and the forwarded query would get SERVFAIL.
func TestSlowUpstreamHoldsNoLocalAnswer(t *testing.T) {
	l := newLab(t)
	var slow net.PacketConn
	err := testenv.InNS(l.w.InetPath(), func() (err error) {
		slow, err = net.ListenPacket("udp4", testenv.PublicIP+":5300")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	arrived, release := make(chan struct{}), make(chan struct{})
	go func() { // the slow upstream
		buf := make([]byte, 4096)
		n, from, err := slow.ReadFrom(buf)
		var q dns.Msg
		if err != nil || q.Unpack(buf[:n]) != nil {
			return
		}
		close(arrived)
		<-release
		m := new(dns.Msg).SetReply(&q)
		m.Answer = []dns.RR{&dns.A{Hdr: header(q.Question[0], dns.TypeA), A: net.IPv4(192, 0, 2, 99)}}
		if b, err := m.Pack(); err == nil {
			slow.WriteTo(b, from)
		}
	}()
	z := zoneA()
	z.Upstream = []netip.AddrPort{netip.MustParseAddrPort(testenv.PublicIP + ":5300")}
	l.update(z)

	forwarded := make(chan *dns.Msg, 1)
	go func() {
		r, err := ask(l.a1, gwA, false, query("www.example.test.", dns.TypeA))
		if err != nil {
			t.Errorf("forwarded query: %v", err)
		}
		forwarded <- r
	}()
	<-arrived
	expect(t, "alpha while forwarding", l.lookup(l.a2, gwA, "alpha.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
	close(release)
	if r := <-forwarded; r != nil {
		expect(t, "www via the slow upstream", r, dns.RcodeSuccess, "192.0.2.99")
	}
}

// TestIPv6Zone serves a zone on an IPv6 gateway: AAAA for its names, NODATA
// for A, PTR in ip6.arpa, over UDP and TCP.
func TestIPv6Zone(t *testing.T) {
	l := newLab(t)
	const gw6 = "fd00:a::1"
	a1 := netip.MustParseAddr("fd00:a::2")
	l.ip("-n", l.w.Host, "addr", "add", gw6+"/64", "dev", "br-a", "nodad")
	l.ip("-n", l.a1, "addr", "add", a1.String()+"/64", "dev", "eth0", "nodad")
	l.update(zoneA(), Zone{Network: "net-a6", Listen: netip.MustParseAddr(gw6), Records: []Record{
		{Addr: a1, Names: []string{"alpha", "0a1a1a1a1a1a"}},
	}})
	for _, tcp := range []bool{false, true} {
		for _, c := range []struct {
			name  string
			qtype uint16
			want  []string
		}{
			{"alpha.", dns.TypeAAAA, []string{"fd00:a::2"}},
			{"0A1A1A1A1A1A.", dns.TypeAAAA, []string{"fd00:a::2"}},
			{"alpha.", dns.TypeA, nil},
			{ptrName(t, a1), dns.TypePTR, []string{"alpha."}},
		} {
			r, err := ask(l.a1, gw6, tcp, query(c.name, c.qtype))
			if err != nil {
				t.Fatalf("%s over tcp=%v: %v", c.name, tcp, err)
			}
			expect(t, fmt.Sprintf("%s %s tcp=%v", c.name, dns.TypeToString[c.qtype], tcp), r, dns.RcodeSuccess, c.want...)
		}
	}
	// The IPv4 zone of the same network answers A.
	expect(t, "alpha A on the IPv4 gateway", l.lookup(l.a1, gwA, "alpha.", dns.TypeA), dns.RcodeSuccess, "10.1.0.2")
}
