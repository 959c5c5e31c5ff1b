package engine

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nsnet/nsnet/internal/conntrack"
	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/resolver"
)

// fakeKernel is an in-memory kernel for the engine's unit tests: links,
// namespaces, sysctls, the firewall table, the resident process and bound
// host ports, as plain data. It implements every interface of kernel.go.
//
// Every call that would change the kernel is a step. The step numbered
// failAt (counting from 1) fails with errInjected, to test the undo of each
// step; the step numbered crashAt panics with errCrash instead, which the
// engine does not catch, to play a process killed there (its intents stay).
// Tests change the data directly to play drift made by hand.
type fakeKernel struct {
	mu      sync.Mutex
	dir     string // namespace "mounts" are files under dir/netns
	steps   int
	failAt  int
	failOn  string // the first step that starts with this fails (once)
	crashAt int
	log     []string // every step, in order

	links   map[string]*fakeLink              // the host's links
	peers   map[netns.ID]map[string]*fakeLink // links inside namespaces
	mounts  map[string]netns.ID               // namespace names (paths) and what they name
	nextIno uint64
	reuse   netns.ID // its number goes to the next namespace made, once (see deleteNamespaceOutside)
	hidden  error    // what NamesOutlive says: names mounted would vanish with the mount namespace
	self    netns.ID
	sysctl  map[string]string // "ID key" -> value; ID "" is the host
	fw      *fakeTable
	res     *fakeResident   // nil: no resident runs
	taken   map[string]bool // host ports a host process holds: "tcp/0.0.0.0/08080"
	procs   map[uint64][]Process
	flushed int // conntrack flows deleted
	// lazy: a namespace that loses its last name (and has no process) is
	// destroyed only when the test calls reap, as the kernel does it later,
	// in its batched clean-up; otherwise at once.
	lazy  bool
	dying []netns.ID
	// inside is the namespace whose new-namespace callback runs
	// (namespaces.Create's before), where Get and Set act; nil: the host.
	inside *netns.ID
}

// fakeLink is a link: a bridge or a veth end, on the host or in a sandbox.
type fakeLink struct {
	kind, alias string
	mac         string // a bridge's, or a sandbox end's
	group       uint32
	up, hairpin bool
	mtu         int
	master      string
	addrs       []netip.Prefix
	gateway     netip.Addr // a sandbox end's default route
	peerNS      netns.ID   // a host veth's peer
	peerName    string
}

type fakeTable struct {
	nets    []firewall.Network
	ports   map[firewall.Port]bool
	guards  map[string]string // guarded port -> its MAC and addresses
	blocked map[string]bool   // ports only in the guarded set, expiring (BlockGuards)
	drift   []string          // set by tests: what Diff reports besides missing or extra state
}

// fakeResident is a running resident: what it holds and serves.
type fakeResident struct {
	pid   int
	ports map[string]map[string]string // sandbox -> key -> target
	netns map[string]resident.Namespace
	zones map[string]resolver.Zone // by network
}

var (
	errInjected = errors.New("injected failure")
	errCrash    = errors.New("crash")
)

