package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// driftWorld is a root with a network n1 (10.1.0.0/24) and an internal
// network in (10.3.0.0/24); sandbox s1 on n1 publishing 8080:80 and
// 5353:53/udp, s2 on in and n1 publishing 9090:90, and s3 with no network;
// the resident on.
type driftWorld struct {
	k          *fakeKernel
	e          *Engine
	n1, in     *Network
	s1, s2, s3 *Sandbox
}

func newDriftWorld(t *testing.T) *driftWorld {
	t.Helper()
	k := newFakeKernel(t)
	e := fakeEngine(t, k, true)
	withTwoNetworks(t, k, e)
	w := &driftWorld{k: k, e: e}
	w.s1 = w.sandbox(t, SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: []string{"8080:80", "5353:53/udp"}})
	w.s2 = w.sandbox(t, SandboxSpec{Name: "s2", Networks: []string{"in", "n1"}, Publish: []string{"9090:90"}})
	w.s3 = w.sandbox(t, SandboxSpec{Name: "s3", Networks: []string{ModeNone}})
	w.n1, w.in = w.network(t, "n1"), w.network(t, "in")
	return w
}

func (w *driftWorld) network(t *testing.T, name string) *Network {
	t.Helper()
	d, err := w.e.InspectNetwork(name)
	mustDo(t, err)
	return &d.Network
}

func (w *driftWorld) sandbox(t *testing.T, spec SandboxSpec) *Sandbox {
	t.Helper()
	sb, err := w.e.CreateSandbox(spec)
	mustDo(t, err)
	return sb
}

func (w *driftWorld) bridge(n *Network) *fakeLink { return w.k.links[n.Bridge] }

// veth is the host end of sb's i-th endpoint; peer is its other end.
func (w *driftWorld) veth(sb *Sandbox, i int) *fakeLink { return w.k.links[sb.Endpoints[i].HostVeth] }

func (w *driftWorld) peer(sb *Sandbox, i int) *fakeLink {
	return w.k.peers[netnsID(sb)][sb.Endpoints[i].IfName]
}

func (w *driftWorld) update(t *testing.T, fn func(tx *store.Tx) error) {
	t.Helper()
	mustDo(t, w.e.op(true, func() error { return w.e.st.Update(fn) }))
}

// marker writes a marker of this root for a namespace name.
func (w *driftWorld) marker(t *testing.T, name string, owns bool, id netns.ID) {
	t.Helper()
	mustDo(t, w.e.markers.Put(journal.Marker{Name: name, Root: w.e.opts.Root, Owns: owns, NetNS: id}))
}

// held is what the resident holds for the named sandbox: key -> target.
func (w *driftWorld) held(name string) map[string]string { return w.k.res.ports[name] }

// someKey is one of the keys the resident holds for sb.
func (w *driftWorld) someKey(sb *Sandbox) string { return heldKeys(sb.Ports)[0] }

// deadPID is a pid no process has: above the kernel's largest (2^22).
const deadPID = 1<<22 + 1

// driftCase is one kind of change made behind nsnet's back, and what gc makes
// of it.
type driftCase struct {
	name string
	make func(t *testing.T, w *driftWorld)
	// plan: one substring for each line the dry run must plan (the plan
	// has no other lines); none: there is nothing to do.
	plan func(w *driftWorld) []string
	// end is the state gc must end in; nil: the state before the drift.
	// keep: the state after the drift (there is nothing to do).
	end  func(t *testing.T, w *driftWorld, drifted []string) []string
	keep bool
}

func planLines(ls ...string) func(*driftWorld) []string {
	return func(*driftWorld) []string { return ls }
}

