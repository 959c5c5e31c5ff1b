package topology

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/internal/testenv"
	"github.com/nsnet/nsnet/types"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// article is the seed article's network as a snapshot: br01 with ns01
// (publishing 8080:80/tcp) and ns02, behind the host's eth0, forwarding on,
// nsnet's masquerade in place; and an internal network in with lone, whose
// host veth is down.
func article() *observe.Snapshot {
	on := true
	nets := []types.Network{
		{Name: "br01", Bridge: "br01", Subnet: pfx("192.168.88.0/24"), Gateway: addr("192.168.88.1")},
		{Name: "in", Bridge: "br-in", Subnet: pfx("10.20.0.0/24"), Gateway: addr("10.20.0.1"), Internal: true},
	}
	s := &observe.Snapshot{Table: "nsnet", Networks: nets, Spaces: map[string]*observe.Namespace{}}
	s.Nsnet.Exists = true
	s.Nsnet.Rules = []firewall.Rule{{Chain: "postrouting", Comment: "nsnet network br01: masquerade"}}
	s.Host = observe.Namespace{
		Devices: []netview.Device{
			{Name: "lo", Up: true, Carrier: true, MTU: 65536, Addrs: []netip.Prefix{pfx("127.0.0.1/8")}},
			{Name: "eth0", Up: true, Carrier: true, MTU: 1500, MAC: "02:00:cb:00:71:02", Addrs: []netip.Prefix{pfx("203.0.113.2/24")}},
			{Name: "br01", Kind: "bridge", Up: true, Carrier: true, MTU: 1500, MAC: "02:42:c0:a8:58:01", Addrs: []netip.Prefix{pfx("192.168.88.1/24")}},
			{Name: "br-in", Kind: "bridge", Up: true, Carrier: true, MTU: 1500, MAC: "02:42:0a:14:00:01", Addrs: []netip.Prefix{pfx("10.20.0.1/24")}},
			{Name: "veth01", Kind: "veth", Up: true, Carrier: true, MTU: 1500, MAC: "aa:00:00:00:00:01", Master: "br01", Hairpin: &on},
			{Name: "veth02", Kind: "veth", Up: true, Carrier: true, MTU: 1500, MAC: "aa:00:00:00:00:02", Master: "br01", Hairpin: &on},
			{Name: "vethlone", Kind: "veth", Up: false, MTU: 1500, MAC: "aa:00:00:00:00:03", Master: "br-in"},
		},
		Routes:  []netview.Route{{Dst: pfx("0.0.0.0/0"), Gateway: addr("203.0.113.1"), Dev: "eth0", Type: "unicast"}},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
	}
	add := func(name, network, ip, mac, veth string, gw bool, ports ...types.Mapping) {
		n, _ := s.Network(network)
		a := netip.PrefixFrom(addr(ip), n.Subnet.Bits())
		ep := types.Endpoint{Network: network, IfName: "eth0", Address: a, MAC: mac, HostVeth: veth}
		if gw {
			ep.Gateway = n.Gateway
		}
		s.Sandboxes = append(s.Sandboxes, types.Sandbox{Name: name, Mode: types.ModeBridge, Endpoints: []types.Endpoint{ep}, Ports: ports})
		s.Spaces[name] = &observe.Namespace{Devices: []netview.Device{
			{Name: "eth0", Up: true, Carrier: veth != "vethlone", MTU: 1500, MAC: mac, Addrs: []netip.Prefix{a}},
		}}
	}
	add("ns02", "br01", "192.168.88.12", "02:42:c0:a8:58:0c", "veth02", true)
	add("ns01", "br01", "192.168.88.11", "02:42:c0:a8:58:0b", "veth01", true, types.Mapping{Proto: "tcp", HostPort: 8080, CtrPort: 80})
	add("lone", "in", "10.20.0.2", "02:42:0a:14:00:02", "vethlone", false)
	return s
}

