package resident

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/internal/testenv"
)

// lookupA asks server:53 for name's A records from namespace ns over UDP,
// and returns the rcode and addresses, or the error.
func lookupA(ns, server, name string) (string, []string, error) {
	var c net.Conn
	err := testenv.InNS(testenv.NSPath(ns), func() (err error) {
		c, err = net.DialTimeout("udp", net.JoinHostPort(server, "53"), time.Second)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := (&dns.Client{Timeout: time.Second}).ExchangeWithConn(m, &dns.Conn{Conn: c})
	if err != nil {
		return "", nil, err
	}
	var addrs []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	return dns.RcodeToString[r.Rcode], addrs, nil
}

// TestServeReplacesZones starts the resident in a world's host namespace
// and checks that Serve replaces the zones of the networks it names, and
// only those, before it returns: a name given is answered at once, a name
// taken away is never answered again, and a zone removed stops listening;
// patches put and drop one record beside the others. A zone that cannot be
// bound fails the request and changes nothing.
func TestServeReplacesZones(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	err := testenv.InNS(w.HostPath(), func() error { _, err := Start(os.Args[0], w.Root); return err })
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { Stop(w.Root) })
	client := netip.MustParseAddr(testenv.RouterIP) // the internet namespace asks: the zone's member
	zone := func(names ...string) resolver.Zone {
		return resolver.Zone{Network: "n", Listen: netip.MustParseAddr(testenv.UplinkIP),
			Records: []resolver.Record{{Addr: client, Names: names}}}
	}
	if err := Serve(w.Root, Names{Zones: []resolver.Zone{zone("alpha")}, Networks: []string{"n"}}); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if rcode, addrs, err := lookupA(w.Inet, testenv.UplinkIP, "alpha"); err != nil || rcode != "NOERROR" || len(addrs) != 1 || addrs[0] != testenv.RouterIP {
		t.Errorf("alpha once served: %s %v %v", rcode, addrs, err)
	}

	if err := Serve(w.Root, Names{Zones: []resolver.Zone{zone("beta")}, Networks: []string{"n"}}); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if rcode, addrs, err := lookupA(w.Inet, testenv.UplinkIP, "alpha"); err != nil || rcode != "SERVFAIL" || len(addrs) != 0 {
		t.Errorf("alpha once replaced (no upstream: SERVFAIL): %s %v %v", rcode, addrs, err)
	}
	if rcode, addrs, err := lookupA(w.Inet, testenv.UplinkIP, "beta"); err != nil || rcode != "NOERROR" || len(addrs) != 1 {
		t.Errorf("beta: %s %v %v", rcode, addrs, err)
	}

	bad := resolver.Zone{Network: "m", Listen: netip.MustParseAddr("192.0.2.99"), Records: zone("x").Records}
	if err := Serve(w.Root, Names{Zones: []resolver.Zone{bad}, Networks: []string{"m"}}); err == nil || !strings.Contains(err.Error(), "192.0.2.99:53") {
		t.Errorf("Serve on an address the host lacks: %v, want an error naming it", err)
	}
	st, err := Probe(w.Root)
	if err != nil || len(st.Zones) != 1 || st.Zones[0].Network != "n" || st.Zones[0].Records[0].Names[0] != "beta" {
		t.Errorf("Probe after a failed Serve: %+v, %v; want zone n with beta only", st.Zones, err)
	}
	if rcode, _, err := lookupA(w.Inet, testenv.UplinkIP, "beta"); err != nil || rcode != "NOERROR" {
		t.Errorf("beta after a failed Serve of another zone: %s %v", rcode, err)
	}

	gamma := resolver.Record{Addr: netip.MustParseAddr("192.0.2.77"), Names: []string{"gamma"}}
	header := zone()
	header.Records = []resolver.Record{gamma}
	if err := Serve(w.Root, Names{Patches: []Patch{{Zone: header}}}); err != nil {
		t.Fatalf("Serve a patch putting gamma: %v", err)
	}
	if rcode, addrs, err := lookupA(w.Inet, testenv.UplinkIP, "gamma"); err != nil || rcode != "NOERROR" || len(addrs) != 1 || addrs[0] != "192.0.2.77" {
		t.Errorf("gamma once put: %s %v %v", rcode, addrs, err)
	}
	header.Records = nil
	if err := Serve(w.Root, Names{Patches: []Patch{{Zone: header, Drop: []netip.Addr{gamma.Addr}}}}); err != nil {
		t.Fatalf("Serve a patch dropping gamma: %v", err)
	}
	if rcode, _, err := lookupA(w.Inet, testenv.UplinkIP, "gamma"); err != nil || rcode != "SERVFAIL" {
		t.Errorf("gamma once dropped: %s %v", rcode, err)
	}
	if rcode, _, err := lookupA(w.Inet, testenv.UplinkIP, "beta"); err != nil || rcode != "NOERROR" {
		t.Errorf("beta, beside the patches: %s %v", rcode, err)
	}

	if err := Serve(w.Root, Names{Networks: []string{"n"}}); err != nil {
		t.Fatalf("Serve removing zone n: %v", err)
	}
	if rcode, _, err := lookupA(w.Inet, testenv.UplinkIP, "beta"); err == nil {
		t.Errorf("a query to a removed zone was answered: %s", rcode)
	}
	if st, err := Probe(w.Root); err != nil || len(st.Zones) != 0 {
		t.Errorf("Probe after the zone went: %+v, %v", st.Zones, err)
	}
	if err := Stop(w.Root); err != nil {
		t.Fatal(err)
	}
}
