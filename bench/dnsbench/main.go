// Command dnsbench is the helper of bench/dns.sh: nsnet's resolver
// (internal/resolver) serving an aardvark-dns configuration directory, an
// upstream resolver, and a load generator.
//
//	dnsbench serve DIR
//	    serve the networks of DIR, in aardvark-dns's format (one file per
//	    network: first line "GATEWAY[,GATEWAY...] [DNS,...]", then one line
//	    per container "ID IPV4[,..] IPV6[,..] NAME[,NAME...] [DNS,...]"), with
//	    internal/resolver in the current network namespace; print "ready",
//	    then serve until SIGTERM or SIGINT. DNSBENCH_CPUPROFILE=FILE writes a
//	    CPU profile of the serving there.
//	dnsbench upstream ADDR
//	    answer, on ADDR over UDP and TCP, every name under fwd.test. with one
//	    A record (192.0.2.x) and NXDOMAIN for any other; print "ready".
//	dnsbench load [-c N] [-t T] [-warmup W] [-timeout D] [-names FORMAT] [-n K] SERVER
//	    N clients, each with its own UDP socket and one query in flight at a
//	    time, ask A of the names fmt.Sprintf(FORMAT, i) for i in 0..K-1 in
//	    turn, for W untimed then T timed; print one line "qps=.. p50_us=..
//	    p99_us=.. ok=.. bad=.. lost=.. replies=..". ok counts the timed
//	    NOERROR replies with an answer; bad other timed replies; lost the timed
//	    queries without a reply within D (they count in no latency); replies
//	    every reply, untimed ones too.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/nsnet/nsnet/internal/resolver"
)

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "upstream":
		err = upstream(os.Args[2])
	case "load":
		err = load(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dnsbench serve DIR | dnsbench upstream ADDR | dnsbench load [-c N] [-t T] [-warmup W] [-timeout D] [-names FORMAT] [-n K] SERVER")
	os.Exit(2)
}

// serve runs internal/resolver with the zones of an aardvark-dns
// configuration directory until a signal.
func serve(dir string) error {
	zones, err := readConfig(dir)
	if err != nil {
		return err
	}
	srv, err := resolver.New()
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Update(zones); err != nil {
		return err
	}
	if path := os.Getenv("DNSBENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

// readConfig reads every network file of dir (aardvark-dns 1.4 format) into
// zones, one per gateway address.
func readConfig(dir string) ([]resolver.Zone, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var zones []resolver.Zone
	for _, f := range files {
		if f.IsDir() || strings.HasSuffix(f.Name(), ".pid") {
			continue
		}
		zs, err := readNetwork(filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		zones = append(zones, zs...)
	}
	return zones, nil
}

func readNetwork(path string) ([]resolver.Zone, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	head := strings.Fields(lines[0])
	if len(head) == 0 {
		return nil, errors.New("no gateway line")
	}
	gateways, err := addrs(head[0])
	if err != nil {
		return nil, err
	}
	var up []netip.AddrPort
	if len(head) > 1 {
		if up, err = servers(head[1]); err != nil {
			return nil, err
		}
	}
	var records []resolver.Record
	for _, line := range lines[1:] {
		rs, err := readContainer(line)
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		records = append(records, rs...)
	}
	var zones []resolver.Zone
	for _, gw := range gateways {
		zones = append(zones, resolver.Zone{Network: filepath.Base(path), Listen: gw, Upstream: up, Records: records})
	}
	return zones, nil
}

// readContainer reads "ID IPV4S IPV6S NAMES [DNS]" into a record per address.
func readContainer(line string) ([]resolver.Record, error) {
	f := strings.Split(line, " ")
	if len(f) < 4 {
		return nil, errors.New("want ID IPV4S IPV6S NAMES [DNS]")
	}
	var ips []netip.Addr
	for _, field := range f[1:3] {
		if field == "" {
			continue
		}
		as, err := addrs(field)
		if err != nil {
			return nil, err
		}
		ips = append(ips, as...)
	}
	var up []netip.AddrPort
	if len(f) > 4 && f[4] != "" {
		var err error
		if up, err = servers(f[4]); err != nil {
			return nil, err
		}
	}
	var records []resolver.Record
	for _, ip := range ips {
		records = append(records, resolver.Record{Addr: ip, Names: strings.Split(f[3], ","), Upstream: up})
	}
	return records, nil
}

func addrs(list string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range strings.Split(list, ",") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func servers(list string) ([]netip.AddrPort, error) {
	as, err := addrs(list)
	var out []netip.AddrPort
	for _, a := range as {
		out = append(out, netip.AddrPortFrom(a, 53))
	}
	return out, err
}

// upstream answers every name under fwd.test. with one A record.
func upstream(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := dns.HandlerFunc(answerFwd)
	errc := make(chan error, 2)
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		up := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(up) }
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-up:
		case err := <-errc:
			return err
		}
	}
	fmt.Println("ready")
	return <-errc
}

func answerFwd(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	switch {
	case !strings.HasSuffix(name, ".fwd.test."):
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA:
		var sum byte
		for _, c := range []byte(name) {
			sum += c
		}
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, sum|1)}}
	}
	w.WriteMsg(m)
}