func drifts() []driftCase {
	repairBridge := func(why string) func(w *driftWorld) []string {
		return func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would repair bridge %s of network n1 (%s)", w.n1.Bridge, why)}
		}
	}
	repairVeth := func(why string) func(w *driftWorld) []string {
		return func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would repair veth %s of sandbox s1 on network n1 (%s)", w.s1.Endpoints[0].HostVeth, why)}
		}
	}
	run := func(pid int, start func() uint64) func(t *testing.T, w *driftWorld) {
		return func(t *testing.T, w *driftWorld) {
			s4 := w.sandbox(t, SandboxSpec{Name: "s4", Networks: []string{"n1"}, AutoRemove: true})
			w.update(t, func(tx *store.Tx) error {
				return tx.PutRun("s4", store.Run{SandboxID: s4.ID, PID: pid, Start: start()})
			})
		}
	}
	myStart := func() uint64 { s, _ := processStart(os.Getpid()); return s }
	return []driftCase{
		{name: "bridge down", make: func(t *testing.T, w *driftWorld) { w.bridge(w.n1).up = false }, plan: repairBridge("is down")},
		{name: "bridge address removed", make: func(t *testing.T, w *driftWorld) { w.bridge(w.n1).addrs = nil }, plan: repairBridge("lacks address 10.1.0.1/24")},
		{name: "bridge MTU", make: func(t *testing.T, w *driftWorld) { w.bridge(w.n1).mtu = 9000 }, plan: repairBridge("has MTU 9000, not 1500")},
		{name: "bridge MAC", make: func(t *testing.T, w *driftWorld) { w.bridge(w.n1).mac = "02:00:00:00:00:99" },
			plan: func(w *driftWorld) []string {
				return repairBridge(fmt.Sprintf("has MAC 02:00:00:00:00:99, not %s", w.n1.BridgeMAC))(w)
			}},
		{name: "bridge alias", make: func(t *testing.T, w *driftWorld) { w.bridge(w.n1).alias = "renamed" },
			plan: func(w *driftWorld) []string {
				return repairBridge(fmt.Sprintf("has alias %q, not %q", "renamed", w.e.owner.NetworkMark("n1")))(w)
			}},
		{name: "bridge IPv6 on", make: func(t *testing.T, w *driftWorld) { delete(w.k.sysctl, " "+sysctl.DisableIPv6(w.n1.Bridge)) },
			plan: func(w *driftWorld) []string {
				return repairBridge(fmt.Sprintf("sysctl net.ipv6.conf.%s.disable_ipv6 is 0, not 1", w.n1.Bridge))(w)
			}},
		{name: "bridge route_localnet on", make: func(t *testing.T, w *driftWorld) { w.k.sysctl[" "+sysctl.RouteLocalnet(w.n1.Bridge)] = "1" },
			plan: func(w *driftWorld) []string {
				return repairBridge(fmt.Sprintf("sysctl net.ipv4.conf.%s.route_localnet is 1, not 0", w.n1.Bridge))(w)
			}},
		{name: "bridge deleted", make: func(t *testing.T, w *driftWorld) { w.k.deleteLink(w.n1.Bridge) },
			plan: func(w *driftWorld) []string {
				return []string{"would recreate bridge " + w.n1.Bridge + " of network n1"}
			}},
		{name: "internal network's bridge deleted", make: func(t *testing.T, w *driftWorld) { w.k.deleteLink(w.in.Bridge) },
			plan: func(w *driftWorld) []string {
				return []string{"would recreate bridge " + w.in.Bridge + " of network in"}
			}},
		{name: "veth off its bridge", make: func(t *testing.T, w *driftWorld) { w.veth(w.s1, 0).master = "" },
			plan: func(w *driftWorld) []string { return repairVeth("is not a port of bridge " + w.n1.Bridge)(w) }},
		{name: "veth down", make: func(t *testing.T, w *driftWorld) { w.veth(w.s1, 0).up = false }, plan: repairVeth("is down")},
		{name: "veth MTU", make: func(t *testing.T, w *driftWorld) { w.veth(w.s1, 0).mtu = 1400 }, plan: repairVeth("has MTU 1400, not 1500")},
		{name: "veth alias", make: func(t *testing.T, w *driftWorld) { w.veth(w.s1, 0).alias = "" },
			plan: func(w *driftWorld) []string {
				return repairVeth(fmt.Sprintf("has alias \"\", not %q", w.e.owner.SandboxMark("s1", "n1")))(w)
			}},
		{name: "hairpin off", make: func(t *testing.T, w *driftWorld) { w.veth(w.s1, 0).hairpin = false }, plan: repairVeth("has hairpin mode off")},
		{name: "veth deleted", make: func(t *testing.T, w *driftWorld) { w.k.deleteLink(w.s1.Endpoints[0].HostVeth) },
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would recreate veth %s of sandbox s1 on network n1", w.s1.Endpoints[0].HostVeth)}
			}},
		{name: "veth moved into another namespace", make: func(t *testing.T, w *driftWorld) { delete(w.k.links, w.s1.Endpoints[0].HostVeth) }, // its peer stays
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would recreate veth %s of sandbox s1 on network n1", w.s1.Endpoints[0].HostVeth)}
			}},
		{name: "veth on an internal network down", make: func(t *testing.T, w *driftWorld) { w.veth(w.s2, 0).up = false },
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would repair veth %s of sandbox s2 on network in (is down)", w.s2.Endpoints[0].HostVeth)}
			}},
		{name: "peer renamed", make: func(t *testing.T, w *driftWorld) {
			peers, host := w.k.peers[netnsID(w.s1)], w.veth(w.s1, 0)
			peers["foo0"], host.peerName = peers["eth0"], "foo0"
			delete(peers, "eth0")
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would recreate veth %s of sandbox s1 on network n1 (its peer eth0 is missing from %s)", w.s1.Endpoints[0].HostVeth, w.s1.NetNS)}
		}},
		{name: "peer down", make: func(t *testing.T, w *driftWorld) { w.peer(w.s1, 0).up = false }, plan: repairVeth("eth0 in the sandbox is down")},
		{name: "peer MTU", make: func(t *testing.T, w *driftWorld) { w.peer(w.s1, 0).mtu = 1280 }, plan: repairVeth("eth0 in the sandbox has MTU 1280, not 1500")},
		{name: "peer MAC", make: func(t *testing.T, w *driftWorld) { w.peer(w.s1, 0).mac = "02:00:00:00:00:55" },
			plan: func(w *driftWorld) []string {
				return repairVeth(fmt.Sprintf("eth0 in the sandbox has MAC 02:00:00:00:00:55, not %s", w.s1.Endpoints[0].MAC))(w)
			}},
		{name: "peer address removed", make: func(t *testing.T, w *driftWorld) { w.peer(w.s1, 0).addrs = nil },
			plan: repairVeth("eth0 in the sandbox lacks address 10.1.0.2/24")},
		{name: "default route removed", make: func(t *testing.T, w *driftWorld) { w.peer(w.s1, 0).gateway = netip.Addr{} },
			plan: repairVeth("the sandbox lacks its default route via 10.1.0.1")},
		{name: "peer IPv6 on", make: func(t *testing.T, w *driftWorld) {
			delete(w.k.sysctl, netnsID(w.s1).String()+" "+sysctl.DisableIPv6("eth0"))
		}, plan: repairVeth("eth0 in the sandbox has IPv6 on")},
		{name: "IPv4 forwarding off", make: func(t *testing.T, w *driftWorld) { delete(w.k.sysctl, " "+sysctl.IPv4Forward) },
			plan: planLines("would turn IPv4 forwarding back on (sysctl net.ipv4.ip_forward is 0, not 1)")},
		{name: "firewall rule drifted", make: func(t *testing.T, w *driftWorld) { w.k.fw.drift = []string{"chain forward lacks a rule"} },
			plan: planLines("would rewrite nftables tables inet and bridge nsnet-test (chain forward lacks a rule)")},
		{name: "firewall table deleted", make: func(t *testing.T, w *driftWorld) { w.k.fw = nil },
			plan: planLines("would rewrite nftables tables inet and bridge nsnet-test (table is missing)")},
		{name: "firewall element added", make: func(t *testing.T, w *driftWorld) {
			w.k.fw.ports[firewall.Port{Proto: "tcp", HostPort: 2222, CtrIP: netip.MustParseAddr("10.1.0.9"), CtrPort: 22}] = true
		}, plan: planLines("would rewrite nftables tables inet and bridge nsnet-test (elements differ)")},
		{name: "firewall element deleted", make: func(t *testing.T, w *driftWorld) {
			for p := range w.k.fw.ports {
				delete(w.k.fw.ports, p)
				break
			}
		}, plan: planLines("would rewrite nftables tables inet and bridge nsnet-test (elements differ)")},
		{name: "namespace vanished", make: func(t *testing.T, w *driftWorld) {
			id := w.k.mounts[w.s1.NetNS]
			delete(w.k.mounts, w.s1.NetNS)
			mustDo(t, os.Remove(w.s1.NetNS))
			w.k.destroy(id) // with its veth
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would forget sandbox s1: its namespace %s is gone", w.s1.NetNS)}
		}, end: withoutS1},
		{name: "namespace vanished, but alive, with a veth, held ports and firewall that drifted", make: func(t *testing.T, w *driftWorld) {
			delete(w.k.mounts, w.s1.NetNS) // a process keeps the namespace, and so its veth
			mustDo(t, os.Remove(w.s1.NetNS))
			w.veth(w.s1, 0).up, w.peer(w.s1, 0).mtu = false, 1280
			delete(w.held("s1"), w.someKey(w.s1))
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would forget sandbox s1: its namespace %s is gone", w.s1.NetNS)}
		}, end: func(t *testing.T, w *driftWorld, drifted []string) []string {
			// The process keeps the namespace, with the IPv6 default nsnet set in it.
			end := withoutS1(t, w, drifted)
			return sortedLines(append(end, fmt.Sprintf("sysctl %s net/ipv6/conf/default/disable_ipv6=1", netnsID(w.s1))))
		}},
		{name: "namespace replaced", make: func(t *testing.T, w *driftWorld) {
			mustDo(t, fakeNamespaces{w.k}.Remove(w.s1.NetNS))
			mustDo(t, fakeNamespaces{w.k}.mount(w.s1.NetNS, w.k.newID()))
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would forget sandbox s1: %s now names another namespace, which is left alone", w.s1.NetNS)}
		}, end: func(t *testing.T, w *driftWorld, drifted []string) []string {
			end := withoutS1(t, w, drifted)
			return sortedLines(append(end, fmt.Sprintf("mount s1 %s", w.k.mounts[w.s1.NetNS])))
		}},
		{name: "stray veth of this root", make: func(t *testing.T, w *driftWorld) {
			w.k.links["vethstray"] = &fakeLink{kind: "veth", alias: w.e.owner.SandboxMark("ghost", "n1"), group: owner.Group, up: true}
		}, plan: planLines("would remove leftover veth vethstray (nsnet:")},
		{name: "stray bridge of this root", make: func(t *testing.T, w *driftWorld) {
			w.k.links["br-stray"] = &fakeLink{kind: "bridge", alias: w.e.owner.NetworkMark("ghost"), group: owner.Group, up: true}
		}, plan: planLines("would remove leftover bridge br-stray (nsnet:")},
		{name: "link of another root", keep: true, make: func(t *testing.T, w *driftWorld) {
			w.k.links["vethother"] = &fakeLink{kind: "veth", alias: "nsnet:0badc0de sandbox ghost network n1", group: owner.Group, up: true}
		}},
		{name: "link of the user's", keep: true, make: func(t *testing.T, w *driftWorld) {
			w.k.links["vethuser"] = &fakeLink{kind: "veth", up: true}
		}},
		{name: "stray namespace of this root", make: func(t *testing.T, w *driftWorld) {
			id := w.k.newID()
			w.marker(t, "ghost", true, id)
			mustDo(t, fakeNamespaces{w.k}.mount(w.k.kernel().ns.Path("ghost"), id))
		}, plan: func(w *driftWorld) []string {
			return []string{"would remove leftover namespace " + w.k.kernel().ns.Path("ghost")}
		}},
		{name: "stray namespace name of this root", make: func(t *testing.T, w *driftWorld) {
			id := w.k.newID()
			w.marker(t, "ghost", false, id)
			mustDo(t, fakeNamespaces{w.k}.mount(w.k.kernel().ns.Path("ghost"), id))
		}, plan: func(w *driftWorld) []string {
			return []string{"would remove leftover namespace name " + w.k.kernel().ns.Path("ghost")}
		}},
		{name: "stray marker of this root", make: func(t *testing.T, w *driftWorld) { w.marker(t, "ghost", true, w.k.newID()) },
			plan: func(w *driftWorld) []string {
				return []string{"would remove leftover namespace " + w.k.kernel().ns.Path("ghost")}
			}},
		{name: "stray marker of a namespace name made again by someone else", make: func(t *testing.T, w *driftWorld) {
			w.marker(t, "ghost", true, w.k.newID())
			mustDo(t, fakeNamespaces{w.k}.mount(w.k.kernel().ns.Path("ghost"), w.k.newID()))
		}, plan: func(w *driftWorld) []string {
			return []string{"would remove leftover namespace " + w.k.kernel().ns.Path("ghost")}
		}, end: func(t *testing.T, w *driftWorld, drifted []string) []string {
			return slices.DeleteFunc(drifted, func(l string) bool { return l == "file netns/ghost" }) // the marker only
		}},
		{name: "marker of another root", keep: true, make: func(t *testing.T, w *driftWorld) {
			mustDo(t, w.e.markers.Put(journal.Marker{Name: "ghost", Root: "/var/lib/other", Owns: true, NetNS: w.k.newID()}))
		}},
		{name: "unfinished marker", make: func(t *testing.T, w *driftWorld) {
			tmp := filepath.Join(w.e.opts.RunDir, "netns", ".ghost.tmp")
			mustDo(t, os.WriteFile(tmp, []byte("{"), 0o600))
			old := time.Now().Add(-time.Hour)
			mustDo(t, os.Chtimes(tmp, old, old))
		}, plan: planLines("would remove unfinished marker .ghost.tmp")},
		{name: "unfinished marker being written", keep: true, make: func(t *testing.T, w *driftWorld) {
			mustDo(t, os.WriteFile(filepath.Join(w.e.opts.RunDir, "netns", ".ghost.tmp"), []byte("{"), 0o600))
		}},
		{name: "stray lease", make: func(t *testing.T, w *driftWorld) {
			w.update(t, func(tx *store.Tx) error { return tx.PutLease("n1", netip.MustParseAddr("10.1.0.77"), "ghost") })
		}, plan: planLines("would release 10.1.0.77 on network n1 (held by missing sandbox ghost)")},
		{name: "resident dead", make: func(t *testing.T, w *driftWorld) { w.k.res = nil },
			plan: planLines("would start the resident process: 3 ports of 2 sandboxes to hold, 2 networks to serve")},
		{name: "resident lacks a port", make: func(t *testing.T, w *driftWorld) { delete(w.held("s1"), w.someKey(w.s1)) },
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would make the resident process (pid %d) hold the 1 published host ports of sandbox s1 it lacks and let go of 0 unpublished ones", w.k.res.pid)}
			}},
		{name: "resident holds an unpublished port", make: func(t *testing.T, w *driftWorld) { w.held("s1")["tcp/0.0.0.0/02222"] = "10.1.0.2:22" },
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would make the resident process (pid %d) hold the 0 published host ports of sandbox s1 it lacks and let go of 1 unpublished ones", w.k.res.pid)}
			}},
		{name: "resident sends a port elsewhere", make: func(t *testing.T, w *driftWorld) { w.held("s1")[w.someKey(w.s1)] = "10.1.0.99:80" },
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would make the resident process (pid %d) send 1 ports of sandbox s1 to the sandbox's address", w.k.res.pid)}
			}},
		{name: "resident lacks a sandbox's ports", make: func(t *testing.T, w *driftWorld) { w.k.res.drop("s2") },
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would make the resident process (pid %d) hold the 1 published host ports of sandbox s2", w.k.res.pid)}
			}},
		{name: "resident holds a sandbox's ports in another namespace", make: func(t *testing.T, w *driftWorld) {
			ns := w.k.res.netns["s2"]
			ns.Ino++
			w.k.res.netns["s2"] = ns
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would make the resident process (pid %d) hold the 1 published host ports of sandbox s2", w.k.res.pid)}
		}},
		{name: "resident holds the ports of a missing sandbox", make: func(t *testing.T, w *driftWorld) {
			w.k.res.ports["ghost"] = map[string]string{"tcp/0.0.0.0/02222": "10.1.0.9:22"}
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would make the resident process (pid %d) let go of the 1 ports of missing sandbox ghost", w.k.res.pid)}
		}},
		{name: "resident lacks a zone", make: func(t *testing.T, w *driftWorld) { delete(w.k.res.zones, "in") },
			plan: func(w *driftWorld) []string {
				return []string{fmt.Sprintf("would make the resident process (pid %d) serve the names of the store (missing: in)", w.k.res.pid)}
			}},
		{name: "resident serves a name too many", make: func(t *testing.T, w *driftWorld) {
			z := w.k.res.zones["n1"]
			z.Records = append(slices.Clone(z.Records), resolver.Record{Addr: netip.MustParseAddr("10.1.0.77"), Names: []string{"ghost"}})
			w.k.res.zones["n1"] = z
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would make the resident process (pid %d) serve the names of the store (stale: n1)", w.k.res.pid)}
		}},
		{name: "resident serves another upstream", make: func(t *testing.T, w *driftWorld) {
			z := w.k.res.zones["n1"]
			z.Upstream = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
			w.k.res.zones["n1"] = z
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would make the resident process (pid %d) serve the names of the store (stale: n1)", w.k.res.pid)}
		}},
		{name: "resident serves a network without sandboxes", make: func(t *testing.T, w *driftWorld) {
			w.k.res.zones["ghost"] = resolver.Zone{Network: "ghost", Listen: netip.MustParseAddr("10.9.0.1")}
		}, plan: func(w *driftWorld) []string {
			return []string{fmt.Sprintf("would make the resident process (pid %d) serve the names of the store (not to be served: ghost)", w.k.res.pid)}
		}},
		{name: "run --rm whose process is gone", make: run(deadPID, func() uint64 { return 1 }),
			plan: planLines("would remove sandbox s4: the nsnet run --rm that made it is gone, and so is its program")},
		{name: "run --rm whose pid is another process now", make: run(os.Getpid(), func() uint64 { return myStart() + 1 }),
			plan: planLines("would remove sandbox s4: the nsnet run --rm that made it is gone, and so is its program")},
		{name: "run --rm whose process is gone, but not its program", keep: true, make: func(t *testing.T, w *driftWorld) {
			run(deadPID, func() uint64 { return 1 })(t, w)
			s4, err := w.e.InspectSandbox("s4")
			mustDo(t, err)
			w.k.procs[s4.NetNSIno] = []Process{{PID: 77, Comm: "sleep"}}
		}},
		{name: "run --rm whose process is gone, its veth drifted, its ports misheld and its network's names missing", make: func(t *testing.T, w *driftWorld) {
			run(deadPID, func() uint64 { return 1 })(t, w)
			s4, err := w.e.InspectSandbox("s4")
			mustDo(t, err)
			w.veth(s4, 0).up = false
			w.k.res.ports["s4"] = map[string]string{"tcp/0.0.0.0/02222": "10.1.0.9:22"}
			delete(w.k.res.zones, "n1")
		}, plan: func(w *driftWorld) []string {
			return []string{"would remove sandbox s4: the nsnet run --rm that made it is gone, and so is its program",
				fmt.Sprintf("would make the resident process (pid %d) serve the names of the store (missing: n1)", w.k.res.pid)}
		}},
		{name: "run --rm whose process is gone, but another sandbox shares its namespace", keep: true, make: func(t *testing.T, w *driftWorld) {
			s4 := w.sandbox(t, SandboxSpec{Name: "s4", Networks: []string{"n1"}, AutoRemove: true})
			w.sandbox(t, SandboxSpec{Name: "s5", Networks: []string{"container:s4"}})
			w.update(t, func(tx *store.Tx) error { return tx.PutRun("s4", store.Run{SandboxID: s4.ID, PID: deadPID, Start: 1}) })
		}},
		{name: "run --rm whose process lives", keep: true, make: run(os.Getpid(), myStart)},
		{name: "several drifts at once", make: func(t *testing.T, w *driftWorld) {
			w.bridge(w.in).up = false
			w.veth(w.s2, 1).mtu = 1400
			w.k.fw = nil
			w.k.res.drop("s2")
			w.update(t, func(tx *store.Tx) error { return tx.PutLease("in", netip.MustParseAddr("10.3.0.77"), "ghost") })
		}, plan: func(w *driftWorld) []string {
			return []string{
				"would repair bridge " + w.in.Bridge + " of network in (is down)",
				"would repair veth " + w.s2.Endpoints[1].HostVeth + " of sandbox s2 on network n1 (has MTU 1400, not 1500)",
				"would rewrite nftables tables inet and bridge nsnet-test (table is missing)",
				fmt.Sprintf("would make the resident process (pid %d) hold the 1 published host ports of sandbox s2", w.k.res.pid),
				"would release 10.3.0.77 on network in (held by missing sandbox ghost)",
			}
		}},
	}
}

