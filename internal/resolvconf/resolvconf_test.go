package resolvconf

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `# a comment
; another
nameserver 127.0.0.53
nameserver 192.0.2.53
nameserver fe80::1%eth0
nameserver not-an-address
search example.com corp.example
options edns0 trust-ad
options ndots:2
garbage
`
	c, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("fe80::1")}
	if !slices.Equal(c.Nameservers, want) {
		t.Errorf("nameservers %v, want %v", c.Nameservers, want)
	}
	if !slices.Equal(c.Search, []string{"example.com", "corp.example"}) || !slices.Equal(c.Options, []string{"edns0", "trust-ad", "ndots:2"}) {
		t.Errorf("search %v options %v", c.Search, c.Options)
	}
	if got := c.Reachable(); !slices.Equal(got, want[1:]) {
		t.Errorf("reachable %v, want %v (no loopback)", got, want[1:])
	}
}

func TestFormatAndMark(t *testing.T) {
	h := Header("1a2b3c4d", "web")
	got := Format(h, Conf{Nameservers: []netip.Addr{netip.MustParseAddr("10.1.0.1")}, Search: []string{"example.com"}, Options: []string{"ndots:0"}})
	want := h + "nameserver 10.1.0.1\nsearch example.com\noptions ndots:0\n"
	if got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	back, _ := Parse(strings.NewReader(got))
	if len(back.Nameservers) != 1 || back.Nameservers[0] != netip.MustParseAddr("10.1.0.1") {
		t.Errorf("a written file does not read back: %+v", back)
	}
	if !Marked(got, "1a2b3c4d") || Marked(got, "ffffffff") || Marked("nameserver 1.1.1.1\n", "1a2b3c4d") {
		t.Errorf("Marked does not tell its owner's files")
	}
	hosts := FormatHosts(h, []Host{{Addr: netip.MustParseAddr("10.1.0.5"), Names: []string{"web", "0123456789ab"}}})
	if !strings.HasSuffix(hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.1.0.5\tweb 0123456789ab\n") || !Marked(hosts, "1a2b3c4d") {
		t.Errorf("FormatHosts = %q", hosts)
	}
}