func newFakeKernel(t *testing.T) *fakeKernel {
	dir := t.TempDir()
	k := &fakeKernel{
		dir: dir, links: map[string]*fakeLink{}, peers: map[netns.ID]map[string]*fakeLink{},
		mounts: map[string]netns.ID{}, nextIno: 4026531840, sysctl: map[string]string{},
		taken: map[string]bool{}, procs: map[uint64][]Process{},
	}
	k.self = k.newID()
	if err := os.MkdirAll(filepath.Join(dir, "netns"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "self"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	k.mounts[filepath.Join(dir, "self")] = k.self
	k.links["lo"] = &fakeLink{kind: "device", up: true, mtu: 65536}
	k.links["eth0"] = &fakeLink{kind: "veth", up: true, mtu: 1500, addrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.2/24")}}
	return k
}

// kernel is the engine's view of the fake.
func (k *fakeKernel) kernel() kernel {
	return kernel{
		openLinks: func() (links, error) { return fakeLinks{k}, nil },
		fw:        fakeFirewall{k}, ns: fakeNamespaces{k}, sys: fakeSysctls{k},
		res: fakeResidents{k}, ports: fakePorts{k}, flows: fakeFlows{k}, procs: fakeProcs{k},
		etcDir: filepath.Join(k.dir, "etc"),
	}
}

// newID is the ID of a new namespace: a new number, or the one reuse gives
// (see deleteNamespaceOutside), and a time of its own.
func (k *fakeKernel) newID() netns.ID {
	k.nextIno++
	id := netns.ID{Dev: 4, Ino: k.nextIno, Born: int64(k.nextIno)}
	if reused := k.reuse; !reused.IsZero() {
		k.reuse = netns.ID{}
		id.Ino = reused.Ino
	}
	return id
}

// step counts a change and fails or crashes it as the test asked.
func (k *fakeKernel) step(format string, args ...any) error {
	k.steps++
	what := fmt.Sprintf(format, args...)
	k.log = append(k.log, what)
	switch {
	case k.steps == k.crashAt:
		panic(errCrash)
	case k.steps == k.failAt, k.failOn != "" && strings.HasPrefix(what, k.failOn):
		k.failOn = ""
		return fmt.Errorf("%s: %w (step %d)", what, errInjected, k.steps)
	}
	return nil
}

// unlocked runs fn (an engine callback, which may take steps) without the
// lock, and takes it back even if fn panics with errCrash, for the caller's
// deferred Unlock.
func (k *fakeKernel) unlocked(fn func() error) error {
	k.mu.Unlock()
	defer k.mu.Lock()
	return fn()
}

// locked takes a step under the lock, releasing it even if the step
// crashes.
func (k *fakeKernel) locked(format string, args ...any) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.step(format, args...)
}

// dump is the whole fake state as sorted lines, to compare before and after.
func (k *fakeKernel) dump() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for name, l := range k.links {
		out = append(out, fmt.Sprintf("link %s %+v", name, *l))
	}
	for id, ls := range k.peers {
		for name, l := range ls {
			out = append(out, fmt.Sprintf("peer %s %s %+v", id, name, *l))
		}
	}
	for path, id := range k.mounts {
		out = append(out, fmt.Sprintf("mount %s %s", filepath.Base(path), id))
	}
	for key, v := range k.sysctl {
		out = append(out, "sysctl "+key+"="+v)
	}
	if k.fw != nil {
		out = append(out, fmt.Sprintf("table %v", k.fw.nets))
		for p := range k.fw.ports {
			out = append(out, fmt.Sprintf("port %+v", p))
		}
		for port, g := range k.fw.guards {
			out = append(out, fmt.Sprintf("guard %s %s", port, g))
		}
	}
	if r := k.res; r != nil {
		out = append(out, "resident running")
		for name, held := range r.ports {
			out = append(out, fmt.Sprintf("resident ports %s %v", name, held))
		}
		for name, z := range r.zones {
			out = append(out, fmt.Sprintf("resident zone %s %s", name, zoneString(z)))
		}
	}
	sort.Strings(out)
	return out
}

// outsideNamespace makes a namespace as another program would, at
// dir/name, and returns nothing but an error: adopt it by that path.
func (k *fakeKernel) outsideNamespace(name string) error {
	k.mu.Lock()
	id := k.newID()
	k.mu.Unlock()
	return fakeNamespaces{k}.mount(filepath.Join(k.dir, name), id)
}

// fakeLinks implements links.
type fakeLinks struct{ k *fakeKernel }

func (f fakeLinks) Close() {}

func (f fakeLinks) Exists(name string) (bool, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	return f.k.links[name] != nil, nil
}

func (f fakeLinks) Mark(name string) (string, uint32, bool, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	l := f.k.links[name]
	if l == nil {
		return "", 0, false, nil
	}
	return l.alias, l.group, true, nil
}

func (f fakeLinks) List() ([]link.Listed, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	var out []link.Listed
	for name, l := range f.k.links {
		out = append(out, link.Listed{Name: name, Kind: l.kind, Alias: l.alias})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f fakeLinks) Routes() ([]netip.Prefix, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	var out []netip.Prefix
	for _, l := range f.k.links {
		if l.up {
			for _, a := range l.addrs {
				out = append(out, a.Masked())
			}
		}
	}
	return out, nil
}

func (f fakeLinks) CreateBridge(b link.Bridge) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("create bridge %s", b.Name); err != nil {
		return err
	}
	if f.k.links[b.Name] != nil {
		return fmt.Errorf("create bridge %s: file exists", b.Name)
	}
	f.k.links[b.Name] = &fakeLink{kind: "bridge", group: b.Group, mtu: b.MTU, mac: b.MAC.String(), addrs: []netip.Prefix{b.Address}}
	if b.BeforeUp != nil {
		if err := f.k.unlocked(b.BeforeUp); err != nil {
			f.k.deleteLink(b.Name)
			return err
		}
	}
	l := f.k.links[b.Name]
	l.up, l.alias = true, b.Alias
	return nil
}

func (f fakeLinks) CheckBridge(b link.Bridge) ([]string, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	l := f.k.links[b.Name]
	if l == nil {
		return nil, fmt.Errorf("look up bridge %s: not found", b.Name)
	}
	diffs := l.diffs(b.MTU, b.Alias)
	if b.MAC != nil && l.mac != b.MAC.String() {
		diffs = append(diffs, fmt.Sprintf("has MAC %s, not %s", l.mac, b.MAC))
	}
	if !slices.Contains(l.addrs, b.Address) {
		diffs = append(diffs, "lacks address "+b.Address.String())
	}
	return diffs, nil
}

func (l *fakeLink) diffs(mtu int, alias string) []string {
	var out []string
	if !l.up {
		out = append(out, "is down")
	}
	if l.mtu != mtu {
		out = append(out, fmt.Sprintf("has MTU %d, not %d", l.mtu, mtu))
	}
	if alias != "" && l.alias != alias {
		out = append(out, fmt.Sprintf("has alias %q, not %q", l.alias, alias))
	}
	return out
}

func (f fakeLinks) RepairBridge(b link.Bridge) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("repair bridge %s", b.Name); err != nil {
		return err
	}
	l := f.k.links[b.Name]
	l.up, l.mtu, l.alias, l.mac = true, b.MTU, b.Alias, b.MAC.String()
	if !slices.Contains(l.addrs, b.Address) {
		l.addrs = append(l.addrs, b.Address)
	}
	return nil
}