// withoutS1 is the state of a drift world whose s1 was removed.
func withoutS1(t *testing.T, _ *driftWorld, _ []string) []string {
	ref := newDriftWorld(t)
	_, err := ref.e.RemoveSandbox("s1", false)
	mustDo(t, err)
	return state(t, ref.k, ref.e)
}

func sortedLines(ls []string) []string { slices.Sort(ls); return ls }

// TestGCPlansEachDrift makes each kind of drift by hand and checks that a dry
// run plans exactly what it calls for and changes nothing, that gc then does
// what was planned and ends in the expected state (the state before the
// drift, for a repair), and that a dry run after it finds nothing to do.
func TestGCPlansEachDrift(t *testing.T) {
	for _, d := range drifts() {
		t.Run(d.name, func(t *testing.T) {
			w := newDriftWorld(t)
			clean := state(t, w.k, w.e)
			if plan, err := w.e.GC(true); err != nil || len(plan) > 0 {
				t.Fatalf("before the drift, gc would do %q (error %v)", plan, err)
			}
			d.make(t, w)
			drifted, steps := state(t, w.k, w.e), w.k.steps

			plan, err := w.e.GC(true)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			var want []string
			if d.plan != nil {
				want = d.plan(w)
			}
			checkPlan(t, plan, want)
			if now := state(t, w.k, w.e); !slices.Equal(now, drifted) || w.k.steps != steps {
				t.Errorf("the dry run changed something (%d steps):\n%s", w.k.steps-steps, diffLines(drifted, now))
			}

			done, err := w.e.GC(false)
			if err != nil {
				t.Errorf("gc: %v", err)
			}
			if !sameLines(done, doneLines(plan)) {
				t.Errorf("gc did %q, the dry run planned %q", done, plan)
			}
			end := clean
			switch {
			case d.keep:
				end = drifted
			case d.end != nil:
				end = d.end(t, w, drifted)
			}
			if now := state(t, w.k, w.e); !slices.Equal(now, end) {
				t.Errorf("gc ended elsewhere than expected:\n%s", diffLines(end, now))
			}
			if plan, err := w.e.GC(true); err != nil || len(plan) > 0 {
				t.Errorf("after gc, a dry run would still do %q (error %v)", plan, err)
			}
		})
	}
}

