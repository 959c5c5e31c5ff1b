package observe

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/types"
)

// Reader reads the kernel. Paths name network namespaces; "" is the one the
// process runs in (the host's).
type Reader interface {
	Namespace(path string, hairpin []string) (netview.Snapshot, error)
	Identify(path string) (netns.ID, error)
	Sysctls(path string, keys []string) map[string]string
	Sockets(path string) ([]Socket, error)
	Table(name string) (firewall.View, error)
	Chains(skipTable string) ([]firewall.Chain, error)
	LegacyIptables() []string
	Nameservers(sandbox string) []netip.Addr
	Resident(root string) (resident.Status, error)
}

// Request says what to read: the store's view of the state root, and whose
// namespaces.
type Request struct {
	Root       string // the state root, whose resident is asked
	Table      string // its nftables table
	Networks   []types.Network
	Sandboxes  []types.Sandbox
	Read       []string // the sandboxes whose namespaces to read
	TableDiffs []string // how nsnet's table differs from the store (engine.FirewallDiff)
}

// HostSysctls are the host's settings that decide whether a sandbox's packet
// is forwarded: read once, and per device (hostDeviceSysctls) for every
// device that is not a bridge port (a sandbox's veth).
var HostSysctls = []string{
	"net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.all.rp_filter",
	"net.ipv4.conf.all.route_localnet", "net.bridge.bridge-nf-call-iptables",
}

func hostDeviceSysctls(dev string) []string {
	return []string{"net.ipv4.conf." + dev + ".forwarding", "net.ipv4.conf." + dev + ".rp_filter"}
}

// Gather reads what req asks for. It fails only when the host's own links
// cannot be read; any other part that cannot be read is recorded as such.
func Gather(r Reader, req Request) (*Snapshot, error) {
	s := &Snapshot{Table: req.Table, Networks: req.Networks, Sandboxes: req.Sandboxes, Spaces: map[string]*Namespace{}}
	host, err := r.Namespace("", hostVeths(req))
	if err != nil {
		return nil, err
	}
	s.Host = Namespace{Devices: host.Devices, Routes: host.Routes}
	keys := slices.Clone(HostSysctls)
	for _, d := range host.Devices {
		if d.Master == "" {
			keys = append(keys, hostDeviceSysctls(d.Name)...)
		}
	}
	s.Host.Sysctls = r.Sysctls("", keys)
	s.Host.Sockets, _ = r.Sockets("")
	for _, name := range req.Read {
		if sb, ok := s.Sandbox(name); ok {
			s.Spaces[name] = readSandbox(r, sb)
		}
	}
	s.Nsnet = readTable(r, req)
	if s.Chains, err = r.Chains(req.Table); err != nil {
		s.ChainsErr = err.Error()
	}
	s.LegacyIptables = r.LegacyIptables()
	s.Resident = readResident(r, req.Root)
	return s, nil
}

// hostVeths are the host ends of the sandboxes to read, whose bridge port
// flags (hairpin) are read too.
func hostVeths(req Request) []string {
	var out []string
	for _, sb := range req.Sandboxes {
		if slices.Contains(req.Read, sb.Name) {
			for _, ep := range sb.Endpoints {
				out = append(out, ep.HostVeth)
			}
		}
	}
	return out
}

func readSandbox(r Reader, sb types.Sandbox) *Namespace {
	ns := &Namespace{Path: sb.NetNS}
	if sb.NetNSIno != 0 {
		id, err := r.Identify(sb.NetNS)
		if err != nil {
			ns.Err = err.Error()
			return ns
		}
		if !id.Same(netns.ID{Dev: sb.NetNSDev, Ino: sb.NetNSIno, Born: sb.NetNSBorn}) {
			ns.Replaced = true
			return ns
		}
	}
	view, err := r.Namespace(sb.NetNS, nil)
	if err != nil {
		ns.Err = err.Error()
		return ns
	}
	ns.Devices, ns.Routes = view.Devices, view.Routes
	ns.Sockets, _ = r.Sockets(sb.NetNS)
	ns.Nameservers = r.Nameservers(sb.Name)
	return ns
}

func readTable(r Reader, req Request) Table {
	v, err := r.Table(req.Table)
	t := Table{View: v, Diffs: req.TableDiffs}
	if err != nil {
		t.Err = err.Error()
	}
	return t
}

func readResident(r Reader, root string) Resident {
	st, err := r.Resident(root)
	if err != nil {
		return Resident{}
	}
	res := Resident{Alive: true, PID: st.Pid, Held: map[string][]string{}, Zones: map[string]resolver.Zone{}}
	for _, h := range st.Sandboxes {
		res.Held[h.Sandbox] = h.Keys
	}
	for _, z := range st.Zones {
		res.Zones[z.Network] = z
	}
	return res
}

// sysctlPath is the path under /proc/sys of a dotted key; the device name
// of a per-device key may hold dots itself (eth0.100).
func sysctlPath(key string) string {
	const conf = "net.ipv4.conf."
	if rest, ok := strings.CutPrefix(key, conf); ok {
		if i := strings.LastIndex(rest, "."); i > 0 {
			return "net/ipv4/conf/" + rest[:i] + "/" + rest[i+1:]
		}
	}
	return strings.ReplaceAll(key, ".", "/")
}
