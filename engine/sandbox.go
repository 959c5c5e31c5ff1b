package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/portspec"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/sysctl"
	"github.com/nsnet/nsnet/internal/validate"
	"github.com/nsnet/nsnet/types"
)

// Sandbox is a stored sandbox.
type Sandbox = types.Sandbox

// Sandbox modes (Sandbox.Mode).
const (
	ModeBridge    = types.ModeBridge    // attached to bridge networks
	ModeHost      = types.ModeHost      // the host's own namespace, named
	ModeNone      = types.ModeNone      // its own namespace with only lo
	ModeContainer = types.ModeContainer // another sandbox's namespace (Sandbox.Container)
)

// Endpoint is a sandbox's attachment to a network.
type Endpoint = types.Endpoint

// SandboxSpec is the user's request for a sandbox.
type SandboxSpec struct {
	Name string
	// Networks holds the mode: one of "bridge" (the default network), a
	// network name, "host", "none" or "container:NAME". Several network names
	// attach the sandbox to each (eth0, eth1, ...). Empty means "bridge".
	Networks []string
	IP       string   // static address on the first network
	IP6      string   // static IPv6 address on the first network, which must be dual-stack
	MAC      string   // static MAC on the first network (derived from the IP if empty)
	NetNS    string   // adopt this existing namespace instead of creating one
	Publish  []string // -p specs: [HOST_IP:][HOST_PORT[-END]:]CTR_PORT[-END][/PROTO]
	// AutoRemove makes the sandbox go with the calling process (nsnet run
	// --rm): if that process dies without removing it, the next nsnet
	// command or gc does, once no process is left in its namespace.
	AutoRemove bool
	// Aliases are more names of the sandbox, on each of its networks but
	// the default one (which has no resolver), as --alias gives them.
	Aliases []string
	// DNS are the servers that names its resolver does not know go to
	// (default: its network's).
	DNS []string
	// Labels are the user's metadata, kept with the sandbox.
	Labels map[string]string
	// IfName names the sandbox's interface on its only network (default
	// eth0), as a container runtime asks for one (CNI_IFNAME).
	IfName string
	// Runtime marks the sandbox as a container runtime's (see
	// types.Sandbox.Runtime); nil for sandboxes of nsnet's own.
	Runtime *types.Runtime
}

// sandboxPlan is a validated SandboxSpec.
type sandboxPlan struct {
	sb          *Sandbox
	networks    []string
	ip          netip.Addr
	ip6         netip.Addr
	mac         net.HardwareAddr
	adopt       string
	adoptFile   *os.File // the checked namespace to adopt, bound through this descriptor
	ports       []portspec.Spec
	bound       boundPorts // host-port sockets bound while checking them
	auto        bool       // goes with the calling process (run --rm)
	madeDefault *Network   // the default network, if this create made it
	aliases     []string   // --alias, sorted, without repeats
	ifName      string     // the first interface's name (SandboxSpec.IfName)
}

// CreateSandbox validates spec, makes the namespace and its endpoints, and
// stores the sandbox.
func (e *Engine) CreateSandbox(spec SandboxSpec) (*Sandbox, error) {
	p, err := e.parseSandboxSpec(spec)
	if err != nil {
		return nil, err
	}
	if p.adoptFile != nil {
		defer p.adoptFile.Close()
	}
	if err := e.namesOutlive(p); err != nil {
		return nil, err
	}
	p.sb.ID = e.newID()
	p.sb.Created = e.clock().UTC()
	p.bound = boundPorts{}
	defer p.bound.close()
	err = e.mutate(func(tx *store.Tx, u *undo) error { return e.createSandbox(tx, u, p) })
	if err != nil {
		return nil, err
	}
	if n := p.madeDefault; n != nil { // as network create warns
		e.warnForwardDrops(n)
		e.warnLocalnet()
	}
	return p.sb, nil
}

// namesOutlive refuses a sandbox whose namespace name, once mounted, would
// vanish with the mount namespace the engine runs in (under ip netns exec):
// all but one that adopts /run/netns/NAME as itself.
func (e *Engine) namesOutlive(p *sandboxPlan) error {
	if p.adopt != "" && p.adopt == e.k.ns.Path(p.sb.Name) {
		return nil
	}
	if err := e.k.ns.NamesOutlive(); err != nil {
		return fmt.Errorf("sandbox %s: %w", p.sb.Name, err)
	}
	return nil
}

