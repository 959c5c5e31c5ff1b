package engine

// Tests of what Docker users bring along (issue 11): driver options, labels,
// filters and prune, over the fake kernel.

import (
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// apiBridgeFiltering turns net.bridge.bridge-nf-call-iptables on, as
// br_netfilter does where it is loaded.
func apiBridgeFiltering(t *testing.T, k *fakeKernel, _ *Engine) {
	t.Helper()
	mustDo(t, fakeSysctls{k}.set(" "+sysctl.BridgeNFCallIPTables, "1"))
}

func TestNetworkOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		spec NetworkSpec
		want func(n *Network) bool
	}{
		{"bridge name", NetworkSpec{Options: map[string]string{OptBridgeName: "br-x"}}, func(n *Network) bool { return n.Bridge == "br-x" }},
		{"bridge name and the same --bridge", NetworkSpec{Bridge: "br-x", Options: map[string]string{OptBridgeName: "br-x"}},
			func(n *Network) bool { return n.Bridge == "br-x" }},
		{"mtu", NetworkSpec{Options: map[string]string{OptMTU: "1280"}}, func(n *Network) bool { return n.MTU == 1280 }},
		{"no masquerade", NetworkSpec{Options: map[string]string{OptMasquerade: "false"}}, func(n *Network) bool { return n.NoMasquerade && !n.NoICC }},
		{"masquerade, as by default", NetworkSpec{Options: map[string]string{OptMasquerade: "true"}}, func(n *Network) bool { return !n.NoMasquerade }},
		{"no icc", NetworkSpec{Options: map[string]string{OptICC: "0"}}, func(n *Network) bool { return n.NoICC && !n.NoMasquerade }},
		{"host binding", NetworkSpec{Options: map[string]string{OptHostBinding: "192.0.2.9"}},
			func(n *Network) bool { return n.HostBinding == netip.MustParseAddr("192.0.2.9") }},
		{"host binding on every address", NetworkSpec{Options: map[string]string{OptHostBinding: "0.0.0.0"}},
			func(n *Network) bool { return !n.HostBinding.IsValid() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, apiBridgeFiltering)
			c.spec.Name, c.spec.Subnet = "n1", "10.1.0.0/24"
			if _, err := e.CreateNetwork(c.spec); err != nil {
				t.Fatal(err)
			}
			n := mustNetwork(t, e, "n1")
			if !c.want(&n.Network) {
				t.Errorf("network %+v does not have what %v asks", n.Network, c.spec.Options)
			}
			if !maps.Equal(n.Options, c.spec.Options) {
				t.Errorf("options stored as %v, want %v as given", n.Options, c.spec.Options)
			}
			checkBridge(t, k, e, &n.Network)
		})
	}
}

