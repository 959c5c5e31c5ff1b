package engine

// The kernel behind the engine. Everything the engine changes or reads
// outside its state root goes through the small interfaces below, defined
// here where they are used: the real implementations are the wrapper
// packages (link, firewall, netns, sysctl, resident, hostport, conntrack), and
// the unit tests put an in-memory fake in their place (fake_test.go), so the
// engine's own logic is tested without root.

import (
	"net/netip"
	"os"
	"sync"

	"github.com/nsnet/nsnet/internal/conntrack"
	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/hostport"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// links are the host's links: bridges, veth pairs, their addresses and
// routes (package link).
type links interface {
	Exists(name string) (bool, error)
	Mark(name string) (alias string, group uint32, ok bool, err error)
	List() ([]link.Listed, error)
	Routes() ([]netip.Prefix, error)
	CreateBridge(b link.Bridge) error
	CheckBridge(b link.Bridge) ([]string, error)
	RepairBridge(b link.Bridge) error
	AttachVeth(v link.Veth) error
	CheckVeth(v link.Veth) ([]string, error)
	RepairVeth(v link.Veth) error
	DeleteStrayPeer(v link.Veth) (bool, error) // see link.Host.DeleteStrayPeer
	SetMaster(name, bridge string) error
	ReleaseVeth(name, alias string) error // down (its bridge port disabled), marked: see link.Host.ReleaseVeth
	MarkLink(name, alias string) error    // the alias only
	DeleteLink(name string) error
	UpLoopback(ns *os.File) error
	Close()
}

// firewaller is the state root's nftables tables (package firewall).
type firewaller interface {
	Sync(nets []firewall.Network, ports []firewall.Port, guards []firewall.Guard) error
	AddPorts(ports []firewall.Port) error
	DeletePorts(ports []firewall.Port) error
	AddGuards(guards []firewall.Guard) error
	DeleteGuards(guards []firewall.Guard) error // at once: an undo
	ExpireGuards(guards []firewall.Guard) error // ports that went: their elements expire
	BlockGuards(guards []firewall.Guard) error  // ports released up: MAC and addresses expire, the ports later
	Diff(nets []firewall.Network, ports []firewall.Port, guards []firewall.Guard) ([]string, error)
	ForwardDrops() ([]firewall.ChainRef, error)
}

// namespaces are named network namespaces (package netns).
type namespaces interface {
	Path(name string) string
	Exists(path string) bool
	Open(path string) (*os.File, error) // checked to be a network namespace
	OpenSelf() (*os.File, error)        // the namespace the engine runs in
	IDOf(f *os.File) (netns.ID, error)
	Identify(path string) (netns.ID, error)
	Self() (netns.ID, error)
	Create(path string, before func(netns.ID) error) error // before runs inside the new namespace
	Bind(f *os.File, path string) error
	Remove(path string) error
	// NamesOutlive fails if names mounted now would vanish with the
	// engine's mount namespace (see netns.CheckNamesOutlive).
	NamesOutlive() error
}

// sysctls are per-namespace kernel settings (package sysctl). Get and Set
// act on the namespace the calling thread is in: the engine's, or a new one
// inside namespaces.Create's before.
type sysctls interface {
	Get(key string) (string, error)
	Set(key, val string) (changed bool, err error)
	GetIn(ns *os.File, key string) (string, error)
	SetIn(ns *os.File, key, val string) error
}

// residentProcess is the state root's resident process (package resident):
// it keeps published host ports bound, by sandbox, and serves the names of
// the root's user networks, a zone each. Every call but Start and Stop
// returns an error wrapping resident.ErrNotRunning when none answers.
type residentProcess interface {
	Start() (pid int, err error) // an empty one, replacing the socket of one that is gone
	Hold(sandbox string, ns resident.Namespace, ports []resident.Port) error
	Release(sandbox string, keys []string) error
	Retarget(sandbox string, keys []string, targets []netip.AddrPort) error
	Drop(sandbox string, n resident.Names) error // every port of sandbox let go of, then n served
	Serve(n resident.Names) error
	Status() (resident.Status, error)
	Stop() error // a resident that is gone is no error
	Close()      // the end of an operation: its connection to the resident is closed
}

// hostPorts bind host ports and say which are free to choose (package
// hostport).
type hostPorts interface {
	Hold(proto string, ip netip.Addr, port uint16) (*os.File, error)
	LocalPortRange() (lo, hi uint16)
}

// flowTable forgets the connection-tracking entries of published ports that
// go away (package conntrack).
type flowTable interface {
	Delete(flows []conntrack.Flow) (uint, error)
}

// processLister finds the processes in a namespace (/proc).
type processLister interface {
	In(path string, want netns.ID) ([]Process, error)
}

// kernel is all of it; openLinks opens the host's links on first use.
type kernel struct {
	openLinks func() (links, error)
	fw        firewaller
	ns        namespaces
	sys       sysctls
	res       residentProcess
	ports     hostPorts
	flows     flowTable
	procs     processLister
	etcDir    string // where a sandbox's resolv.conf and hosts go, by name (netns.EtcDir)
	// overlap: some steps run on a goroutine of their own while the next
	// ones run (meanwhile): a port's anti-spoofing elements while its veth is
	// made; a sandbox's names (a request to the resident) and its files
	// while its veths are made or released. The fake runs every step in
	// order, so that a failure at step N is always the same step.
	overlap bool
}

// realKernel is the kernel of the host the engine runs in.
func realKernel(o Options, table string) kernel {
	return kernel{
		openLinks: func() (links, error) { return link.OpenHost() },
		fw:        firewall.Table{Name: table},
		overlap:   true,
		ns:        realNamespaces{},
		sys:       realSysctls{},
		res:       realResident{self: o.Resident, s: resident.NewSession(o.Root)},
		ports:     realHostPorts{},
		flows:     realFlows{},
		procs:     realProcesses{},
		etcDir:    netns.EtcDir,
	}
}

type realNamespaces struct{}

func (realNamespaces) Path(name string) string                { return netns.Path(name) }
func (realNamespaces) Exists(path string) bool                { return netns.Exists(path) }
func (realNamespaces) Open(path string) (*os.File, error)     { return netns.Open(path) }
func (realNamespaces) OpenSelf() (*os.File, error)            { return netns.Open("/proc/thread-self/ns/net") }
func (realNamespaces) IDOf(f *os.File) (netns.ID, error)      { return netns.IDOf(f) }
func (realNamespaces) Identify(path string) (netns.ID, error) { return netns.Identify(path) }
func (realNamespaces) Self() (netns.ID, error)                { return netns.Self() }
func (realNamespaces) Bind(f *os.File, path string) error     { return netns.Bind(f, path) }
func (realNamespaces) Remove(path string) error               { return netns.Remove(path) }
func (realNamespaces) NamesOutlive() error                    { return netns.CheckNamesOutlive() }
func (realNamespaces) Create(path string, before func(netns.ID) error) error {
	return netns.Create(path, before)
}

type realSysctls struct{}

func (realSysctls) Get(key string) (string, error)                { return sysctl.Get(key) }
func (realSysctls) Set(key, val string) (bool, error)             { return sysctl.Set(key, val) }
func (realSysctls) GetIn(ns *os.File, key string) (string, error) { return sysctl.GetIn(ns, key) }
func (realSysctls) SetIn(ns *os.File, key, val string) error      { return sysctl.SetIn(ns, key, val) }

// realResident talks to the resident over one session per operation
// (closed by Close, which op calls at its end).
type realResident struct {
	self string
	s    *resident.Session
}

func (r realResident) Start() (int, error) { return r.s.Start(r.self) }
func (r realResident) Hold(sandbox string, ns resident.Namespace, ports []resident.Port) error {
	return r.s.Hold(sandbox, ns, ports)
}
func (r realResident) Release(sandbox string, keys []string) error {
	return r.s.Release(sandbox, keys)
}
func (r realResident) Retarget(sandbox string, keys []string, targets []netip.AddrPort) error {
	return r.s.Retarget(sandbox, keys, targets)
}
func (r realResident) Drop(sandbox string, n resident.Names) error { return r.s.Drop(sandbox, n) }
func (r realResident) Serve(n resident.Names) error                { return r.s.Serve(n) }
func (r realResident) Status() (resident.Status, error)            { return r.s.Probe() }
func (r realResident) Stop() error                                 { return r.s.Stop() }
func (r realResident) Close()                                      { r.s.Close() }

type realHostPorts struct{}

func (realHostPorts) Hold(proto string, ip netip.Addr, port uint16) (*os.File, error) {
	return hostport.Hold(proto, ip, port)
}
func (realHostPorts) LocalPortRange() (uint16, uint16) { return hostport.LocalPortRange() }

type realFlows struct{}

func (realFlows) Delete(flows []conntrack.Flow) (uint, error) { return conntrack.Delete(flows) }

type realProcesses struct{}

func (realProcesses) In(path string, want netns.ID) ([]Process, error) {
	return processesIn(path, want)
}

// meanwhile runs fn on a goroutine of its own where the kernel allows
// overlapping steps (kernel.overlap), or now. The function it returns waits
// for fn and returns its error, every time it is called. Until then the
// caller must not use what fn uses (a store.Tx, the undo list, the resident
// session), and it calls it before it returns.
func (e *Engine) meanwhile(fn func() error) func() error {
	if !e.k.overlap {
		err := fn()
		return func() error { return err }
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	return sync.OnceValue(func() error { return <-done })
}