// checkPlan checks that each of want is in exactly one line of plan, and
// plan has no other lines; and that a plan that forgets a sandbox does
// nothing else to it.
func checkPlan(t *testing.T, plan, want []string) {
	t.Helper()
	if len(plan) != len(want) {
		t.Errorf("the dry run planned %q, want %d lines: %q", plan, len(want), want)
	}
	for _, w := range want {
		if n := len(slices.DeleteFunc(slices.Clone(plan), func(l string) bool { return !strings.Contains(l, w) })); n != 1 {
			t.Errorf("%d lines of the plan say %q: %q", n, w, plan)
		}
	}
	for _, l := range plan {
		name, ok := strings.CutPrefix(l, "would forget sandbox ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ":")
		for _, o := range plan {
			if o != l && strings.Contains(o, "sandbox "+name+" ") {
				t.Errorf("the plan forgets sandbox %s and also says %q", name, o)
			}
		}
	}
}

// TestGCNothingToDo: gc on an empty root, on a root whose networks and
// sandboxes were all removed, and on a clean root, finds nothing to do.
func TestGCNothingToDo(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, k *fakeKernel, e *Engine)
	}{
		{"empty root", func(*testing.T, *fakeKernel, *Engine) {}},
		{"everything removed", func(t *testing.T, k *fakeKernel, e *Engine) {
			withTwoNetworks(t, k, e)
			_, err := e.CreateSandbox(SandboxSpec{Name: "s1", Networks: []string{"n1", "in"}, Publish: []string{"8080:80"}})
			mustDo(t, err)
			_, err = e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"container:s1"}})
			mustDo(t, err)
			_, err = e.RemoveSandbox("s1", true)
			mustDo(t, err)
			mustDo(t, e.RemoveNetwork("n1"))
			mustDo(t, e.RemoveNetwork("in"))
		}},
		{"a clean world", func(t *testing.T, k *fakeKernel, e *Engine) {
			withSandbox("8080:80")(t, k, e)
			_, err := e.CreateSandbox(SandboxSpec{Name: "h", Networks: []string{ModeHost}})
			mustDo(t, err)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := newFakeKernel(t)
			e := fakeEngine(t, k, true)
			c.setup(t, k, e)
			before, steps := state(t, k, e), k.steps
			for _, dryRun := range []bool{true, false} {
				if did, err := e.GC(dryRun); err != nil || len(did) > 0 {
					t.Errorf("gc (dry run %v) did %q (error %v)", dryRun, did, err)
				}
			}
			if after := state(t, k, e); !slices.Equal(before, after) || k.steps != steps {
				t.Errorf("gc changed something:\n%s", diffLines(before, after))
			}
		})
	}
}

