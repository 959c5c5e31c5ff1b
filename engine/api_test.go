package engine

// Tests of the engine's public API over the fake kernel (fake_test.go): what
// each call makes in the kernel and the store, what it refuses and with which
// message, and that a refused call changes nothing. They need no root.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// apiSetup prepares an engine for one case.
type apiSetup func(t *testing.T, k *fakeKernel, e *Engine)

// apiWarnings collects what an engine warns of.
type apiWarnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *apiWarnings) add(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *apiWarnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// apiEngine opens an engine that runs a resident on a fresh fake kernel;
// change adjusts its options first (nil: none).
func apiEngine(t *testing.T, change func(*Options)) (*fakeKernel, *Engine, *apiWarnings) {
	t.Helper()
	k := newFakeKernel(t)
	w := &apiWarnings{}
	o := Options{
		Root: filepath.Join(k.dir, "root"), RunDir: filepath.Join(k.dir, "run"), LockTimeout: NoWait,
		Resident: "/fake/nsnet",
		Warn:     func(msg string) { t.Logf("warning: %s", msg); w.add(msg) },
	}
	if change != nil {
		change(&o)
	}
	return k, reopen(t, k, o), w
}

// apiRun runs the setups in order.
func apiRun(t *testing.T, k *fakeKernel, e *Engine, setups ...apiSetup) {
	t.Helper()
	for _, s := range setups {
		s(t, k, e)
	}
}

func apiNet(name, subnet string) apiSetup {
	return apiNetSpec(NetworkSpec{Name: name, Subnet: subnet})
}

func apiNetSpec(spec NetworkSpec) apiSetup {
	return func(t *testing.T, _ *fakeKernel, e *Engine) {
		t.Helper()
		if _, err := e.CreateNetwork(spec); err != nil {
			t.Fatalf("setup: create network %s: %v", spec.Name, err)
		}
	}
}

func apiSb(spec SandboxSpec) apiSetup {
	return func(t *testing.T, _ *fakeKernel, e *Engine) {
		t.Helper()
		if _, err := e.CreateSandbox(spec); err != nil {
			t.Fatalf("setup: create sandbox %s: %v", spec.Name, err)
		}
	}
}

// apiHostLink puts an interface on the host with addresses (its routes).
func apiHostLink(name string, addrs ...string) apiSetup {
	return func(_ *testing.T, k *fakeKernel, _ *Engine) {
		l := &fakeLink{kind: "device", up: true, mtu: 1500}
		for _, a := range addrs {
			l.addrs = append(l.addrs, netip.MustParsePrefix(a))
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		k.links[name] = l
	}
}

// apiOutside makes a namespace as another program would, at dir/name.
func apiOutside(name string) apiSetup {
	return func(t *testing.T, k *fakeKernel, _ *Engine) {
		t.Helper()
		mustDo(t, k.outsideNamespace(name))
	}
}

// apiTake plays a host process that holds a host port ("tcp/0.0.0.0/08080").
func apiTake(keys ...string) apiSetup {
	return func(_ *testing.T, k *fakeKernel, _ *Engine) {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, key := range keys {
			k.taken[key] = true
		}
	}
}

// replaceNamespace plays `ip netns del NAME; ip netns add NAME` by someone
// else: the old namespace goes, a stranger takes its name.
func (k *fakeKernel) replaceNamespace(t *testing.T, path string) netns.ID {
	t.Helper()
	mustDo(t, fakeNamespaces{k}.Remove(path))
	k.mu.Lock()
	id := k.newID()
	k.mu.Unlock()
	mustDo(t, fakeNamespaces{k}.mount(path, id))
	return id
}

// deleteNamespaceOutside plays `ip netns del NAME` by someone else: the
// namespace goes, and the next one made gets its number (at a later time),
// as the kernel's lowest-free-first numbering may give it.
func (k *fakeKernel) deleteNamespaceOutside(t *testing.T, path string) netns.ID {
	t.Helper()
	id, ok := k.mountAt(path)
	if !ok {
		t.Fatalf("setup: %s names no namespace", path)
	}
	mustDo(t, fakeNamespaces{k}.Remove(path))
	k.reap()
	k.mu.Lock()
	k.reuse = id
	k.mu.Unlock()
	return id
}

// replaceNamespaceReusing is replaceNamespace once the old namespace is
// destroyed: the stranger has its number.
func (k *fakeKernel) replaceNamespaceReusing(t *testing.T, path string) netns.ID {
	t.Helper()
	k.deleteNamespaceOutside(t, path)
	k.mu.Lock()
	id := k.newID()
	k.mu.Unlock()
	mustDo(t, fakeNamespaces{k}.mount(path, id))
	return id
}

// apiPlainFile puts an empty file at the path under the fake's directory.
func apiPlainFile(rel string) apiSetup {
	return func(t *testing.T, k *fakeKernel, _ *Engine) {
		t.Helper()
		mustDo(t, os.WriteFile(filepath.Join(k.dir, rel), nil, 0o600))
	}
}

// apiHiddenNames plays an engine in a mount namespace whose mounts vanish
// with it (see namespaces.NamesOutlive).
func apiHiddenNames(_ *testing.T, k *fakeKernel, _ *Engine) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hidden = errors.New("names vanish here")
}

// apiReplaced replaces the namespace of sandbox name (see replaceNamespace).
func apiReplaced(name string) apiSetup {
	return func(t *testing.T, k *fakeKernel, e *Engine) {
		k.replaceNamespace(t, e.k.ns.Path(name))
	}
}

func (k *fakeKernel) mountAt(path string) (netns.ID, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.mounts[path]
	return id, ok
}

func (k *fakeKernel) hostLink(name string) (fakeLink, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.links[name]
	if !ok {
		return fakeLink{}, false
	}
	return *l, true
}

func (k *fakeKernel) peerLink(id netns.ID, name string) (fakeLink, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.peers[id][name]
	if !ok {
		return fakeLink{}, false
	}
	return *l, true
}

func (k *fakeKernel) sysctlOf(key string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sysctl[key]
}

// held is what the resident holds for sandbox, as "KEY -> TARGET" lines;
// nil if it holds nothing for it.
func (k *fakeKernel) held(sandbox string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.res == nil || k.res.ports[sandbox] == nil {
		return nil
	}
	out := []string{}
	for key, target := range k.res.ports[sandbox] {
		out = append(out, key+" -> "+target)
	}
	sort.Strings(out)
	return out
}

// fwPorts are the firewall's published ports as "PROTO HOST:PORT -> CTR:PORT".
func (k *fakeKernel) fwPorts() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := []string{}
	if k.fw == nil {
		return out
	}
	for p := range k.fw.ports {
		out = append(out, fwPortString(p))
	}
	sort.Strings(out)
	return out
}

func fwPortString(p firewall.Port) string {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("%s %s:%d -> %s:%d", p.Proto, host, p.HostPort, p.CtrIP, p.CtrPort)
}

func (k *fakeKernel) fwNets() []firewall.Network {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fw == nil {
		return nil
	}
	return slices.Clone(k.fw.nets)
}

func mappingStrings(ms []Mapping) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.String())
	}
	sort.Strings(out)
	return out
}

// wantErr checks that err says each of want.
func wantErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want an error saying %q", what, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", what, err, w)
		}
	}
}

// refused runs op, which must fail saying want, and checks it changed
// nothing in the kernel, the store or the journal.
func refused(t *testing.T, k *fakeKernel, e *Engine, op func() error, want ...string) error {
	t.Helper()
	before := state(t, k, e)
	err := op()
	wantErr(t, "the call", err, want...)
	if after := state(t, k, e); !slices.Equal(before, after) {
		t.Errorf("a refused call changed the state:\n%s", diffLines(before, after))
	}
	return err
}

func mustNetwork(t *testing.T, e *Engine, ref string) *NetworkDetail {
	t.Helper()
	d, err := e.InspectNetwork(ref)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustSandbox(t *testing.T, e *Engine, ref string) *Sandbox {
	t.Helper()
	sb, err := e.InspectSandbox(ref)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// checkBridge checks n's bridge, settings and firewall rules in the kernel.
func checkBridge(t *testing.T, k *fakeKernel, e *Engine, n *Network) {
	t.Helper()
	br, ok := k.hostLink(n.Bridge)
	if !ok {
		t.Fatalf("network %s: no bridge %s on the host", n.Name, n.Bridge)
	}
	want := fakeLink{kind: "bridge", alias: e.owner.NetworkMark(n.Name), mac: n.BridgeMAC, group: owner.Group, up: true, mtu: n.MTU,
		addrs: []netip.Prefix{netip.PrefixFrom(n.Gateway, n.Subnet.Bits())}}
	if fmt.Sprint(br) != fmt.Sprint(want) {
		t.Errorf("network %s: bridge %+v, want %+v", n.Name, br, want)
	}
	if got := k.sysctlOf(" " + sysctl.DisableIPv6(n.Bridge)); got != "1" {
		t.Errorf("network %s: disable_ipv6 on %s is %q, want 1", n.Name, n.Bridge, got)
	}
	if got := k.sysctlOf(" " + sysctl.IPv4Forward); (got == "1") == n.Internal {
		t.Errorf("network %s (internal %t): ip_forward is %q", n.Name, n.Internal, got)
	}
	fw := firewall.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal,
		NoMasquerade: n.NoMasquerade, NoICC: n.NoICC}
	if !slices.Contains(k.fwNets(), fw) {
		t.Errorf("network %s: not in the firewall table %v", n.Name, k.fwNets())
	}
	if n.BridgeMAC != ipam.MACFromIP(n.Gateway).String() {
		t.Errorf("network %s: bridge MAC %s, want the gateway's %s", n.Name, n.BridgeMAC, ipam.MACFromIP(n.Gateway))
	}
}

func TestCreateNetworkDefaults(t *testing.T) {
	for _, c := range []struct {
		name    string
		opts    func(*Options)
		setup   []apiSetup
		spec    NetworkSpec
		subnet  string
		gateway string
		bridge  string // "": br- and the first 12 characters of the ID
		mtu     int
	}{
		{name: "subnet from the first pool", spec: NetworkSpec{Name: "n1"}, subnet: "172.17.0.0/16", gateway: "172.17.0.1", mtu: 1500},
		{name: "past another network", setup: []apiSetup{apiNet("a", "172.17.0.0/16")},
			spec: NetworkSpec{Name: "n1"}, subnet: "172.18.0.0/16", gateway: "172.18.0.1", mtu: 1500},
		{name: "past a smaller network inside a pool subnet", setup: []apiSetup{apiNet("a", "172.17.200.0/24")},
			spec: NetworkSpec{Name: "n1"}, subnet: "172.18.0.0/16", gateway: "172.18.0.1", mtu: 1500},
		{name: "past a host route", setup: []apiSetup{apiHostLink("ext0", "172.17.3.1/24")},
			spec: NetworkSpec{Name: "n1"}, subnet: "172.18.0.0/16", gateway: "172.18.0.1", mtu: 1500},
		{name: "past the /16 pools to 192.168.0.0/20", setup: []apiSetup{apiHostLink("ext0", "172.16.0.1/12")},
			spec: NetworkSpec{Name: "n1"}, subnet: "192.168.0.0/20", gateway: "192.168.0.1", mtu: 1500},
		{name: "from the engine's own pools", opts: func(o *Options) {
			o.AddressPools = []AddressPool{{Base: netip.MustParsePrefix("10.99.0.0/16"), Size: 24}}
		}, setup: []apiSetup{apiNet("a", "10.99.0.0/24")},
			spec: NetworkSpec{Name: "n1"}, subnet: "10.99.1.0/24", gateway: "10.99.1.1", mtu: 1500},
		{name: "given subnet, first host as gateway", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24"},
			subnet: "10.1.0.0/24", gateway: "10.1.0.1", mtu: 1500},
		{name: "given gateway", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Gateway: "10.1.0.254"},
			subnet: "10.1.0.0/24", gateway: "10.1.0.254", mtu: 1500},
		{name: "given bridge and MTU", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Bridge: "mybr0", MTU: 9000},
			subnet: "10.1.0.0/24", gateway: "10.1.0.1", bridge: "mybr0", mtu: 9000},
		{name: "smallest MTU", spec: NetworkSpec{Name: "n1", MTU: 68}, subnet: "172.17.0.0/16", gateway: "172.17.0.1", mtu: 68},
		{name: "largest MTU", spec: NetworkSpec{Name: "n1", MTU: 65535}, subnet: "172.17.0.0/16", gateway: "172.17.0.1", mtu: 65535},
		{name: "internal", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Internal: true},
			subnet: "10.1.0.0/24", gateway: "10.1.0.1", mtu: 1500},
		{name: "default network gets nsnet0", spec: NetworkSpec{Name: DefaultNetwork},
			subnet: "172.17.0.0/16", gateway: "172.17.0.1", bridge: "nsnet0", mtu: 1500},
		{name: "default network gets nsnet1 when another root's has nsnet0", setup: []apiSetup{apiHostLink("nsnet0")},
			spec: NetworkSpec{Name: DefaultNetwork}, subnet: "172.17.0.0/16", gateway: "172.17.0.1", bridge: "nsnet1", mtu: 1500},
		{name: "default network gets the first free nsnetN", setup: []apiSetup{apiHostLink("nsnet0"), apiHostLink("nsnet1"), apiHostLink("nsnet3")},
			spec: NetworkSpec{Name: DefaultNetwork}, subnet: "172.17.0.0/16", gateway: "172.17.0.1", bridge: "nsnet2", mtu: 1500},
		{name: "default network with a given nsnetN", spec: NetworkSpec{Name: DefaultNetwork, Bridge: "nsnet7"},
			subnet: "172.17.0.0/16", gateway: "172.17.0.1", bridge: "nsnet7", mtu: 1500},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, c.opts)
			apiRun(t, k, e, c.setup...)
			n, err := e.CreateNetwork(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			bridge := c.bridge
			if bridge == "" {
				bridge = "br-" + n.ID[:12]
			}
			got := fmt.Sprintf("%s %s %s %d %t", n.Subnet, n.Gateway, n.Bridge, n.MTU, n.Internal)
			if want := fmt.Sprintf("%s %s %s %d %t", c.subnet, c.gateway, bridge, c.mtu, c.spec.Internal); got != want {
				t.Errorf("network: %s, want %s", got, want)
			}
			stored := mustNetwork(t, e, c.spec.Name)
			if stored.Network.ID != n.ID || stored.Subnet != n.Subnet || stored.Bridge != n.Bridge || stored.BridgeMAC != n.BridgeMAC {
				t.Errorf("stored %+v, returned %+v", stored.Network, *n)
			}
			checkBridge(t, k, e, n)
		})
	}
}