// TestGolden compares the text and dot drawings of the article's network
// with the golden files (go test -update rewrites them).
func TestGolden(t *testing.T) {
	g, err := Build(article(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var text, dot bytes.Buffer
	g.WriteText(&text)
	g.WriteDot(&dot)
	golden(t, "article.txt", text.String())
	golden(t, "article.dot", dot.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, got)
	}
}

// objects are what every drawing must show of the article's network.
var objects = []string{
	"203.0.113.2/24", "default via 203.0.113.1 dev eth0", "ip_forward on", "table inet nsnet",
	"br01", "192.168.88.1", "br-in", "internal",
	"ns01", "192.168.88.11/24", "02:42:c0:a8:58:0b", "veth01",
	"ns02", "192.168.88.12/24", "02:42:c0:a8:58:0c", "veth02",
	"lone", "10.20.0.2/24", "02:42:0a:14:00:02", "vethlone",
	"0.0.0.0:8080->80/tcp",
}

// TestSVG draws the graph with nsnet-svg (cmd/nsnet-svg, built beside a
// would-be nsnet, where FindSVGRenderer looks first) and checks the SVG is
// well-formed XML whose text shows every object.
func TestSVG(t *testing.T) {
	dir := t.TempDir()
	built := testenv.BuildSVGRenderer(t, dir)
	t.Setenv("PATH", t.TempDir())
	renderer, err := FindSVGRenderer(filepath.Join(dir, "nsnet"))
	if err != nil || renderer != built {
		t.Fatalf("FindSVGRenderer beside nsnet: %q, %v; built %s", renderer, err, built)
	}
	g, err := Build(article(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if err := g.WriteSVG(&svg, renderer); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg.Bytes(), objects)
}

// TestSVGRendererMissing: with nsnet-svg neither beside nsnet nor in $PATH,
// the error says how to build it and how to draw without it. The control:
// put in $PATH, it is found there.
func TestSVGRendererMissing(t *testing.T) {
	self := filepath.Join(t.TempDir(), "nsnet")
	path := t.TempDir()
	t.Setenv("PATH", path)
	_, err := FindSVGRenderer(self)
	if err == nil {
		t.Fatal("FindSVGRenderer found nsnet-svg where there is none")
	}
	for _, want := range []string{
		`go build -o "$(dirname "$(command -v nsnet)")/nsnet-svg" ./cmd/nsnet-svg`,
		"nsnet topology --format dot | dot -Tsvg",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if err := os.WriteFile(filepath.Join(path, SVGRenderer), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := FindSVGRenderer(self); err != nil || p != filepath.Join(path, SVGRenderer) {
		t.Errorf("nsnet-svg in $PATH: found %q, %v", p, err)
	}
}

// TestSVGRendererFails: a renderer that refuses the graph makes WriteSVG
// fail with its message, and nothing is written.
func TestSVGRendererFails(t *testing.T) {
	fake := filepath.Join(t.TempDir(), SVGRenderer)
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho partial; echo 'nsnet-svg: syntax error' >&2; exit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	g, err := Build(article(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = g.WriteSVG(&out, fake)
	if err == nil || !strings.Contains(err.Error(), "nsnet-svg: syntax error") || out.Len() != 0 {
		t.Errorf("WriteSVG with a failing renderer: %v, wrote %q", err, out.String())
	}
}

// checkSVG decodes the whole document and looks for each object in the
// text of its elements (Graphviz escapes "-" as &#45;).
func checkSVG(t *testing.T, raw []byte, want []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(raw))
	var root string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
			text.WriteByte('\n')
		}
	}
	if root != "svg" {
		t.Fatalf("the SVG's root element is %q, want svg", root)
	}
	for _, o := range want {
		if !strings.Contains(text.String(), o) {
			t.Errorf("the SVG does not show %q", o)
		}
	}
}

// TestBuild checks the graph's facts: state as the kernel has it, the
// published ports on the endpoint with the default route, and that naming
// networks selects them (an unknown one is an error).
func TestBuild(t *testing.T) {
	s := article()
	s.Nsnet.Exists = false
	s.Nsnet.Rules = nil
	g, err := Build(s, []string{"in"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(g)
	if len(g.Networks) != 1 || g.Networks[0].Name != "in" || g.Host.TableExists {
		t.Fatalf("got %s", raw)
	}
	lone := g.Networks[0].Sandboxes[0]
	if lone.HostVeth.State != "down" || lone.Inside.State != "no carrier" || len(lone.Ports) != 0 {
		t.Errorf("lone: %+v", lone)
	}
	g, _ = Build(s, nil)
	if ns01 := g.Networks[0].Sandboxes[0]; ns01.Sandbox != "ns01" || len(ns01.Ports) != 1 || g.Networks[0].Masquerade {
		t.Errorf("br01 after a flush: %+v", g.Networks[0])
	}
	if _, err := Build(s, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "network nope does not exist") {
		t.Errorf("unknown network: %v", err)
	}
}
