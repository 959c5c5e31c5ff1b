package resolver

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// These tests need no root: the server's listeners are stand-ins without
// sockets, which Patch never touches.

// socketless is a Server serving zones on listeners without sockets.
func socketless(t *testing.T, zones []Zone) *Server {
	t.Helper()
	tables, err := compile(zones)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{listeners: map[netip.Addr]*listener{}, members: sandboxMembers(tables)}
	for addr, tb := range tables {
		s.listeners[addr] = &listener{s: s, cur: &generation{t: tb}}
	}
	return s
}

// view is a table in a form to compare: address lists sorted, linked zones
// by network.
type view struct {
	Network  string
	Internal bool
	Upstream []netip.AddrPort
	Records  map[netip.Addr]Record
	Names    map[string][]netip.Addr
	Reverse  map[string]string
	Members  map[netip.Addr][]netip.AddrPort
	Sands    map[netip.Addr]string
	Linked   map[netip.Addr][]string
}

func viewOf(t *table) view {
	v := view{Network: t.network, Internal: t.internal, Upstream: t.upstream, Records: t.records,
		Names: map[string][]netip.Addr{}, Reverse: t.reverse, Members: t.members, Sands: t.sandboxes, Linked: map[netip.Addr][]string{}}
	for k, as := range t.names {
		v.Names[k] = slices.SortedFunc(slices.Values(as), netip.Addr.Compare)
	}
	for a, ts := range t.linked {
		for _, o := range ts {
			v.Linked[a] = append(v.Linked[a], o.network)
		}
		slices.Sort(v.Linked[a])
	}
	if len(v.Upstream) == 0 {
		v.Upstream = nil
	}
	for a, m := range v.Members {
		if len(m) == 0 {
			v.Members[a] = nil
		}
	}
	return v
}

func serverViews(s *Server) map[netip.Addr]view {
	out := map[netip.Addr]view{}
	for a, l := range s.listeners {
		out[a] = viewOf(l.current())
	}
	return out
}

// model is the configuration a sequence of patches leaves.
type model map[string]Zone

func (m model) apply(p Patch) {
	z := m[p.Zone.Network]
	gone := map[netip.Addr]bool{}
	for _, a := range replaced(p) {
		gone[a] = true
	}
	var recs []Record
	for _, r := range z.Records {
		if !gone[r.Addr] {
			recs = append(recs, r)
		}
	}
	z = p.Zone
	z.Records = append(recs, p.Zone.Records...)
	m[p.Zone.Network] = z
}

func (m model) zones() []Zone { return slices.Collect(maps.Values(m)) }

// TestPatchMatchesCompile applies random patches (records put, replaced and
// dropped, sandboxes on several zones, upstream and internal changes) and
// checks after each that every zone's table is what compiling the
// configuration they leave gives.
func TestPatchMatchesCompile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nets := []struct {
		name   string
		listen netip.Addr
		prefix string
	}{{"a", netip.MustParseAddr("10.7.0.1"), "10.7.0."}, {"b", netip.MustParseAddr("10.8.0.1"), "10.8.0."}, {"c", netip.MustParseAddr("fd00:9::1"), "fd00:9::"}}
	record := func(n int, sb int) Record {
		r := Record{Addr: netip.MustParseAddr(fmt.Sprintf("%s%d", nets[n].prefix, 2+rng.IntN(12))),
			Names: []string{fmt.Sprintf("sb%d", sb), fmt.Sprintf("%012x", sb)}, Sandbox: fmt.Sprintf("id%d", sb)}
		if rng.IntN(3) == 0 {
			r.Names = append(r.Names, "shared")
		}
		if rng.IntN(4) == 0 {
			r.Upstream = []netip.AddrPort{netip.MustParseAddrPort("198.51.100.9:53")}
		}
		return r
	}
	m := model{}
	for i, n := range nets { // every zone starts with one record of its own, which is never dropped
		m[n.name] = Zone{Network: n.name, Listen: n.listen, Records: []Record{{Addr: netip.MustParseAddr(n.prefix + "100"), Names: []string{"anchor" + n.name}, Sandbox: fmt.Sprintf("anchor%d", i)}}}
	}
	s := socketless(t, m.zones())
	for step := 0; step < 2000; step++ {
		n := rng.IntN(len(nets))
		z := m[nets[n].name]
		p := Patch{Zone: Zone{Network: z.Network, Listen: z.Listen, Internal: rng.IntN(5) == 0}}
		if rng.IntN(3) == 0 {
			p.Zone.Upstream = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
		}
		switch rng.IntN(3) {
		case 0: // put, maybe replacing the record at its address
			p.Zone.Records = []Record{record(n, rng.IntN(6))}
		case 1: // drop one record (not the anchor)
			if len(z.Records) > 1 {
				p.Drop = []netip.Addr{z.Records[1+rng.IntN(len(z.Records)-1)].Addr}
			}
		case 2: // drop one, put another
			p.Drop = []netip.Addr{netip.MustParseAddr(fmt.Sprintf("%s%d", nets[n].prefix, 2+rng.IntN(12)))}
			p.Zone.Records = []Record{record(n, rng.IntN(6))}
		}
		ok, err := s.Patch([]Patch{p})
		if err != nil || !ok {
			t.Fatalf("step %d: Patch(%+v) = %t, %v", step, p, ok, err)
		}
		m.apply(p)
		want, err := compile(m.zones())
		if err != nil {
			t.Fatal(err)
		}
		wantViews := map[netip.Addr]view{}
		for a, tb := range want {
			wantViews[a] = viewOf(tb)
		}
		if got := serverViews(s); !reflect.DeepEqual(got, wantViews) {
			t.Fatalf("step %d, after %+v:\n got %+v\nwant %+v", step, p, got, wantViews)
		}
	}
}