func TestCreateNetworkRefused(t *testing.T) {
	onePool := func(o *Options) {
		o.AddressPools = []AddressPool{{Base: netip.MustParsePrefix("10.99.0.0/24"), Size: 24}}
	}
	for _, c := range []struct {
		name  string
		opts  func(*Options)
		setup []apiSetup
		spec  NetworkSpec
		want  []string
	}{
		{name: "empty name", spec: NetworkSpec{}, want: []string{"network name is empty"}},
		{name: "bad first character", spec: NetworkSpec{Name: "-n"}, want: []string{`invalid network name "-n": it must start with a letter or digit`}},
		{name: "bad character", spec: NetworkSpec{Name: "a/b"}, want: []string{`invalid network name "a/b": character '/' is not allowed`}},
		{name: "too long", spec: NetworkSpec{Name: strings.Repeat("n", 200)}, want: []string{"characters long: the limit is"}},
		{name: "host is reserved", spec: NetworkSpec{Name: "host"}, want: []string{`network name "host" is reserved for the host mode: choose another name`}},
		{name: "none is reserved", spec: NetworkSpec{Name: "none"}, want: []string{`network name "none" is reserved for the none mode`}},
		{name: "MTU too small", spec: NetworkSpec{Name: "n1", MTU: 67}, want: []string{"invalid MTU 67 for network n1: it must be between 68 and 65535"}},
		{name: "MTU too large", spec: NetworkSpec{Name: "n1", MTU: 65536}, want: []string{"invalid MTU 65536 for network n1"}},
		{name: "negative MTU", spec: NetworkSpec{Name: "n1", MTU: -1}, want: []string{"invalid MTU -1 for network n1"}},
		{name: "bad bridge name", spec: NetworkSpec{Name: "n1", Bridge: "a b"}, want: []string{"invalid --bridge for network n1", `"a b"`}},
		{name: "bridge name too long", spec: NetworkSpec{Name: "n1", Bridge: "abcdefghijklmnop"}, want: []string{"invalid --bridge for network n1", "at most 15"}},
		{name: "bridge nsnetN of another network", spec: NetworkSpec{Name: "n1", Bridge: "nsnet0"},
			want: []string{"--bridge nsnet0 for network n1: names of the form nsnetN", "reserved for the default network"}},
		{name: "gateway without subnet", spec: NetworkSpec{Name: "n1", Gateway: "10.1.0.1"}, want: []string{"--gateway 10.1.0.1 needs --subnet"}},
		{name: "gateway outside the subnet", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Gateway: "10.2.0.1"},
			want: []string{"gateway 10.2.0.1 is outside subnet 10.1.0.0/24"}},
		{name: "gateway is the network address", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Gateway: "10.1.0.0"},
			want: []string{"gateway 10.1.0.0 is the network or broadcast address of 10.1.0.0/24"}},
		{name: "gateway is not an address", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Gateway: "x"}, want: []string{"invalid gateway"}},
		{name: "subnet is not CIDR", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0"}, want: []string{`invalid subnet "10.1.0.0"`}},
		{name: "subnet with host bits", spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.1/24"}, want: []string{"did you mean 10.1.0.0/24"}},
		{name: "loopback subnet", spec: NetworkSpec{Name: "n1", Subnet: "127.1.0.0/16"}, want: []string{"loopback"}},
		{name: "subnet overlapping another network's", setup: []apiSetup{apiNet("a", "10.1.0.0/24")},
			spec: NetworkSpec{Name: "n1", Subnet: "10.1.0.0/16"}, want: []string{"subnet 10.1.0.0/16 overlaps subnet 10.1.0.0/24 of network a: choose another --subnet"}},
		{name: "subnet overlapping a host route", spec: NetworkSpec{Name: "n1", Subnet: "203.0.113.128/25"},
			want: []string{"subnet 203.0.113.128/25 overlaps the host route to 203.0.113.0/24: choose another --subnet"}},
		{name: "bridge of another network", setup: []apiSetup{apiNetSpec(NetworkSpec{Name: "a", Subnet: "10.1.0.0/24", Bridge: "br-mine"})},
			spec: NetworkSpec{Name: "n1", Subnet: "10.2.0.0/24", Bridge: "br-mine"}, want: []string{"bridge br-mine is already used by network a: choose another --bridge"}},
		{name: "bridge is a host interface", spec: NetworkSpec{Name: "n1", Subnet: "10.2.0.0/24", Bridge: "eth0"},
			want: []string{"interface eth0 already exists on the host: choose another --bridge name"}},
		{name: "default network's bridge is a host interface", setup: []apiSetup{apiHostLink("nsnet4")},
			spec: NetworkSpec{Name: DefaultNetwork, Bridge: "nsnet4"}, want: []string{"interface nsnet4 already exists on the host"}},
		{name: "duplicate", setup: []apiSetup{apiNet("n1", "10.1.0.0/24")}, spec: NetworkSpec{Name: "n1", Subnet: "10.2.0.0/24"},
			want: []string{"network n1 already exists: remove it first (nsnet network rm n1) or choose another name"}},
		{name: "duplicate default network", setup: []apiSetup{apiNetSpec(NetworkSpec{Name: DefaultNetwork})}, spec: NetworkSpec{Name: DefaultNetwork},
			want: []string{"network bridge already exists"}},
		{name: "address pools used up", opts: onePool, setup: []apiSetup{apiNet("a", "10.99.0.128/25")}, spec: NetworkSpec{Name: "n1"},
			want: []string{"choose a subnet for network n1: every subnet of the address pools", "pass --subnet"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, c.opts)
			apiRun(t, k, e, c.setup...)
			refused(t, k, e, func() error { _, err := e.CreateNetwork(c.spec); return err }, c.want...)
		})
	}
}

// wantEndpoint is an endpoint a sandbox should have; mac "" is the one
// derived from the address.
type wantEndpoint struct{ network, ifname, address, gateway, mac string }

// checkEndpoints checks sb's endpoints in the store and the kernel: host
// veths on their bridges, peers in sb's namespace with address and default
// route, leases.
func checkEndpoints(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox, want []wantEndpoint) {
	t.Helper()
	if len(sb.Endpoints) != len(want) {
		t.Fatalf("sandbox %s has endpoints %+v, want %+v", sb.Name, sb.Endpoints, want)
	}
	id, ok := k.mountAt(sb.NetNS)
	if !ok || id != netnsID(sb) {
		t.Fatalf("sandbox %s: %s names %v (%t), want its namespace %v", sb.Name, sb.NetNS, id, ok, netnsID(sb))
	}
	for i, w := range want {
		ep := sb.Endpoints[i]
		mac := w.mac
		if mac == "" {
			mac = ipam.MACFromIP(netip.MustParsePrefix(w.address).Addr()).String()
		}
		got := fmt.Sprintf("%s %s %s %v %s", ep.Network, ep.IfName, ep.Address, ep.Gateway, ep.MAC)
		gw := w.gateway
		if gw == "" {
			gw = "invalid IP"
		}
		if wantS := fmt.Sprintf("%s %s %s %s %s", w.network, w.ifname, w.address, gw, mac); got != wantS {
			t.Errorf("sandbox %s endpoint %d: %s, want %s", sb.Name, i, got, wantS)
		}
		n := mustNetwork(t, e, ep.Network)
		h, ok := k.hostLink(ep.HostVeth)
		if !ok || h.master != n.Bridge || h.peerNS != id || h.peerName != ep.IfName || h.alias != e.owner.SandboxMark(sb.Name, n.Name) {
			t.Errorf("sandbox %s: host veth %s is %+v (%t): want on %s, peer %s in %v", sb.Name, ep.HostVeth, h, ok, n.Bridge, ep.IfName, id)
		}
		p, ok := k.peerLink(id, ep.IfName)
		if !ok || !p.up || !slices.Equal(p.addrs, []netip.Prefix{ep.Address}) || p.gateway != ep.Gateway {
			t.Errorf("sandbox %s: %s in its namespace is %+v (%t)", sb.Name, ep.IfName, p, ok)
		}
		if got := k.sysctlOf(id.String() + " " + sysctl.DisableIPv6(ep.IfName)); got != "1" {
			t.Errorf("sandbox %s: IPv6 on %s is not off", sb.Name, ep.IfName)
		}
		if !slices.ContainsFunc(n.Attached, func(a Attachment) bool { return a.Sandbox == sb.Name && reflect.DeepEqual(a.Endpoint, ep) }) {
			t.Errorf("network %s does not list %s's endpoint: %+v", n.Name, sb.Name, n.Attached)
		}
	}
}

func TestCreateSandboxBridge(t *testing.T) {
	n1 := apiNet("n1", "10.1.0.0/24")
	n2 := apiNet("n2", "10.2.0.0/24")
	in := apiNetSpec(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true})
	for _, c := range []struct {
		name  string
		setup []apiSetup
		spec  SandboxSpec
		want  []wantEndpoint
	}{
		{name: "one network", setup: []apiSetup{n1}, spec: SandboxSpec{Name: "s1", Networks: []string{"n1"}},
			want: []wantEndpoint{{"n1", "eth0", "10.1.0.2/24", "10.1.0.1", ""}}},
		{name: "the next free address", setup: []apiSetup{n1, apiSb(SandboxSpec{Name: "s0", Networks: []string{"n1"}})},
			spec: SandboxSpec{Name: "s1", Networks: []string{"n1"}}, want: []wantEndpoint{{"n1", "eth0", "10.1.0.3/24", "10.1.0.1", ""}}},
		{name: "two networks: the default route on the first", setup: []apiSetup{n1, n2}, spec: SandboxSpec{Name: "s1", Networks: []string{"n2", "n1"}},
			want: []wantEndpoint{{"n2", "eth0", "10.2.0.2/24", "10.2.0.1", ""}, {"n1", "eth1", "10.1.0.2/24", "", ""}}},
		{name: "internal first: the default route on the first non-internal", setup: []apiSetup{n1, in},
			spec: SandboxSpec{Name: "s1", Networks: []string{"in", "n1"}},
			want: []wantEndpoint{{"in", "eth0", "10.3.0.2/24", "", ""}, {"n1", "eth1", "10.1.0.2/24", "10.1.0.1", ""}}},
		{name: "internal only: no default route", setup: []apiSetup{in}, spec: SandboxSpec{Name: "s1", Networks: []string{"in"}},
			want: []wantEndpoint{{"in", "eth0", "10.3.0.2/24", "", ""}}},
		{name: "default network made on first use", spec: SandboxSpec{Name: "s1"},
			want: []wantEndpoint{{"bridge", "eth0", "172.17.0.2/16", "172.17.0.1", ""}}},
		{name: "default network by name, made on first use, with another network", setup: []apiSetup{n1},
			spec: SandboxSpec{Name: "s1", Networks: []string{"n1", "bridge"}},
			want: []wantEndpoint{{"n1", "eth0", "10.1.0.2/24", "10.1.0.1", ""}, {"bridge", "eth1", "172.17.0.2/16", "", ""}}},
		{name: "static IP", setup: []apiSetup{n1}, spec: SandboxSpec{Name: "s1", Networks: []string{"n1"}, IP: "10.1.0.50"},
			want: []wantEndpoint{{"n1", "eth0", "10.1.0.50/24", "10.1.0.1", "02:42:0a:01:00:32"}}},
		{name: "static IP and MAC on the first network only", setup: []apiSetup{n1, n2},
			spec: SandboxSpec{Name: "s1", Networks: []string{"n1", "n2"}, IP: "10.1.0.50", MAC: "02:00:00:00:00:01"},
			want: []wantEndpoint{{"n1", "eth0", "10.1.0.50/24", "10.1.0.1", "02:00:00:00:00:01"}, {"n2", "eth1", "10.2.0.2/24", "", ""}}},
		{name: "static MAC", setup: []apiSetup{n1}, spec: SandboxSpec{Name: "s1", Networks: []string{"n1"}, MAC: "02:00:00:00:00:01"},
			want: []wantEndpoint{{"n1", "eth0", "10.1.0.2/24", "10.1.0.1", "02:00:00:00:00:01"}}},
		{name: "a free address whose derived MAC another sandbox has is skipped",
			setup: []apiSetup{n1, apiSb(SandboxSpec{Name: "s0", Networks: []string{"n1"}, MAC: "02:42:0a:01:00:03"})},
			spec:  SandboxSpec{Name: "s1", Networks: []string{"n1"}}, want: []wantEndpoint{{"n1", "eth0", "10.1.0.4/24", "10.1.0.1", ""}}},
		{name: "the last address of a /30", setup: []apiSetup{apiNet("n9", "10.9.0.0/30")}, spec: SandboxSpec{Name: "s1", Networks: []string{"n9"}},
			want: []wantEndpoint{{"n9", "eth0", "10.9.0.2/30", "10.9.0.1", ""}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, c.setup...)
			sb, err := e.CreateSandbox(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			stored := mustSandbox(t, e, c.spec.Name)
			if stored.Mode != ModeBridge || !stored.OwnsNetNS || !stored.Mounted || stored.NetNS != e.k.ns.Path(c.spec.Name) || stored.ID != sb.ID {
				t.Errorf("stored %+v", stored)
			}
			checkEndpoints(t, k, e, stored, c.want)
			if !slices.Contains(state(t, k, e), "file netns/"+c.spec.Name) {
				t.Errorf("no namespace marker for %s", c.spec.Name)
			}
		})
	}
	t.Run("the default network is made again after removal", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1"}))
		if _, err := e.RemoveSandbox("s1", false); err != nil {
			t.Fatal(err)
		}
		mustDo(t, e.RemoveNetwork(DefaultNetwork))
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s2"}))
		checkBridge(t, k, e, &mustNetwork(t, e, DefaultNetwork).Network)
	})
}