func (f fakeLinks) AttachVeth(v link.Veth) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	br := f.k.links[v.Bridge]
	if br == nil {
		return fmt.Errorf("%w: %s", link.ErrNoBridge, v.Bridge)
	}
	if v.BridgeOwned != nil && !v.BridgeOwned(br.alias, br.group) {
		return fmt.Errorf("%w: %s (alias %q, device group %d)", link.ErrForeignBridge, v.Bridge, br.alias, br.group)
	}
	if err := f.k.step("attach veth %s", v.HostName); err != nil {
		return err
	}
	id, ok := f.k.mounts[v.NetNS.Name()]
	if !ok {
		return fmt.Errorf("attach veth %s: namespace %s is gone", v.HostName, v.NetNS.Name())
	}
	if f.k.links[v.HostName] != nil || f.k.peers[id][v.PeerName] != nil {
		return fmt.Errorf("create veth %s: file exists", v.HostName)
	}
	f.k.links[v.HostName] = &fakeLink{kind: "veth", group: v.Group, mtu: v.MTU, peerNS: id, peerName: v.PeerName}
	if f.k.peers[id] == nil {
		f.k.peers[id] = map[string]*fakeLink{}
	}
	f.k.peers[id][v.PeerName] = &fakeLink{kind: "veth", mtu: v.MTU, mac: v.PeerMAC.String()}
	f.k.inheritDefaults(id, v.PeerName)
	if v.HostBeforeUp != nil {
		if err := f.k.unlocked(v.HostBeforeUp); err != nil {
			f.k.deleteLink(v.HostName)
			return err
		}
	}
	h := f.k.links[v.HostName]
	h.master, h.alias, h.up, h.hairpin = v.Bridge, v.Alias, true, true
	if v.BeforeUp != nil {
		if err := f.k.unlocked(v.BeforeUp); err != nil {
			f.k.deleteLink(v.HostName)
			return err
		}
	}
	p := f.k.peers[id][v.PeerName]
	p.up, p.addrs, p.gateway = true, []netip.Prefix{v.Address}, v.Gateway
	return nil
}

// inheritDefaults gives a new interface dev in namespace id the settings its
// namespace has for new interfaces (net/ipv6/conf/default/...), as the
// kernel does when it registers one.
func (k *fakeKernel) inheritDefaults(id netns.ID, dev string) {
	prefix := id.String() + " net/ipv6/conf/default/"
	for key, v := range k.sysctl {
		if name, ok := strings.CutPrefix(key, prefix); ok {
			k.sysctl[id.String()+" net/ipv6/conf/"+dev+"/"+name] = v
		}
	}
}

func (f fakeLinks) CheckVeth(v link.Veth) ([]string, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	h := f.k.links[v.HostName]
	if h == nil {
		return nil, fmt.Errorf("look up veth %s: not found", v.HostName)
	}
	diffs := h.diffs(v.MTU, v.Alias)
	switch {
	case h.master != v.Bridge:
		diffs = append(diffs, "is not a port of bridge "+v.Bridge)
	case !h.hairpin:
		diffs = append(diffs, "has hairpin mode off")
	}
	p := f.k.peers[h.peerNS][v.PeerName]
	if p == nil {
		return append(diffs, link.MissingPeer(v)), nil
	}
	for _, d := range p.diffs(v.MTU, "") {
		diffs = append(diffs, v.PeerName+" in the sandbox "+d)
	}
	if v.PeerMAC != nil && p.mac != v.PeerMAC.String() {
		diffs = append(diffs, fmt.Sprintf("%s in the sandbox has MAC %s, not %s", v.PeerName, p.mac, v.PeerMAC))
	}
	if !slices.Contains(p.addrs, v.Address) {
		diffs = append(diffs, fmt.Sprintf("%s in the sandbox lacks address %s", v.PeerName, v.Address))
	}
	if p.gateway != v.Gateway {
		diffs = append(diffs, fmt.Sprintf("the sandbox lacks its default route via %s", v.Gateway))
	}
	return diffs, nil
}