// TestPatchLeavesToUpdate checks that Patch changes nothing, and says so,
// where serving must start or stop (a zone not served, one left empty), and
// that it refuses bad records and loops, all or none.
func TestPatchLeavesToUpdate(t *testing.T) {
	z := testZone()
	other := Zone{Network: "n2", Listen: netip.MustParseAddr("10.2.0.1"), Records: []Record{{Addr: netip.MustParseAddr("10.2.0.2"), Names: []string{"x"}}}}
	s := socketless(t, []Zone{z, other})
	before := serverViews(s)
	header := func(z Zone) Zone { z.Records = nil; return z }
	good := Patch{Zone: header(z)}
	good.Zone.Records = []Record{{Addr: netip.MustParseAddr("10.1.0.9"), Names: []string{"new"}}}
	cases := []struct {
		name    string
		patches []Patch
		want    string // "" for false without error
	}{
		{"zone not served", []Patch{{Zone: Zone{Network: "n3", Listen: netip.MustParseAddr("10.3.0.1"), Records: good.Zone.Records}}}, ""},
		{"zone emptied", []Patch{{Zone: header(other), Drop: []netip.Addr{netip.MustParseAddr("10.2.0.2")}}}, ""},
		{"another network's address", []Patch{{Zone: Zone{Network: "n2", Listen: gw, Records: good.Zone.Records}}}, ""},
		{"one zone twice", []Patch{good, good}, ""},
		{"bad name", []Patch{good, {Zone: Zone{Network: "n2", Listen: other.Listen, Records: []Record{{Addr: netip.MustParseAddr("10.2.0.5"), Names: []string{"a b"}}}}}},
			"only letters"},
		{"two records at one address", []Patch{{Zone: Zone{Network: "n1", Listen: gw, Records: []Record{good.Zone.Records[0], good.Zone.Records[0]}}}}, "two records"},
		{"loop", []Patch{{Zone: Zone{Network: "n1", Listen: gw, Upstream: []netip.AddrPort{netip.AddrPortFrom(other.Listen, Port)}}}}, "resolver of network n2 itself"},
	}
	for _, c := range cases {
		ok, err := s.Patch(c.patches)
		switch {
		case ok:
			t.Errorf("%s: Patch applied", c.name)
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want false without error", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
		if got := serverViews(s); !reflect.DeepEqual(got, before) {
			t.Errorf("%s: Patch changed the tables", c.name)
		}
	}
	if ok, err := s.Patch([]Patch{good}); !ok || err != nil {
		t.Fatalf("Patch(good) = %t, %v", ok, err)
	}
	if m := s.listeners[gw].current().answer(query("new.", 1)); m == nil || len(m.Answer) != 1 {
		t.Errorf("after Patch, new. answers %v", m)
	}
}

// TestPatchWhileQuerying runs queries on every zone, as listeners answer
// them, while patches change the zones (go test -race checks the locking),
// and checks that a name is not answered once the Patch that dropped it has
// returned, and is answered once the Patch that put it has.
func TestPatchWhileQuerying(t *testing.T) {
	a := Zone{Network: "a", Listen: netip.MustParseAddr("10.7.0.1"), Records: []Record{{Addr: netip.MustParseAddr("10.7.0.100"), Names: []string{"anchora"}, Sandbox: "both"}}}
	b := Zone{Network: "b", Listen: netip.MustParseAddr("10.8.0.1"), Records: []Record{{Addr: netip.MustParseAddr("10.8.0.100"), Names: []string{"anchorb"}, Sandbox: "both"}}}
	s := socketless(t, []Zone{a, b})
	stop := make(chan struct{})
	done := make(chan struct{})
	for i := range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			l, src := s.listeners[a.Listen], a.Records[0].Addr
			if i%2 == 1 {
				l, src = s.listeners[b.Listen], b.Records[0].Addr
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				g := l.enter()
				g.t.query(query("x.", 1), src) // names of both zones: its own and, linked, the other's
				g.busy.Done()
				runtime.Gosched() // the patching goroutine needs a CPU too
			}
		}()
	}
	header := func(z Zone) Zone { z.Records = nil; return z }
	for i := range 200 {
		addr := netip.MustParseAddr(fmt.Sprintf("10.7.0.%d", 2+i%50))
		put := Patch{Zone: header(a)}
		put.Zone.Records = []Record{{Addr: addr, Names: []string{"x"}, Sandbox: "both"}}
		if ok, err := s.Patch([]Patch{put}); !ok || err != nil {
			t.Fatalf("put: %t, %v", ok, err)
		}
		g := s.listeners[b.Listen].enter() // b's member resolves a's names through the link
		m, _, _, _ := g.t.query(query("x.", 1), b.Records[0].Addr)
		g.busy.Done()
		if m == nil || len(m.Answer) != 1 {
			t.Fatalf("after put %d, x. from zone b answers %v", i, m)
		}
		if ok, err := s.Patch([]Patch{{Zone: header(a), Drop: []netip.Addr{addr}}}); !ok || err != nil {
			t.Fatalf("drop: %t, %v", ok, err)
		}
		g = s.listeners[a.Listen].enter()
		m, _, _, _ = g.t.query(query("x.", 1), a.Records[0].Addr)
		g.busy.Done()
		if m != nil {
			t.Fatalf("after drop %d, x. still answers %v", i, m)
		}
	}
	close(stop)
	for range 2 {
		<-done
	}
}