func TestCreateSandboxModes(t *testing.T) {
	n1 := apiNet("n1", "10.1.0.0/24")
	s1 := apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}})
	for _, c := range []struct {
		name  string
		setup []apiSetup
		spec  func(t *testing.T, k *fakeKernel, e *Engine) SandboxSpec
		check func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox)
	}{
		{name: "none: its own namespace with lo up",
			spec: func(*testing.T, *fakeKernel, *Engine) SandboxSpec {
				return SandboxSpec{Name: "s2", Networks: []string{ModeNone}}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				if sb.Mode != ModeNone || !sb.OwnsNetNS || !sb.Mounted || len(sb.Endpoints) != 0 {
					t.Errorf("sandbox %+v", sb)
				}
				if !slices.Contains(k.log, "raise lo in "+sb.NetNS) {
					t.Errorf("lo was not raised: %v", k.log)
				}
			}},
		{name: "host: the host's namespace, named",
			spec: func(*testing.T, *fakeKernel, *Engine) SandboxSpec {
				return SandboxSpec{Name: "s2", Networks: []string{ModeHost}}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				if id, _ := k.mountAt(sb.NetNS); sb.Mode != ModeHost || sb.OwnsNetNS || !sb.Mounted || id != k.self || netnsID(sb) != k.self {
					t.Errorf("sandbox %+v names %v, want the host's %v", sb, id, k.self)
				}
			}},
		{name: "container:NAME shares its namespace", setup: []apiSetup{n1, s1},
			spec: func(*testing.T, *fakeKernel, *Engine) SandboxSpec {
				return SandboxSpec{Name: "s2", Networks: []string{"container:s1"}}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				checkShares(t, k, e, sb, "s1")
			}},
		{name: "container:ID-prefix shares its namespace, recorded by name", setup: []apiSetup{n1, s1},
			spec: func(t *testing.T, _ *fakeKernel, e *Engine) SandboxSpec {
				id := mustSandbox(t, e, "s1").ID[:12]
				return SandboxSpec{Name: "s2", Networks: []string{"container:" + id}}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				checkShares(t, k, e, sb, "s1")
			}},
		{name: "container: of a container: sandbox", setup: []apiSetup{n1, s1, apiSb(SandboxSpec{Name: "s2", Networks: []string{"container:s1"}})},
			spec: func(*testing.T, *fakeKernel, *Engine) SandboxSpec {
				return SandboxSpec{Name: "s3", Networks: []string{"container:s2"}}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				checkShares(t, k, e, sb, "s2")
				checkShares(t, k, e, sb, "s1")
			}},
		{name: "--netns adopts an outside namespace, named", setup: []apiSetup{n1, apiOutside("ADOPT")},
			spec: func(_ *testing.T, k *fakeKernel, _ *Engine) SandboxSpec {
				return SandboxSpec{Name: "s2", Networks: []string{"n1"}, NetNS: filepath.Join(k.dir, "ADOPT")}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				adopted, _ := k.mountAt(filepath.Join(k.dir, "ADOPT"))
				if sb.OwnsNetNS || !sb.Mounted || netnsID(sb) != adopted || sb.NetNS != e.k.ns.Path("s2") {
					t.Errorf("sandbox %+v, want the adopted namespace %v named at %s", sb, adopted, e.k.ns.Path("s2"))
				}
				checkEndpoints(t, k, e, sb, []wantEndpoint{{"n1", "eth0", "10.1.0.2/24", "10.1.0.1", ""}})
			}},
		{name: "--netns of the name itself adopts it without a mount", setup: []apiSetup{n1, apiOutside("netns/s2")},
			spec: func(_ *testing.T, _ *fakeKernel, e *Engine) SandboxSpec {
				return SandboxSpec{Name: "s2", Networks: []string{"n1"}, NetNS: e.k.ns.Path("s2")}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				if sb.OwnsNetNS || sb.Mounted {
					t.Errorf("sandbox %+v: owns or mounted its own name", sb)
				}
				if slices.Contains(state(t, k, e), "file netns/s2") {
					t.Errorf("a marker for a mount nsnet did not make")
				}
				checkEndpoints(t, k, e, sb, []wantEndpoint{{"n1", "eth0", "10.1.0.2/24", "10.1.0.1", ""}})
			}},
		{name: "none adopting an outside namespace", setup: []apiSetup{apiOutside("ADOPT")},
			spec: func(_ *testing.T, k *fakeKernel, _ *Engine) SandboxSpec {
				return SandboxSpec{Name: "s2", Networks: []string{ModeNone}, NetNS: filepath.Join(k.dir, "ADOPT")}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				adopted, _ := k.mountAt(filepath.Join(k.dir, "ADOPT"))
				if sb.Mode != ModeNone || sb.OwnsNetNS || netnsID(sb) != adopted {
					t.Errorf("sandbox %+v, want the adopted namespace %v", sb, adopted)
				}
			}},
		{name: "run --rm records this process", setup: []apiSetup{n1},
			spec: func(*testing.T, *fakeKernel, *Engine) SandboxSpec {
				return SandboxSpec{Name: "s2", Networks: []string{"n1"}, AutoRemove: true}
			},
			check: func(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox) {
				var runs map[string]store.Run
				mustDo(t, e.read(func(tx *store.Tx) error { var err error; runs, err = tx.Runs(); return err }))
				r, ok := runs["s2"]
				if !ok || r.SandboxID != sb.ID || r.PID != os.Getpid() || !runAlive(r) {
					t.Errorf("run record %+v (%t), want this process (pid %d) and sandbox %s", r, ok, os.Getpid(), sb.ID)
				}
				// The next command leaves it: its process runs.
				apiRun(t, k, e, apiNet("n2", "10.2.0.0/24"))
				if _, err := e.InspectSandbox("s2"); err != nil {
					t.Errorf("a run --rm sandbox whose process runs was removed: %v", err)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, c.setup...)
			spec := c.spec(t, k, e)
			if _, err := e.CreateSandbox(spec); err != nil {
				t.Fatal(err)
			}
			c.check(t, k, e, mustSandbox(t, e, spec.Name))
		})
	}
}

// checkShares checks that sb names the namespace of sandbox owner.
func checkShares(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox, ownerName string) {
	t.Helper()
	o := mustSandbox(t, e, ownerName)
	id, _ := k.mountAt(sb.NetNS)
	if sb.Mode != ModeContainer || sb.OwnsNetNS || !sb.Mounted || id != netnsID(o) || netnsID(sb) != netnsID(o) {
		t.Errorf("sandbox %+v names %v, want %s's %v", sb, id, ownerName, netnsID(o))
	}
	if sb.Container == "" || (sb.Container != ownerName && mustSandbox(t, e, sb.Container).Container != ownerName) {
		t.Errorf("sandbox %s shares %q, want %s", sb.Name, sb.Container, ownerName)
	}
	for _, f := range []string{resolvConfFile, hostsFile} { // the owner's files, under its own header
		mine, err := os.ReadFile(filepath.Join(e.k.etcDir, sb.Name, f))
		theirs, err2 := os.ReadFile(filepath.Join(e.k.etcDir, ownerName, f))
		_, body, _ := strings.Cut(string(mine), "\n")
		_, want, _ := strings.Cut(string(theirs), "\n")
		if err != nil || err2 != nil || body != want || body == "" {
			t.Errorf("sandbox %s's %s is %q (%v), want the body of %s's: %q (%v)", sb.Name, f, mine, err, ownerName, theirs, err2)
		}
	}
}