func (f fakeLinks) RepairVeth(v link.Veth) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("repair veth %s", v.HostName); err != nil {
		return err
	}
	h := f.k.links[v.HostName]
	h.up, h.mtu, h.alias, h.master, h.hairpin = true, v.MTU, v.Alias, v.Bridge, true
	if p := f.k.peers[h.peerNS][v.PeerName]; p != nil {
		p.up, p.mtu, p.gateway, p.mac = true, v.MTU, v.Gateway, v.PeerMAC.String()
		if !slices.Contains(p.addrs, v.Address) {
			p.addrs = append(p.addrs, v.Address)
		}
	}
	return nil
}

func (f fakeLinks) SetMaster(name, bridge string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("set master of %s to %s", name, bridge); err != nil {
		return err
	}
	l := f.k.links[name]
	if l == nil {
		return fmt.Errorf("look up link %s: not found", name)
	}
	l.master, l.up, l.hairpin = bridge, true, true
	return nil
}

// ReleaseVeth sets a host veth down (its bridge disables the port) and
// sets its alias.
func (f fakeLinks) ReleaseVeth(name, alias string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	l := f.k.links[name]
	if l == nil {
		return nil
	}
	if err := f.k.step("release veth %s", name); err != nil {
		return err
	}
	l.up, l.alias = false, alias
	return nil
}

// MarkLink sets a link's alias.
func (f fakeLinks) MarkLink(name, alias string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	l := f.k.links[name]
	if l == nil {
		return nil
	}
	if err := f.k.step("mark link %s", name); err != nil {
		return err
	}
	l.alias = alias
	return nil
}

func (f fakeLinks) DeleteStrayPeer(v link.Veth) (bool, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	id, ok := f.k.mounts[v.NetNS.Name()]
	p := f.k.peers[id][v.PeerName]
	if !ok || p == nil || p.kind != "veth" || p.mac != v.PeerMAC.String() {
		return false, nil
	}
	if err := f.k.step("delete %s in %s", v.PeerName, filepath.Base(v.NetNS.Name())); err != nil {
		return false, err
	}
	delete(f.k.peers[id], v.PeerName)
	for name, l := range f.k.links { // its other end, wherever it went
		if l.peerNS == id && l.peerName == v.PeerName {
			delete(f.k.links, name)
		}
	}
	return true, nil
}

func (f fakeLinks) DeleteLink(name string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if f.k.links[name] == nil {
		return nil
	}
	if err := f.k.step("delete link %s", name); err != nil {
		return err
	}
	f.k.deleteLink(name)
	return nil
}

// deleteLink removes a host link, with its peer, its ports' mastership and
// its sysctls, as the kernel does.
func (k *fakeKernel) deleteLink(name string) {
	l := k.links[name]
	if l == nil {
		return
	}
	delete(k.links, name)
	if l.peerName != "" {
		delete(k.peers[l.peerNS], l.peerName)
		k.dropSysctls(l.peerNS.String()+" ", l.peerName)
	}
	for _, o := range k.links {
		if o.master == name {
			o.master = ""
		}
	}
	k.dropSysctls(" ", name)
}

// dropSysctls forgets the settings of interface dev in the namespace whose
// keys start with prefix (" " for the host): they go with the interface.
func (k *fakeKernel) dropSysctls(prefix, dev string) {
	for key := range k.sysctl {
		if strings.HasPrefix(key, prefix) && strings.Contains(key, "/conf/"+dev+"/") {
			delete(k.sysctl, key)
		}
	}
}

func (f fakeLinks) UpLoopback(ns *os.File) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	return f.k.step("raise lo in %s", ns.Name())
}

// fakeFirewall implements firewaller.
type fakeFirewall struct{ k *fakeKernel }

func (f fakeFirewall) Sync(nets []firewall.Network, ports []firewall.Port, guards []firewall.Guard) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("sync table"); err != nil {
		return err
	}
	if len(nets) == 0 {
		f.k.fw = nil
		return nil
	}
	f.k.fw = &fakeTable{nets: slices.Clone(nets), ports: map[firewall.Port]bool{}, guards: guardMap(guards), blocked: map[string]bool{}}
	for _, g := range guards {
		if g.Blocked {
			f.k.fw.blocked[g.Port] = true
		}
	}
	for _, p := range ports {
		f.k.fw.ports[p] = true
	}
	return nil
}