// counts is what one client saw.
type counts struct {
	lat                    []time.Duration
	ok, bad, lost, replies int
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	clients := fs.Int("c", 16, "concurrent clients")
	dur := fs.Duration("t", 5*time.Second, "timed duration")
	warmup := fs.Duration("warmup", time.Second, "untimed duration first")
	timeout := fs.Duration("timeout", time.Second, "wait for a reply at most")
	format := fs.String("names", "ctr%d.", "name format, given the index")
	n := fs.Int("n", 100, "names")
	fs.Parse(args)
	if fs.NArg() != 1 || *clients < 1 || *n < 1 {
		usage()
	}
	names := make([]string, *n)
	for i := range names {
		names[i] = dns.Fqdn(fmt.Sprintf(*format, i))
	}
	start := time.Now()
	timedFrom, end := start.Add(*warmup), start.Add(*warmup+*dur)
	results := make([]counts, *clients)
	var wg sync.WaitGroup
	errc := make(chan error, *clients)
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(fs.Arg(0), names, i, timedFrom, end, *timeout, &results[i]); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	var all counts
	for _, r := range results {
		all.lat = append(all.lat, r.lat...)
		all.ok, all.bad, all.lost, all.replies = all.ok+r.ok, all.bad+r.bad, all.lost+r.lost, all.replies+r.replies
	}
	slices.Sort(all.lat)
	fmt.Printf("qps=%.0f p50_us=%.0f p99_us=%.0f ok=%d bad=%d lost=%d replies=%d\n", float64(all.ok)/dur.Seconds(),
		micros(pct(all.lat, 50)), micros(pct(all.lat, 99)), all.ok, all.bad, all.lost, all.replies)
	return nil
}

// client asks names in turn, from index first, one query at a time, until
// end; it counts only what it sent from timedFrom on.
func client(server string, names []string, first int, timedFrom, end time.Time, timeout time.Duration, out *counts) error {
	c, err := net.Dial("udp", server)
	if err != nil {
		return err
	}
	defer c.Close()
	var q, r dns.Msg
	buf := make([]byte, 512)
	in := make([]byte, dns.DefaultMsgSize)
	for i := first; ; i++ {
		sent := time.Now()
		if !sent.Before(end) {
			return nil
		}
		q.SetQuestion(names[i%len(names)], dns.TypeA)
		q.Id = uint16(rand.Uint32())
		wire, err := q.PackBuffer(buf)
		if err != nil {
			return err
		}
		if _, err := c.Write(wire); err != nil {
			return err
		}
		ok, answered, err := await(c, in, &r, q.Id, sent.Add(timeout))
		if err != nil {
			return err
		}
		if answered {
			out.replies++
		}
		if sent.Before(timedFrom) {
			continue
		}
		switch {
		case !answered:
			out.lost++
		case ok:
			out.ok++
			out.lat = append(out.lat, time.Since(sent))
		default:
			out.bad++
			out.lat = append(out.lat, time.Since(sent))
		}
	}
}

// await reads until the reply with id comes, or deadline; replies to
// earlier queries that timed out are skipped.
func await(c net.Conn, in []byte, r *dns.Msg, id uint16, deadline time.Time) (ok, answered bool, err error) {
	c.SetReadDeadline(deadline)
	for {
		n, err := c.Read(in)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, false, nil
		}
		if err != nil {
			return false, false, err
		}
		if r.Unpack(in[:n]) != nil || r.Id != id {
			continue
		}
		return r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0, true, nil
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