func TestCreateSandboxRefused(t *testing.T) {
	n1 := apiNet("n1", "10.1.0.0/24")
	in := apiNetSpec(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true})
	in2 := apiNetSpec(NetworkSpec{Name: "in2", Subnet: "10.4.0.0/24", Internal: true})
	s0 := func(spec SandboxSpec) apiSetup { spec.Name = "s0"; return apiSb(spec) }
	onN1 := []string{"n1"}
	for _, c := range []struct {
		name  string
		setup []apiSetup
		spec  func(t *testing.T, k *fakeKernel, e *Engine) SandboxSpec
		want  []string
	}{
		{name: "empty name", spec: plain(SandboxSpec{}), want: []string{"sandbox name is empty"}},
		{name: "bad name", spec: plain(SandboxSpec{Name: "s 1"}), want: []string{`invalid sandbox name "s 1"`}},
		{name: "none with a network", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: []string{"none", "n1"}}),
			want: []string{"--network none cannot be combined with other networks"}},
		{name: "container: with a network", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: []string{"container:x", "n1"}}),
			want: []string{"--network container:x cannot be combined"}},
		{name: "container: with a bad name", spec: plain(SandboxSpec{Name: "s1", Networks: []string{"container:a/b"}}),
			want: []string{`--network container:a/b: invalid sandbox name "a/b"`}},
		{name: "bad network name", spec: plain(SandboxSpec{Name: "s1", Networks: []string{"n/1"}}), want: []string{`invalid network name "n/1"`}},
		{name: "network given twice", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: []string{"n1", "n1"}}),
			want: []string{"network n1 is given twice"}},
		{name: "network given by name and ID", setup: []apiSetup{n1}, spec: func(t *testing.T, _ *fakeKernel, e *Engine) SandboxSpec {
			return SandboxSpec{Name: "s1", Networks: []string{"n1", mustNetwork(t, e, "n1").ID}}
		}, want: []string{"network n1 is given twice (--network 0000"}},
		{name: "unknown network", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: []string{"n1", "nope"}}),
			want: []string{"network nope not found (see nsnet network ls)"}},
		{name: "--ip with none", spec: plain(SandboxSpec{Name: "s1", Networks: []string{"none"}, IP: "10.1.0.5"}),
			want: []string{"--ip and --mac need a bridge network, not --network none"}},
		{name: "--mac with host", spec: plain(SandboxSpec{Name: "s1", Networks: []string{"host"}, MAC: "02:00:00:00:00:01"}),
			want: []string{"--ip and --mac need a bridge network, not --network host"}},
		{name: "bad --ip", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, IP: "10.1.0"}), want: []string{`invalid IP address "10.1.0"`}},
		{name: "bad --mac", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, MAC: "zz"}), want: []string{`invalid MAC address "zz"`}},
		{name: "multicast --mac", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, MAC: "01:00:00:00:00:01"}),
			want: []string{"is multicast"}},
		{name: "-p with host", spec: plain(SandboxSpec{Name: "s1", Networks: []string{"host"}, Publish: []string{"80"}}),
			want: []string{"-p needs a bridge network, not --network host"}},
		{name: "-p with container:", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1})},
			spec: plain(SandboxSpec{Name: "s1", Networks: []string{"container:s0"}, Publish: []string{"80"}}),
			want: []string{"-p needs a bridge network, not --network container:s0"}},
		{name: "bad -p", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"80:x"}}),
			want: []string{`invalid port spec "80:x"`}},
		{name: "--netns with host", setup: []apiSetup{apiOutside("ADOPT")}, spec: func(_ *testing.T, k *fakeKernel, _ *Engine) SandboxSpec {
			return SandboxSpec{Name: "s1", Networks: []string{"host"}, NetNS: filepath.Join(k.dir, "ADOPT")}
		}, want: []string{"--netns cannot be used with --network host"}},
		{name: "--netns with container:", setup: []apiSetup{apiOutside("ADOPT")}, spec: func(_ *testing.T, k *fakeKernel, _ *Engine) SandboxSpec {
			return SandboxSpec{Name: "s1", Networks: []string{"container:s0"}, NetNS: filepath.Join(k.dir, "ADOPT")}
		}, want: []string{"--netns cannot be used with --network container:s0"}},
		{name: "--netns that is no namespace", setup: []apiSetup{n1}, spec: func(_ *testing.T, k *fakeKernel, _ *Engine) SandboxSpec {
			return SandboxSpec{Name: "s1", Networks: onN1, NetNS: filepath.Join(k.dir, "nothing")}
		}, want: []string{"sandbox s1: ", "is not a network namespace"}},
		{name: "--netns of the host's own namespace", setup: []apiSetup{n1}, spec: func(_ *testing.T, k *fakeKernel, _ *Engine) SandboxSpec {
			return SandboxSpec{Name: "s1", Networks: onN1, NetNS: filepath.Join(k.dir, "self")}
		}, want: []string{"is the host's own network namespace, where nsnet runs: use --network host to name it"}},
		{name: "--netns of the host's namespace by another name", setup: []apiSetup{n1, s0(SandboxSpec{Networks: []string{"host"}})},
			spec: func(_ *testing.T, _ *fakeKernel, e *Engine) SandboxSpec {
				return SandboxSpec{Name: "s1", Networks: []string{"none"}, NetNS: e.k.ns.Path("s0")}
			}, want: []string{"is the host's own network namespace"}},
		{name: "--netns another sandbox adopted", setup: []apiSetup{n1, apiOutside("ADOPT"), func(t *testing.T, k *fakeKernel, e *Engine) {
			apiSb(SandboxSpec{Name: "s0", Networks: onN1, NetNS: filepath.Join(k.dir, "ADOPT")})(t, k, e)
		}}, spec: func(_ *testing.T, k *fakeKernel, _ *Engine) SandboxSpec {
			return SandboxSpec{Name: "s1", Networks: onN1, NetNS: filepath.Join(k.dir, "ADOPT")}
		}, want: []string{"sandbox s1: that namespace already belongs to sandbox s0: use --network container:s0 to share it"}},
		{name: "--netns of another sandbox's own namespace", setup: []apiSetup{n1, s0(SandboxSpec{Networks: []string{"none"}})},
			spec: func(_ *testing.T, _ *fakeKernel, e *Engine) SandboxSpec {
				return SandboxSpec{Name: "s1", Networks: onN1, NetNS: e.k.ns.Path("s0")}
			}, want: []string{"that namespace already belongs to sandbox s0"}},
		{name: "unknown container:", spec: plain(SandboxSpec{Name: "s1", Networks: []string{"container:nope"}}),
			want: []string{"--network container:nope: sandbox nope not found (see nsnet sandbox ls)"}},
		{name: "container: of a replaced namespace", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1}), apiReplaced("s0")},
			spec: plain(SandboxSpec{Name: "s1", Networks: []string{"container:s0"}}),
			want: []string{"sandbox s0: ", "is no longer the namespace it was given (it was removed and made again by someone else): run nsnet gc"}},
		{name: "existing sandbox", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1})}, spec: plain(SandboxSpec{Name: "s0", Networks: onN1}),
			want: []string{"sandbox s0 already exists: remove it first (nsnet sandbox rm s0) or choose another name"}},
		{name: "names would vanish with the mount namespace (ip netns exec)", setup: []apiSetup{n1, apiHiddenNames}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1}),
			want: []string{"sandbox s1: names vanish here"}},
		{name: "names would vanish, --network none", setup: []apiSetup{apiHiddenNames}, spec: plain(SandboxSpec{Name: "s1", Networks: []string{"none"}}),
			want: []string{"sandbox s1: names vanish here"}},
		{name: "a file that is no namespace has its name", setup: []apiSetup{n1, apiPlainFile("netns/s1")}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1}),
			want: []string{"sandbox s1: ", "netns/s1 exists and is no network namespace", "remove it, or choose another sandbox name"}},
		{name: "a namespace of that name exists", setup: []apiSetup{n1, apiOutside("netns/s1")}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1}),
			want: []string{"a network namespace named s1 already exists", "adopt it with --netns"}},
		{name: "--ip held", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1})}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, IP: "10.1.0.2"}),
			want: []string{"--ip 10.1.0.2 on network n1: held by sandbox s0: address 10.1.0.2 is already in use"}},
		{name: "--ip outside the subnet", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, IP: "10.2.0.2"}),
			want: []string{"--ip 10.2.0.2 on network n1: address 10.2.0.2 is outside the network's subnet 10.1.0.0/24"}},
		{name: "--ip of the gateway", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, IP: "10.1.0.1"}),
			want: []string{"is the network's gateway"}},
		{name: "--ip of the broadcast address", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, IP: "10.1.0.255"}),
			want: []string{"is the broadcast address of 10.1.0.0/24"}},
		{name: "--mac of another sandbox", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1, MAC: "02:00:00:00:00:01"})},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, MAC: "02:00:00:00:00:01"}),
			want: []string{"--mac 02:00:00:00:00:01 on network n1: already used by sandbox s0: choose another --mac"}},
		{name: "--mac derived for another sandbox", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1})},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, MAC: "02:42:0a:01:00:02"}),
			want: []string{"--mac 02:42:0a:01:00:02 on network n1: already used by sandbox s0"}},
		{name: "--mac of the bridge", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, MAC: "02:42:0a:01:00:01"}),
			want: []string{"--mac 02:42:0a:01:00:01 on network n1: it is the MAC of the network's bridge br-"}},
		{name: "--ip whose derived MAC another sandbox has", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1, MAC: "02:42:0a:01:00:05"})},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, IP: "10.1.0.5"}),
			want: []string{"MAC 02:42:0a:01:00:05 (derived from --ip) on network n1: already used by sandbox s0: choose another --ip, or give a --mac"}},
		{name: "full subnet", setup: []apiSetup{apiNet("n9", "10.9.0.0/30"), s0(SandboxSpec{Networks: []string{"n9"}})},
			spec: plain(SandboxSpec{Name: "s1", Networks: []string{"n9"}}),
			want: []string{"network n9: subnet 10.9.0.0/30 is full: no free addresses; remove unused sandboxes or use a larger --subnet"}},
		{name: "full second network", setup: []apiSetup{n1, apiNet("n9", "10.9.0.0/30"), s0(SandboxSpec{Networks: []string{"n9"}})},
			spec: plain(SandboxSpec{Name: "s1", Networks: []string{"n1", "n9"}}), want: []string{"network n9: subnet 10.9.0.0/30 is full"}},
		{name: "a host port a host process holds", setup: []apiSetup{n1, apiTake("tcp/0.0.0.0/08080")},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8080:80"}}),
			want: []string{"sandbox s1: publish 8080:80/tcp: host port 0.0.0.0:8080/tcp is in use by process web (pid 42)"}},
		{name: "a host port on one address a host process holds", setup: []apiSetup{n1, apiTake("udp/127.0.0.1/05353")},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"53/udp", "127.0.0.1:5353:53/udp"}}),
			want: []string{"host port 127.0.0.1:5353/udp is in use by process web (pid 42)"}},
		{name: "a host port another sandbox publishes", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1, Publish: []string{"8080:80"}})},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8080:81"}}),
			want: []string{"host port 0.0.0.0:8080/tcp is already published by sandbox s0: choose another host port (nsnet port ls)"}},
		{name: "a host port another sandbox publishes on one address", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1, Publish: []string{"127.0.0.1:8080:80"}})},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8080:80"}}),
			want: []string{"host port 127.0.0.1:8080/tcp is already published by sandbox s0"}},
		{name: "one address of a host port another sandbox publishes on all", setup: []apiSetup{n1, s0(SandboxSpec{Networks: onN1, Publish: []string{"8080:80"}})},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"127.0.0.1:8080:80"}}),
			want: []string{"host port 0.0.0.0:8080/tcp is already published by sandbox s0"}},
		{name: "a host port given twice", setup: []apiSetup{n1}, spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8080:80", "8080:81"}}),
			want: []string{"host port 0.0.0.0:8080/tcp is given twice"}},
		{name: "a host range all taken", setup: []apiSetup{n1, apiTake("tcp/0.0.0.0/08000", "tcp/0.0.0.0/08001")},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8000-8001:80"}}),
			want: []string{"sandbox s1: publish 8000-8001:80/tcp: no free host port in 8000-8001/tcp"}},
		{name: "more automatic ports than the local port range", setup: []apiSetup{n1},
			spec: plain(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"1-40"}}),
			want: []string{"no free host port in 32768-32800/tcp"}},
		{name: "-p on an internal network only", setup: []apiSetup{in}, spec: plain(SandboxSpec{Name: "s1", Networks: []string{"in"}, Publish: []string{"80"}}),
			want: []string{"sandbox s1 is only on internal network in, which cannot publish ports", "attach it to a non-internal network"}},
		{name: "-p on internal networks only", setup: []apiSetup{in, in2},
			spec: plain(SandboxSpec{Name: "s1", Networks: []string{"in", "in2"}, Publish: []string{"80"}}),
			want: []string{"sandbox s1 is only on internal networks in, in2, which cannot publish ports"}},
		{name: "the default network made on first use goes with a refused sandbox", setup: []apiSetup{apiTake("tcp/0.0.0.0/08080")},
			spec: plain(SandboxSpec{Name: "s1", Publish: []string{"8080:80"}}), want: []string{"is in use by process web"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, c.setup...)
			spec := c.spec(t, k, e)
			refused(t, k, e, func() error { _, err := e.CreateSandbox(spec); return err }, c.want...)
		})
	}
}

func plain(spec SandboxSpec) func(*testing.T, *fakeKernel, *Engine) SandboxSpec {
	return func(*testing.T, *fakeKernel, *Engine) SandboxSpec { return spec }
}

// TestNotFoundErrors: a name that names nothing is ErrNotFound, and says
// where to look.
func TestNotFoundErrors(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"))
	for name, call := range map[string]func() error{
		"CreateSandbox on a missing network": func() error {
			_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"nope"}})
			return err
		},
		"RemoveNetwork":  func() error { return e.RemoveNetwork("nope") },
		"InspectNetwork": func() error { _, err := e.InspectNetwork("nope"); return err },
	} {
		err := refused(t, k, e, call, "network nope not found (see nsnet network ls)")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v is not ErrNotFound", name, err)
		}
	}
	for name, call := range map[string]func() error{
		"RemoveSandbox":  func() error { _, err := e.RemoveSandbox("nope", true); return err },
		"InspectSandbox": func() error { _, err := e.InspectSandbox("nope"); return err },
		"AddPorts":       func() error { _, err := e.AddPorts("nope", []string{"80"}); return err },
		"RemovePorts":    func() error { _, err := e.RemovePorts("nope", []string{"80"}); return err },
	} {
		err := refused(t, k, e, call, "sandbox nope not found (see nsnet sandbox ls)")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v is not ErrNotFound", name, err)
		}
	}
}

