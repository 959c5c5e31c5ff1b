package engine

// The state root's resident process (package resident): one per root, it
// keeps the published host ports of every sandbox bound and serves the names
// of every user network. It holds nothing the store does not: each command
// sends it its change while it holds the store's lock, before it returns,
// and a command (or gc) that finds none running starts one and gives it the
// whole state of the store (giveEverything). The command that takes the last
// port or name from it stops it (stopIdleResident).

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/hostport"
	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/internal/store"
)

// residentOn reports whether this engine runs a resident (Options.Resident).
func (e *Engine) residentOn() bool { return e.opts.Resident != "" }

// withResident makes a change to the resident with fn. If none answers and
// start is set, it starts one and gives it everything tx calls for, which
// includes fn's change (callers call it once tx has it), instead; started
// says so. Without start, a resident that does not run needs no change.
// bound holds the host-port sockets the command bound already; own is the
// sandbox the command is about, whose ports must all be held.
func (e *Engine) withResident(tx *store.Tx, u *undo, bound boundPorts, own string, start bool, fn func() error) (started bool, err error) {
	err = fn()
	if !errors.Is(err, resident.ErrNotRunning) {
		return false, err
	}
	if !start {
		return false, nil
	}
	return true, e.startResident(tx, u, bound, own, e.warnError)
}

func (e *Engine) warnError(err error) { e.opts.Warn(err.Error()) }

// startResident starts the resident and gives it everything tx calls for;
// u, if not nil, stops it again on undo. bound (nil: none) has the sockets
// the command bound already, and gets those bound here. Ports of sandboxes other than own
// that cannot be held are passed to report rather than failing the start.
func (e *Engine) startResident(tx *store.Tx, u *undo, bound boundPorts, own string, report func(error)) error {
	if bound == nil { // the command bound none: what is bound here is closed here
		bound = boundPorts{}
		defer bound.close()
	}
	if err := e.k.res.Stop(); err != nil { // the socket of one that died, or one that does not answer
		return err
	}
	if _, err := e.k.res.Start(); err != nil {
		return err
	}
	if u != nil {
		u.push(e.k.res.Stop)
	}
	return e.giveEverything(tx, bound, own, report)
}

// giveEverything hands a resident that was just started every held port of
// every sandbox in tx (binding those not in bound) and every zone.
func (e *Engine) giveEverything(tx *store.Tx, bound boundPorts, own string, report func(error)) error {
	sbs, err := tx.Sandboxes()
	if err != nil {
		return err
	}
	for i := range sbs {
		err := e.holdAll(&sbs[i], bound)
		switch {
		case err != nil && sbs[i].Name == own:
			return err
		case err != nil:
			report(fmt.Errorf("%w: they stay unheld until nsnet gc holds them", err))
		}
	}
	zones, err := e.allZones(tx, nil)
	if err != nil {
		return err
	}
	return e.k.res.Serve(resident.Names{Zones: zones, All: true})
}

// holdAll hands all of sb's held ports to the resident.
func (e *Engine) holdAll(sb *Sandbox, bound boundPorts) error {
	ep, ok := publishingEndpoint(sb)
	if !ok || len(heldKeys(heldPorts(sb))) == 0 {
		return nil
	}
	ports, err := e.bindAll(sb.Ports, ep.Address.Addr(), bound)
	if err != nil {
		return fmt.Errorf("hold the ports of sandbox %s: %w", sb.Name, err)
	}
	ns, err := e.namespaceOf(sb)
	if err != nil {
		return err
	}
	return e.k.res.Hold(sb.Name, ns, ports)
}

// namespaceOf is sb's namespace as the resident takes it: its path and the
// ID it was given (for a record older than namespace IDs, what the path
// names now).
func (e *Engine) namespaceOf(sb *Sandbox) (resident.Namespace, error) {
	ns := resident.Namespace{Path: sb.NetNS, Dev: sb.NetNSDev, Ino: sb.NetNSIno, Born: sb.NetNSBorn}
	if ns.Dev != 0 {
		return ns, nil
	}
	id, err := e.k.ns.Identify(sb.NetNS)
	if err != nil || !sameNamespace(sb, id) {
		return ns, fmt.Errorf("sandbox %s: %s is no longer its namespace: run nsnet gc to forget the sandbox", sb.Name, sb.NetNS)
	}
	ns.Dev, ns.Ino, ns.Born = id.Dev, id.Ino, id.Born
	return ns, nil
}