func TestNetworkOptionsRefused(t *testing.T) {
	o := func(k, v string) map[string]string { return map[string]string{k: v} }
	for _, c := range []struct {
		name      string
		spec      NetworkSpec
		filtering bool
		want      []string
	}{
		{name: "unknown option", spec: NetworkSpec{Options: o("com.docker.network.bridge.enable_ipv6", "true")},
			want: []string{"unknown driver option -o com.docker.network.bridge.enable_ipv6", "nsnet knows " + OptBridgeName}},
		{name: "bridge name contradicts --bridge", spec: NetworkSpec{Bridge: "br-a", Options: o(OptBridgeName, "br-b")},
			want: []string{"-o " + OptBridgeName + "=br-b contradicts --bridge br-a"}},
		{name: "bad bridge name", spec: NetworkSpec{Options: o(OptBridgeName, "a/b")}, want: []string{"invalid --bridge", `"a/b"`}},
		{name: "mtu not a number", spec: NetworkSpec{Options: o(OptMTU, "big")}, want: []string{"invalid -o " + OptMTU + "=big", "number"}},
		{name: "mtu out of range", spec: NetworkSpec{Options: o(OptMTU, "60")}, want: []string{"invalid MTU 60"}},
		{name: "mtu contradicts --mtu", spec: NetworkSpec{MTU: 1400, Options: o(OptMTU, "1300")}, want: []string{"contradicts --mtu 1400"}},
		{name: "masquerade not a boolean", spec: NetworkSpec{Options: o(OptMasquerade, "no")}, want: []string{"invalid -o " + OptMasquerade + "=no", "true or false"}},
		{name: "icc not a boolean", spec: NetworkSpec{Options: o(OptICC, "")}, want: []string{"invalid -o " + OptICC + "=", "true or false"}},
		{name: "host binding not an address", spec: NetworkSpec{Options: o(OptHostBinding, "host")}, want: []string{"invalid -o " + OptHostBinding, `"host"`}},
		{name: "host binding IPv6", spec: NetworkSpec{Options: o(OptHostBinding, "2001:db8::1")}, want: []string{"invalid -o " + OptHostBinding, "not IPv4"}},
		{name: "host binding multicast", spec: NetworkSpec{Options: o(OptHostBinding, "239.0.0.1")}, want: []string{"give an address of the host's"}},
		{name: "icc off without bridge filtering", spec: NetworkSpec{Options: o(OptICC, "false")},
			want: []string{"network n1: -o " + OptICC + "=false needs bridged traffic to pass nftables", "bridge-nf-call-iptables is 0", "modprobe br_netfilter"}},
		{name: "icc off on a dual-stack network without IPv6 bridge filtering", spec: NetworkSpec{IPv6: true, Options: o(OptICC, "false")}, filtering: true,
			want: []string{"network n1: -o " + OptICC + "=false needs bridged traffic to pass nftables", "bridge-nf-call-ip6tables is 0", "sysctl -w net.bridge.bridge-nf-call-ip6tables=1"}},
		{name: "bad label", spec: NetworkSpec{Labels: map[string]string{"a b": "c"}}, want: []string{"network n1", `invalid label key "a b"`, "white space"}},
		{name: "empty label key", spec: NetworkSpec{Labels: map[string]string{"": "c"}}, want: []string{"the key is empty"}},
		{name: "label with a control character", spec: NetworkSpec{Labels: map[string]string{"a": "x\x01"}}, want: []string{"invalid value", "of label a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			if c.filtering {
				apiRun(t, k, e, apiBridgeFiltering)
			}
			c.spec.Name, c.spec.Subnet = "n1", "10.1.0.0/24"
			refused(t, k, e, func() error { _, err := e.CreateNetwork(c.spec); return err }, c.want...)
		})
	}
}

// TestOptionsReachTheFirewall checks that the firewall is asked for no
// masquerade and no traffic between sandboxes, that gc sees a table
// without them as drift, and that it warns when bridge filtering goes off.
func TestOptionsReachTheFirewall(t *testing.T) {
	k, e, warns := apiEngine(t, nil)
	apiRun(t, k, e, apiBridgeFiltering,
		apiNetSpec(NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Options: map[string]string{OptMasquerade: "false", OptICC: "false"}}))
	nets := k.fwNets()
	if len(nets) != 1 || !nets[0].NoMasquerade || !nets[0].NoICC {
		t.Fatalf("firewall networks %+v, want n1 without masquerade and icc", nets)
	}
	k.mu.Lock()
	k.fw.nets = []firewall.Network{{Name: "n1", Bridge: nets[0].Bridge, Subnet: nets[0].Subnet, Gateway: nets[0].Gateway}}
	k.mu.Unlock()
	actions, err := e.GC(false)
	if err != nil || !slices.ContainsFunc(actions, func(a string) bool { return strings.Contains(a, "rewrite nftables table") }) {
		t.Fatalf("gc after the table lost the options: %q, %v", actions, err)
	}
	if got := k.fwNets(); !slices.Equal(got, nets) {
		t.Errorf("after gc the firewall has %+v, want %+v", got, nets)
	}
	mustDo(t, fakeSysctls{k}.set(" "+sysctl.BridgeNFCallIPTables, "0"))
	if _, err := e.GC(false); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(warns.all(), func(w string) bool { return strings.Contains(w, "network n1 has -o "+OptICC+"=false, but") }) {
		t.Errorf("gc did not warn that bridge filtering is off: %q", warns.all())
	}
}