// TestRefsByIDAndPrefix: every call that takes a name also takes the ID or
// a unique prefix of it; an exact name wins; an ambiguous prefix is refused,
// naming the candidates.
func TestRefsByIDAndPrefix(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	n1, err := e.CreateNetwork(NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24"})
	mustDo(t, err)
	n2, err := e.CreateNetwork(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24"})
	mustDo(t, err)
	if d := mustNetwork(t, e, n1.ID); d.Name != "n1" {
		t.Errorf("network by ID: %s", d.Name)
	}
	if d := mustNetwork(t, e, n2.ID[:12]); d.Name != "n2" {
		t.Errorf("network by ID prefix: %s", d.Name)
	}
	s1, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{n1.ID[:12], n2.ID}, Publish: []string{"8080:80"}})
	mustDo(t, err)
	if got := []string{s1.Endpoints[0].Network, s1.Endpoints[1].Network}; !slices.Equal(got, []string{"n1", "n2"}) {
		t.Errorf("networks given by ID: endpoints on %v", got)
	}
	s2, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}})
	mustDo(t, err)
	if sb := mustSandbox(t, e, s1.ID[:12]); sb.Name != "s1" || len(sb.Ports) != 1 {
		t.Errorf("sandbox by ID prefix: %+v", sb)
	}

	prefix := commonPrefix(s1.ID, s2.ID)
	want := fmt.Sprintf("sandbox %s is ambiguous: ID prefix %s matches s1 (%s...), s2 (%s...): give more of the ID, or the name (see nsnet sandbox ls)",
		prefix, prefix, s1.ID[:12], s2.ID[:12])
	for name, call := range map[string]func() error{
		"InspectSandbox": func() error { _, err := e.InspectSandbox(prefix); return err },
		"RemoveSandbox":  func() error { _, err := e.RemoveSandbox(prefix, true); return err },
		"AddPorts":       func() error { _, err := e.AddPorts(prefix, []string{"81"}); return err },
		"RemovePorts":    func() error { _, err := e.RemovePorts(prefix, []string{"80"}); return err },
		"container:": func() error {
			_, err := e.CreateSandbox(SandboxSpec{Name: "s3", Networks: []string{"container:" + prefix}})
			return err
		},
	} {
		t.Run("ambiguous "+name, func(t *testing.T) {
			if err := refused(t, k, e, call, want); !errors.Is(err, store.ErrAmbiguous) {
				t.Errorf("%v is not store.ErrAmbiguous", err)
			}
		})
	}
	netPrefix := commonPrefix(n1.ID, n2.ID)
	refused(t, k, e, func() error { return e.RemoveNetwork(netPrefix) },
		fmt.Sprintf("network %s is ambiguous: ID prefix %s matches n1 (%s...), n2 (%s...)", netPrefix, netPrefix, n1.ID[:12], n2.ID[:12]))

	// An exact name wins over an ID prefix.
	named, err := e.CreateSandbox(SandboxSpec{Name: s1.ID[:12], Networks: []string{"none"}})
	mustDo(t, err)
	if sb := mustSandbox(t, e, s1.ID[:12]); sb.ID != named.ID {
		t.Errorf("%s names sandbox %s, want the one of that name", s1.ID[:12], sb.Name)
	}

	added, err := e.AddPorts(s1.ID, []string{"8081:81"})
	if err != nil || len(added) != 1 {
		t.Errorf("AddPorts by ID: %v, %v", added, err)
	}
	removedPorts, err := e.RemovePorts(s1.ID[:13], []string{"8081:81"})
	if err != nil || len(removedPorts) != 1 {
		t.Errorf("RemovePorts by ID prefix: %v, %v", removedPorts, err)
	}
	if held := k.held("s1"); !slices.Equal(held, []string{"tcp/0.0.0.0/08080 -> 10.1.0.2:80"}) {
		t.Errorf("after removing by ID, the resident holds %v for s1", held)
	}
	if removed, err := e.RemoveSandbox(s2.ID, false); err != nil || !slices.Equal(removed, []string{"s2"}) {
		t.Errorf("RemoveSandbox by ID: %v, %v", removed, err)
	}
	if removed, err := e.RemoveSandbox(s1.ID[:12], false); err != nil || !slices.Equal(removed, []string{s1.ID[:12]}) {
		t.Errorf("RemoveSandbox by a name that is also an ID prefix: %v, %v", removed, err)
	}
	if removed, err := e.RemoveSandbox(s1.ID[:12], false); err != nil || !slices.Equal(removed, []string{"s1"}) {
		t.Errorf("RemoveSandbox by ID prefix: %v, %v", removed, err)
	}
	mustDo(t, e.RemoveNetwork(n1.ID))
	mustDo(t, e.RemoveNetwork(n2.ID[:12]))
	if nets, err := e.Networks(); err != nil || len(nets) != 0 {
		t.Errorf("networks left: %v, %v", nets, err)
	}
}

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

func TestPublish(t *testing.T) {
	n1 := apiNet("n1", "10.1.0.0/24")
	in := apiNetSpec(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true})
	onN1 := []string{"n1"}
	for _, c := range []struct {
		name     string
		setup    []apiSetup
		networks []string
		publish  []string
		want     []string // the mappings
		ctr      string   // the address they go to (default 10.1.0.2)
	}{
		{name: "host port", publish: []string{"8080:80"}, want: []string{"80/tcp -> 0.0.0.0:8080"}},
		{name: "host address and port", publish: []string{"127.0.0.1:5353:53/udp"}, want: []string{"53/udp -> 127.0.0.1:5353"}},
		{name: "host address, automatic port", publish: []string{"127.0.0.1::80"}, want: []string{"80/tcp -> 127.0.0.1:32768"}},
		{name: "0.0.0.0 is every address", publish: []string{"0.0.0.0:8080:80"}, want: []string{"80/tcp -> 0.0.0.0:8080"}},
		{name: "automatic port", publish: []string{"80"}, want: []string{"80/tcp -> 0.0.0.0:32768"}},
		{name: "automatic ports for a range", publish: []string{"80-81/udp"}, want: []string{"80/udp -> 0.0.0.0:32768", "81/udp -> 0.0.0.0:32769"}},
		{name: "automatic port past a taken one", setup: []apiSetup{apiTake("tcp/0.0.0.0/32768")},
			publish: []string{"80"}, want: []string{"80/tcp -> 0.0.0.0:32769"}},
		{name: "automatic port past another sandbox's", setup: []apiSetup{apiSb(SandboxSpec{Name: "s0", Networks: onN1, Publish: []string{"80"}})},
			publish: []string{"80"}, want: []string{"80/tcp -> 0.0.0.0:32769"}, ctr: "10.1.0.3"},
		{name: "automatic ports for two specs differ", publish: []string{"80", "81"}, want: []string{"80/tcp -> 0.0.0.0:32768", "81/tcp -> 0.0.0.0:32769"}},
		{name: "ranges", publish: []string{"9000-9002:9100-9102"},
			want: []string{"9100/tcp -> 0.0.0.0:9000", "9101/tcp -> 0.0.0.0:9001", "9102/tcp -> 0.0.0.0:9002"}},
		{name: "a host range for one port takes the first free", setup: []apiSetup{apiTake("tcp/0.0.0.0/08000")},
			publish: []string{"8000-8010:80"}, want: []string{"80/tcp -> 0.0.0.0:8001"}},
		{name: "protocol in capitals", publish: []string{"8080:80/TCP"}, want: []string{"80/tcp -> 0.0.0.0:8080"}},
		{name: "SCTP is published but not held", publish: []string{"9000/sctp"}, want: []string{"9000/sctp -> 0.0.0.0:32768"}},
		{name: "TCP and UDP on one port", publish: []string{"8080:80", "8080:80/udp"}, want: []string{"80/tcp -> 0.0.0.0:8080", "80/udp -> 0.0.0.0:8080"}},
		{name: "one port on two host addresses", setup: []apiSetup{apiSb(SandboxSpec{Name: "s0", Networks: onN1, Publish: []string{"127.0.0.1:8080:80"}})},
			publish: []string{"127.0.0.2:8080:80"}, want: []string{"80/tcp -> 127.0.0.2:8080"}, ctr: "10.1.0.3"},
		{name: "after an internal network, to the first non-internal", setup: []apiSetup{in},
			networks: []string{"in", "n1"}, publish: []string{"8080:80"}, want: []string{"80/tcp -> 0.0.0.0:8080"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, append([]apiSetup{n1}, c.setup...)...)
			networks := c.networks
			if networks == nil {
				networks = onN1
			}
			ctr := c.ctr
			if ctr == "" {
				ctr = "10.1.0.2"
			}
			sb, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: networks, Publish: c.publish})
			if err != nil {
				t.Fatal(err)
			}
			if got := mappingStrings(sb.Ports); !slices.Equal(got, c.want) {
				t.Errorf("returned mappings %v, want %v", got, c.want)
			}
			stored := mustSandbox(t, e, "s1")
			if got := mappingStrings(stored.Ports); !slices.Equal(got, c.want) {
				t.Errorf("stored mappings %v, want %v", got, c.want)
			}
			checkPublished(t, k, e, stored, ctr)
		})
	}
}

// checkPublished checks that the firewall publishes sb's ports to ctr and
// that the resident holds exactly the TCP and UDP ones for it, for ctr.
func checkPublished(t *testing.T, k *fakeKernel, e *Engine, sb *Sandbox, ctr string) {
	t.Helper()
	var wantHeld []string
	for _, m := range sb.Ports {
		fw := firewall.Port{Proto: m.Proto, HostIP: m.HostIP, HostPort: m.HostPort, CtrIP: netip.MustParseAddr(ctr), CtrPort: m.CtrPort}
		if !slices.Contains(k.fwPorts(), fwPortString(fw)) {
			t.Errorf("the firewall lacks %s: %v", fwPortString(fw), k.fwPorts())
		}
		if m.Proto != "sctp" {
			wantHeld = append(wantHeld, fmt.Sprintf("%s -> %s:%d", m.Key(), ctr, m.CtrPort))
		}
	}
	sort.Strings(wantHeld)
	got := k.held(sb.Name)
	if len(wantHeld) == 0 && got != nil {
		t.Errorf("sandbox %s publishes nothing held, yet the resident holds %v", sb.Name, got)
	}
	if len(wantHeld) > 0 && !slices.Equal(got, wantHeld) {
		t.Errorf("the resident holds %v for sandbox %s, want %v", got, sb.Name, wantHeld)
	}
	st := e.ResidentStatus(sb)
	k.mu.Lock()
	running := k.res
	k.mu.Unlock()
	if !st.Needed || !st.Alive || running == nil || st.Pid != running.pid {
		t.Errorf("resident status %+v, want that of the live resident %+v", st, running)
	}
}

func TestRemoveSandbox(t *testing.T) {
	n1 := apiNet("n1", "10.1.0.0/24")
	onN1 := []string{"n1"}
	t.Run("sharers refused without force, removed with it", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, n1)
		before := state(t, k, e)
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8080:80"}}),
			apiSb(SandboxSpec{Name: "s2", Networks: []string{"container:s1"}}),
			apiSb(SandboxSpec{Name: "s3", Networks: []string{"container:s2"}}),
			apiSb(SandboxSpec{Name: "s4", Networks: []string{"container:s1"}}))
		refused(t, k, e, func() error { _, err := e.RemoveSandbox("s1", false); return err },
			"sandbox s1 is shared by [s2 s4] (--network container:s1): remove them first, or use --force to remove them too")
		refused(t, k, e, func() error { _, err := e.RemoveSandbox("s2", false); return err }, "sandbox s2 is shared by [s3]")
		removed, err := e.RemoveSandbox("s1", true)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"s3", "s2", "s4", "s1"}; !slices.Equal(removed, want) {
			t.Errorf("removed %v, want %v", removed, want)
		}
		if after := state(t, k, e); !slices.Equal(before, after) {
			t.Errorf("removing every sandbox left:\n%s", diffLines(before, after))
		}
		if k.flushed != 1 {
			t.Errorf("%d flows flushed, want 1 (the published port)", k.flushed)
		}
	})
	t.Run("a sharer goes alone", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, n1, apiSb(SandboxSpec{Name: "s1", Networks: onN1}), apiSb(SandboxSpec{Name: "s2", Networks: []string{"container:s1"}}))
		s1 := mustSandbox(t, e, "s1")
		k.procs[s1.NetNSIno] = []Process{{PID: 7, Comm: "sleep"}} // the sharer's processes are s1's
		if removed, err := e.RemoveSandbox("s2", false); err != nil || !slices.Equal(removed, []string{"s2"}) {
			t.Fatalf("removed %v, %v", removed, err)
		}
		if id, ok := k.mountAt(s1.NetNS); !ok || id != netnsID(s1) {
			t.Errorf("removing a sharer touched the owner's namespace")
		}
		checkEndpoints(t, k, e, mustSandbox(t, e, "s1"), []wantEndpoint{{"n1", "eth0", "10.1.0.2/24", "10.1.0.1", ""}})
	})
	t.Run("processes refused without force", func(t *testing.T) {
		for _, c := range []struct {
			procs int
			want  string
		}{
			{1, "sandbox s1 has running processes: p0 (pid 100); stop them, or use --force to remove it anyway (they keep running, cut off from its networks)"},
			{5, "p0 (pid 100), p1 (pid 101), p2 (pid 102), p3 (pid 103), p4 (pid 104); stop them"},
			{7, "p3 (pid 103), p4 (pid 104), and 2 more; stop them"},
		} {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, n1, apiSb(SandboxSpec{Name: "s1", Networks: onN1}))
			s1 := mustSandbox(t, e, "s1")
			for i := 0; i < c.procs; i++ {
				k.procs[s1.NetNSIno] = append(k.procs[s1.NetNSIno], Process{PID: 100 + i, Comm: fmt.Sprintf("p%d", i)})
			}
			refused(t, k, e, func() error { _, err := e.RemoveSandbox("s1", false); return err }, c.want)
			if removed, err := e.RemoveSandbox("s1", true); err != nil || !slices.Equal(removed, []string{"s1"}) {
				t.Errorf("with force: %v, %v", removed, err)
			}
			if _, ok := k.mountAt(s1.NetNS); ok {
				t.Errorf("with force, the namespace is still named")
			}
		}
	})
	t.Run("a none sandbox with processes", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: []string{"none"}}))
		k.procs[mustSandbox(t, e, "s1").NetNSIno] = []Process{{PID: 9, Comm: "sh"}}
		refused(t, k, e, func() error { _, err := e.RemoveSandbox("s1", false); return err }, "sandbox s1 has running processes: sh (pid 9)")
	})
	t.Run("a host sandbox leaves the host's namespace and its processes", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "h", Networks: []string{"host"}}))
		k.procs[k.self.Ino] = []Process{{PID: 1, Comm: "init"}}
		if removed, err := e.RemoveSandbox("h", false); err != nil || !slices.Equal(removed, []string{"h"}) {
			t.Fatalf("removed %v, %v", removed, err)
		}
		if id, ok := k.mountAt(filepath.Join(k.dir, "self")); !ok || id != k.self {
			t.Errorf("the host's namespace is gone")
		}
		if _, ok := k.mountAt(e.k.ns.Path("h")); ok {
			t.Errorf("the host sandbox's name is still mounted")
		}
	})
	t.Run("an adopted namespace stays, unnamed", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, n1, apiOutside("ADOPT"))
		adopt := filepath.Join(k.dir, "ADOPT")
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: onN1, NetNS: adopt}))
		s1 := mustSandbox(t, e, "s1")
		if _, err := e.RemoveSandbox("s1", false); err != nil {
			t.Fatal(err)
		}
		if id, ok := k.mountAt(adopt); !ok || id != netnsID(s1) {
			t.Errorf("the adopted namespace is gone")
		}
		if _, ok := k.mountAt(s1.NetNS); ok {
			t.Errorf("the sandbox's name for it is still mounted")
		}
		if _, ok := k.peerLink(netnsID(s1), "eth0"); ok {
			t.Errorf("eth0 is left in the adopted namespace")
		}
	})
	t.Run("a namespace adopted by its own name is not unmounted", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, n1, apiOutside("netns/s1"))
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: onN1, NetNS: e.k.ns.Path("s1")}))
		s1 := mustSandbox(t, e, "s1")
		if _, err := e.RemoveSandbox("s1", false); err != nil {
			t.Fatal(err)
		}
		if id, ok := k.mountAt(s1.NetNS); !ok || id != netnsID(s1) {
			t.Errorf("the namespace nsnet adopted under its own name was unmounted")
		}
	})
	// The stranger has a new number, or (made once the kernel destroyed the
	// old namespace) the old one, made later.
	for _, how := range []struct {
		name    string
		replace func(k *fakeKernel, t *testing.T, path string) netns.ID
		why     func(stranger, old netns.ID) string
	}{
		{"a new number", (*fakeKernel).replaceNamespace, func(stranger, old netns.ID) string { return fmt.Sprintf("now %s, then %s", stranger, old) }},
		{"the old number", (*fakeKernel).replaceNamespaceReusing, strangerWhy},
	} {
		t.Run("a namespace replaced under "+how.name+" is forgotten and the stranger left alone", func(t *testing.T) {
			testReplacedNamespace(t, how.replace, how.why)
		})
	}
}