// TestGCAfterReboot: after a reboot the kernel has none of nsnet's objects
// (bridges, namespaces, table, the resident, sysctls, and the markers in the
// run directory are gone); gc forgets the sandboxes and makes the networks
// again, as they were.
func TestGCAfterReboot(t *testing.T) {
	w := newDriftWorld(t)
	want := newDriftWorld(t)
	for _, name := range []string{"s1", "s2", "s3"} {
		_, err := want.e.RemoveSandbox(name, false)
		mustDo(t, err)
	}
	fresh := newFakeKernel(t)
	w.k.links, w.k.peers, w.k.sysctl, w.k.fw, w.k.res = fresh.links, fresh.peers, fresh.sysctl, nil, nil
	for path := range w.k.mounts {
		if filepath.Dir(path) == filepath.Join(w.k.dir, "netns") {
			delete(w.k.mounts, path)
			mustDo(t, os.Remove(path))
		}
	}
	mustDo(t, os.RemoveAll(filepath.Join(w.e.opts.RunDir, "netns")))
	mustDo(t, os.MkdirAll(filepath.Join(w.e.opts.RunDir, "netns"), 0o700))

	plan, err := w.e.GC(true)
	mustDo(t, err)
	checkPlan(t, plan, []string{
		"would forget sandbox s1: its namespace", "would forget sandbox s2: its namespace", "would forget sandbox s3: its namespace",
		"would recreate bridge " + w.n1.Bridge, "would recreate bridge " + w.in.Bridge,
		"would turn IPv4 forwarding back on", "would rewrite nftables tables inet and bridge nsnet-test (table is missing)",
	})
	// Forgetting the sandboxes rewrites the table on the way (their ports'
	// elements are missing), so gc does not list it again.
	rewrite := "rewrite nftables tables inet and bridge nsnet-test (table is missing)"
	done, err := w.e.GC(false)
	if err != nil || !sameLines(append(done, rewrite), doneLines(plan)) {
		t.Errorf("gc did %q (error %v), the dry run planned %q", done, err, plan)
	}
	if got, want := state(t, w.k, w.e), state(t, want.k, want.e); !slices.Equal(got, want) {
		t.Errorf("gc after a reboot ended elsewhere than removing the sandboxes does:\n%s", diffLines(want, got))
	}
	if plan, err := w.e.GC(true); err != nil || len(plan) > 0 {
		t.Errorf("after gc, a dry run would still do %q (error %v)", plan, err)
	}
}

