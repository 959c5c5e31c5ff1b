package resolver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// table is one zone compiled for answering, read by any number of queries
// at once. Server.Patch changes it in place under mu, and only ever puts new
// slices into its maps (never writes into one a query may hold).
type table struct {
	mu       sync.RWMutex
	network  string
	internal bool
	upstream []netip.AddrPort
	// records maps each record's address to the record (its names, for
	// taking it out again).
	records map[netip.Addr]Record
	// names maps a canonical name (canonical) to the addresses of its
	// holders, in record order, without duplicates.
	names map[string][]netip.Addr
	// reverse maps the canonical reverse name of each record's address
	// (in-addr.arpa or ip6.arpa) to the PTR target: its first name, as a
	// fully qualified name.
	reverse map[string]string
	// members maps every record's address to its own upstream servers (nil:
	// the zone's). Only members are answered.
	members map[netip.Addr][]netip.AddrPort
	// sandboxes maps records' addresses to their sandbox (Record.Sandbox),
	// and linked a member's address to the other zones its sandbox is in,
	// whose names it resolves too.
	sandboxes map[netip.Addr]string
	linked    map[netip.Addr][]*table
}

// canonical is the form names are compared in: lower case, without the
// trailing dot. It allocates nothing for a name already in that form.
func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// compile validates zones as a whole and builds a table per listen address.
// Nothing is served from a configuration that fails here.
func compile(zones []Zone) (map[netip.Addr]*table, error) {
	tables := make(map[netip.Addr]*table, len(zones))
	for _, z := range zones {
		t, err := compileZone(z)
		if err != nil {
			return nil, err
		}
		listen := z.Listen.Unmap()
		if other, dup := tables[listen]; dup {
			return nil, fmt.Errorf("networks %s and %s both listen on %s: give each network its own gateway address", other.network, z.Network, listen)
		}
		tables[listen] = t
	}
	for _, t := range tables {
		if err := checkNoLoop(t, tables); err != nil {
			return nil, err
		}
	}
	link(tables)
	return tables, nil
}

// member is a sandbox's record in a zone: the zone, and its address there.
type member struct {
	t    *table
	addr netip.Addr
}

// link gives each member of a sandbox on several zones the other zones.
func link(tables map[netip.Addr]*table) {
	for _, ms := range sandboxMembers(tables) {
		for _, m := range ms {
			for _, o := range ms {
				if o.t != m.t {
					m.t.linked[m.addr] = append(m.t.linked[m.addr], o.t)
				}
			}
		}
	}
}

// sandboxMembers returns the members of each sandbox in tables.
func sandboxMembers(tables map[netip.Addr]*table) map[string][]member {
	bySandbox := map[string][]member{}
	for _, t := range tables {
		for addr, sb := range t.sandboxes {
			bySandbox[sb] = append(bySandbox[sb], member{t, addr})
		}
	}
	return bySandbox
}

func compileZone(z Zone) (*table, error) {
	listen := z.Listen.Unmap()
	if !listen.IsValid() || listen.IsUnspecified() || listen.IsMulticast() {
		return nil, fmt.Errorf("network %s: listen address %q is not a unicast address: give the network's gateway", z.Network, z.Listen)
	}
	if err := checkUpstream(z.Upstream); err != nil {
		return nil, fmt.Errorf("network %s: %w", z.Network, err)
	}
	t := &table{
		network:   z.Network,
		internal:  z.Internal,
		upstream:  slices.Clone(z.Upstream),
		records:   make(map[netip.Addr]Record, len(z.Records)),
		names:     map[string][]netip.Addr{},
		reverse:   make(map[string]string, len(z.Records)),
		members:   make(map[netip.Addr][]netip.AddrPort, len(z.Records)),
		sandboxes: map[netip.Addr]string{},
		linked:    map[netip.Addr][]*table{},
	}
	for _, r := range z.Records {
		if err := t.add(r); err != nil {
			return nil, fmt.Errorf("network %s: %w", z.Network, err)
		}
	}
	return t, nil
}