// testReplacedNamespace: sandbox rm of a sandbox whose namespace name someone
// replaced (replace) forgets the sandbox, leaves the stranger alone and says
// why (why).
func testReplacedNamespace(t *testing.T, replace func(*fakeKernel, *testing.T, string) netns.ID, why func(stranger, old netns.ID) string) {
	onN1 := []string{"n1"}
	k, e, w := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8080:80"}}))
	s1 := mustSandbox(t, e, "s1")
	stranger := replace(k, t, s1.NetNS)
	removed, err := e.RemoveSandbox("s1", false)
	if err != nil || !slices.Equal(removed, []string{"s1"}) {
		t.Fatalf("removed %v, %v", removed, err)
	}
	if id, ok := k.mountAt(s1.NetNS); !ok || id != stranger {
		t.Errorf("the stranger at %s: %v (%t), want %v left alone", s1.NetNS, id, ok, stranger)
	}
	want := fmt.Sprintf("sandbox s1: left %s alone: it is another namespace than the one nsnet made or adopted (%s)", s1.NetNS, why(stranger, netnsID(s1)))
	if !slices.Contains(w.all(), want) {
		t.Errorf("warnings %q, want %q", w.all(), want)
	}
	if sbs, err := e.Sandboxes(); err != nil || len(sbs) != 0 {
		t.Errorf("sandboxes left: %v, %v", sbs, err)
	}
	if _, ok := k.hostLink(s1.Endpoints[0].HostVeth); ok || len(k.fwPorts()) != 0 || k.held("s1") != nil {
		t.Errorf("kernel objects left: veth %t, ports %v, holder %v", ok, k.fwPorts(), k.held("s1"))
	}
	if slices.Contains(state(t, k, e), "file netns/s1") {
		t.Errorf("the marker of the forgotten mount is left")
	}
	// The port is free again.
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s2", Networks: onN1, Publish: []string{"8080:80"}}))
}

func TestRemoveNetwork(t *testing.T) {
	t.Run("attached sandboxes refused", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiNetSpec(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true}),
			apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}}), apiSb(SandboxSpec{Name: "s2", Networks: []string{"in", "n1"}}))
		refused(t, k, e, func() error { return e.RemoveNetwork("n1") },
			"network n1 has attached sandboxes [s1 s2]: remove them first (nsnet sandbox rm s1 s2)")
		refused(t, k, e, func() error { return e.RemoveNetwork("in") }, "network in has attached sandboxes [s2]")
	})
	t.Run("by ID, after its sandboxes", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		before := state(t, k, e)
		n, err := e.CreateNetwork(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true})
		mustDo(t, err)
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: []string{"in"}}))
		if _, err := e.RemoveSandbox("s1", false); err != nil {
			t.Fatal(err)
		}
		mustDo(t, e.RemoveNetwork(n.ID))
		if after := state(t, k, e); !slices.Equal(before, after) {
			t.Errorf("removing the network left:\n%s", diffLines(before, after))
		}
	})
	t.Run("one of two", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiNet("n2", "10.2.0.0/24"))
		n2 := mustNetwork(t, e, "n2").Network
		mustDo(t, e.RemoveNetwork("n1"))
		if _, err := e.InspectNetwork("n1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("n1 after removal: %v", err)
		}
		checkBridge(t, k, e, &n2)
		if nets := k.fwNets(); len(nets) != 1 || nets[0].Name != "n2" {
			t.Errorf("firewall networks %v, want n2 only", nets)
		}
	})
}

func TestAddPorts(t *testing.T) {
	n1 := apiNet("n1", "10.1.0.0/24")
	s1 := apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: []string{"8080:80"}})
	t.Run("to a sandbox with held ports", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, n1, s1)
		pid := k.res.pid
		added, err := e.AddPorts("s1", []string{"8081:81", "53/udp", "9000/sctp"})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"53/udp -> 0.0.0.0:32768", "81/tcp -> 0.0.0.0:8081", "9000/sctp -> 0.0.0.0:32768"}
		if got := mappingStrings(added); !slices.Equal(got, want) {
			t.Errorf("added %v, want %v", got, want)
		}
		sb := mustSandbox(t, e, "s1")
		if got := mappingStrings(sb.Ports); len(got) != 4 || k.res.pid != pid {
			t.Errorf("ports %v, resident %d (was %d)", got, k.res.pid, pid)
		}
		checkPublished(t, k, e, sb, "10.1.0.2")
	})
	t.Run("to the first non-internal network's address", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, n1, apiNetSpec(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true}),
			apiSb(SandboxSpec{Name: "s1", Networks: []string{"in", "n1"}}))
		if _, err := e.AddPorts("s1", []string{"8080:80"}); err != nil {
			t.Fatal(err)
		}
		checkPublished(t, k, e, mustSandbox(t, e, "s1"), "10.1.0.2")
	})
	t.Run("the first held port starts the resident", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1"})) // the default network: no names to serve
		if k.res != nil {
			t.Fatalf("a sandbox without ports or names started the resident: %+v", k.res)
		}
		if _, err := e.AddPorts("s1", []string{"9000/sctp"}); err != nil {
			t.Fatal(err)
		}
		if sb := mustSandbox(t, e, "s1"); k.res != nil || e.ResidentStatus(sb).Needed {
			t.Errorf("an SCTP port started the resident: %+v", k.res)
		}
		if _, err := e.AddPorts("s1", []string{"8080:80"}); err != nil {
			t.Fatal(err)
		}
		checkPublished(t, k, e, mustSandbox(t, e, "s1"), "172.17.0.2")
	})
	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			setup []apiSetup
			ref   string
			specs []string
			want  string
		}{
			{"a port it publishes", nil, "s1", []string{"8080:80"}, "sandbox s1: publish 8080:80/tcp: host port 0.0.0.0:8080/tcp is already published by sandbox s1"},
			{"a port another sandbox publishes", []apiSetup{apiSb(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Publish: []string{"9090:90"}})},
				"s1", []string{"8081:81", "9090:90"}, "host port 0.0.0.0:9090/tcp is already published by sandbox s2"},
			{"a port a host process holds", []apiSetup{apiTake("udp/0.0.0.0/05353")}, "s1", []string{"5353:53/udp"}, "is in use by process web (pid 42)"},
			{"given twice", nil, "s1", []string{"8081:81", "8081:82"}, "host port 0.0.0.0:8081/tcp is given twice"},
			{"a bad spec", nil, "s1", []string{"81", "x"}, `invalid port spec "x"`},
			{"a none sandbox", []apiSetup{apiSb(SandboxSpec{Name: "s2", Networks: []string{"none"}})},
				"s2", []string{"80"}, "sandbox s2 has no bridge network (mode none): only bridge sandboxes can publish ports"},
			{"a container: sandbox", []apiSetup{apiSb(SandboxSpec{Name: "s2", Networks: []string{"container:s1"}})},
				"s2", []string{"80"}, "sandbox s2 has no bridge network (mode container)"},
			{"an internal-only sandbox", []apiSetup{apiNetSpec(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true}),
				apiSb(SandboxSpec{Name: "s2", Networks: []string{"in"}})}, "s2", []string{"80"}, "sandbox s2 is only on internal network in, which cannot publish ports"},
		} {
			t.Run(c.name, func(t *testing.T) {
				k, e, _ := apiEngine(t, nil)
				apiRun(t, k, e, append([]apiSetup{n1, s1}, c.setup...)...)
				refused(t, k, e, func() error { _, err := e.AddPorts(c.ref, c.specs); return err }, c.want)
			})
		}
	})
}

func TestRemovePorts(t *testing.T) {
	published := []string{"8080:80", "8081:80", "127.0.0.1:9090:90/udp", "9000:9000/sctp", "7000-7001:7000-7001"}
	all := []string{"7000/tcp -> 0.0.0.0:7000", "7001/tcp -> 0.0.0.0:7001", "80/tcp -> 0.0.0.0:8080", "80/tcp -> 0.0.0.0:8081",
		"90/udp -> 127.0.0.1:9090", "9000/sctp -> 0.0.0.0:9000"}
	for _, c := range []struct {
		specs   []string
		removed []string
	}{
		{[]string{"80"}, []string{"80/tcp -> 0.0.0.0:8080", "80/tcp -> 0.0.0.0:8081"}},
		{[]string{"8080:80"}, []string{"80/tcp -> 0.0.0.0:8080"}},
		{[]string{"8081:80/tcp"}, []string{"80/tcp -> 0.0.0.0:8081"}},
		{[]string{"8080-8081:80"}, []string{"80/tcp -> 0.0.0.0:8080", "80/tcp -> 0.0.0.0:8081"}},
		{[]string{"90/udp"}, []string{"90/udp -> 127.0.0.1:9090"}},
		{[]string{"127.0.0.1:9090:90/udp"}, []string{"90/udp -> 127.0.0.1:9090"}},
		{[]string{"127.0.0.1::90/udp"}, []string{"90/udp -> 127.0.0.1:9090"}},
		{[]string{"9000/sctp"}, []string{"9000/sctp -> 0.0.0.0:9000"}},
		{[]string{"7000-7001"}, []string{"7000/tcp -> 0.0.0.0:7000", "7001/tcp -> 0.0.0.0:7001"}},
		{[]string{"7001:7001"}, []string{"7001/tcp -> 0.0.0.0:7001"}},
		{[]string{"80", "90/udp"}, []string{"80/tcp -> 0.0.0.0:8080", "80/tcp -> 0.0.0.0:8081", "90/udp -> 127.0.0.1:9090"}},
		{[]string{"8080:80", "80"}, []string{"80/tcp -> 0.0.0.0:8080", "80/tcp -> 0.0.0.0:8081"}},
	} {
		t.Run(strings.Join(c.specs, " "), func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: published}))
			removed, err := e.RemovePorts("s1", c.specs)
			if err != nil {
				t.Fatal(err)
			}
			if got := mappingStrings(removed); !slices.Equal(got, c.removed) {
				t.Errorf("removed %v, want %v", got, c.removed)
			}
			sb := mustSandbox(t, e, "s1")
			var left []string
			for _, m := range all {
				if !slices.Contains(c.removed, m) {
					left = append(left, m)
				}
			}
			if got := mappingStrings(sb.Ports); !slices.Equal(got, left) {
				t.Errorf("left %v, want %v", got, left)
			}
			if len(k.fwPorts()) != len(left) {
				t.Errorf("the firewall publishes %v, want %d ports", k.fwPorts(), len(left))
			}
			checkPublished(t, k, e, sb, "10.1.0.2")
			if k.flushed != len(c.removed) {
				t.Errorf("%d flows flushed, want %d", k.flushed, len(c.removed))
			}
			// The host ports are free again for another sandbox.
			var again []string
			for _, m := range removed {
				again = append(again, fmt.Sprintf("%s:%d:%d/%s", m.HostIPString(), m.HostPort, m.CtrPort, m.Proto))
			}
			apiRun(t, k, e, apiSb(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Publish: again}))
		})
	}
	for _, c := range []struct {
		specs []string
		want  string
	}{
		{[]string{"9999:80"}, "sandbox s1 publishes nothing matching 9999:80 (see nsnet port ls s1)"},
		{[]string{"8080:80", "9999:80"}, "sandbox s1 publishes nothing matching 9999:80"},
		{[]string{"80/udp"}, "sandbox s1 publishes nothing matching 80/udp"},
		{[]string{"127.0.0.2:8080:80"}, "publishes nothing matching 127.0.0.2:8080:80"},
		{[]string{"8080:81"}, "publishes nothing matching 8080:81"},
		{[]string{"80", "x"}, `invalid port spec "x"`},
	} {
		t.Run("refused "+strings.Join(c.specs, " "), func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: published}))
			refused(t, k, e, func() error { _, err := e.RemovePorts("s1", c.specs); return err }, c.want)
			if k.flushed != 0 {
				t.Errorf("a refused removal flushed %d flows", k.flushed)
			}
		})
	}
}