// TestGCReadOnly: a read-only engine refuses to collect, even a dry run.
func TestGCReadOnly(t *testing.T) {
	k := newFakeKernel(t)
	e := fakeEngine(t, k, true)
	withNetwork(t, k, e)
	o := e.opts
	o.ReadOnly = true
	ro := reopen(t, k, o)
	for _, dryRun := range []bool{true, false} {
		if _, err := ro.GC(dryRun); !errors.Is(err, ErrReadOnly) {
			t.Errorf("gc (dry run %v) on a read-only engine: %v, want ErrReadOnly", dryRun, err)
		}
	}
	if nets, err := ro.Networks(); err != nil || len(nets) != 1 {
		t.Errorf("a read-only engine reads: %v, %v", nets, err)
	}
}

// TestGCFailureAtEveryStep fails each kernel step of each repair in turn:
// gc reports the failure (or absorbs it, as a firewall rewritten for a
// missing element), and gc run again completes the repair, ending where a
// gc without failures ends.
func TestGCFailureAtEveryStep(t *testing.T) {
	for _, d := range drifts() {
		if d.keep {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			want, steps := runGC(t, d, 0)
			for failAt := 1; failAt <= steps; failAt++ {
				runGC(t, d, failAt, want...)
			}
		})
	}
}

// runGC makes drift d and collects with step failAt failing (0: none), then
// collects again; it returns the end state and the steps the first gc took.
func runGC(t *testing.T, d driftCase, failAt int, want ...string) ([]string, int) {
	t.Helper()
	w := newDriftWorld(t)
	d.make(t, w)
	w.k.steps, w.k.log, w.k.failAt = 0, nil, failAt
	_, err := w.e.GC(false)
	w.k.failAt = 0
	steps, log := w.k.steps, w.k.log
	switch {
	case failAt == 0 && err != nil:
		t.Fatalf("gc: %v", err)
	case err != nil && !errors.Is(err, errInjected):
		t.Errorf("step %d (%s) failed: gc said %v, want the injected failure", failAt, log[failAt-1], err)
	case err == nil && failAt > 0: // absorbed: then it did all the same
		if got := state(t, w.k, w.e); !slices.Equal(got, want) {
			t.Errorf("step %d (%s) failed, gc said nothing, and ended elsewhere than without the failure:\n%s", failAt, log[failAt-1], diffLines(want, got))
		}
	}
	if failAt > 0 {
		if did, err := w.e.GC(false); err != nil {
			t.Errorf("step %d (%s) failed; gc again: %v (did %q)", failAt, log[failAt-1], err, did)
		}
		if got := state(t, w.k, w.e); !slices.Equal(got, want) {
			t.Errorf("step %d (%s) failed; gc again ended elsewhere than gc without the failure:\n%s", failAt, log[failAt-1], diffLines(want, got))
		}
	}
	if plan, err := w.e.GC(true); err != nil || len(plan) > 0 {
		t.Errorf("step %d failed; after gc again, a dry run would still do %q (error %v)", failAt, plan, err)
	}
	return state(t, w.k, w.e), steps
}