// stopIdleResident stops the resident if the store gives it nothing to hold
// or serve any more; a failure is a warning (gc stops it).
func (e *Engine) stopIdleResident() {
	var needed bool
	err := e.view(func(tx *store.Tx) (err error) {
		needed, err = residentNeeded(tx)
		return err
	})
	if err == nil && !needed {
		err = e.k.res.Stop()
	}
	if err != nil {
		e.opts.Warn(fmt.Sprintf("stop the resident process: %v (nsnet gc stops it)", err))
	}
}

// residentNeeded reports whether tx has a port to hold (TCP or UDP) or a
// user network with sandboxes, cheaply: it reads no sandbox record.
func residentNeeded(tx *store.Tx) (bool, error) {
	if tx.HasPorts("tcp") || tx.HasPorts("udp") {
		return true, nil
	}
	nets, err := tx.Networks()
	for _, n := range nets {
		if n.Name != DefaultNetwork && tx.HasLeases(n.Name) {
			return true, nil
		}
	}
	return false, err
}

// putNamesWhile makes the resident serve sb's records on its user networks
// as tx has them, with a patch of each zone (its cost does not grow with the
// zones); u drops them again on undo. sb is new on those networks, where eps
// are its endpoints (before it has them: they are being made). The
// request goes on a goroutine of its own (meanwhile) while the caller makes
// sb's veths: wait waits for it, and the caller calls it
// before it returns (until then it does not use the resident session).
// settle, called once tx has sb, returns the request's error, starting the
// resident if none runs (which gives it everything tx has).
func (e *Engine) putNamesWhile(tx *store.Tx, u *undo, sb *Sandbox, eps []Endpoint) (wait, settle func() error) {
	none := func() error { return nil }
	if !e.residentOn() {
		return none, none
	}
	planned := *sb
	planned.Endpoints = eps
	patches, err := e.patchesOf(tx, &planned, true)
	if err != nil || len(patches) == 0 {
		return none, func() error { return err }
	}
	names := resident.Names{Patches: patches}
	wait = e.meanwhile(func() error { return e.k.res.Serve(names) })
	u.push(func() error {
		if wait() != nil {
			return nil // not served by this request (a resident started later is stopped by its own undo)
		}
		return e.serveIfRunning(resident.Names{Patches: dropsOf(patches)})
	})
	return wait, func() error {
		_, err := e.withResident(tx, u, nil, "", true, func() error {
			if err := wait(); !errors.Is(err, resident.ErrNotRunning) {
				return err
			}
			return e.k.res.Serve(names) // holdPorts may have started one since
		})
		return err
	}
}

// dropsOf are patches that take away what patches put.
func dropsOf(patches []resident.Patch) []resident.Patch {
	drops := make([]resident.Patch, len(patches))
	for i, p := range patches {
		drops[i] = resident.Patch{Zone: p.Zone, Drop: []netip.Addr{p.Zone.Records[0].Addr}}
		drops[i].Zone.Records = nil
	}
	return drops
}