// TestICCOffDualStack: a dual-stack network without icc is made once both
// IPv4 and IPv6 bridged traffic pass nftables, and gc warns when the IPv6
// half goes off (then its sandboxes reach each other over IPv6).
func TestICCOffDualStack(t *testing.T) {
	k, e, warns := apiEngine(t, nil)
	mustDo(t, fakeSysctls{k}.set(" "+sysctl.BridgeNFCallIP6Tables, "1"))
	apiRun(t, k, e, apiBridgeFiltering,
		apiNetSpec(NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", IPv6: true, Options: map[string]string{OptICC: "false"}}))
	if nets := k.fwNets(); len(nets) != 1 || !nets[0].NoICC || !nets[0].Subnet6.IsValid() {
		t.Fatalf("firewall networks %+v, want n1 dual-stack without icc", nets)
	}
	mustDo(t, fakeSysctls{k}.set(" "+sysctl.BridgeNFCallIP6Tables, "0"))
	if _, err := e.GC(false); err != nil {
		t.Fatal(err)
	}
	want := "network n1 has -o " + OptICC + "=false, but net.bridge.bridge-nf-call-ip6tables is 0"
	if !slices.ContainsFunc(warns.all(), func(w string) bool { return strings.Contains(w, want) }) {
		t.Errorf("gc did not warn %q: %q", want, warns.all())
	}
}

func TestHostBinding(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e,
		apiNetSpec(NetworkSpec{Name: "bound", Subnet: "10.1.0.0/24", Options: map[string]string{OptHostBinding: "192.0.2.9"}}),
		apiNet("plain", "10.2.0.0/24"),
		apiNetSpec(NetworkSpec{Name: "inside", Subnet: "10.3.0.0/24", Internal: true, Options: map[string]string{OptHostBinding: "192.0.2.8"}}))
	sb, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"inside", "bound", "plain"}, Publish: []string{"8080:80", "127.0.0.1:8081:81"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"80/tcp -> 192.0.2.9:8080", "81/tcp -> 127.0.0.1:8081"} // the publishing network's, not the first's
	if got := mappingStrings(sb.Ports); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	added, err := e.AddPorts("s1", []string{"9090:90"})
	if err != nil || mappingStrings(added)[0] != "90/tcp -> 192.0.2.9:9090" {
		t.Errorf("port add: %v, %v; want the network's host address", mappingStrings(added), err)
	}
	other, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"plain"}, Publish: []string{"8082:80"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := mappingStrings(other.Ports); got[0] != "80/tcp -> 0.0.0.0:8082" {
		t.Errorf("on a network without the option: %v; want every address", got)
	}
}

func TestLabels(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	labels := map[string]string{"env": "prod", "empty": "", "com.example.a": "x=y"}
	apiRun(t, k, e, apiNetSpec(NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Labels: labels}))
	if _, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Labels: labels}); err != nil {
		t.Fatal(err)
	}
	labels["env"] = "changed after the call"
	for _, got := range []map[string]string{mustNetwork(t, e, "n1").Labels, mustSandbox(t, e, "s1").Labels} {
		if got["env"] != "prod" || got["empty"] != "" || got["com.example.a"] != "x=y" || len(got) != 3 {
			t.Errorf("labels stored as %v", got)
		}
	}
	refused(t, k, e, func() error {
		_, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Labels: map[string]string{"k\tey": "v"}})
		return err
	}, "sandbox s2", `invalid label key "k\tey"`)
}

// apiFilterWorld is two networks and three sandboxes to select from.
func apiFilterWorld(t *testing.T) (*fakeKernel, *Engine) {
	t.Helper()
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e,
		apiNetSpec(NetworkSpec{Name: "web", Subnet: "10.1.0.0/24", Labels: map[string]string{"env": "prod", "team": "a"}}),
		apiNetSpec(NetworkSpec{Name: "webtest", Subnet: "10.2.0.0/24", Labels: map[string]string{"env": "test"}}),
		apiNet("db", "10.3.0.0/24"),
		apiSb(SandboxSpec{Name: "front", Networks: []string{"web"}, Publish: []string{"8080:80"}, Labels: map[string]string{"app": "front"}}),
		apiSb(SandboxSpec{Name: "front2", Networks: []string{"webtest"}, Publish: []string{"53/udp"}, Labels: map[string]string{"app": "front", "x": ""}}),
		apiSb(SandboxSpec{Name: "lonely", Networks: []string{"none"}}))
	return k, e
}

