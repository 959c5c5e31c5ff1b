package resolver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// These tests need no root: they exercise the zone tables and the replies
// built from them, without sockets.

var (
	gw    = netip.MustParseAddr("10.1.0.1")
	web   = netip.MustParseAddr("10.1.0.2")
	db    = netip.MustParseAddr("10.1.0.3")
	web6  = netip.MustParseAddr("fd00:1::2")
	up1   = netip.MustParseAddrPort("198.51.100.7:53")
	upOwn = netip.MustParseAddrPort("203.0.113.1:53")
)

func testZone() Zone {
	return Zone{
		Network:  "n1",
		Listen:   gw,
		Upstream: []netip.AddrPort{up1},
		Records: []Record{
			{Addr: web, Names: []string{"Web", "0123456789ab", "api", "www.example.test."}},
			{Addr: db, Names: []string{"db.", "API"}, Upstream: []netip.AddrPort{upOwn}},
			{Addr: web6, Names: []string{"web", "v6only"}},
		},
	}
}

func mustTable(t *testing.T, z Zone) *table {
	t.Helper()
	tables, err := compile([]Zone{z})
	if err != nil {
		t.Fatal(err)
	}
	return tables[z.Listen]
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// answerAddrs returns the addresses of m's A and AAAA answers, and checks
// that each answer's owner name repeats the question as asked.
func answerAddrs(t *testing.T, m *dns.Msg) []string {
	t.Helper()
	var out []string
	for _, rr := range m.Answer {
		if rr.Header().Name != m.Question[0].Name || rr.Header().Ttl != TTL {
			t.Errorf("answer %v: want owner %q and TTL %d", rr, m.Question[0].Name, TTL)
		}
		switch a := rr.(type) {
		case *dns.A:
			out = append(out, a.A.String())
		case *dns.AAAA:
			out = append(out, a.AAAA.String())
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestNamesMatchInAnyCaseWithOrWithoutDot(t *testing.T) {
	tb := mustTable(t, testZone())
	for _, c := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"web.", dns.TypeA, []string{"10.1.0.2"}},
		{"WEB.", dns.TypeA, []string{"10.1.0.2"}},
		{"wEb.", dns.TypeAAAA, []string{"fd00:1::2"}},
		{"web.", dns.TypeANY, []string{"10.1.0.2", "fd00:1::2"}},
		{"0123456789AB.", dns.TypeA, []string{"10.1.0.2"}},
		{"DB.", dns.TypeA, []string{"10.1.0.3"}},
		{"www.example.test.", dns.TypeA, []string{"10.1.0.2"}},
		{"api.", dns.TypeA, []string{"10.1.0.2", "10.1.0.3"}}, // several holders, in record order
	} {
		m := tb.answer(query(c.name, c.qtype))
		if m == nil {
			t.Errorf("%s %s: not answered locally", c.name, dns.TypeToString[c.qtype])
			continue
		}
		got := answerAddrs(t, m)
		if m.Rcode != dns.RcodeSuccess || !m.Authoritative || !slices.Equal(got, c.want) {
			t.Errorf("%s %s: rcode %s aa %v answers %v, want NOERROR aa %v", c.name, dns.TypeToString[c.qtype],
				dns.RcodeToString[m.Rcode], m.Authoritative, got, c.want)
		}
	}
}

func TestKnownNameOfAnotherTypeIsNoData(t *testing.T) {
	tb := mustTable(t, testZone())
	for _, c := range []struct {
		name  string
		qtype uint16
	}{
		{"db.", dns.TypeAAAA}, {"db.", dns.TypeMX}, {"web.", dns.TypeTXT}, {"v6only.", dns.TypeA},
		{"2.0.1.10.in-addr.arpa.", dns.TypeA},
	} {
		m := tb.answer(query(c.name, c.qtype))
		if m == nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || !m.Authoritative {
			t.Errorf("%s %s: got %v, want authoritative NOERROR without answers", c.name, dns.TypeToString[c.qtype], m)
		}
	}
}

func TestUnknownNamesGoUpstream(t *testing.T) {
	tb := mustTable(t, testZone())
	for _, name := range []string{"cache.", "web.n1.", "example.test.", ".", "b.", "9.0.1.10.in-addr.arpa.", "1.0.1.10.in-addr.arpa.", "0.1.10.in-addr.arpa."} {
		if m := tb.answer(query(name, dns.TypeA)); m != nil {
			t.Errorf("%s: answered locally: %v", name, m)
		}
	}
	chaos := query("web.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	if m := tb.answer(chaos); m != nil {
		t.Errorf("class CH answered locally: %v", m)
	}
}

func TestPTRNamesTheFirstName(t *testing.T) {
	tb := mustTable(t, testZone())
	for _, c := range []struct{ addr, want string }{
		{"10.1.0.2", "Web."}, {"10.1.0.3", "db."}, {"fd00:1::2", "web."},
	} {
		rev, err := dns.ReverseAddr(c.addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{rev, strings.ToUpper(rev)} {
			m := tb.answer(query(name, dns.TypePTR))
			if m == nil || len(m.Answer) != 1 {
				t.Errorf("PTR %s: got %v, want one answer", name, m)
				continue
			}
			ptr, ok := m.Answer[0].(*dns.PTR)
			if !ok || ptr.Ptr != c.want || ptr.Hdr.Name != name || ptr.Hdr.Ttl != TTL {
				t.Errorf("PTR %s: got %v, want %s with TTL %d", name, m.Answer[0], c.want, TTL)
			}
		}
	}
}

func TestReverseName(t *testing.T) {
	for addr, want := range map[string]string{
		"10.1.0.2":         "2.0.1.10.in-addr.arpa",
		"::ffff:10.1.0.2":  "2.0.1.10.in-addr.arpa", // compiled addresses are unmapped first
		"2001:db8::1":      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		"192.0.2.255":      "255.2.0.192.in-addr.arpa",
		"fd00:1:0:0::abcd": "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa",
	} {
		if got := reverseName(netip.MustParseAddr(addr).Unmap()); got != want {
			t.Errorf("reverseName(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestMembersAndTheirUpstream(t *testing.T) {
	tb := mustTable(t, testZone())
	for _, c := range []struct {
		src    netip.Addr
		want   []netip.AddrPort
		member bool
	}{
		{web, []netip.AddrPort{up1}, true},
		{db, []netip.AddrPort{upOwn}, true},
		{gw, []netip.AddrPort{up1}, false},
		{netip.MustParseAddr("10.1.0.9"), []netip.AddrPort{up1}, false},
	} {
		up, ok := tb.member(c.src)
		if ok != c.member || !slices.Equal(up, c.want) {
			t.Errorf("member(%s) = %v %v, want %v %v", c.src, up, ok, c.want, c.member)
		}
	}
}

func TestInternalZoneOffersNoRecursion(t *testing.T) {
	z := testZone()
	z.Internal = true
	m := mustTable(t, z).answer(query("web.", dns.TypeA))
	if m == nil || m.RecursionAvailable {
		t.Errorf("internal zone: got %v, want an answer without RA", m)
	}
	if m := mustTable(t, testZone()).answer(query("web.", dns.TypeA)); m == nil || !m.RecursionAvailable {
		t.Errorf("zone: got %v, want an answer with RA", m)
	}
}

func TestCompileRefusesWhatCannotBeAnswered(t *testing.T) {
	other := testZone()
	other.Network, other.Records = "n2", nil
	for name, c := range map[string]struct {
		zones []Zone
		want  string
	}{
		"same listen":       {[]Zone{testZone(), other}, "both listen on 10.1.0.1"},
		"no listen":         {[]Zone{{Network: "n1"}}, "network n1: listen address"},
		"unspecified":       {[]Zone{{Network: "n1", Listen: netip.IPv4Unspecified()}}, "not a unicast address"},
		"no names":          {[]Zone{{Network: "n1", Listen: gw, Records: []Record{{Addr: web}}}}, "record 10.1.0.2 has no name"},
		"empty name":        {[]Zone{{Network: "n1", Listen: gw, Records: []Record{{Addr: web, Names: []string{"."}}}}}, "empty name"},
		"space":             {[]Zone{{Network: "n1", Listen: gw, Records: []Record{{Addr: web, Names: []string{"a b"}}}}}, `name "a b"`},
		"empty label":       {[]Zone{{Network: "n1", Listen: gw, Records: []Record{{Addr: web, Names: []string{"a..b"}}}}}, "labels must be"},
		"long label":        {[]Zone{{Network: "n1", Listen: gw, Records: []Record{{Addr: web, Names: []string{strings.Repeat("a", 64)}}}}}, "labels must be"},
		"no address":        {[]Zone{{Network: "n1", Listen: gw, Records: []Record{{Names: []string{"a"}}}}}, "not a unicast address"},
		"address twice":     {[]Zone{{Network: "n1", Listen: gw, Records: []Record{{Addr: web, Names: []string{"a"}}, {Addr: web, Names: []string{"b"}}}}}, "10.1.0.2 is given to two records"},
		"upstream port 0":   {[]Zone{{Network: "n1", Listen: gw, Upstream: []netip.AddrPort{netip.AddrPortFrom(web, 0)}}}, "upstream server"},
		"upstream is self":  {[]Zone{{Network: "n1", Listen: gw, Upstream: []netip.AddrPort{netip.AddrPortFrom(gw, 53)}}}, "is the resolver of network n1 itself"},
		"own upstream loop": {[]Zone{testZone(), {Network: "n2", Listen: db, Records: []Record{{Addr: web, Names: []string{"x"}, Upstream: []netip.AddrPort{netip.AddrPortFrom(gw, 53)}}}}}, "network n2: upstream server 10.1.0.1:53 is the resolver of network n1"},
	} {
		_, err := compile(c.zones)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
		}
	}
	// Controls: the same shapes, valid, compile; another port on a gateway is
	// not the resolver.
	ok := []Zone{testZone(), {Network: "n2", Listen: db, Upstream: []netip.AddrPort{netip.AddrPortFrom(gw, 5353)},
		Records: []Record{{Addr: web, Names: []string{"a_b.c-d", strings.Repeat("a", 63)}}}}}
	if _, err := compile(ok); err != nil {
		t.Errorf("valid zones: %v", err)
	}
}

// packed fits m, the reply to req, to its transport and packs it.
func packed(t testing.TB, req, m *dns.Msg, tcp bool) int {
	t.Helper()
	fit(req, m, tcp)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func manyHolders(n int) Zone {
	z := Zone{Network: "n1", Listen: gw}
	for i := range n {
		z.Records = append(z.Records, Record{Addr: netip.AddrFrom4([4]byte{10, 1, 1, byte(i + 1)}), Names: []string{fmt.Sprintf("sb%d", i), "many"}})
	}
	z.Records = append(z.Records, Record{Addr: web, Names: []string{"client"}})
	return z
}

func TestRepliesFitTheClientOverUDP(t *testing.T) {
	tb := mustTable(t, manyHolders(60))
	for _, c := range []struct {
		name      string
		tcp       bool
		edns      uint16
		truncated bool
		limit     int
	}{
		{"udp", false, 0, true, 512},
		{"udp edns 1232", false, 1232, false, 1232},
		{"udp edns 4096", false, 4096, false, 4096},
		{"udp edns 300 counts as 512", false, 300, true, 512},
		{"tcp", true, 0, false, 65535},
	} {
		req := query("many.", dns.TypeA)
		if c.edns != 0 {
			req.SetEdns0(c.edns, false)
		}
		m := tb.answer(req)
		wire := packed(t, req, m, c.tcp)
		if m.Truncated != c.truncated || wire > c.limit {
			t.Errorf("%s: TC %v, %d bytes, %d answers; want TC %v and at most %d bytes", c.name, m.Truncated, wire, len(m.Answer), c.truncated, c.limit)
		}
		if !c.truncated && len(m.Answer) != 60 {
			t.Errorf("%s: %d answers, want all 60", c.name, len(m.Answer))
		}
		if (c.edns != 0) != (m.IsEdns0() != nil) {
			t.Errorf("%s: OPT in reply %v, want it exactly when the query had one", c.name, m.IsEdns0())
		}
	}
}

func TestRefusedEarly(t *testing.T) {
	notify := query("web.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	v1 := query("web.", dns.TypeA)
	v1.SetEdns0(1232, false)
	v1.IsEdns0().SetVersion(1)
	for name, c := range map[string]struct {
		req   *dns.Msg
		rcode int
	}{
		"notify": {notify, dns.RcodeNotImplemented},
		"edns1":  {v1, dns.RcodeBadVers},
	} {
		m := refuseEarly(c.req)
		if m == nil {
			t.Errorf("%s: not refused", name)
			continue
		}
		b, err := m.Pack()
		var back dns.Msg
		if err == nil {
			err = back.Unpack(b)
		}
		if err != nil || back.Rcode != c.rcode {
			t.Errorf("%s: rcode %s (%v), want %s", name, dns.RcodeToString[back.Rcode], err, dns.RcodeToString[c.rcode])
		}
	}
	if m := refuseEarly(query("web.", dns.TypeA)); m != nil {
		t.Errorf("a plain query was refused: %v", m)
	}
}

// BenchmarkLocalAnswer is the zone's work for one local name over UDP: find
// the name in a zone of 1,000 sandboxes, build the reply, fit it to 512
// bytes and pack it (unpacking the query and the socket are left out).
func BenchmarkLocalAnswer(b *testing.B) {
	z := Zone{Network: "n1", Listen: gw}
	for i := range 1000 {
		z.Records = append(z.Records, Record{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(1 + i%250)}),
			Names: []string{fmt.Sprintf("sandbox-%d", i), fmt.Sprintf("%012x", i), fmt.Sprintf("alias-%d", i)}})
	}
	tables, err := compile([]Zone{z})
	if err != nil {
		b.Fatal(err)
	}
	tb := tables[gw]
	req := query("sandbox-500.", dns.TypeA)
	buf := make([]byte, ednsSize)
	var m *dns.Msg
	b.ReportAllocs()
	for b.Loop() {
		m = tb.answer(req)
		fit(req, m, false)
		if _, err := m.PackBuffer(buf); err != nil {
			b.Fatal(err)
		}
	}
	if len(m.Answer) != 1 {
		b.Fatalf("answer: %v", m)
	}
}

func TestParseQuery(t *testing.T) {
	wire := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := query("web.", dns.TypeA)
	reply := new(dns.Msg).SetReply(good)
	two := query("web.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	withAnswer := query("web.", dns.TypeA)
	withAnswer.Answer = []dns.RR{&dns.A{Hdr: header(good.Question[0], dns.TypeA), A: web.AsSlice()}}
	for name, c := range map[string]struct {
		packet         []byte
		query, formerr bool
	}{
		"query":          {wire(good), true, false},
		"reply":          {wire(reply), false, false},
		"junk":           {[]byte("hello"), false, false},
		"cut":            {wire(good)[:15], false, false},
		"two questions":  {wire(two), true, true},
		"with an answer": {wire(withAnswer), true, true},
	} {
		req, formerr := parseQuery(c.packet)
		if (req != nil) != c.query || (formerr != nil) != c.formerr {
			t.Errorf("%s: query %v formerr %v, want %v %v", name, req != nil, formerr, c.query, c.formerr)
		}
		if formerr != nil && (formerr.Rcode != dns.RcodeFormatError || formerr.Id != req.Id || !formerr.Response) {
			t.Errorf("%s: %v, want a FORMERR reply with the query's ID", name, formerr)
		}
	}
}

// TestSandboxOnTwoZones: a sandbox on two networks resolves, at either
// resolver, the names of both, each at its address on its own network; a
// sandbox on one network only does not see the other's names.
func TestSandboxOnTwoZones(t *testing.T) {
	gwA, gwB := netip.MustParseAddr("10.5.0.1"), netip.MustParseAddr("10.6.0.1")
	xA, xB, lone, db := netip.MustParseAddr("10.5.0.2"), netip.MustParseAddr("10.6.0.2"), netip.MustParseAddr("10.5.0.3"), netip.MustParseAddr("10.6.0.9")
	tables, err := compile([]Zone{
		{Network: "a", Listen: gwA, Records: []Record{{Addr: xA, Names: []string{"x"}, Sandbox: "X"}, {Addr: lone, Names: []string{"lone"}, Sandbox: "L"}}},
		{Network: "b", Listen: gwB, Records: []Record{{Addr: xB, Names: []string{"x"}, Sandbox: "X"}, {Addr: db, Names: []string{"db"}, Sandbox: "D"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := answerFor(tables[gwA], query("db.", dns.TypeA), xA)
	if got := answerAddrs(t, m); len(got) != 1 || got[0] != db.String() {
		t.Errorf("x asking a's resolver for db: %v, want %s (its address on b)", got, db)
	}
	if m := answerFor(tables[gwA], query("db.", dns.TypeA), lone); m != nil {
		t.Errorf("lone, only on a, resolved db of b: %v", m)
	}
	if got := answerAddrs(t, answerFor(tables[gwA], query("x.", dns.TypeA), xA)); len(got) != 1 || got[0] != xA.String() {
		t.Errorf("a's own name first: %v, want %s", got, xA)
	}
}

// TestValidName: what callers ask before they give a name, the same as
// compile accepts.
func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"web": true, "db.internal.test.": true, "a_b-1": true, "0123456789ab": true,
		"": false, "a..b": false, "a b": false, strings.Repeat("x", 64): false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %t, want %t", name, got, want)
		}
		_, err := compile([]Zone{{Network: "n", Listen: netip.MustParseAddr("10.0.0.1"), Records: []Record{{Addr: netip.MustParseAddr("10.0.0.2"), Names: []string{name}}}}})
		if (err == nil) != want {
			t.Errorf("compile with name %q: %v, want it accepted %t", name, err, want)
		}
	}
}

// answerFor is the zone's own reply to req from src (query's): the names of
// the other zones src's sandbox is in count too, after the zone's own.
func answerFor(t *table, req *dns.Msg, src netip.Addr) *dns.Msg {
	m, _, _, _ := t.query(req, src)
	return m
}