func TestReads(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	if nets, err := e.Networks(); err != nil || len(nets) != 0 {
		t.Errorf("networks of a fresh root: %v, %v", nets, err)
	}
	if sbs, err := e.Sandboxes(); err != nil || len(sbs) != 0 {
		t.Errorf("sandboxes of a fresh root: %v, %v", sbs, err)
	}
	apiRun(t, k, e, apiNet("zeta", "10.2.0.0/24"), apiNet("alpha", "10.1.0.0/24"),
		apiSb(SandboxSpec{Name: "b", Networks: []string{"alpha", "zeta"}, Publish: []string{"8080:80"}}),
		apiSb(SandboxSpec{Name: "a", Networks: []string{"alpha"}}),
		apiSb(SandboxSpec{Name: "c", Networks: []string{"container:b"}}))
	nets, err := e.Networks()
	if err != nil || len(nets) != 2 || nets[0].Name != "alpha" || nets[1].Name != "zeta" {
		t.Errorf("networks %v, %v; want alpha, zeta", nets, err)
	}
	d := mustNetwork(t, e, "alpha")
	var attached []string
	for _, a := range d.Attached {
		attached = append(attached, a.Sandbox+" "+a.Address.String())
	}
	if want := []string{"a 10.1.0.3/24", "b 10.1.0.2/24"}; !slices.Equal(attached, want) {
		t.Errorf("alpha's attachments %v, want %v", attached, want)
	}
	if d := mustNetwork(t, e, "zeta"); len(d.Attached) != 1 || d.Attached[0].Sandbox != "b" || d.Attached[0].IfName != "eth1" {
		t.Errorf("zeta's attachments %+v", d.Attached)
	}
	sbs, err := e.Sandboxes()
	var names []string
	for _, s := range sbs {
		names = append(names, s.Name)
	}
	if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) || len(sbs[1].Ports) != 1 {
		t.Errorf("sandboxes %v, %v", sbs, err)
	}
	if b := mustSandbox(t, e, "b"); len(b.Ports) != 1 || b.Ports[0].String() != "80/tcp -> 0.0.0.0:8080" {
		t.Errorf("b's ports %v", b.Ports)
	}
	if got := e.FirewallTable(); got != "nsnet-test" {
		t.Errorf("firewall table %q", got)
	}
}

func TestResidentStatus(t *testing.T) {
	for _, c := range []struct {
		name     string
		resident bool
		networks []string
		publish  []string
		kill     bool
		want     ResidentStatus // Pid: nonzero if set
	}{
		{"held ports", true, nil, []string{"8080:80"}, false, ResidentStatus{Pid: 1, Alive: true, Needed: true}},
		{"names", true, []string{"n1"}, nil, false, ResidentStatus{Pid: 1, Alive: true, Needed: true}},
		{"the resident died", true, []string{"n1"}, []string{"8080:80"}, true, ResidentStatus{Needed: true}},
		{"SCTP only, on the default network", true, nil, []string{"9000/sctp"}, false, ResidentStatus{}},
		{"no ports, on the default network", true, nil, nil, false, ResidentStatus{}},
		{"an engine without a resident", false, []string{"n1"}, []string{"8080:80"}, false, ResidentStatus{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, func(o *Options) {
				if !c.resident {
					o.Resident = ""
				}
			})
			apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: c.networks, Publish: c.publish}))
			if c.kill {
				k.mu.Lock()
				k.res = nil
				k.mu.Unlock()
			}
			sb := mustSandbox(t, e, "s1")
			got := e.ResidentStatus(sb)
			if got.Pid != 0 {
				got.Pid = 1
			}
			if got != c.want {
				t.Errorf("resident status %+v, want %+v", got, c.want)
			}
			if len(c.publish) > 0 && len(k.fwPorts()) != len(c.publish) {
				t.Errorf("published %v, want %v", k.fwPorts(), c.publish)
			}
		})
	}
}

func TestReloadFirewall(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	mustDo(t, e.ReloadFirewall()) // nothing to load
	if k.fwNets() != nil {
		t.Errorf("a table without networks")
	}
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: []string{"8080:80"}}))
	want := state(t, k, e)
	k.mu.Lock()
	k.fw = nil // nft flush ruleset
	k.mu.Unlock()
	mustDo(t, e.ReloadFirewall())
	if got := state(t, k, e); !slices.Equal(got, want) {
		t.Errorf("reloaded:\n%s", diffLines(want, got))
	}
	if diffs, err := (fakeFirewall{k}).Diff(firewallNetworks(mustNetworks(t, e)), k.fwPortList(), storeGuards(t, e)); err != nil || len(diffs) != 0 {
		t.Errorf("after reload: %v, %v", diffs, err)
	}
	if len(storeGuards(t, e)) != 1 {
		t.Errorf("guards after reload: %v, want s1's", storeGuards(t, e))
	}
}

// storeGuards are the anti-spoofing guards the store calls for.
func storeGuards(t *testing.T, e *Engine) []firewall.Guard {
	t.Helper()
	byName := map[string]*Network{}
	nets := mustNetworks(t, e)
	for i := range nets {
		byName[nets[i].Name] = &nets[i]
	}
	sbs, err := e.Sandboxes()
	mustDo(t, err)
	var out []firewall.Guard
	for _, sb := range sbs {
		for _, ep := range sb.Endpoints {
			if g, ok := firewallGuard(byName[ep.Network], ep); ok {
				out = append(out, g)
			}
		}
	}
	return out
}

func mustNetworks(t *testing.T, e *Engine) []Network {
	t.Helper()
	nets, err := e.Networks()
	mustDo(t, err)
	return nets
}

func (k *fakeKernel) fwPortList() []firewall.Port {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []firewall.Port
	for p := range k.fw.ports {
		out = append(out, p)
	}
	return out
}

func TestCloseTwice(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"))
	mustDo(t, e.Close())
	mustDo(t, e.Close())
	// The kernel handles are opened again on use.
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}}))
}

// TestConcurrentSandboxes creates and removes sandboxes from several
// goroutines on one engine at once (run it with -race): every call succeeds,
// and no two sandboxes get one address or host port.
func TestConcurrentSandboxes(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	var idMu sync.Mutex
	next := e.newID // the test's counter; the real one is random, safe from any goroutine
	e.newID = func() string {
		idMu.Lock()
		defer idMu.Unlock()
		return next()
	}
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"))
	const n = 8
	for i := 0; i < n/2; i++ {
		apiRun(t, k, e, apiSb(SandboxSpec{Name: fmt.Sprintf("old%d", i), Networks: []string{"n1"}, Publish: []string{"80"}}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < n/2 {
				if _, err := e.RemoveSandbox(fmt.Sprintf("old%d", i), false); err != nil {
					errs <- err
				}
			}
			if _, err := e.CreateSandbox(SandboxSpec{Name: fmt.Sprintf("new%d", i), Networks: []string{"n1"}, Publish: []string{"80"}}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sbs, err := e.Sandboxes()
	mustDo(t, err)
	addrs, ports := map[netip.Prefix]string{}, map[uint16]string{}
	for _, sb := range sbs {
		if !strings.HasPrefix(sb.Name, "new") {
			t.Errorf("sandbox %s is left", sb.Name)
			continue
		}
		if other, ok := addrs[sb.Endpoints[0].Address]; ok {
			t.Errorf("sandboxes %s and %s have address %s", other, sb.Name, sb.Endpoints[0].Address)
		}
		addrs[sb.Endpoints[0].Address] = sb.Name
		if other, ok := ports[sb.Ports[0].HostPort]; ok {
			t.Errorf("sandboxes %s and %s have host port %d", other, sb.Name, sb.Ports[0].HostPort)
		}
		ports[sb.Ports[0].HostPort] = sb.Name
		checkPublished(t, k, e, &sb, sb.Endpoints[0].Address.Addr().String())
	}
	if len(addrs) != n {
		t.Errorf("%d sandboxes, want %d", len(addrs), n)
	}
	if got := len(k.fwPorts()); got != n {
		t.Errorf("the firewall publishes %d ports, want %d", got, n)
	}
}

// TestOperationsAfterOutsideChanges: what someone else did to nsnet's
// kernel objects (nft flush ruleset, ip link del, umount) neither breaks an
// operation nor makes it touch what is not its own.
func TestOperationsAfterOutsideChanges(t *testing.T) {
	n1 := apiNet("n1", "10.1.0.0/24")
	onN1 := []string{"n1"}
	flush := func(_ *testing.T, k *fakeKernel, _ *Engine) {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.fw = nil
	}
	withPorts := apiSb(SandboxSpec{Name: "s0", Networks: onN1, Publish: []string{"8080:80", "8081:81"}})
	for _, c := range []struct {
		name  string
		setup []apiSetup
		op    func(t *testing.T, k *fakeKernel, e *Engine) error
		ports []string // the firewall's ports afterwards
	}{
		{name: "publishing after a flush writes the whole table", setup: []apiSetup{n1, withPorts, flush},
			op: func(_ *testing.T, _ *fakeKernel, e *Engine) error {
				_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"9090:90"}})
				return err
			},
			ports: []string{"tcp 0.0.0.0:8080 -> 10.1.0.2:80", "tcp 0.0.0.0:8081 -> 10.1.0.2:81", "tcp 0.0.0.0:9090 -> 10.1.0.3:90"}},
		{name: "adding ports after a flush writes the whole table", setup: []apiSetup{n1, withPorts, flush},
			op: func(_ *testing.T, _ *fakeKernel, e *Engine) error {
				_, err := e.AddPorts("s0", []string{"9090:90"})
				return err
			},
			ports: []string{"tcp 0.0.0.0:8080 -> 10.1.0.2:80", "tcp 0.0.0.0:8081 -> 10.1.0.2:81", "tcp 0.0.0.0:9090 -> 10.1.0.2:90"}},
		{name: "removing a port after a flush writes the table without it", setup: []apiSetup{n1, withPorts, flush},
			op: func(_ *testing.T, _ *fakeKernel, e *Engine) error {
				_, err := e.RemovePorts("s0", []string{"80"})
				return err
			},
			ports: []string{"tcp 0.0.0.0:8081 -> 10.1.0.2:81"}},
		{name: "removing a sandbox after a flush writes the table without it",
			setup: []apiSetup{n1, withPorts, apiSb(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"9090:90"}}), flush},
			op:    func(_ *testing.T, _ *fakeKernel, e *Engine) error { _, err := e.RemoveSandbox("s0", false); return err },
			ports: []string{"tcp 0.0.0.0:9090 -> 10.1.0.3:90"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e, _ := apiEngine(t, nil)
			apiRun(t, k, e, c.setup...)
			mustDo(t, c.op(t, k, e))
			if got := k.fwPorts(); !slices.Equal(got, c.ports) {
				t.Errorf("firewall ports %v, want %v", got, c.ports)
			}
			if nets := k.fwNets(); len(nets) != 1 || nets[0].Name != "n1" {
				t.Errorf("firewall networks %v, want n1", nets)
			}
		})
	}

	t.Run("a sandbox on a network whose bridge was deleted restores it", func(t *testing.T) {
		k, e, _ := apiEngine(t, nil)
		apiRun(t, k, e, n1, apiSb(SandboxSpec{Name: "s0", Networks: onN1}))
		n := mustNetwork(t, e, "n1").Network
		k.mu.Lock()
		k.deleteLink(n.Bridge) // ip link del: its ports are let go
		k.mu.Unlock()
		apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: onN1}))
		checkBridge(t, k, e, &n)
		checkEndpoints(t, k, e, mustSandbox(t, e, "s0"), []wantEndpoint{{"n1", "eth0", "10.1.0.2/24", "10.1.0.1", ""}})
		checkEndpoints(t, k, e, mustSandbox(t, e, "s1"), []wantEndpoint{{"n1", "eth0", "10.1.0.3/24", "10.1.0.1", ""}})
	})

	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, k *fakeKernel, sb *Sandbox)
		warn  string // "" none
		check func(t *testing.T, k *fakeKernel, sb *Sandbox)
	}{
		{name: "its host veth is gone", spoil: func(_ *testing.T, k *fakeKernel, sb *Sandbox) {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.deleteLink(sb.Endpoints[0].HostVeth)
		}},
		{name: "a stranger's link has its host veth's name", spoil: func(_ *testing.T, k *fakeKernel, sb *Sandbox) {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.deleteLink(sb.Endpoints[0].HostVeth)
			k.links[sb.Endpoints[0].HostVeth] = &fakeLink{kind: "dummy", alias: "someone else's", up: true, mtu: 1500}
		}, warn: "left link veth", check: func(t *testing.T, k *fakeKernel, sb *Sandbox) {
			if l, ok := k.hostLink(sb.Endpoints[0].HostVeth); !ok || l.kind != "dummy" {
				t.Errorf("the stranger's link was deleted")
			}
		}},
		{name: "its namespace was unmounted by hand", spoil: func(_ *testing.T, k *fakeKernel, sb *Sandbox) {
			k.mu.Lock()
			defer k.mu.Unlock()
			delete(k.mounts, sb.NetNS) // the empty mount point stays
			k.destroy(netnsID(sb))
		}, check: func(t *testing.T, k *fakeKernel, sb *Sandbox) {
			if _, err := os.Lstat(sb.NetNS); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the empty mount point is left: %v", err)
			}
		}},
		{name: "its namespace name is gone", spoil: func(t *testing.T, k *fakeKernel, sb *Sandbox) {
			mustDo(t, fakeNamespaces{k}.Remove(sb.NetNS))
		}},
		{name: "a file that is no namespace has its name", spoil: func(t *testing.T, k *fakeKernel, sb *Sandbox) {
			mustDo(t, fakeNamespaces{k}.Remove(sb.NetNS))
			mustDo(t, os.WriteFile(sb.NetNS, []byte("mine"), 0o600))
		}, warn: "alone: it is not a network namespace", check: func(t *testing.T, k *fakeKernel, sb *Sandbox) {
			if b, err := os.ReadFile(sb.NetNS); err != nil || string(b) != "mine" {
				t.Errorf("the stranger's file: %q, %v", b, err)
			}
		}},
	} {
		t.Run("removing a sandbox when "+c.name, func(t *testing.T) {
			k, e, w := apiEngine(t, nil)
			apiRun(t, k, e, n1)
			before := state(t, k, e)
			apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Networks: onN1, Publish: []string{"8080:80"}}))
			sb := mustSandbox(t, e, "s1")
			c.spoil(t, k, sb)
			if removed, err := e.RemoveSandbox("s1", false); err != nil || !slices.Equal(removed, []string{"s1"}) {
				t.Fatalf("removed %v, %v", removed, err)
			}
			warned := strings.Join(w.all(), "\n")
			if (c.warn == "") != (warned == "") || !strings.Contains(warned, c.warn) {
				t.Errorf("warnings %q, want one saying %q", warned, c.warn)
			}
			if c.check != nil {
				c.check(t, k, sb)
				return
			}
			if after := state(t, k, e); !slices.Equal(before, after) {
				t.Errorf("removal left:\n%s", diffLines(before, after))
			}
		})
	}
}

