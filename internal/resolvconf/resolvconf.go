// Package resolvconf reads the host's resolv.conf and writes the
// resolv.conf and hosts files that a sandbox's programs see
// (/etc/netns/NAME/, bound over /etc by `ip netns exec`, `nsnet exec` and
// `nsnet run`), as Docker writes a container's.
//
// Invariants: Parse never fails on a line it does not know (it skips it);
// every file this package writes starts with a comment naming its owner
// (Marked tells such a file by it), so nsnet never removes a file it did
// not write.
package resolvconf

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// Conf is what resolv.conf says.
type Conf struct {
	Nameservers []netip.Addr
	Search      []string
	Options     []string
}

// Parse reads a resolv.conf. Lines it does not know are skipped.
func Parse(r io.Reader) (Conf, error) {
	var c Conf
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil {
				c.Nameservers = append(c.Nameservers, a.WithZone(""))
			}
		case "search", "domain": // the last one wins, as for the resolver
			c.Search = slices.Clone(f[1:])
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	return c, sc.Err()
}

// Reachable are the nameservers a sandbox can reach: not the host's
// loopback addresses (a stub resolver such as systemd-resolved's 127.0.0.53
// is the host's own, out of a sandbox's reach).
func (c Conf) Reachable() []netip.Addr {
	return slices.DeleteFunc(slices.Clone(c.Nameservers), func(a netip.Addr) bool { return a.IsLoopback() })
}

// Fallback are the servers a sandbox gets when the host has none it can
// reach, as Docker gives a container.
var Fallback = []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4")}

// mark starts every file this package writes.
const mark = "# written by nsnet "

// Marked reports whether content starts with the mark of the given owner
// (as Header wrote it).
func Marked(content, owner string) bool {
	return strings.HasPrefix(content, mark+owner+" ")
}

// Header is the first line of a file written for owner (a state root's ID)
// about sandbox.
func Header(owner, sandbox string) string {
	return fmt.Sprintf("%s%s for sandbox %s: it is written again when the sandbox's networks change\n", mark, owner, sandbox)
}

// Format writes a resolv.conf after header.
func Format(header string, c Conf) string {
	var b strings.Builder
	b.WriteString(header)
	for _, a := range c.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if len(c.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(c.Search, " "))
	}
	if len(c.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(c.Options, " "))
	}
	return b.String()
}

// Host is one line of a hosts file.
type Host struct {
	Addr  netip.Addr
	Names []string
}

// FormatHosts writes a hosts file after header: localhost, then hosts.
func FormatHosts(header string, hosts []Host) string {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s\t%s\n", h.Addr, strings.Join(h.Names, " "))
	}
	return b.String()
}