// add puts one record into t, refusing what could not be answered as given.
func (t *table) add(r Record) error {
	if err := checkRecord(r); err != nil {
		return err
	}
	addr := r.Addr.Unmap()
	if _, dup := t.members[addr]; dup {
		return fmt.Errorf("address %s is given to two records: each sandbox has its own address on a network", addr)
	}
	for _, n := range r.Names {
		key := canonical(n)
		if old := t.names[key]; !slices.Contains(old, addr) {
			t.names[key] = append(slices.Clip(old), addr) // a new array: queries may hold the old one
		}
	}
	t.records[addr] = r
	t.members[addr] = slices.Clip(slices.Clone(r.Upstream))
	if r.Sandbox != "" {
		t.sandboxes[addr] = r.Sandbox
	}
	t.reverse[reverseName(addr)] = dns.Fqdn(strings.TrimSuffix(r.Names[0], "."))
	return nil
}

// checkRecord refuses a record that could not be answered as given.
func checkRecord(r Record) error {
	addr := r.Addr.Unmap()
	if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() {
		return fmt.Errorf("record %v: address %q is not a unicast address", r.Names, r.Addr)
	}
	if len(r.Names) == 0 {
		return fmt.Errorf("record %s has no name: give at least the sandbox's name", addr)
	}
	if err := checkUpstream(r.Upstream); err != nil {
		return fmt.Errorf("record %s: %w", addr, err)
	}
	for _, n := range r.Names {
		if err := checkName(n); err != nil {
			return fmt.Errorf("record %s: %w", addr, err)
		}
	}
	return nil
}

// remove takes the record at addr out of t, if t has one; its links to
// other zones are the caller's (Server.Patch).
func (t *table) remove(addr netip.Addr) {
	r, ok := t.records[addr]
	if !ok {
		return
	}
	for _, n := range r.Names {
		key := canonical(n)
		rest := slices.DeleteFunc(slices.Clone(t.names[key]), func(a netip.Addr) bool { return a == addr })
		if len(rest) == 0 {
			delete(t.names, key)
		} else {
			t.names[key] = rest
		}
	}
	delete(t.records, addr)
	delete(t.members, addr)
	delete(t.sandboxes, addr)
	delete(t.linked, addr)
	delete(t.reverse, reverseName(addr))
}

// reverseName is the canonical PTR owner name of addr, e.g.
// "2.0.18.172.in-addr.arpa".
func reverseName(addr netip.Addr) string {
	rev, _ := dns.ReverseAddr(addr.String()) // cannot fail for a valid address
	return canonical(rev)
}

// ValidName reports whether a zone takes name as a record's name (see
// checkName): callers leave out the names it would refuse rather than fail
// a whole update.
func ValidName(name string) bool { return checkName(name) == nil }

// checkName accepts host names as Docker allows them for containers and
// aliases: letters, digits, '-', '_' and '.', in labels of 1 to 63
// characters, 253 at most in all, with an optional trailing dot. Nothing in
// an accepted name needs escaping in a DNS message.
func checkName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return fmt.Errorf("empty name")
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("name %q: only letters, digits, '-', '_' and '.' may appear in a name", name)
		}
	}
	if _, ok := dns.IsDomainName(n); !ok || len(n) > 253 {
		return fmt.Errorf("name %q: labels must be 1 to 63 characters and the name 253 at most", name)
	}
	return nil
}

func checkUpstream(servers []netip.AddrPort) error {
	for _, s := range servers {
		a := s.Addr()
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || s.Port() == 0 {
			return fmt.Errorf("upstream server %q is not a unicast address and port", s)
		}
	}
	return nil
}

// checkNoLoop refuses an upstream server that is one of the zones
// themselves: a name nobody knows would go round in circles.
func checkNoLoop(t *table, tables map[netip.Addr]*table) error {
	servers := slices.Clone(t.upstream)
	for _, own := range t.members {
		servers = append(servers, own...)
	}
	for _, s := range servers {
		if other, ok := tables[s.Addr().Unmap()]; ok && s.Port() == Port {
			return fmt.Errorf("network %s: upstream server %s is the resolver of network %s itself: give a resolver outside nsnet", t.network, s, other.network)
		}
	}
	return nil
}

