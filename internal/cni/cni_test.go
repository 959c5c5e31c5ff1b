package cni

// Tests of what the plugin reads and writes, without root: configs, runtime
// arguments, names, results and error codes. internal/cni/e2e_test.go
// drives the plugin through libcni in throwaway worlds.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/validate"
)

func code(err error) uint {
	var te *types.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestParseConf(t *testing.T) {
	c, err := parseConf([]byte(`{"cniVersion":"1.0.0","name":"podnet","type":"nsnet","subnet":"10.88.0.0/24","resolver":true,"mtu":1400}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Network != "podnet" || c.Root != engine.DefaultRoot || !c.Resolver || c.MTU != 1400 || c.lockTimeout != engine.DefaultLockTimeout {
		t.Errorf("defaults: %+v", c)
	}
	if c.networkSpec().NoAntiSpoof {
		t.Errorf("anti-spoofing off by default: %+v", c.networkSpec())
	}
	for conf, off := range map[string]bool{`"antispoof":false`: true, `"antispoof":true`: false} {
		c, err := parseConf([]byte(`{"cniVersion":"1.0.0","name":"podnet","type":"nsnet",` + conf + `}`))
		if err != nil || c.networkSpec().NoAntiSpoof != off {
			t.Errorf("%s: NoAntiSpoof %v (%v), want %v", conf, c.networkSpec().NoAntiSpoof, err, off)
		}
	}
	c, err = parseConf([]byte(`{"cniVersion":"1.0.0","name":"podnet","type":"nsnet","network":"br01","root":"/r","lockTimeout":"0s"}`))
	if err != nil || c.Network != "br01" || c.Root != "/r" || c.lockTimeout != engine.NoWait {
		t.Errorf("given: %+v %v", c, err)
	}
	for _, bad := range []struct {
		conf string
		code uint
	}{
		{`{"name":`, types.ErrDecodingFailure},
		{`{"cniVersion":"1.0.0","name":"n","type":"nsnet","dns":true}`, types.ErrDecodingFailure}, // CNI's DNS object, as libcni reads it
		{`{"cniVersion":"1.0.0","name":"n","type":"nsnet","lockTimeout":"soon"}`, types.ErrInvalidNetworkConfig},
		{`{"cniVersion":"1.0.0","name":"n","type":"nsnet","lockTimeout":"-1s"}`, types.ErrInvalidNetworkConfig},
	} {
		if _, err := parseConf([]byte(bad.conf)); code(err) != bad.code {
			t.Errorf("%s: %v (code %d), want code %d", bad.conf, err, code(err), bad.code)
		}
	}
}

func TestParseRequest(t *testing.T) {
	conf := func(rc string) *netConf {
		c, err := parseConf([]byte(`{"cniVersion":"1.0.0","name":"podnet","type":"nsnet","runtimeConfig":` + rc + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	podman := "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.88.0.9;MAC=02:00:00:00:00:09"
	r, err := parseRequest(conf(`{}`), &skel.CmdArgs{Args: podman})
	if err != nil || r.ip != "10.88.0.9" || r.mac != "02:00:00:00:00:09" || !slices.Equal(r.aliases, []string{"web"}) {
		t.Errorf("CNI_ARGS: %+v %v", r, err)
	}
	if r, _ := parseRequest(conf(`{}`), &skel.CmdArgs{Args: "K8S_POD_NAME=-bad"}); len(r.aliases) != 0 {
		t.Errorf("a pod name that is no name became an alias: %v", r.aliases)
	}
	r, err = parseRequest(conf(`{"ips":["10.88.0.7/24"],"mac":"02:00:00:00:00:07","aliases":{"podnet":["web","a1b2c3d4e5f6"],"other":["x"]},
		"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":5353,"containerPort":53,"protocol":"UDP","hostIP":"127.0.0.1"},
		{"hostPort":9000,"containerPort":9000,"hostIP":"0.0.0.0"},{"hostPort":7000,"containerPort":7000,"protocol":"sctp"}]}`), &skel.CmdArgs{Args: podman})
	if err != nil {
		t.Fatal(err)
	}
	want := request{ip: "10.88.0.7", mac: "02:00:00:00:00:07", aliases: []string{"web", "a1b2c3d4e5f6", "web"},
		publish: []string{"8080:80/tcp", "127.0.0.1:5353:53/udp", "9000:9000/tcp", "7000:7000/sctp"}}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("capabilities over CNI_ARGS: %+v, want %+v", r, want)
	}
	for _, bad := range []string{
		`{"ips":["10.88.0.7/24","10.88.0.8/24"]}`,
		`{"ips":["fd00::7/64"]}`,
		`{"ips":["ten"]}`,
		`{"portMappings":[{"hostPort":0,"containerPort":80}]}`,
		`{"portMappings":[{"hostPort":8080,"containerPort":70000}]}`,
		`{"portMappings":[{"hostPort":8080,"containerPort":80,"hostIP":"::1"}]}`,
	} {
		if _, err := parseRequest(conf(bad), &skel.CmdArgs{}); code(err) != types.ErrInvalidNetworkConfig {
			t.Errorf("%s: %v, want code 7", bad, err)
		}
	}
}

func TestCheckAddRefusesBadConfigsWithCode7(t *testing.T) {
	for _, conf := range []string{
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","subnet":"10.88.0.0/33"}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","subnet":"10.88.0.1/24"}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","gateway":"10.88.0.1"}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","subnet":"10.88.0.0/24","gateway":"10.89.0.1"}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","mtu":20}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","network":"bad name"}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","runtimeConfig":{"mac":"01:00:00:00:00:01"}}`,
		`{"cniVersion":"1.0.0","name":"n","type":"nsnet","runtimeConfig":{"aliases":{"n":["-x"]}}}`,
	} {
		c, err := parseConf([]byte(conf))
		if err == nil {
			_, err = checkAdd(c, &skel.CmdArgs{})
		}
		if code(err) != types.ErrInvalidNetworkConfig {
			t.Errorf("%s: %v, want code 7", conf, err)
		}
	}
}

func TestSandboxNames(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	sum := sha256.Sum256([]byte(id))
	want := []string{"cni-" + id[:12], "cni-" + id[:24], "cni-" + id[:40], "cni-" + id[:20] + "-" + hex.EncodeToString(sum[:])[:39]}
	if got := SandboxNames(id); !slices.Equal(got, want) {
		t.Errorf("names of %s: %v, want %v", id, got, want)
	}
	if got := SandboxNames("short"); !slices.Equal(got, []string{"cni-short"}) {
		t.Errorf("names of a short ID: %v", got)
	}
	if got := SandboxNames("0123456789abcdefXYZ"); !slices.Equal(got, []string{"cni-0123456789ab", "cni-0123456789abcdefXYZ"}) {
		t.Errorf("names of a 19-character ID: %v", got)
	}
	// IDs that differ only in their last character have different last names.
	other := id[:63] + "0"
	last := func(id string) string { n := SandboxNames(id); return n[len(n)-1] }
	if last(id) == last(other) {
		t.Errorf("%s and %s share every name: %v", id, other, SandboxNames(id))
	}
	for _, name := range append(SandboxNames(id), SandboxNames(strings.Repeat("x", 60))...) {
		if err := validate.Name("sandbox", name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCodedErrors(t *testing.T) {
	busy := fmt.Errorf("open: %w: another nsnet command holds it", engine.ErrBusy)
	if c := code(coded(busy)); c != types.ErrTryAgainLater {
		t.Errorf("busy store: code %d, want 11", c)
	}
	if c := code(coded(errors.New("boom"))); c != types.ErrInternal {
		t.Errorf("other: code %d, want 999", c)
	}
	if c := code(coded(invalidConf("x"))); c != types.ErrInvalidNetworkConfig {
		t.Errorf("coded: code %d, want 7 kept", c)
	}
	if coded(nil) != nil {
		t.Error("nil is not nil")
	}
}

// attached is sandbox cni-c1 on network n1 as eth0, with the default route.
func attached() (*engine.Sandbox, *engine.Network) {
	n := &engine.Network{Name: "n1", Subnet: netip.MustParsePrefix("10.88.0.0/24"), Gateway: netip.MustParseAddr("10.88.0.1")}
	sb := &engine.Sandbox{Name: "cni-c1", Endpoints: []engine.Endpoint{{Network: "n1", IfName: "eth0", HostVeth: "veth0011aabb",
		MAC: "02:42:0a:58:00:02", Address: netip.MustParsePrefix("10.88.0.2/24"), Gateway: netip.MustParseAddr("10.88.0.1")}}}
	return sb, n
}

func TestResultAsEachVersion(t *testing.T) {
	sb, n := attached()
	args := &skel.CmdArgs{Netns: "/run/netns/netns-1", IfName: "eth0"}
	for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		c := &netConf{PluginConf: types.PluginConf{CNIVersion: v, DNS: types.DNS{Nameservers: []string{"192.0.2.53"}, Search: []string{"example.test"}}}, Resolver: true}
		res, err := addResult(c, args, sb, n)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := printResult(&out, res, v); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		mustUnmarshal(t, out.Bytes(), &got)
		wantIP := map[string]any{"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 1.0}
		if v == "0.4.0" {
			wantIP["version"] = "4"
		}
		want := map[string]any{
			"cniVersion": v,
			"interfaces": []any{map[string]any{"name": "veth0011aabb"}, map[string]any{"name": "eth0", "mac": "02:42:0a:58:00:02", "sandbox": "/run/netns/netns-1"}},
			"ips":        []any{wantIP},
			"routes":     []any{map[string]any{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}},
			"dns":        map[string]any{"nameservers": []any{"10.88.0.1", "192.0.2.53"}, "search": []any{"example.test"}},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("version %s:\n got %v\nwant %v", v, got, want)
		}
	}
}

// TestResultDualStack: on a dual-stack network the result gives the
// container's IPv6 address with the IPv6 gateway, and an IPv6 default route.
func TestResultDualStack(t *testing.T) {
	sb, n := attached()
	n.Subnet6, n.Gateway6 = netip.MustParsePrefix("fd00:88::/64"), netip.MustParseAddr("fd00:88::1")
	sb.Endpoints[0].Address6, sb.Endpoints[0].Gateway6 = netip.MustParsePrefix("fd00:88::2/64"), n.Gateway6
	c := &netConf{PluginConf: types.PluginConf{CNIVersion: "1.1.0"}}
	res, err := addResult(c, &skel.CmdArgs{Netns: "/run/netns/netns-1", IfName: "eth0"}, sb, n)
	if err != nil {
		t.Fatal(err)
	}
	var ips, routes []string
	for _, ip := range res.IPs {
		ips = append(ips, fmt.Sprintf("%s via %s on %d", ip.Address.String(), ip.Gateway, *ip.Interface))
	}
	for _, r := range res.Routes {
		routes = append(routes, fmt.Sprintf("%s via %s", r.Dst.String(), r.GW))
	}
	if want := []string{"10.88.0.2/24 via 10.88.0.1 on 1", "fd00:88::2/64 via fd00:88::1 on 1"}; fmt.Sprint(ips) != fmt.Sprint(want) {
		t.Errorf("ips %v, want %v", ips, want)
	}
	if want := []string{"0.0.0.0/0 via 10.88.0.1", "::/0 via fd00:88::1"}; fmt.Sprint(routes) != fmt.Sprint(want) {
		t.Errorf("routes %v, want %v", routes, want)
	}
	if spec := (&netConf{Network: "n", IPv6: true, Subnet6: "fd00:88::/64"}).networkSpec(); !spec.IPv6 || spec.Subnet6 != "fd00:88::/64" {
		t.Errorf("networkSpec of an ipv6 config: %+v", spec)
	}
}

func TestResultAfterAPreviousPlugin(t *testing.T) {
	sb, n := attached()
	sb.Endpoints[0].Gateway = netip.Addr{} // not the network with the route
	prev := []byte(`{"cniVersion":"1.0.0","interfaces":[{"name":"lo0","sandbox":"/run/netns/x"}],"ips":[{"address":"192.0.2.5/32","interface":0}]}`)
	c, err := parseConf([]byte(`{"cniVersion":"1.0.0","name":"n1","type":"nsnet","prevResult":` + string(prev) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := addResult(c, &skel.CmdArgs{Netns: "/run/netns/x"}, sb, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 3 || len(res.IPs) != 2 || *res.IPs[1].Interface != 2 || len(res.Routes) != 0 || len(res.DNS.Nameservers) != 0 {
		t.Errorf("after prevResult: %+v", res)
	}
}

func TestPrevDiffs(t *testing.T) {
	sb, n := attached()
	args := &skel.CmdArgs{Netns: "/run/netns/netns-1", IfName: "eth0"}
	res, err := addResult(&netConf{PluginConf: types.PluginConf{CNIVersion: "1.0.0"}}, args, sb, n)
	if err != nil {
		t.Fatal(err)
	}
	ep := sb.Endpoints[0]
	if d := prevDiffs(res, args, ep); len(d) != 0 {
		t.Errorf("the ADD's own result: %v", d)
	}
	other := ep
	other.MAC, other.Address = "02:00:00:00:00:01", netip.MustParsePrefix("10.88.0.3/24")
	if d := prevDiffs(res, args, other); len(d) != 2 {
		t.Errorf("another MAC and address: %v", d)
	}
	other.IfName = "eth1"
	if d := prevDiffs(res, args, other); len(d) != 1 || !strings.Contains(d[0], "no interface eth1") {
		t.Errorf("another interface: %v", d)
	}
}

func TestFreeAddresses(t *testing.T) {
	d := &engine.NetworkDetail{Network: engine.Network{Subnet: netip.MustParsePrefix("10.88.0.0/30")}}
	if got := freeAddresses(d); got != 1 {
		t.Errorf("a /30 has %d free, want 1", got)
	}
	d.Attached = []engine.Attachment{{Sandbox: "s1"}}
	if got := freeAddresses(d); got != 0 {
		t.Errorf("a full /30 has %d free", got)
	}
}

func mustUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
}