// TestForeignBridgeIsLeftAlone: once a network's bridge was deleted from
// outside, an interface of someone else's (unmarked, or another state root's)
// may take its name. gc neither repairs it nor puts the network's veths on
// it: it says so and fails, in a dry run too, changing nothing; a sandbox
// create on the network is refused. (The bridge deleted and not replaced is
// recreated: drifts' "bridge deleted".)
func TestForeignBridgeIsLeftAlone(t *testing.T) {
	for _, stranger := range []struct {
		name, alias string
		group       uint32
	}{
		{"unmarked", "", 0},
		{"another state root's", owner.Of("/elsewhere").NetworkMark("n1"), owner.Group},
	} {
		t.Run(stranger.name, func(t *testing.T) {
			w := newDriftWorld(t)
			w.k.mu.Lock()
			w.k.deleteLink(w.n1.Bridge)
			w.k.links[w.n1.Bridge] = &fakeLink{kind: "bridge", alias: stranger.alias, group: stranger.group, mtu: 1500}
			w.k.mu.Unlock()
			before := state(t, w.k, w.e)
			for _, dry := range []bool{true, false} {
				_, err := w.e.GC(dry)
				wantErr(t, fmt.Sprintf("gc (dry run %t)", dry), err, "network n1: its bridge "+w.n1.Bridge+" is not this state root's", "ip link del "+w.n1.Bridge)
				if now := state(t, w.k, w.e); !slices.Equal(before, now) {
					t.Errorf("gc (dry run %t) changed:\n%s", dry, diffLines(before, now))
				}
			}
			refused(t, w.k, w.e, func() error {
				_, err := w.e.CreateSandbox(SandboxSpec{Name: "s9", Networks: []string{"n1"}})
				return err
			}, "sandbox s9", "network n1: its bridge "+w.n1.Bridge+" is not this state root's")
			// network rm leaves it too.
			for _, sb := range []string{"s1", "s2"} {
				if _, err := w.e.RemoveSandbox(sb, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.e.RemoveNetwork("n1"); err != nil {
				t.Fatal(err)
			}
			if l, ok := w.k.hostLink(w.n1.Bridge); !ok || l.alias != stranger.alias || l.group != stranger.group {
				t.Errorf("network rm touched the stranger %s: %+v (%t)", w.n1.Bridge, l, ok)
			}
		})
	}
}

// TestForeignVethIsLeftAlone: an interface of someone else's that took the
// name of a sandbox's deleted host veth is neither repaired (put on the
// bridge, marked) nor deleted: gc says so and fails, in a dry run too,
// changing nothing.
func TestForeignVethIsLeftAlone(t *testing.T) {
	w := newDriftWorld(t)
	veth := w.s1.Endpoints[0].HostVeth
	w.k.mu.Lock()
	w.k.deleteLink(veth)
	w.k.links[veth] = &fakeLink{kind: "device", mtu: 1500, up: true}
	w.k.mu.Unlock()
	before := state(t, w.k, w.e)
	for _, dry := range []bool{true, false} {
		_, err := w.e.GC(dry)
		wantErr(t, fmt.Sprintf("gc (dry run %t)", dry), err, "veth "+veth+" of sandbox s1 is not this state root's", "ip link del "+veth)
		if now := state(t, w.k, w.e); !slices.Equal(before, now) {
			t.Errorf("gc (dry run %t) changed:\n%s", dry, diffLines(before, now))
		}
	}
}
