package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Link is one entry of "ip -j -d link show" / "ip -j -d addr show".
type Link struct {
	IfIndex     int        `json:"ifindex"`
	IfName      string     `json:"ifname"`
	Flags       []string   `json:"flags"`
	MTU         int        `json:"mtu"`
	OperState   string     `json:"operstate"`
	LinkType    string     `json:"link_type"` // "ether", "loopback", ...
	Address     string     `json:"address"`   // MAC
	Master      string     `json:"master"`    // bridge name when enslaved
	IfAlias     string     `json:"ifalias"`
	LinkIndex   int        `json:"link_index"`
	LinkNetnsID *int       `json:"link_netnsid"` // set when the peer is in another namespace
	LinkInfo    *LinkInfo  `json:"linkinfo"`
	AddrInfo    []AddrInfo `json:"addr_info"` // only filled by Addrs
}

// LinkInfo is the "linkinfo" object of "ip -d".
type LinkInfo struct {
	InfoKind      string          `json:"info_kind"`       // "bridge", "veth", ...
	InfoSlaveKind string          `json:"info_slave_kind"` // "bridge" for a bridge port
	InfoData      json.RawMessage `json:"info_data"`
	InfoSlaveData json.RawMessage `json:"info_slave_data"`
}

// AddrInfo is one address of a link.
type AddrInfo struct {
	Family    string `json:"family"` // "inet" or "inet6"
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Broadcast string `json:"broadcast"`
	Tentative bool   `json:"tentative"` // an IPv6 address still in duplicate address detection
}

// Route is one entry of "ip -j -4 route show".
type Route struct {
	Type     string   `json:"type"` // empty for unicast
	Dst      string   `json:"dst"`  // "default" or a prefix
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Protocol string   `json:"protocol"`
	Scope    string   `json:"scope"`
	PrefSrc  string   `json:"prefsrc"`
	Metric   int      `json:"metric"`
	Flags    []string `json:"flags"` // e.g. "linkdown"
}

// Neigh is one entry of "ip -j neigh show".
type Neigh struct {
	Dst    string   `json:"dst"`
	Dev    string   `json:"dev"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"` // e.g. ["REACHABLE"]
}

// Kind is the link's info_kind ("bridge", "veth", "" for lo/physical).
func (l Link) Kind() string {
	if l.LinkInfo == nil {
		return ""
	}
	return l.LinkInfo.InfoKind
}

// IsUp reports whether the link is administratively up (flag UP).
func (l Link) IsUp() bool { return slices.Contains(l.Flags, "UP") }

// IPs returns the link's addresses of family ("inet" or "inet6") as
// "address/prefixlen".
func (l Link) IPs(family string) []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == family {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		}
	}
	return out
}

// FindLink returns the link called name.
func FindLink(links []Link, name string) (Link, bool) {
	for _, l := range links {
		if l.IfName == name {
			return l, true
		}
	}
	return Link{}, false
}

// Links returns "ip -j -d -n ns link show".
func Links(t testing.TB, ns string) []Link {
	t.Helper()
	var links []Link
	must(t, ipJSON(ns, &links, "-d", "link", "show"))
	return links
}

// Addrs returns "ip -j -d -n ns addr show": links with AddrInfo filled.
func Addrs(t testing.TB, ns string) []Link {
	t.Helper()
	var links []Link
	must(t, ipJSON(ns, &links, "-d", "addr", "show"))
	return links
}

// Routes returns the IPv4 main-table routes, "ip -j -4 -n ns route show".
func Routes(t testing.TB, ns string) []Route {
	t.Helper()
	var routes []Route
	must(t, ipJSON(ns, &routes, "-4", "route", "show"))
	return routes
}

// Neighbours returns "ip -j -n ns neigh show".
func Neighbours(t testing.TB, ns string) []Neigh {
	t.Helper()
	var neighs []Neigh
	must(t, ipJSON(ns, &neighs, "neigh", "show"))
	return neighs
}

// NamespaceNames returns the sorted names in /run/netns (what "ip netns
// list" shows).
func NamespaceNames(t testing.TB) []string {
	t.Helper()
	names, err := namespaceNames()
	must(t, err)
	return names
}

// Nft returns the raw output of "nft -j list ruleset" run inside ns, or ""
// if nft printed nothing.
func Nft(t testing.TB, ns string) string {
	t.Helper()
	out, err := output("nsenter", "--net="+nsPath(ns), "--", "nft", "-j", "list", "ruleset")
	must(t, err)
	return strings.TrimSpace(out)
}

// NftTables returns "family name" of every nftables table in ns.
func NftTables(t testing.TB, ns string) []string {
	t.Helper()
	objs, err := nftObjects(Nft(t, ns))
	must(t, err)
	var out []string
	for _, o := range objs {
		if raw, ok := o["table"]; ok {
			var tb struct{ Family, Name string }
			must(t, json.Unmarshal(raw, &tb))
			out = append(out, tb.Family+" "+tb.Name)
		}
	}
	return out
}

// nftObjects splits "nft -j" output into its top-level objects, e.g.
// {"table": {...}}; "" gives none.
func nftObjects(raw string) ([]map[string]json.RawMessage, error) {
	if raw == "" {
		return nil, nil
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return nil, fmt.Errorf("parsing nft -j output: %w: %s", err, raw)
	}
	return doc.Nftables, nil
}

// Sysctl reads /proc/sys/<key> inside ns with nsenter + cat. key is
// "net/ipv4/ip_forward" or "net.ipv4.ip_forward" (dots only become slashes
// when key has no slash). The value is returned without surrounding space.
func Sysctl(t testing.TB, ns, key string) string {
	t.Helper()
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	out, err := RunIn(ns, "cat", "/proc/sys/"+key)
	must(t, err)
	return strings.TrimSpace(out)
}

// ipJSON runs "ip -j" inside ns and decodes its output into v. ns is a name
// under /run/netns ("ip -n") or an absolute path (nsenter --net).
func ipJSON(ns string, v any, args ...string) error {
	name, argv := "ip", append([]string{"-j", "-n", ns}, args...)
	if strings.HasPrefix(ns, "/") {
		name, argv = "nsenter", append([]string{"--net=" + ns, "--", "ip", "-j"}, args...)
	}
	out, err := output(name, argv...)
	if err != nil || strings.TrimSpace(out) == "" {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("parsing %s %s: %w: %s", name, strings.Join(argv, " "), err, out)
	}
	return nil
}

// output runs a command with a timeout and returns its stdout; the error
// carries the command and its stderr.
func output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "),
			err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