// TestCreateNetworkWarnings: a non-internal network warns when
// route_localnet is on for every interface; an internal one has no use for
// the warning.
func TestCreateNetworkWarnings(t *testing.T) {
	for _, internal := range []bool{false, true} {
		k, e, w := apiEngine(t, nil)
		k.sysctl[" "+sysctl.RouteLocalnet("all")] = "1"
		apiRun(t, k, e, apiNetSpec(NetworkSpec{Name: "n1", Subnet: "10.1.0.0/24", Internal: internal}))
		warned := strings.Join(w.all(), "\n")
		if got := strings.Contains(warned, "net.ipv4.conf.all.route_localnet is 1"); got == internal {
			t.Errorf("internal %t: warnings %q", internal, warned)
		}
	}
}

// TestDefaultBridgesUsedUp: when nsnet0 to nsnet99 all exist, the default
// network is refused and the user told what to remove.
func TestDefaultBridgesUsedUp(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	for i := 0; i < 100; i++ {
		apiHostLink(fmt.Sprintf("nsnet%d", i))(t, k, e)
	}
	refused(t, k, e, func() error { _, err := e.CreateSandbox(SandboxSpec{Name: "s1"}); return err },
		"interfaces nsnet0 to nsnet99 all exist: remove unused default networks (nsnet network rm bridge) of other state roots")
}

// TestRunRemovedAfterItsProcess: a run --rm sandbox stays while the process
// that made it runs, is removed by the next command once that process is
// gone and nothing runs in its namespace, and sandbox rm forgets its run.
func TestRunRemovedAfterItsProcess(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"))
	before := state(t, k, e)
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "r1", Networks: []string{"n1"}, Publish: []string{"8080:80"}, AutoRemove: true}))
	if !slices.Contains(state(t, k, e), "run r1") {
		t.Fatalf("no run record")
	}
	// Its process "exits": a process of that pid that started at another time.
	mustDo(t, e.op(true, func() error {
		return e.st.Update(func(tx *store.Tx) error {
			runs, err := tx.Runs()
			if err != nil {
				return err
			}
			r := runs["r1"]
			r.Start++
			return tx.PutRun("r1", r)
		})
	}))
	r1 := mustSandbox(t, e, "r1")
	k.procs[r1.NetNSIno] = []Process{{PID: 5, Comm: "daemon"}}
	apiRun(t, k, e, apiNet("n2", "10.2.0.0/24"))
	if _, err := e.InspectSandbox("r1"); err != nil {
		t.Fatalf("removed while a process runs in its namespace: %v", err)
	}
	delete(k.procs, r1.NetNSIno)
	mustDo(t, e.RemoveNetwork("n2"))
	if after := state(t, k, e); !slices.Equal(before, after) {
		t.Errorf("after its process, the next command left:\n%s", diffLines(before, after))
	}

	apiRun(t, k, e, apiSb(SandboxSpec{Name: "r2", Networks: []string{"n1"}, AutoRemove: true}))
	if _, err := e.RemoveSandbox("r2", false); err != nil {
		t.Fatal(err)
	}
	if after := state(t, k, e); !slices.Equal(before, after) {
		t.Errorf("sandbox rm of a run --rm sandbox left:\n%s", diffLines(before, after))
	}
}

// TestOpenRefusesUntrustedState: Open refuses a state root or run directory
// that others may write, saying how to fix it, before it touches anything.
func TestOpenRefusesUntrustedState(t *testing.T) {
	for _, dir := range []string{"root", "root/intents", "run", "run/netns"} {
		base := t.TempDir()
		path := filepath.Join(base, dir)
		mustDo(t, os.MkdirAll(path, 0o700))
		mustDo(t, os.Chmod(path, 0o777))
		_, err := Open(Options{Root: filepath.Join(base, "root"), RunDir: filepath.Join(base, "run")})
		wantErr(t, dir, err, "refusing state path "+path+": its group or others may write it (mode 0777)", "chmod go-w "+path)
		mustDo(t, os.Chmod(path, 0o755))
		e, err := Open(Options{Root: filepath.Join(base, "root"), RunDir: filepath.Join(base, "run")})
		if err != nil {
			t.Errorf("%s with mode 0755: %v", dir, err)
			continue
		}
		e.Close()
	}
}

// TestAddPortsRestartsADeadResidentWithEverything: when the resident died,
// adding a port starts a new one holding every port of every sandbox, not
// only the new one, and serving every zone.
func TestAddPortsRestartsADeadResidentWithEverything(t *testing.T) {
	k := newFakeKernel(t)
	e := fakeEngine(t, k, true)
	withSandbox("8080:80")(t, k, e)
	_, err := e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Publish: []string{"5353:53/udp"}, Aliases: []string{"db"}})
	mustDo(t, err)
	before := state(t, k, e)
	k.res = nil // it died
	if _, err := e.AddPorts("s1", []string{"8081:81"}); err != nil {
		t.Fatal(err)
	}
	st, err := fakeResidents{k}.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sandboxes) != 2 || !slices.Equal(st.Sandboxes[0].Keys, []string{"tcp/0.0.0.0/08080", "tcp/0.0.0.0/08081"}) ||
		!slices.Equal(st.Sandboxes[1].Keys, []string{"udp/0.0.0.0/05353"}) {
		t.Errorf("the new resident holds %+v, want s1's two ports and s2's", st.Sandboxes)
	}
	if _, err := e.RemovePorts("s1", []string{"8081:81"}); err != nil {
		t.Fatal(err)
	}
	if after := state(t, k, e); !slices.Equal(before, after) {
		t.Errorf("the new resident, once the port is removed again, differs from the old one:\n%s", diffLines(before, after))
	}
}

// TestDefaultNetworkMadeOnTheWayWarns: a sandbox create that makes the default
// network warns as network create does (here: route_localnet on for all).
func TestDefaultNetworkMadeOnTheWayWarns(t *testing.T) {
	k := newFakeKernel(t)
	var warnings []string
	o := Options{Root: filepath.Join(k.dir, "root"), RunDir: filepath.Join(k.dir, "run"), LockTimeout: NoWait,
		Warn: func(msg string) { warnings = append(warnings, msg) }}
	e := reopen(t, k, o)
	k.sysctl[" net/ipv4/conf/all/route_localnet"] = "1"
	if _, err := e.CreateSandbox(SandboxSpec{Name: "s1"}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "route_localnet is 1") }) {
		t.Errorf("warnings %q, want the route_localnet one", warnings)
	}
}

// TestStaleNamespaceClaim: a sandbox whose namespace name was deleted (or
// replaced) outside nsnet still claims its namespace's number, which the
// kernel gives to a namespace made later. A new sandbox given that number
// takes the claim over with a warning, instead of being refused as if it
// shared the other's namespace; gc then forgets the other, and the new
// sandbox's claim holds.
func TestStaleNamespaceClaim(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outside func(t *testing.T, k *fakeKernel, path string) netns.ID
		why     string
	}{
		{"deleted", func(t *testing.T, k *fakeKernel, path string) netns.ID { return k.deleteNamespaceOutside(t, path) },
			"its namespace %s is gone"},
		{"replaced", func(t *testing.T, k *fakeKernel, path string) netns.ID {
			old, _ := k.mountAt(path)
			k.replaceNamespace(t, path)
			k.reap()
			k.mu.Lock()
			k.reuse = old
			k.mu.Unlock()
			return old
		}, "%s now names another namespace, which is left alone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, e, w := apiEngine(t, nil)
			onN1 := []string{"n1"}
			apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s0", Networks: onN1}))
			s0 := e.k.ns.Path("s0")
			old := tc.outside(t, k, s0)

			s1, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: onN1})
			if err != nil {
				t.Fatalf("create s1 after s0's namespace went: %v", err)
			}
			if s1.NetNSIno != old.Ino {
				t.Fatalf("s1's namespace is %d, not s0's old %d: the setup did not reuse the number", s1.NetNSIno, old.Ino)
			}
			want := fmt.Sprintf("sandbox s1 takes over namespace %s from sandbox s0, which no longer has it (%s): run nsnet gc to forget sandbox s0", netnsID(s1), fmt.Sprintf(tc.why, s0))
			if !slices.Contains(w.all(), want) {
				t.Errorf("warnings %q lack %q", w.all(), want)
			}
			adoptS1 := SandboxSpec{Name: "s2", Networks: []string{"none"}, NetNS: e.k.ns.Path("s1")}
			if _, err := e.CreateSandbox(adoptS1); err == nil || !strings.Contains(err.Error(), "that namespace already belongs to sandbox s1") {
				t.Fatalf("adopting s1's namespace: %v, want it refused as s1's", err)
			}
			actions, err := e.GC(false)
			if err != nil || !slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, "forget sandbox s0: ") }) {
				t.Fatalf("gc: %q, %v; want it to forget s0", actions, err)
			}
			if _, err := e.CreateSandbox(adoptS1); err == nil || !strings.Contains(err.Error(), "that namespace already belongs to sandbox s1") {
				t.Fatalf("adopting s1's namespace after gc: %v, want it still refused as s1's", err)
			}
			if _, err := e.RemoveSandbox("s1", false); err != nil {
				t.Fatal(err)
			}
			if _, ok := k.mountAt(e.k.ns.Path("s1")); ok {
				t.Error("s1's namespace name is left after its removal")
			}
		})
	}
}

// TestAdoptingItsOwnNameNeedsNoMount: where names nsnet mounts would vanish
// (ip netns exec), a sandbox that adopts /run/netns/NAME as itself mounts
// nothing, and is made.
func TestAdoptingItsOwnNameNeedsNoMount(t *testing.T) {
	k, e, _ := apiEngine(t, nil)
	apiRun(t, k, e, apiOutside("netns/s1"), apiHiddenNames)
	if _, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"none"}, NetNS: e.k.ns.Path("s1")}); err != nil {
		t.Fatal(err)
	}
}