func (e *Engine) parseSandboxSpec(spec SandboxSpec) (p *sandboxPlan, err error) {
	if err := validate.Name("sandbox", spec.Name); err != nil {
		return nil, err
	}
	p = &sandboxPlan{sb: &Sandbox{Name: spec.Name, Runtime: spec.Runtime}, networks: spec.Networks, auto: spec.AutoRemove, ifName: spec.IfName}
	if p.sb.Labels, err = parseLabels("sandbox "+spec.Name, spec.Labels); err != nil {
		return nil, err
	}
	if len(p.networks) == 0 {
		p.networks = []string{DefaultNetwork}
	}
	if err := p.parseMode(); err != nil {
		return nil, err
	}
	if err := p.parseAddresses(spec); err != nil {
		return nil, err
	}
	if p.ports, err = parseSpecs(spec.Publish); err != nil {
		return nil, err
	}
	if err := p.parseNames(spec); err != nil {
		return nil, err
	}
	if err := p.parseRuntime(spec); err != nil {
		return nil, err
	}
	if len(p.ports) > 0 && p.sb.Mode != store.ModeBridge {
		return nil, fmt.Errorf("-p needs a bridge network, not --network %s: a sandbox publishes ports on a bridge network's address", p.networks[0])
	}
	if spec.NetNS != "" {
		if p.sb.Mode == store.ModeHost || p.sb.Mode == store.ModeContainer {
			return nil, fmt.Errorf("--netns cannot be used with --network %s: that mode uses an existing namespace already", p.networks[0])
		}
		if p.adoptFile, err = e.openAdopted(spec.Name, spec.NetNS); err != nil {
			return nil, err
		}
		p.adopt = spec.NetNS
	}
	return p, nil
}

// parseNames checks --alias and --dns.
func (p *sandboxPlan) parseNames(spec SandboxSpec) (err error) {
	if p.sb.DNS, err = parseDNS("sandbox "+spec.Name, spec.DNS); err != nil {
		return err
	}
	for _, a := range spec.Aliases {
		if err := validate.Name("alias", a); err != nil {
			return fmt.Errorf("sandbox %s: %w", spec.Name, err)
		}
	}
	if len(spec.Aliases) > 0 && (p.sb.Mode != store.ModeBridge || (len(p.networks) == 1 && p.networks[0] == DefaultNetwork)) {
		return fmt.Errorf("--alias needs a network made with network create: the default network %s and the host, none and container: modes have no resolver", DefaultNetwork)
	}
	p.aliases = slices.Compact(slices.Sorted(slices.Values(spec.Aliases)))
	return nil
}

// parseRuntime checks the fields a container runtime gives: an interface
// name needs exactly one bridge network, and a runtime's sandbox adopts the
// runtime's namespace.
func (p *sandboxPlan) parseRuntime(spec SandboxSpec) error {
	if spec.IfName != "" {
		if err := validIfName(spec.IfName); err != nil {
			return fmt.Errorf("sandbox %s: %w", spec.Name, err)
		}
		if p.sb.Mode != store.ModeBridge || len(p.networks) != 1 {
			return fmt.Errorf("sandbox %s: an interface name needs exactly one bridge network, not --network %s", spec.Name, strings.Join(p.networks, " --network "))
		}
	}
	if r := spec.Runtime; r != nil {
		if r.Kind == "" || r.ContainerID == "" {
			return fmt.Errorf("sandbox %s: a runtime's sandbox needs its kind and container ID, got %+v", spec.Name, *r)
		}
		if spec.NetNS == "" || spec.AutoRemove {
			return fmt.Errorf("sandbox %s: a runtime's sandbox adopts the runtime's namespace (NetNS) and goes when the runtime removes it (not AutoRemove)", spec.Name)
		}
	}
	return nil
}

// validIfName checks the name of a sandbox's interface: a Linux interface
// name other than lo.
func validIfName(name string) error {
	if name == "lo" {
		return fmt.Errorf("interface name lo is the namespace's loopback: choose another")
	}
	return validate.IfName(name)
}