func guardMap(guards []firewall.Guard) map[string]string {
	out := map[string]string{}
	for _, g := range guards {
		if !g.Blocked { // expiring, as Diff does not compare them
			out[g.Port] = fmt.Sprintf("%s %v", g.MAC, g.Addrs)
		}
	}
	return out
}

// AddGuards fails, as nftables does, on a port guarded already.
func (f fakeFirewall) AddGuards(guards []firewall.Guard) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("add %d guards", len(guards)); err != nil {
		return err
	}
	if f.k.fw == nil {
		return errors.New("add guards: no table")
	}
	for port, g := range guardMap(guards) {
		if _, ok := f.k.fw.guards[port]; ok {
			return fmt.Errorf("add guard %s: element exists", port)
		}
		f.k.fw.guards[port] = g
	}
	return nil
}

// ExpireGuards is DeleteGuards: the fake has no time.
func (f fakeFirewall) ExpireGuards(guards []firewall.Guard) error { return f.DeleteGuards(guards) }

// BlockGuards is DeleteGuards, the ports left blocked.
func (f fakeFirewall) BlockGuards(guards []firewall.Guard) error {
	if err := f.DeleteGuards(guards); err != nil {
		return err
	}
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if f.k.fw.blocked == nil {
		f.k.fw.blocked = map[string]bool{}
	}
	for _, g := range guards {
		f.k.fw.blocked[g.Port] = true
	}
	return nil
}

func (f fakeFirewall) DeleteGuards(guards []firewall.Guard) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("delete %d guards", len(guards)); err != nil {
		return err
	}
	if f.k.fw == nil {
		return errors.New("delete guards: no table")
	}
	gone := guardMap(guards)
	for port, g := range gone {
		if f.k.fw.guards[port] != g {
			return fmt.Errorf("delete guard %s: no such element", port)
		}
	}
	for port := range gone {
		delete(f.k.fw.guards, port)
	}
	return nil
}

func (f fakeFirewall) AddPorts(ports []firewall.Port) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("add %d ports", len(ports)); err != nil {
		return err
	}
	if f.k.fw == nil {
		return errors.New("add ports: no table")
	}
	for _, p := range ports {
		f.k.fw.ports[p] = true
	}
	return nil
}

func (f fakeFirewall) DeletePorts(ports []firewall.Port) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("delete %d ports", len(ports)); err != nil {
		return err
	}
	if f.k.fw == nil {
		return errors.New("delete ports: no table")
	}
	for _, p := range ports {
		if !f.k.fw.ports[p] {
			return fmt.Errorf("delete port %+v: no such element", p)
		}
	}
	for _, p := range ports {
		delete(f.k.fw.ports, p)
	}
	return nil
}

func (f fakeFirewall) Diff(nets []firewall.Network, ports []firewall.Port, guards []firewall.Guard) ([]string, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	t := f.k.fw
	switch {
	case len(nets) == 0 && t != nil:
		return []string{"table exists, but no network needs it"}, nil
	case len(nets) == 0:
		return nil, nil
	case t == nil:
		return []string{"table is missing"}, nil
	}
	diffs := slices.Clone(t.drift)
	if !slices.Equal(t.nets, nets) {
		diffs = append(diffs, "rules differ")
	}
	want := map[firewall.Port]bool{}
	for _, p := range ports {
		want[p] = true
	}
	if !maps.Equal(t.guards, guardMap(guards)) {
		diffs = append(diffs, "guards differ")
	}
	if len(want) != len(t.ports) {
		diffs = append(diffs, "elements differ")
	} else {
		for p := range want {
			if !t.ports[p] {
				diffs = append(diffs, "elements differ")
				break
			}
		}
	}
	return diffs, nil
}

func (f fakeFirewall) ForwardDrops() ([]firewall.ChainRef, error) { return nil, nil }

// fakeNamespaces implements namespaces: a namespace name is a file under
// dir/netns, and what it names is in mounts.
type fakeNamespaces struct{ k *fakeKernel }

func (f fakeNamespaces) Path(name string) string { return filepath.Join(f.k.dir, "netns", name) }

func (f fakeNamespaces) Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func (f fakeNamespaces) Open(path string) (*os.File, error) {
	f.k.mu.Lock()
	_, ok := f.k.mounts[path]
	f.k.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s is not a network namespace", path)
	}
	return os.Open(path)
}

func (f fakeNamespaces) OpenSelf() (*os.File, error) { return f.Open(filepath.Join(f.k.dir, "self")) }

func (f fakeNamespaces) IDOf(file *os.File) (netns.ID, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	id, ok := f.k.mounts[file.Name()]
	if !ok {
		return netns.ID{}, fmt.Errorf("%s is not a network namespace", file.Name())
	}
	return id, nil
}