func TestListFilters(t *testing.T) {
	_, e := apiFilterWorld(t)
	web := mustNetwork(t, e, "web").ID
	for _, c := range []struct {
		f    Filters
		want []string
	}{
		{nil, []string{"db", "web", "webtest"}},
		{Filters{"name": {"web"}}, []string{"web", "webtest"}},                 // a part of the name
		{Filters{"name": {"^web$"}}, []string{"web"}},                          // a regular expression
		{Filters{"name": {"db", "^web$"}}, []string{"db", "web"}},              // one key: any value
		{Filters{"name": {"web"}, "label": {"env=test"}}, []string{"webtest"}}, // keys: all
		{Filters{"label": {"env"}}, []string{"web", "webtest"}},
		{Filters{"label": {"env", "team=a"}}, []string{"web"}}, // labels: all, as Docker
		{Filters{"label": {"env=prod=x"}}, nil},
		{Filters{"id": {web}}, []string{"web"}},
		{Filters{"dangling": {"true"}}, []string{"db"}},
		{Filters{"dangling": {"false"}}, []string{"web", "webtest"}},
		{Filters{"driver": {"bridge"}}, []string{"db", "web", "webtest"}},
		{Filters{"driver": {"macvlan"}}, nil},
		{Filters{"name": {"c++"}}, nil}, // not a regular expression: only equal
	} {
		nets, err := e.ListNetworks(c.f)
		if err != nil {
			t.Errorf("ListNetworks(%v): %v", c.f, err)
			continue
		}
		var got []string
		for _, n := range nets {
			got = append(got, n.Name)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ListNetworks(%v) = %v, want %v", c.f, got, c.want)
		}
	}
	for _, c := range []struct {
		f    Filters
		want []string
	}{
		{nil, []string{"front", "front2", "lonely"}},
		{Filters{"network": {"web"}}, []string{"front"}},
		{Filters{"network": {web, "webtest"}}, []string{"front", "front2"}}, // a name or an ID
		{Filters{"network": {"nope"}}, nil},
		{Filters{"publish": {"80"}}, []string{"front"}},
		{Filters{"publish": {"8080"}}, nil}, // a container port, as Docker's
		{Filters{"publish": {"50-60/udp"}}, []string{"front2"}},
		{Filters{"label": {"app=front", "x"}}, []string{"front2"}},
		{Filters{"name": {"front"}, "publish": {"53/udp"}}, []string{"front2"}},
	} {
		sbs, err := e.ListSandboxes(c.f)
		if err != nil {
			t.Errorf("ListSandboxes(%v): %v", c.f, err)
			continue
		}
		if got := names(sbs); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("ListSandboxes(%v) = %v, want %v", c.f, got, c.want)
		}
	}
}

func TestFiltersRefused(t *testing.T) {
	k, e := apiFilterWorld(t)
	for _, c := range []struct {
		call func(Filters) error
		f    Filters
		want []string
	}{
		{func(f Filters) error { _, err := e.ListNetworks(f); return err }, Filters{"network": {"web"}},
			[]string{`invalid filter "network" for listing networks: the keys are dangling, driver, id, label, name`}},
		{func(f Filters) error { _, err := e.ListNetworks(f); return err }, Filters{"dangling": {"maybe"}},
			[]string{"invalid filter dangling=maybe for listing networks: give true or false"}},
		{func(f Filters) error { _, err := e.ListNetworks(f); return err }, Filters{"dangling": {"true", "false"}},
			[]string{"dangling is given both true and false"}},
		{func(f Filters) error { _, err := e.ListSandboxes(f); return err }, Filters{"publish": {"8080:80"}},
			[]string{"invalid filter publish=8080:80 for listing sandboxes", "container port"}},
		{func(f Filters) error { _, err := e.ListSandboxes(f); return err }, Filters{"label": {"=x"}},
			[]string{"invalid filter label==x for listing sandboxes: give KEY or KEY=VALUE"}},
		{func(f Filters) error { _, err := e.ListSandboxes(f); return err }, Filters{"until": {"1h"}},
			[]string{`invalid filter "until" for listing sandboxes`}},
		{func(f Filters) error { _, err := e.PruneNetworks(f); return err }, Filters{"until": {"yesterday"}},
			[]string{"invalid filter until=yesterday for pruning networks", "duration"}},
		{func(f Filters) error { _, err := e.PruneNetworks(f); return err }, Filters{"dangling": {"true"}},
			[]string{`invalid filter "dangling" for pruning networks`}},
		{func(f Filters) error { _, err := e.PruneSandboxes(f); return err }, Filters{"name": {""}},
			[]string{"invalid filter name= for pruning sandboxes: the value is empty"}},
	} {
		refused(t, k, e, func() error { return c.call(c.f) }, c.want...)
	}
}