// member reports whether src is a record of the zone, and its upstream
// servers: its own, or else the zone's.
func (t *table) member(src netip.Addr) (upstream []netip.AddrPort, ok bool) {
	own, ok := t.members[src]
	if len(own) > 0 {
		return own, ok
	}
	return t.upstream, ok
}

// answer returns the zone's own reply to req (a query with one question),
// or nil when the question is none of the zone's names and goes upstream.
func (t *table) answer(req *dns.Msg) *dns.Msg {
	if rrs, ok := t.find(req.Question[0]); ok {
		return reply(req, rrs, t.internal)
	}
	return nil
}

// query is what the zone makes of req from src, read under t's lock (and
// each linked zone's, one at a time): whether src is a member, its upstream
// servers, whether the zone is internal, and the zone's own reply (nil: the
// question is none of the names src may resolve).
func (t *table) query(req *dns.Msg, src netip.Addr) (m *dns.Msg, upstream []netip.AddrPort, member, internal bool) {
	t.mu.RLock()
	upstream, member = t.member(src)
	internal = t.internal
	var linked []*table
	if member {
		m, linked = t.answer(req), t.linked[src]
	}
	t.mu.RUnlock()
	if m != nil {
		return m, upstream, member, internal
	}
	for _, o := range linked {
		o.mu.RLock()
		rrs, ok := o.find(req.Question[0])
		o.mu.RUnlock()
		if ok {
			return reply(req, rrs, internal), upstream, member, internal
		}
	}
	return nil, upstream, member, internal
}

// find returns the zone's answers to q, and whether q is one of its names.
func (t *table) find(q dns.Question) ([]dns.RR, bool) {
	if q.Qclass != dns.ClassINET {
		return nil, false
	}
	key := canonical(q.Name)
	if addrs, ok := t.names[key]; ok {
		return addressRRs(q, addrs), true
	}
	if target, ok := t.reverse[key]; ok {
		return ptrRRs(q, target), true
	}
	return nil, false
}

// addressRRs answers q with the addresses of its type: A for IPv4, AAAA for
// IPv6, both for ANY, and none for any other type (NODATA). Owner names
// repeat the question as asked, in its case.
func addressRRs(q dns.Question, addrs []netip.Addr) []dns.RR {
	var rrs []dns.RR
	for _, a := range addrs {
		switch {
		case a.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			rrs = append(rrs, &dns.A{Hdr: header(q, dns.TypeA), A: a.AsSlice()})
		case a.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			rrs = append(rrs, &dns.AAAA{Hdr: header(q, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	return rrs
}

func ptrRRs(q dns.Question, target string) []dns.RR {
	if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
		return nil
	}
	return []dns.RR{&dns.PTR{Hdr: header(q, dns.TypePTR), Ptr: target}}
}

func header(q dns.Question, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: q.Name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: TTL}
}

// reply is an authoritative answer to req: NOERROR, with answers or without
// (NODATA), recursion available unless the zone is internal, and an OPT
// record when req had one.
func reply(req *dns.Msg, answers []dns.RR, internal bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = !internal
	m.Answer = answers
	withEdns(m, req)
	return m
}

// withEdns adds an OPT record to m when req had one (RFC 6891 6.1.1).
func withEdns(m, req *dns.Msg) {
	if opt := req.IsEdns0(); opt != nil && m.IsEdns0() == nil {
		m.SetEdns0(ednsSize, opt.Do())
	}
}

// failure is a reply with rcode to req, and nothing else.
func failure(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	withEdns(m, req)
	return m
}

// udpSize is the largest reply the client of req takes over UDP: 512
// bytes, or what its OPT record says if that is more (RFC 6891 6.2.5).
func udpSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}