func (f fakeNamespaces) Identify(path string) (netns.ID, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	id, ok := f.k.mounts[path]
	if !ok {
		return netns.ID{}, fmt.Errorf("%s is not a network namespace", path)
	}
	return id, nil
}

func (f fakeNamespaces) Self() (netns.ID, error) { return f.k.self, nil }

func (f fakeNamespaces) Create(path string, before func(netns.ID) error) error {
	if err := f.k.locked("create namespace %s", filepath.Base(path)); err != nil {
		return err
	}
	f.k.mu.Lock()
	id := f.k.newID()
	f.k.inside = &id
	f.k.mu.Unlock()
	if err := f.callBefore(before, id); err != nil {
		f.k.mu.Lock()
		f.k.destroy(id) // never named: the kernel destroys it
		f.k.mu.Unlock()
		return err
	}
	return f.mount(path, id)
}

// callBefore runs Create's callback inside the new namespace id; the
// thread leaves it afterwards, even if the callback crashes.
func (f fakeNamespaces) callBefore(before func(netns.ID) error, id netns.ID) error {
	defer func() {
		f.k.mu.Lock()
		f.k.inside = nil
		f.k.mu.Unlock()
	}()
	if before == nil {
		return nil
	}
	return before(id)
}

func (f fakeNamespaces) Bind(file *os.File, path string) error {
	if err := f.k.locked("bind namespace %s", filepath.Base(path)); err != nil {
		return err
	}
	f.k.mu.Lock()
	id, ok := f.k.mounts[file.Name()]
	f.k.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s is not a network namespace", file.Name())
	}
	return f.mount(path, id)
}

func (f fakeNamespaces) mount(path string, id netns.ID) error {
	file, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	file.Close()
	f.k.mu.Lock()
	f.k.mounts[path] = id
	f.k.mu.Unlock()
	return nil
}

// Remove unmounts a name; a namespace no name and no process refers to any
// more is destroyed, with the veth pairs that have an end in it (lazy: later,
// at reap).
func (f fakeNamespaces) Remove(path string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	id, ok := f.k.mounts[path]
	if ok {
		if err := f.k.step("remove namespace %s", filepath.Base(path)); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(f.k.mounts, path)
	f.k.vanish()
	switch {
	case !ok || slices.Contains(mapValues(f.k.mounts), id) || len(f.k.procs[id.Ino]) > 0:
	case f.k.lazy:
		f.k.dying = append(f.k.dying, id)
	default:
		f.k.destroy(id)
	}
	return nil
}

func (f fakeNamespaces) NamesOutlive() error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	return f.k.hidden
}

// reap destroys the namespaces that lost their last reference (lazy).
func (k *fakeKernel) reap() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range k.dying {
		k.destroy(id)
	}
	k.dying = nil
}