func TestPruneNetworks(t *testing.T) {
	k, e := apiFilterWorld(t)
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "d"}), apiNet("keep", "10.4.0.0/24"))
	if _, err := e.RemoveSandbox("d", false); err != nil {
		t.Fatal(err)
	}
	bridges := []string{mustNetwork(t, e, "db").Bridge, mustNetwork(t, e, "keep").Bridge}
	removed, err := e.PruneNetworks(Filters{"label!": {"env"}, "name": {"keep", "db", "bridge", "web"}})
	if err != nil || !slices.Equal(removed, []string{"db", "keep"}) {
		t.Fatalf("prune: %v, %v; want db and keep (web is in use, the default network is never pruned)", removed, err)
	}
	for _, br := range bridges {
		if _, ok := k.hostLink(br); ok {
			t.Errorf("bridge %s left", br)
		}
	}
	nets, _ := e.ListNetworks(nil)
	var left []string
	for _, n := range nets {
		left = append(left, n.Name)
	}
	if !slices.Equal(left, []string{DefaultNetwork, "web", "webtest"}) {
		t.Errorf("left %v", left)
	}
	if removed, err := e.PruneNetworks(nil); err != nil || len(removed) != 0 {
		t.Errorf("second prune: %v, %v; want nothing", removed, err)
	}
	if actions, err := e.GC(true); err != nil || len(actions) != 0 {
		t.Errorf("gc after prune: %q, %v", actions, err)
	}
}

func TestPruneSandboxes(t *testing.T) {
	k, e := apiFilterWorld(t)
	apiRun(t, k, e, apiOutside("ADOPT"),
		apiSb(SandboxSpec{Name: "busy", Networks: []string{"db"}}),
		apiSb(SandboxSpec{Name: "busy-sharer", Networks: []string{"container:busy"}}),
		apiSb(SandboxSpec{Name: "idle-sharer", Networks: []string{"container:front"}}),
		apiSb(SandboxSpec{Name: "h", Networks: []string{"host"}}),
		apiSb(SandboxSpec{Name: "adopted", Networks: []string{"db"}, NetNS: filepath.Join(k.dir, "ADOPT")}))
	busy := mustSandbox(t, e, "busy")
	k.mu.Lock()
	k.procs[busy.NetNSIno] = []Process{{PID: 42, Comm: "sleep"}}
	k.mu.Unlock()
	removed, err := e.PruneSandboxes(Filters{"name": {"^front$", "idle-sharer", "busy", "^h$", "adopted"}})
	if err != nil || !slices.Equal(removed, []string{"idle-sharer", "front"}) {
		t.Fatalf("prune: %v, %v; want idle-sharer, then front", removed, err)
	}
	removed, err = e.PruneSandboxes(nil)
	if err != nil || !slices.Equal(removed, []string{"front2", "lonely"}) {
		t.Fatalf("second prune: %v, %v; want front2 and lonely", removed, err)
	}
	sbs, _ := e.ListSandboxes(nil)
	if got := names(sbs); !slices.Equal(got, []string{"adopted", "busy", "busy-sharer", "h"}) {
		t.Errorf("left %v", got)
	}
	if actions, err := e.GC(true); err != nil || len(actions) != 0 {
		t.Errorf("gc after prune: %q, %v", actions, err)
	}
}
