package testenv

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/owner"
)

// Snapshot is the host-namespace state that "nothing changed" assertions
// compare, as sorted canonical lines (compare with reflect.DeepEqual or
// Diff). It leaves out what changes by itself: operstate, MACs, ifindexes,
// IPv6 link-local addresses, route flags, nft handles.
type Snapshot struct {
	Links      []string // "name kind=K master=M addrs=a/p,..." sorted by name
	Routes     []string // IPv4 main-table routes
	Nft        []string // one line per ruleset object of "nft -j list ruleset", in order, without metainfo and handles
	Namespaces []string // /run/netns names starting with Prefix+"-"
}

// Snapshot captures the current state of the world's host namespace.
func (w *World) Snapshot(t testing.TB) Snapshot {
	t.Helper()
	nft, err := nftLines(Nft(t, w.Host))
	must(t, err)
	ns, err := prefixed(w.Prefix)
	must(t, err)
	return Snapshot{
		Links:      linkLines(Addrs(t, w.Host)),
		Routes:     routeLines(Routes(t, w.Host)),
		Nft:        nft,
		Namespaces: ns,
	}
}

func linkLines(links []Link) []string {
	var out []string
	for _, l := range links {
		var addrs []string
		for _, a := range l.AddrInfo {
			if !strings.HasPrefix(a.Local, "fe80:") {
				addrs = append(addrs, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
			}
		}
		sort.Strings(addrs)
		out = append(out, fmt.Sprintf("%s kind=%s master=%s addrs=%s",
			l.IfName, l.Kind(), l.Master, strings.Join(addrs, ",")))
	}
	sort.Strings(out)
	return out
}

func routeLines(routes []Route) []string {
	var out []string
	for _, r := range routes {
		out = append(out, fmt.Sprintf("%s %s via=%s dev=%s proto=%s scope=%s src=%s metric=%d",
			r.Type, r.Dst, r.Gateway, r.Dev, r.Protocol, r.Scope, r.PrefSrc, r.Metric))
	}
	sort.Strings(out)
	return out
}

// nftLines re-encodes each ruleset object (keys sorted) without its handle.
func nftLines(raw string) ([]string, error) {
	objs, err := nftObjects(raw)
	var out []string
	for _, o := range objs {
		for kind, body := range o {
			if kind == "metainfo" {
				continue
			}
			var fields map[string]json.RawMessage
			if json.Unmarshal(body, &fields) == nil {
				delete(fields, "handle")
				body, _ = json.Marshal(fields)
			}
			out = append(out, kind+" "+string(body))
		}
	}
	return out, err
}

// Diff describes how o differs from s, "" when they are equal: per section,
// "-" lines are only in s, "+" lines only in o.
func (s Snapshot) Diff(o Snapshot) string {
	var b strings.Builder
	diffSection(&b, "links", s.Links, o.Links)
	diffSection(&b, "routes", s.Routes, o.Routes)
	diffSection(&b, "nft", s.Nft, o.Nft)
	diffSection(&b, "namespaces", s.Namespaces, o.Namespaces)
	return b.String()
}

func diffSection(b *strings.Builder, name string, a, c []string) {
	if slices.Equal(a, c) {
		return
	}
	fmt.Fprintf(b, "%s:\n", name)
	count := map[string]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range c {
		count[x]--
	}
	changed := false
	for _, x := range a {
		if count[x] > 0 {
			fmt.Fprintf(b, "  - %s\n", x)
			count[x]--
			changed = true
		}
	}
	for _, x := range c {
		if count[x] < 0 {
			fmt.Fprintf(b, "  + %s\n", x)
			count[x]++
			changed = true
		}
	}
	if !changed {
		b.WriteString("  (same entries, different order)\n")
	}
}

// AssertClean reports (t.Errorf) every link in the host namespace other
// than lo and eth0, every nftables table there, and every namespace named
// with Prefix other than Host and Inet. It first closes the sockets and
// servers t opened in namespaces (CloseAtEnd: a socket keeps its namespace
// alive), then waits for released veths to go (WaitReleased).
func (w *World) AssertClean(t testing.TB) {
	t.Helper()
	closeSockets(t)
	w.WaitReleased(t)
	for _, l := range Links(t, w.Host) {
		if l.IfName != "lo" && l.IfName != "eth0" {
			t.Errorf("testenv: leftover link %s (kind %q) in %s", l.IfName, l.Kind(), w.Host)
		}
	}
	for _, tb := range NftTables(t, w.Host) {
		t.Errorf("testenv: leftover nftables table %s in %s", tb, w.Host)
	}
	names, err := prefixed(w.Prefix)
	must(t, err)
	for _, n := range names {
		if n != w.Host && n != w.Inet {
			t.Errorf("testenv: leftover namespace %s", n)
		}
	}
}

// releaseWait bounds how long WaitReleased waits for the kernel: a TCP
// connection of the removed sandbox still closing keeps its namespace for up
// to about 100 s (tcp_orphan_retries) after the sandbox's veth went down.
const releaseWait = 150 * time.Second

// WaitReleased waits until the host namespace has no released veth left
// and reports (t.Errorf) any still there after releaseWait. When nsnet
// removes a sandbox whose namespace it made, it sets the sandbox's host veths
// down with a released mark and unmounts the namespace; the kernel destroys
// the namespace, and the pairs with it, a little later (milliseconds; longer
// when it is busy with many namespaces). Products never wait for it; tests
// that check that nothing is left do.
func (w *World) WaitReleased(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(releaseWait)
	for {
		var left []string
		for _, l := range Links(t, w.Host) {
			if owner.IsReleased(l.IfAlias) {
				left = append(left, l.IfName)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("testenv: released veths %v in %s are still there after %v: is something holding their namespaces?", left, w.Host, releaseWait)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