// destroy ends namespace id, and with it the veth pairs with an end in it.
func (k *fakeKernel) destroy(id netns.ID) {
	for name, l := range k.links {
		if l.peerNS == id && l.peerName != "" {
			k.deleteLink(name)
		}
	}
	delete(k.peers, id)
	for key := range k.sysctl {
		if strings.HasPrefix(key, id.String()+" ") {
			delete(k.sysctl, key)
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	var out []V
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// fakeSysctls implements sysctls; a key nobody set reads "0".
type fakeSysctls struct{ k *fakeKernel }

func (f fakeSysctls) Get(key string) (string, error) { return f.get(f.here() + " " + key), nil }

// here is the prefix of the keys of the namespace the caller is in.
func (f fakeSysctls) here() string {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if f.k.inside != nil {
		return f.k.inside.String()
	}
	return ""
}

func (f fakeSysctls) get(key string) string {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if v, ok := f.k.sysctl[key]; ok {
		return v
	}
	return "0"
}

func (f fakeSysctls) Set(key, val string) (bool, error) {
	key = f.here() + " " + key
	if f.get(key) == val {
		return false, nil
	}
	return true, f.set(key, val)
}

func (f fakeSysctls) set(key, val string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("sysctl%s=%s", key, val); err != nil {
		return err
	}
	f.k.sysctl[key] = val
	if val == "0" { // the default: as if never set
		delete(f.k.sysctl, key)
	}
	return nil
}

func (f fakeSysctls) GetIn(ns *os.File, key string) (string, error) {
	id, err := fakeNamespaces{f.k}.IDOf(ns)
	return f.get(id.String() + " " + key), err
}

func (f fakeSysctls) SetIn(ns *os.File, key, val string) error {
	id, err := fakeNamespaces{f.k}.IDOf(ns)
	if err != nil {
		return err
	}
	return f.set(id.String()+" "+key, val)
}

// zoneString shows a zone in one line: its address and flags, and
// each record's address, names and upstream servers.
func zoneString(z resolver.Zone) string {
	out := fmt.Sprintf("%s internal=%t up=%v", z.Listen, z.Internal, z.Upstream)
	for _, r := range z.Records {
		out += fmt.Sprintf(" %s=%v", r.Addr, r.Names)
		if len(r.Upstream) > 0 {
			out += fmt.Sprintf("/up=%v", r.Upstream)
		}
	}
	return out
}

// fakeResidents implements residentProcess.
type fakeResidents struct{ k *fakeKernel }

var errFakeNotRunning = fmt.Errorf("resident process (fake): %w", resident.ErrNotRunning)

func (f fakeResidents) Start() (int, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("start resident"); err != nil {
		return 0, err
	}
	r := &fakeResident{pid: 1000 + f.k.steps, ports: map[string]map[string]string{}, netns: map[string]resident.Namespace{}, zones: map[string]resolver.Zone{}}
	f.k.res = r
	return r.pid, nil
}

func (f fakeResidents) Hold(sandbox string, ns resident.Namespace, ports []resident.Port) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	r := f.k.res
	if r == nil {
		return errFakeNotRunning
	}
	if err := f.k.step("hold %d ports for %s", len(ports), sandbox); err != nil {
		return err
	}
	if id, ok := f.k.mounts[ns.Path]; !ok || !id.Same(ns.ID()) {
		return fmt.Errorf("namespace of sandbox %s: %s is not namespace %d:%d: it was replaced", sandbox, ns.Path, ns.Dev, ns.Ino)
	}
	if r.netns[sandbox] != ns {
		delete(r.ports, sandbox)
	}
	if r.ports[sandbox] == nil {
		r.ports[sandbox] = map[string]string{}
	}
	r.netns[sandbox] = ns
	for _, p := range ports {
		r.ports[sandbox][p.Key] = p.Target.String()
	}
	return nil
}

func (f fakeResidents) Release(sandbox string, keys []string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	r := f.k.res
	if r == nil {
		return errFakeNotRunning
	}
	if err := f.k.step("release %d ports of %s", len(keys), sandbox); err != nil {
		return err
	}
	for _, key := range keys {
		delete(r.ports[sandbox], key)
	}
	if len(r.ports[sandbox]) == 0 {
		r.drop(sandbox)
	}
	return nil
}

func (r *fakeResident) drop(sandbox string) {
	delete(r.ports, sandbox)
	delete(r.netns, sandbox)
}

func (f fakeResidents) Retarget(sandbox string, keys []string, targets []netip.AddrPort) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	r := f.k.res
	if r == nil {
		return errFakeNotRunning
	}
	if err := f.k.step("retarget %d ports of %s", len(keys), sandbox); err != nil {
		return err
	}
	for _, key := range keys {
		if _, ok := r.ports[sandbox][key]; !ok {
			return fmt.Errorf("sandbox %s: key %s is not held", sandbox, key)
		}
	}
	for i, key := range keys {
		r.ports[sandbox][key] = targets[i].String()
	}
	return nil
}

func (f fakeResidents) Drop(sandbox string, n resident.Names) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	r := f.k.res
	if r == nil {
		return errFakeNotRunning
	}
	if r.ports[sandbox] != nil {
		if err := f.k.step("drop the ports of %s", sandbox); err != nil {
			return err
		}
		r.drop(sandbox)
	}
	if len(n.Zones) == 0 && len(n.Networks) == 0 && !n.All && len(n.Patches) == 0 {
		return nil
	}
	return f.serve(r, n)
}

func (f fakeResidents) Serve(n resident.Names) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	r := f.k.res
	if r == nil {
		return errFakeNotRunning
	}
	return f.serve(r, n)
}

// serve changes r's zones as n says; f.k.mu is held.
func (f fakeResidents) serve(r *fakeResident, n resident.Names) error {
	if err := f.k.step("serve %d zones for %v (all %t), %d patches", len(n.Zones), n.Networks, n.All, len(n.Patches)); err != nil {
		return err
	}
	next := map[string]resolver.Zone{}
	if !n.All {
		for nw, z := range r.zones {
			if !slices.Contains(n.Networks, nw) {
				next[nw] = z
			}
		}
	}
	for _, z := range n.Zones {
		if !n.All && !slices.Contains(n.Networks, z.Network) {
			return fmt.Errorf("zone of network %s given, but not named among the networks to replace", z.Network)
		}
		next[z.Network] = z
	}
	for _, p := range n.Patches {
		z := p.Zone
		z.Records = nil
		gone := map[netip.Addr]bool{}
		for _, a := range p.Drop {
			gone[a] = true
		}
		for _, rec := range p.Zone.Records {
			gone[rec.Addr] = true
		}
		for _, rec := range next[z.Network].Records {
			if !gone[rec.Addr] {
				z.Records = append(z.Records, rec)
			}
		}
		z.Records = append(z.Records, p.Zone.Records...)
		slices.SortFunc(z.Records, func(a, b resolver.Record) int { return a.Addr.Compare(b.Addr) })
		if len(z.Records) > 0 {
			next[z.Network] = z
		} else {
			delete(next, z.Network)
		}
	}
	r.zones = next
	return nil
}