// patchesOf has a patch for each of sb's endpoints on a user network of tx:
// the network's zone (its address, flags and upstream servers) with sb's
// record there (put), or dropping sb's address there.
func (e *Engine) patchesOf(tx *store.Tx, sb *Sandbox, put bool) ([]resident.Patch, error) {
	resolvers, err := resolverAddrs(tx)
	if err != nil {
		return nil, err
	}
	var out []resident.Patch
	for _, ep := range sb.Endpoints {
		n, err := tx.Network(ep.Network)
		if errors.Is(err, store.ErrNotFound) || ep.Network == DefaultNetwork {
			continue
		}
		if err != nil {
			return nil, err
		}
		p := resident.Patch{Zone: e.zoneHeader(n, resolvers)}
		for _, addr := range endpointAddrs(ep) {
			r, ok := recordOf(sb, n.Name, addr, resolvers)
			switch {
			case put && ok:
				p.Zone.Records = append(p.Zone.Records, r)
			case !put:
				p.Drop = append(p.Drop, addr)
			}
		}
		if put && len(p.Zone.Records) == 0 {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// serveIfRunning sends n to the resident, if one runs.
func (e *Engine) serveIfRunning(n resident.Names) error {
	err := e.k.res.Serve(n)
	if errors.Is(err, resident.ErrNotRunning) {
		return nil
	}
	return err
}

// pushNames makes the resident serve the whole zones of networks as tx has
// them (the default network has none), starting it if it must serve one and
// none runs; u serves them as the store has them again on undo. Its cost
// grows with the zones: commands that add or remove one sandbox use
// putNamesWhile and dropFromResidentWhile.
func (e *Engine) pushNames(tx *store.Tx, u *undo, networks ...string) error {
	if !e.residentOn() {
		return nil
	}
	nets := userNetworks(networks)
	if len(nets) == 0 {
		return nil
	}
	zones, err := e.zonesOf(tx, nets, nil)
	if err != nil {
		return err
	}
	started, err := e.withResident(tx, u, nil, "", len(zones) > 0, func() error {
		return e.k.res.Serve(resident.Names{Zones: zones, Networks: nets})
	})
	if err != nil {
		return err
	}
	if !started && u != nil {
		u.push(func() error { return e.restoreNames(nets) })
	}
	e.shrunk = e.shrunk || len(zones) < len(nets)
	return nil
}

// restoreNames serves the zones of networks as the store has them, after an
// operation's change was not committed; a resident that does not run needs
// nothing.
func (e *Engine) restoreNames(networks []string) error {
	return e.view(func(tx *store.Tx) error {
		zones, err := e.zonesOf(tx, networks, nil)
		if err != nil {
			return err
		}
		return e.serveIfRunning(resident.Names{Zones: zones, Networks: networks})
	})
}

// userNetworks returns networks without the default one (which has no
// resolver, as in Docker), sorted, without repeats.
func userNetworks(networks []string) []string {
	var out []string
	for _, n := range networks {
		if n != DefaultNetwork {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// networksOf are the networks of sb's endpoints.
func networksOf(sb *Sandbox) []string {
	out := make([]string, len(sb.Endpoints))
	for i, ep := range sb.Endpoints {
		out[i] = ep.Network
	}
	return out
}

// allZones are the zones of every user network of tx, by network name,
// without the sandboxes in skip.
func (e *Engine) allZones(tx *store.Tx, skip map[string]bool) ([]resolver.Zone, error) {
	nets, err := tx.Networks()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(nets))
	for i, n := range nets {
		names[i] = n.Name
	}
	return e.zonesOf(tx, userNetworks(names), skip)
}

// zonesOf are the zones of the named networks that have one: a user
// network with at least one sandbox (not counting those in skip).
func (e *Engine) zonesOf(tx *store.Tx, networks []string, skip map[string]bool) ([]resolver.Zone, error) {
	resolvers, err := resolverAddrs(tx)
	if err != nil {
		return nil, err
	}
	var out []resolver.Zone
	for _, name := range networks {
		z, err := e.zoneOf(tx, name, resolvers, skip)
		if err != nil {
			return nil, err
		}
		if z != nil {
			out = append(out, *z)
		}
	}
	return out, nil
}

// resolverAddrs are the gateways of the user networks: where the resident
// answers, which no upstream server may be (resolver.Update refuses the
// loop).
func resolverAddrs(tx *store.Tx) (map[netip.Addr]bool, error) {
	nets, err := tx.Networks()
	out := map[netip.Addr]bool{}
	for _, n := range nets {
		if n.Name != DefaultNetwork {
			out[n.Gateway] = true
		}
	}
	return out, err
}

// zoneOf is the zone of the named network: its gateway, whether it is
// internal, its upstream servers (its --dns, else the host's), and a record
// per sandbox on it (its address there; its name, short ID and aliases
// there; its own --dns). A missing network, the default one, and one without
// sandboxes have none (nil).
func (e *Engine) zoneOf(tx *store.Tx, name string, resolvers map[netip.Addr]bool, skip map[string]bool) (*resolver.Zone, error) {
	n, err := tx.Network(name)
	if errors.Is(err, store.ErrNotFound) || name == DefaultNetwork {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	leases, err := tx.Leases(name)
	if err != nil || len(leases) == 0 {
		return nil, err
	}
	header := e.zoneHeader(n, resolvers)
	z := &header
	for _, l := range leases {
		if skip[l.Sandbox] {
			continue
		}
		sb, err := tx.SandboxRecord(l.Sandbox)
		if errors.Is(err, store.ErrNotFound) {
			continue // a stray lease, which gc releases
		}
		if err != nil {
			return nil, err
		}
		if r, ok := recordOf(sb, name, l.IP, resolvers); ok {
			z.Records = append(z.Records, r)
		}
	}
	if len(z.Records) == 0 {
		return nil, nil
	}
	return z, nil
}

// zoneHeader is n's zone without records: its gateway, whether it is
// internal, and its upstream servers (its --dns, else the host's).
func (e *Engine) zoneHeader(n *Network, resolvers map[netip.Addr]bool) resolver.Zone {
	z := resolver.Zone{Network: n.Name, Listen: n.Gateway, Internal: n.Internal, Upstream: upstreams(n.DNS, resolvers)}
	if len(n.DNS) == 0 {
		z.Upstream = upstreams(nil, resolvers, e.hostUpstream()...)
	}
	return z
}

// endpointAddrs are ep's addresses: IPv4, and IPv6 on a dual-stack network.
// They are the addresses its names resolve to, and the only ones (with
// link-local IPv6) its sandbox port forwards (firewallGuard).
func endpointAddrs(ep Endpoint) []netip.Addr {
	if ep.Address6.IsValid() {
		return []netip.Addr{ep.Address.Addr(), ep.Address6.Addr()}
	}
	return []netip.Addr{ep.Address.Addr()}
}

// recordOf is sb's record on network, where it holds addr (its IPv4 or its
// IPv6 address there: a record each, A and AAAA, with the same names).
func recordOf(sb *Sandbox, network string, addr netip.Addr, resolvers map[netip.Addr]bool) (resolver.Record, bool) {
	for _, ep := range sb.Endpoints {
		if ep.Network != network || !slices.Contains(endpointAddrs(ep), addr) {
			continue
		}
		r := resolver.Record{Addr: addr, Sandbox: sb.ID, Upstream: upstreams(sb.DNS, resolvers)}
		names := append([]string{sb.Name, shortID(sb.ID)}, ep.Aliases...)
		for _, n := range names {
			if resolver.ValidName(n) && !slices.Contains(r.Names, n) {
				r.Names = append(r.Names, n)
			}
		}
		return r, len(r.Names) > 0
	}
	return resolver.Record{}, false
}

// upstreams are the servers of addrs (or, if none, of more) at port 53,
// leaving out the resident's own addresses.
func upstreams(addrs []netip.Addr, resolvers map[netip.Addr]bool, more ...netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range addrs {
		more = append(more, netip.AddrPortFrom(a, resolver.Port))
	}
	for _, s := range more {
		if !(resolvers[s.Addr()] && s.Port() == resolver.Port) {
			out = append(out, s)
		}
	}
	return out
}

// hostUpstream are the nameservers of the host's resolv.conf
// (Options.ResolvConf), read once per operation; none if it cannot be read.
func (e *Engine) hostUpstream() []netip.AddrPort {
	if !e.hostDNSOK {
		e.hostDNS, e.hostDNSOK = readResolvConf(e.opts.ResolvConf), true
	}
	return e.hostDNS
}

// readResolvConf returns the nameservers of a resolv.conf file, port 53,
// in order; addresses with a zone (fe80::1%eth0) are left out.
func readResolvConf(path string) []netip.AddrPort {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.AddrPort
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(fields[1]); err == nil && a.Zone() == "" && !a.IsUnspecified() {
			out = append(out, netip.AddrPortFrom(a.Unmap(), resolver.Port))
		}
	}
	return out
}

// syncResident tells the resident of a change to sb's endpoints: it serves
// the names of sb's networks and of networks (those sb just left) as tx has
// them, and points sb's held ports at its publishing address. Call it once
// tx has the change; u undoes it if the operation fails.
func (e *Engine) syncResident(tx *store.Tx, u *undo, sb *Sandbox, networks ...string) error {
	if err := e.pushNames(tx, u, append(networksOf(sb), networks...)...); err != nil {
		return err
	}
	return e.retargetPorts(tx, u, sb)
}

// retargetPorts points sb's held ports at its publishing address, as tx has
// it; u points them back on undo.
func (e *Engine) retargetPorts(tx *store.Tx, u *undo, sb *Sandbox) error {
	if !e.residentOn() {
		return nil
	}
	ms, err := tx.Sandbox(sb.Name)
	if err != nil {
		return err
	}
	keys, targets := portTargets(ms)
	if len(keys) == 0 {
		return nil
	}
	started, err := e.withResident(tx, u, nil, sb.Name, true, func() error { return e.k.res.Retarget(sb.Name, keys, targets) })
	if err != nil || started || u == nil {
		return err
	}
	u.push(func() error {
		return e.view(func(tx *store.Tx) error {
			old, err := tx.Sandbox(sb.Name)
			if err != nil {
				return err
			}
			keys, targets := portTargets(old)
			return e.k.res.Retarget(sb.Name, keys, targets)
		})
	})
	return nil
}

// portTargets are the keys of sb's held ports and where each goes: the
// container port at its publishing address.
func portTargets(sb *Sandbox) ([]string, []netip.AddrPort) {
	ep, ok := publishingEndpoint(sb)
	if !ok {
		return nil, nil
	}
	var keys []string
	var targets []netip.AddrPort
	for _, m := range heldPorts(sb) {
		if hostport.Held(m.Proto) {
			keys = append(keys, m.Key())
			targets = append(targets, netip.AddrPortFrom(ep.Address.Addr(), m.CtrPort))
		}
	}
	return keys, targets
}

// dropFromResidentWhile makes the resident let go of sb's ports and names,
// as sb is removed (its records are deleted in tx already), with the request
// on a goroutine of its own (meanwhile): the function it returns waits for
// it, and the caller uses the resident session only after that.
func (e *Engine) dropFromResidentWhile(tx *store.Tx, sb *Sandbox) func() error {
	if !e.residentOn() {
		return func() error { return nil }
	}
	patches, err := e.patchesOf(tx, sb, false)
	if err != nil {
		return func() error { return err }
	}
	// Whatever its record says: a resident may hold ports of its that a
	// command killed half-way left there. One request drops both.
	dropped := e.meanwhile(func() error { return e.k.res.Drop(sb.Name, resident.Names{Patches: patches}) })
	return func() error {
		err := dropped()
		if errors.Is(err, resident.ErrNotRunning) {
			return nil // nothing held, nothing served
		}
		e.shrunk = true
		return err
	}
}

// ResidentStatus is the state of the state root's resident process.
type ResidentStatus struct {
	Pid    int  // the pid of the resident that answers on the root's control socket; 0 if none
	Alive  bool // a resident answers
	Needed bool // the sandbox asked about has ports it holds (TCP or UDP) or names it serves
}

// ResidentStatus reports on the state root's resident, checked through its
// control socket (never through a pid), and whether sb needs it.
func (e *Engine) ResidentStatus(sb *Sandbox) ResidentStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.k.res.Close()
	var st ResidentStatus
	if s, err := e.k.res.Status(); err == nil {
		st.Pid, st.Alive = s.Pid, true
	}
	st.Needed = e.residentOn() && (len(heldKeys(heldPorts(sb))) > 0 || len(userNetworks(networksOf(sb))) > 0)
	return st
}