// openAdopted opens and checks the namespace given with --netns, refusing the
// namespace nsnet itself runs in (the host's), by whatever path it is named.
func (e *Engine) openAdopted(name, path string) (*os.File, error) {
	f, err := e.k.ns.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", name, err)
	}
	id, err := e.k.ns.IDOf(f)
	self, serr := e.k.ns.Self()
	switch {
	case err != nil || serr != nil:
		err = errors.Join(err, serr)
	case id.Same(self):
		err = fmt.Errorf("sandbox %s: --netns %s is the host's own network namespace, where nsnet runs: use --network host to name it", name, path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (p *sandboxPlan) parseMode() error {
	first := p.networks[0]
	special := first == store.ModeHost || first == store.ModeNone || strings.HasPrefix(first, "container:")
	if special && len(p.networks) > 1 {
		return fmt.Errorf("--network %s cannot be combined with other networks", first)
	}
	switch {
	case first == store.ModeHost || first == store.ModeNone:
		p.sb.Mode = first
	case strings.HasPrefix(first, "container:"):
		p.sb.Mode, p.sb.Container = store.ModeContainer, strings.TrimPrefix(first, "container:")
		if err := validate.Name("sandbox", p.sb.Container); err != nil {
			return fmt.Errorf("--network %s: %w", first, err)
		}
	default:
		p.sb.Mode = store.ModeBridge
		seen := map[string]bool{}
		for _, n := range p.networks {
			if err := validate.Name("network", n); err != nil {
				return err
			}
			if seen[n] {
				return fmt.Errorf("network %s is given twice", n)
			}
			seen[n] = true
		}
	}
	return nil
}

func (p *sandboxPlan) parseAddresses(spec SandboxSpec) error {
	if spec.IP == "" && spec.IP6 == "" && spec.MAC == "" {
		return nil
	}
	if p.sb.Mode != store.ModeBridge {
		what := "--ip and --mac need"
		if spec.IP6 != "" {
			what = "--ip6 needs"
		}
		return fmt.Errorf("%s a bridge network, not --network %s", what, p.networks[0])
	}
	if spec.IP6 != "" {
		ip, err := validate.IPv6(spec.IP6)
		if err != nil {
			return fmt.Errorf("--ip6: %w", err)
		}
		p.ip6 = ip
	}
	if spec.IP != "" {
		ip, err := validate.IPv4(spec.IP)
		if err != nil {
			return err
		}
		p.ip = ip
	}
	if spec.MAC != "" {
		mac, err := validate.MAC(spec.MAC)
		if err != nil {
			return err
		}
		p.mac = mac
	}
	return nil
}

func (e *Engine) createSandbox(tx *store.Tx, u *undo, p *sandboxPlan) error {
	sb := p.sb
	if _, err := tx.SandboxRecord(sb.Name); err == nil {
		return fmt.Errorf("sandbox %s already exists: remove it first (nsnet sandbox rm %s) or choose another name", sb.Name, sb.Name)
	}
	nets, err := e.resolveNetworks(tx, u, p)
	if err != nil {
		return err
	}
	fixed, err := e.reserveCluster(u, p, nets)
	if err != nil {
		return err
	}
	eps, err := planEndpoints(tx, p, nets, fixed)
	if err != nil {
		return err
	}
	if err := e.reservePorts(tx, p, eps); err != nil {
		return err
	}
	if err := e.intend(u, e.createIntent(sb, eps)); err != nil {
		return err
	}
	if err := e.makeNamespace(tx, u, p); err != nil {
		return err
	}
	e.checkpoint("sandbox-create:after-netns")
	// The names and the files go while the veths are made (not before the
	// namespace: its name may be taken, and a container: sandbox learns
	// there whose namespace it shares).
	served, settleNames := e.putNamesWhile(tx, u, sb, eps)
	defer served()
	written := e.writeEtcWhile(tx, u, sb, eps)
	defer written()
	if err := e.attachAll(tx, u, sb, nets, eps); err != nil {
		return err
	}
	if err := tx.PutSandbox(sb); err != nil {
		return err
	}
	if err := putRun(tx, p); err != nil {
		return err
	}
	served() // holdPorts uses the resident session: the names request is answered first (settleNames has its error)
	if err := e.holdPorts(tx, u, sb, sb.Ports, p.bound); err != nil {
		return err
	}
	if err := settleNames(); err != nil {
		return err
	}
	if err := written(); err != nil {
		return err
	}
	return e.publish(tx, u, firewallPorts(sb))
}

// putRun records that an AutoRemove sandbox goes with this process.
func putRun(tx *store.Tx, p *sandboxPlan) error {
	if !p.auto {
		return nil
	}
	r, err := thisRun(p.sb.ID)
	if err != nil {
		return fmt.Errorf("sandbox %s: identify this process for --rm: %w", p.sb.Name, err)
	}
	return tx.PutRun(p.sb.Name, r)
}

// reservePorts checks that the sandbox may publish and takes its host ports.
func (e *Engine) reservePorts(tx *store.Tx, p *sandboxPlan, eps []Endpoint) error {
	if len(p.ports) == 0 {
		return nil
	}
	sb := p.sb
	if err := checkPublishable(&Sandbox{Name: sb.Name, Mode: sb.Mode, Endpoints: eps}); err != nil {
		return err
	}
	if err := checkIPv6Ports(&Sandbox{Name: sb.Name, Endpoints: eps}, p.ports); err != nil {
		return err
	}
	var err error
	sb.Ports, err = e.allocatePorts(tx, sb, eps, p.ports, p.bound)
	return err
}

// createIntent lists what creating sb will make in the kernel.
func (e *Engine) createIntent(sb *Sandbox, eps []Endpoint) *journal.Intent {
	it := &journal.Intent{Op: journal.OpSandboxCreate, Name: sb.Name, ObjectID: sb.ID, Mounts: []string{e.k.ns.Path(sb.Name)}}
	for _, ep := range eps {
		it.Links = append(it.Links, ep.HostVeth)
	}
	return it
}

// resolveNetworks looks up the networks of a bridge-mode sandbox, making the
// default network if it is asked for and missing.
func (e *Engine) resolveNetworks(tx *store.Tx, u *undo, p *sandboxPlan) ([]*Network, error) {
	if p.sb.Mode != store.ModeBridge {
		return nil, nil
	}
	var out []*Network
	seen := map[string]bool{}
	for _, ref := range p.networks {
		n, err := networkByRef(tx, ref)
		if errors.Is(err, store.ErrNotFound) && ref == DefaultNetwork {
			n = &Network{Name: DefaultNetwork, MTU: DefaultMTU, ID: e.newID()}
			err = e.createNetwork(tx, u, n, picks{subnet: true, gateway: true})
			p.madeDefault = n
		}
		if err != nil {
			return nil, err
		}
		if seen[n.Name] {
			return nil, fmt.Errorf("network %s is given twice (--network %s)", n.Name, ref)
		}
		seen[n.Name] = true
		out = append(out, n)
	}
	return out, nil
}

// planEndpoints picks interface names, addresses and MACs, and checks static
// ones, before anything is made.
// fixed has the addresses of overlay networks, reserved in the cluster.
func planEndpoints(tx *store.Tx, p *sandboxPlan, nets []*Network, fixed map[string]netip.Addr) ([]Endpoint, error) {
	var eps []Endpoint
	routed := false // the default route goes via the first non-internal network
	for i, n := range nets {
		ep := Endpoint{Network: n.Name, IfName: fmt.Sprintf("eth%d", i), HostVeth: hostVethName(p.sb.ID, n.Name)}
		if p.ifName != "" {
			ep.IfName = p.ifName // the only network (parseRuntime)
		}
		if n.Name != DefaultNetwork {
			ep.Aliases = p.aliases
		}
		var ip, ip6 netip.Addr
		var mac net.HardwareAddr
		if i == 0 {
			ip, ip6, mac = p.ip, p.ip6, p.mac
		}
		if a, ok := fixed[n.Name]; ok {
			ip = a
		}
		if err := addressEndpoint(tx, n, &ep, ip, mac); err != nil {
			return nil, err
		}
		if err := addressEndpoint6(tx, n, &ep, ip6); err != nil {
			return nil, err
		}
		if !n.Internal && !routed {
			routeVia(&ep, n)
			routed = true
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// addressEndpoint gives ep its address on n (ip if valid and free, else the
// next free one after the address last handed out there, round-robin) and its
// MAC (mac if given, else derived from the address), refusing a MAC another
// interface on n has.
func addressEndpoint(tx *store.Tx, n *Network, ep *Endpoint, ip netip.Addr, mac net.HardwareAddr) error {
	held := func(a netip.Addr) bool { return tx.LeaseHolder(n.Name, a) != "" }
	if ip.IsValid() {
		if err := ipam.CheckStatic(n.Subnet, n.Gateway, ip, held); err != nil {
			if holder := tx.LeaseHolder(n.Name, ip); holder != "" {
				return fmt.Errorf("--ip %s on network %s: held by sandbox %s: %w", ip, n.Name, holder, err)
			}
			return fmt.Errorf("--ip %s on network %s: %w", ip, n.Name, err)
		}
	} else {
		// Skip addresses whose derived MAC another sandbox has as its
		// --mac. AllocateAfter asks in ascending order (from the last
		// address given, then from the lowest): leased walks the leases
		// at most twice, however many there are.
		leased := tx.Leased(n.Name)
		taken := func(a netip.Addr) bool { return leased(a) || tx.MACHolder(n.Name, ipam.MACFromIP(a).String()) != "" }
		var err error
		if ip, err = ipam.AllocateAfter(n.Subnet, n.Gateway, tx.LastGiven(n.Name, false), taken); err != nil {
			return fmt.Errorf("network %s: %w; remove unused sandboxes or use a larger --subnet", n.Name, err)
		}
		if err := tx.PutLastGiven(n.Name, ip); err != nil {
			return err
		}
	}
	given := mac != nil
	if !given {
		mac = ipam.MACFromIP(ip)
	}
	if err := checkMAC(tx, n, mac.String(), given); err != nil {
		return err
	}
	ep.Address, ep.MAC = netip.PrefixFrom(ip, n.Subnet.Bits()), mac.String()
	return nil
}

// addressEndpoint6 gives ep its IPv6 address on a dual-stack n: ip if valid
// and free, else the next free one after the last handed out there. A static
// ip on an IPv4-only network is refused.
func addressEndpoint6(tx *store.Tx, n *Network, ep *Endpoint, ip netip.Addr) error {
	if !n.IPv6() {
		if ip.IsValid() {
			return fmt.Errorf("--ip6 %s on network %s: the network is IPv4 only: give --ip6 for a network made with --ipv6", ip, n.Name)
		}
		return nil
	}
	if ip.IsValid() {
		held := func(a netip.Addr) bool { return tx.LeaseHolder(n.Name, a) != "" }
		if err := ipam.CheckStatic(n.Subnet6, n.Gateway6, ip, held); err != nil {
			if holder := tx.LeaseHolder(n.Name, ip); holder != "" {
				return fmt.Errorf("--ip6 %s on network %s: held by sandbox %s: %w", ip, n.Name, holder, err)
			}
			return fmt.Errorf("--ip6 %s on network %s: %w", ip, n.Name, err)
		}
	} else {
		var err error
		if ip, err = ipam.AllocateAfter(n.Subnet6, n.Gateway6, tx.LastGiven(n.Name, true), tx.Leased(n.Name)); err != nil {
			return fmt.Errorf("network %s: %w; remove unused sandboxes or use a larger IPv6 --subnet", n.Name, err)
		}
		if err := tx.PutLastGiven(n.Name, ip); err != nil {
			return err
		}
	}
	ep.Address6 = netip.PrefixFrom(ip, n.Subnet6.Bits())
	return nil
}

// routeVia makes ep carry the sandbox's default routes, via n's gateways.
func routeVia(ep *Endpoint, n *Network) {
	ep.Gateway = n.Gateway
	if n.IPv6() {
		ep.Gateway6 = n.Gateway6
	}
}

// checkMAC refuses a MAC that the network's bridge or another sandbox on it
// has already: two interfaces with one MAC on a bridge break both.
func checkMAC(tx *store.Tx, n *Network, mac string, static bool) error {
	what, fix := "--mac "+mac, "choose another --mac, or leave it out to derive one from the address"
	if !static {
		what, fix = "MAC "+mac+" (derived from --ip)", "choose another --ip, or give a --mac"
	}
	if mac == n.BridgeMAC {
		return fmt.Errorf("%s on network %s: it is the MAC of the network's bridge %s: choose another --mac", what, n.Name, n.Bridge)
	}
	if holder := tx.MACHolder(n.Name, mac); holder != "" {
		return fmt.Errorf("%s on network %s: already used by sandbox %s: %s", what, n.Name, holder, fix)
	}
	return nil
}

// hostVethName is the host end's name: stable for a sandbox and network, and
// within the kernel's 15 characters.
func hostVethName(sandboxID, network string) string {
	h := sha256.Sum256([]byte(sandboxID + "/" + network))
	return "veth" + hex.EncodeToString(h[:])[:8]
}

// makeNamespace creates, adopts or shares the sandbox's namespace, names it
// under netns.Dir and records its ID.
func (e *Engine) makeNamespace(tx *store.Tx, u *undo, p *sandboxPlan) error {
	sb := p.sb
	named := e.k.ns.Path(sb.Name)
	src, err := e.namespaceSource(tx, p)
	if err != nil {
		return err
	}
	if src != nil && src != p.adoptFile {
		defer src.Close()
	}
	sb.NetNS = named
	switch {
	case p.adopt == named:
		sb.Mounted = false // adopting /run/netns/NAME as itself
		err = e.recordNamespace(sb, src)
	case e.k.ns.Exists(named):
		if _, err := e.k.ns.Identify(named); err != nil {
			return fmt.Errorf("sandbox %s: %s exists and is no network namespace (an interrupted ip netns add, or a name whose mount vanished, leaves such a file): remove it, or choose another sandbox name", sb.Name, named)
		}
		return fmt.Errorf("a network namespace named %s already exists (%s): choose another sandbox name, or adopt it with --netns %s", sb.Name, named, named)
	default:
		err = e.mountNamespace(u, sb, src)
	}
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", sb.Name, err)
	}
	if sb.Mode == store.ModeHost || sb.Mode == store.ModeContainer {
		return nil
	}
	if err := e.claimNamespace(tx, sb); err != nil {
		return err
	}
	if sb.Mode == store.ModeNone {
		return e.upLoopback(sb) // bridge mode raises lo with its endpoint
	}
	return nil
}

// upLoopback raises lo in sb's namespace.
func (e *Engine) upLoopback(sb *Sandbox) error {
	ns, err := e.openOwnNamespace(sb)
	if err != nil {
		return err
	}
	defer ns.Close()
	host, err := e.hostLinks()
	if err != nil {
		return err
	}
	return host.UpLoopback(ns)
}

// setNetnsID records id as the ID of sb's namespace.
func setNetnsID(sb *Sandbox, id netns.ID) {
	sb.NetNSDev, sb.NetNSIno, sb.NetNSBorn = id.Dev, id.Ino, id.Born
}

// recordNamespace keeps the ID of the namespace f in sb.
func (e *Engine) recordNamespace(sb *Sandbox, f *os.File) error {
	id, err := e.k.ns.IDOf(f)
	setNetnsID(sb, id)
	return err
}

// claimNamespace records that sb has its namespace, refusing one that
// another sandbox still has. A claim whose sandbox no longer has that
// namespace is stale: its name was deleted outside nsnet, and the namespace
// lives on under another name, or went and the kernel, which numbers
// namespaces lowest free first, gave its number to sb's. sb takes the claim
// over, with a warning that gc forgets the other.
func (e *Engine) claimNamespace(tx *store.Tx, sb *Sandbox) error {
	if other := tx.NamespaceHolder(sb.NetNSIno); other != "" {
		why := e.staleClaim(tx, other)
		if why == "" {
			return fmt.Errorf("sandbox %s: that namespace already belongs to sandbox %s: use --network container:%s to share it", sb.Name, other, other)
		}
		e.opts.Warn(fmt.Sprintf("sandbox %s takes over namespace %s from sandbox %s, which no longer has it (%s): run nsnet gc to forget sandbox %s",
			sb.Name, netnsID(sb), other, why, other))
	}
	return tx.PutNamespace(sb.NetNSIno, sb.Name)
}

// staleClaim says why the named sandbox no longer has the namespace it
// claims, or "" if it still has.
func (e *Engine) staleClaim(tx *store.Tx, name string) string {
	sb, err := tx.SandboxRecord(name)
	if err != nil {
		return "its record is gone"
	}
	return e.vanishedWhy(sb)
}

// mountNamespace creates a namespace at sb.NetNS (src == nil) or names src
// there, marking the mount, with the namespace's ID, as this root's before it
// exists.
func (e *Engine) mountNamespace(u *undo, sb *Sandbox, src *os.File) error {
	sb.Mounted, sb.OwnsNetNS = true, src == nil
	mark := func(id netns.ID) error {
		setNetnsID(sb, id)
		if err := e.markers.Put(journal.Marker{Name: sb.Name, Root: e.opts.Root, Owns: sb.OwnsNetNS, NetNS: id}); err != nil {
			return err
		}
		u.push(func() error { return e.markers.Delete(sb.Name) })
		return nil
	}
	var err error
	if src == nil {
		err = e.k.ns.Create(sb.NetNS, func(id netns.ID) error { return e.newNamespace(sb, id, mark) })
	} else {
		var id netns.ID
		if id, err = e.k.ns.IDOf(src); err == nil {
			err = mark(id)
		}
		if err == nil {
			err = e.k.ns.Bind(src, sb.NetNS)
		}
	}
	if err != nil {
		return err
	}
	u.push(func() error { return e.k.ns.Remove(sb.NetNS) })
	return nil
}

// newNamespace prepares the namespace id that nsnet has just made for sb,
// before it is named (netns.Create runs this on a thread inside it): it is
// marked, and for a bridge sandbox IPv6 is turned off for every interface
// made in it from now on (net.ipv6.conf.default.disable_ipv6), as Docker
// does for sandboxes of IPv4-only networks, so that the sandbox's eth0 never
// has IPv6 and needs no write of its own in the namespace (attachEndpoint).
// lo, there already, keeps its ::1.
func (e *Engine) newNamespace(sb *Sandbox, id netns.ID, mark func(netns.ID) error) error {
	if err := mark(id); err != nil {
		return err
	}
	if sb.Mode != store.ModeBridge {
		return nil
	}
	if _, err := e.k.sys.Set(sysctl.DisableIPv6("default"), "1"); err != nil && !errors.Is(err, sysctl.ErrNoIPv6) {
		return fmt.Errorf("turn IPv6 off in the new namespace: %w", err)
	}
	return nil
}

// namespaceSource opens the namespace a sandbox uses; nil for a new one.
func (e *Engine) namespaceSource(tx *store.Tx, p *sandboxPlan) (*os.File, error) {
	switch p.sb.Mode {
	case store.ModeHost:
		return e.k.ns.OpenSelf()
	case store.ModeContainer:
		other, err := sandboxByRef(tx, p.sb.Container)
		if err != nil {
			return nil, fmt.Errorf("--network container:%s: %w", p.sb.Container, err)
		}
		p.sb.Container = other.Name // sharers are found by the owner's name
		return e.openOwnNamespace(other)
	}
	return p.adoptFile, nil
}

// openOwnNamespace opens sb's namespace, refusing one that is not the
// namespace sb was given (its name was removed and made again).
func (e *Engine) openOwnNamespace(sb *Sandbox) (*os.File, error) {
	f, err := e.k.ns.Open(sb.NetNS)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", sb.Name, err)
	}
	if id, err := e.k.ns.IDOf(f); err != nil || !sameNamespace(sb, id) {
		f.Close()
		return nil, fmt.Errorf("sandbox %s: %s is no longer the namespace it was given (it was removed and made again by someone else): run nsnet gc to forget the sandbox", sb.Name, sb.NetNS)
	}
	return f, nil
}

// sameNamespace reports whether id is sb's recorded namespace (records
// older than namespace IDs match any).
func sameNamespace(sb *Sandbox, id netns.ID) bool {
	return (sb.NetNSDev == 0 && (sb.NetNSIno == 0 || sb.NetNSIno == id.Ino)) || netnsID(sb).Same(id)
}

// attachAll makes sb's endpoints, in order, in its namespace.
func (e *Engine) attachAll(tx *store.Tx, u *undo, sb *Sandbox, nets []*Network, eps []Endpoint) error {
	if len(eps) == 0 {
		return nil
	}
	ns, err := e.openOwnNamespace(sb)
	if err != nil {
		return err
	}
	defer ns.Close()
	for i := range eps {
		if err := e.attach(tx, u, ns, sb, nets[i], eps[i]); err != nil {
			return err
		}
		sb.Endpoints = append(sb.Endpoints, eps[i])
		e.checkpoint("sandbox-create:after-veth")
	}
	return nil
}

// attach makes one endpoint in the namespace ns, guarded by anti-spoofing
// from the start, and leases its address.
func (e *Engine) attach(tx *store.Tx, u *undo, ns *os.File, sb *Sandbox, n *Network, ep Endpoint) error {
	host, err := e.hostLinks()
	if err != nil {
		return err
	}
	if err := e.retireReleased(tx, host, sb, n, ep); err != nil {
		return err
	}
	guarded := e.guardWhile(tx, u, sb, n, ep)
	err = e.attachEndpoint(host, ns, sb, n, ep, sb.OwnsNetNS, guarded)
	if gerr := guarded(); gerr != nil { // from here nothing runs beside tx
		return gerr
	}
	if errors.Is(err, link.ErrNoBridge) {
		// Deleted from outside: restore it, with the ports it had, and retry.
		if err = e.restoreBridge(tx, host, n); err == nil {
			err = e.attachEndpoint(host, ns, sb, n, ep, sb.OwnsNetNS, guarded)
		}
	}
	if errors.Is(err, link.ErrForeignBridge) {
		return foreignBridge(n, err)
	}
	if err != nil {
		return err
	}
	u.push(func() error { return host.DeleteLink(ep.HostVeth) })
	if err := tx.PutLease(n.Name, ep.Address.Addr(), sb.Name); err != nil {
		return err
	}
	if ep.Address6.IsValid() {
		if err := tx.PutLease(n.Name, ep.Address6.Addr(), sb.Name); err != nil {
			return err
		}
	}
	return tx.PutMAC(n.Name, ep.MAC, sb.Name)
}

// retireReleased sets down the pairs released with their namespaces
// (releaseWithNamespace) that the kernel has not destroyed yet and that had
// ep's addresses or MAC on n, so that their bridge forgets the MAC on them and
// sends them nothing, and forgets them: from now on ep alone answers for
// those. Pairs that are gone, or no longer this root's, are only forgotten.
func (e *Engine) retireReleased(tx *store.Tx, host links, sb *Sandbox, n *Network, ep Endpoint) error {
	for _, veth := range tx.ReleasedWith(n.Name, []netip.Addr{ep.Address.Addr(), ep.Address6.Addr()}, ep.MAC) {
		alias, _, ok, err := host.Mark(veth)
		if err != nil {
			return err
		}
		if _, released := e.owner.Released(alias); ok && released {
			if err := host.ReleaseVeth(veth, alias); err != nil {
				return fmt.Errorf("sandbox %s on network %s: set down %s, the veth of a removed sandbox that had its address or MAC: %w", sb.Name, n.Name, veth, err)
			}
		}
		if err := tx.ForgetReleased(n.Name, veth); err != nil {
			return err
		}
	}
	return nil
}

// foreignBridge is the error for n's bridge found to be someone else's
// interface (why says how): nsnet attaches nothing to it and repairs nothing
// on it.
func foreignBridge(n *Network, why error) error {
	return fmt.Errorf("network %s: its bridge %s is not this state root's (%v): someone else's interface has its name, and nsnet leaves it alone: "+
		"delete it (ip link del %s) and run nsnet gc to make the network's bridge again, or remove the network", n.Name, n.Bridge, why, n.Bridge)
}

// restoreBridge recreates n's bridge and re-enslaves the host veths of the
// sandboxes attached to it.
func (e *Engine) restoreBridge(tx *store.Tx, host links, n *Network) error {
	if err := e.createBridge(host, n); err != nil {
		return err
	}
	sbs, err := tx.Sandboxes()
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range sbs {
		for _, ep := range s.Endpoints {
			if ep.Network != n.Name {
				continue
			}
			if ok, err := host.Exists(ep.HostVeth); err == nil && ok {
				errs = append(errs, host.SetMaster(ep.HostVeth, n.Bridge))
			}
		}
	}
	return errors.Join(errs...)
}

// attachEndpoint makes ep's veth pair as the store describes it, with its
// peer in the namespace ns (sb's, opened with openOwnNamespace). v6Off says
// the namespace turns IPv6 off on every new interface already (one this
// command made, see newNamespace): the peer then needs no write of its own.
func (e *Engine) attachEndpoint(host links, ns *os.File, sb *Sandbox, n *Network, ep Endpoint, v6Off bool, guarded func() error) error {
	v := e.vethSpec(ns, sb, n, ep, guarded)
	if v6Off && !ep.Address6.IsValid() {
		v.BeforeUp = nil
	}
	if err := host.AttachVeth(v); err != nil {
		return fmt.Errorf("sandbox %s on network %s: %w", sb.Name, n.Name, err)
	}
	return nil
}

// vethSpec is ep's veth pair as the store describes it, with its peer in the
// namespace ns; its host end goes up only once guarded (the port's
// anti-spoofing elements are in place) returns without error.
func (e *Engine) vethSpec(ns *os.File, sb *Sandbox, n *Network, ep Endpoint, guarded func() error) link.Veth {
	mac, _ := parseMAC(ep.MAC)
	return link.Veth{
		HostName: ep.HostVeth, Bridge: n.Bridge, BridgeOwned: e.ownsByGroup, MTU: n.MTU,
		Alias: e.owner.SandboxMark(sb.Name, n.Name), Group: owner.Group,
		NetNS: ns, PeerName: ep.IfName, PeerMAC: mac,
		Address: ep.Address, Gateway: ep.Gateway, Address6: ep.Address6, Gateway6: ep.Gateway6,
		HostBeforeUp: func() error {
			if err := guarded(); err != nil {
				return err
			}
			return e.disableIPv6Here(ep.HostVeth)
		},
		BeforeUp: func() error { return e.setIPv6In(ns, ep) },
	}
}

func parseMAC(s string) (net.HardwareAddr, error) { return net.ParseMAC(s) }

func sandboxNotFound(name string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("sandbox %s %w (see nsnet sandbox ls)", name, store.ErrNotFound)
	}
	return err
}

func joinNames(names []string) string { return strings.Join(names, " ") }