func (f fakeResidents) Status() (resident.Status, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	r := f.k.res
	if r == nil {
		return resident.Status{}, errFakeNotRunning
	}
	st := resident.Status{Pid: r.pid}
	for _, name := range slices.Sorted(maps.Keys(r.ports)) {
		h := resident.Held{Sandbox: name, NetNS: r.netns[name], Keys: slices.Sorted(maps.Keys(r.ports[name]))}
		for _, key := range h.Keys {
			h.Targets = append(h.Targets, r.ports[name][key])
		}
		st.Sandboxes = append(st.Sandboxes, h)
	}
	for _, n := range slices.Sorted(maps.Keys(r.zones)) {
		st.Zones = append(st.Zones, r.zones[n])
	}
	return st, nil
}

func (f fakeResidents) Stop() error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if f.k.res == nil {
		return nil
	}
	if err := f.k.step("stop resident"); err != nil {
		return err
	}
	f.k.res = nil
	return nil
}

// vanish lets go of the ports of the sandboxes whose namespace path no
// longer names the namespace they were held with, as the real resident does
// within a second.
func (k *fakeKernel) vanish() {
	if k.res == nil {
		return
	}
	for name, ns := range k.res.netns {
		if id, ok := k.mounts[ns.Path]; !ok || !id.Same(ns.ID()) {
			k.res.drop(name)
		}
	}
}

// fakePorts implements hostPorts: a port is free unless a test took it.
type fakePorts struct{ k *fakeKernel }

func (f fakePorts) Hold(proto string, ip netip.Addr, port uint16) (*os.File, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	m := Mapping{Proto: proto, HostIP: ip, HostPort: port}
	if f.k.taken[m.Key()] {
		return nil, fmt.Errorf("host port %s:%d/%s is in use by process web (pid 42): stop it or publish another host port", m.HostIPString(), port, proto)
	}
	if proto == "sctp" {
		return nil, nil
	}
	return os.Open(os.DevNull)
}

func (f fakePorts) LocalPortRange() (uint16, uint16) { return 32768, 32800 }

// fakeFlows implements flowTable.
type fakeFlows struct{ k *fakeKernel }

func (f fakeFlows) Delete(flows []conntrack.Flow) (uint, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if err := f.k.step("delete %d flows", len(flows)); err != nil {
		return 0, err
	}
	f.k.flushed += len(flows)
	return uint(len(flows)), nil
}

// fakeProcs implements processLister.
type fakeProcs struct{ k *fakeKernel }

func (f fakeProcs) In(path string, want netns.ID) ([]Process, error) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if id, ok := f.k.mounts[path]; ok && !want.IsZero() && !want.Same(id) {
		return nil, nil // a stranger's namespace under the name
	}
	return f.k.procs[want.Ino], nil
}

// fakeEngine opens an engine on a fresh state root over the fake kernel k;
// the resident is "run" when resident is set.
func fakeEngine(t *testing.T, k *fakeKernel, resident bool) *Engine {
	t.Helper()
	o := Options{Root: filepath.Join(k.dir, "root"), RunDir: filepath.Join(k.dir, "run"), LockTimeout: NoWait}
	if resident {
		o.Resident = "/fake/nsnet"
	}
	return reopen(t, k, o)
}

// reopen opens another engine on the same state root and kernel (a new
// process, after a crash).
func reopen(t *testing.T, k *fakeKernel, o Options) *Engine {
	t.Helper()
	if o.AddressPools == nil {
		o.AddressPools = DefaultAddressPools
	}
	if o.Warn == nil {
		o.Warn = func(msg string) { t.Logf("warning: %s", msg) }
	}
	if o.ResolvConf == "" { // never the machine's own
		o.ResolvConf = filepath.Join(k.dir, "resolv.conf")
		mustDo(t, os.WriteFile(o.ResolvConf, []byte("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.test\n"), 0o644))
	}
	e, err := openWith(o, "nsnet-test", k.kernel())
	if err != nil {
		t.Fatal(err)
	}
	ids := 0
	e.newID = func() string { // the same IDs in every run, so runs compare
		ids++
		return fmt.Sprintf("%012x%020x", ids, ids)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func (f fakeResidents) Close() {}
