package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/nsnet/nsnet/internal/hostport"
	"github.com/nsnet/nsnet/internal/portspec"
	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/types"
)

// Mapping is a published port.
type Mapping = types.Mapping

// parseSpecs parses -p values.
func parseSpecs(specs []string) ([]portspec.Spec, error) {
	var out []portspec.Spec
	for _, s := range specs {
		sp, err := portspec.Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

// checkPublishable refuses ports on sandboxes that cannot have them.
func checkPublishable(sb *Sandbox) error {
	if sb.Mode != store.ModeBridge || len(sb.Endpoints) == 0 {
		return fmt.Errorf("sandbox %s has no bridge network (mode %s): only bridge sandboxes can publish ports", sb.Name, sb.Mode)
	}
	if _, ok := publishingEndpoint(sb); ok {
		return nil
	}
	nets := make([]string, len(sb.Endpoints))
	for i, ep := range sb.Endpoints {
		nets[i] = ep.Network
	}
	what := "internal network " + nets[0]
	if len(nets) > 1 {
		what = "internal networks " + strings.Join(nets, ", ")
	}
	return fmt.Errorf("sandbox %s is only on %s, which cannot publish ports: nothing may reach it from outside the bridge; "+
		"attach it to a non-internal network as well to publish", sb.Name, what)
}

// boundPorts are host-port sockets bound while a command publishes, by
// mapping key; they go to the resident, and the command closes its copies
// when it ends, whatever happened.
type boundPorts map[string]*os.File

func (b boundPorts) close() {
	for _, f := range b {
		f.Close()
	}
}

// allocatePorts expands specs into mappings whose host ports neither nsnet
// nor a host process holds, and records them in tx for sb, whose endpoints
// are eps. The test of a host port binds it, and the socket is kept in bound
// for holdPorts. A spec without a host address gets the default of the
// network the ports go to (host_binding_ipv4), if it has one.
func (e *Engine) allocatePorts(tx *store.Tx, sb *Sandbox, eps []Endpoint, specs []portspec.Spec, bound boundPorts) ([]Mapping, error) {
	specs, err := withHostBinding(tx, eps, specs)
	if err != nil {
		return nil, err
	}
	lo, hi := e.k.ports.LocalPortRange()
	if err := resident.RaiseFileLimit(portCount(specs)); err != nil {
		return nil, err
	}
	var planned []Mapping
	free := func(m Mapping) error {
		for _, p := range planned {
			if p.Overlaps(m) {
				return fmt.Errorf("host port %s/%s is given twice", m.HostAddr(), m.Proto)
			}
		}
		if err := publishedBy(tx, m); err != nil {
			return err
		}
		if runtimeHeld(sb) {
			return nil // the runtime binds it: it may hold it already (a CNI ADD again)
		}
		f, err := e.k.ports.Hold(m.Proto, m.HostIP, m.HostPort)
		if f != nil {
			bound[m.Key()] = f // Expand takes every candidate that free accepts
		}
		return err
	}
	for _, sp := range specs {
		ms, err := portspec.Expand(sp, portspec.Range{Start: lo, End: hi}, free)
		if err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", sb.Name, err)
		}
		planned = append(planned, ms...)
	}
	for _, m := range planned {
		if err := tx.PutPort(m, sb.Name); err != nil {
			return nil, err
		}
	}
	return planned, nil
}

// withHostBinding gives the specs that name no host address the default
// address of the network that published ports go to (of the endpoints eps).
func withHostBinding(tx *store.Tx, eps []Endpoint, specs []portspec.Spec) ([]portspec.Spec, error) {
	ep, ok := publishingEndpoint(&Sandbox{Endpoints: eps})
	if !ok {
		return specs, nil
	}
	n, err := tx.Network(ep.Network)
	if err != nil || !n.HostBinding.IsValid() {
		return specs, err
	}
	out := make([]portspec.Spec, len(specs))
	for i, sp := range specs {
		if !sp.HostIP.IsValid() {
			sp.HostIP = n.HostBinding
		}
		out[i] = sp
	}
	return out, nil
}

// portCount is how many mappings specs make at most.
func portCount(specs []portspec.Spec) int {
	n := 0
	for _, sp := range specs {
		n += sp.CtrPort.Len()
	}
	return n
}

// publishedBy reports a sandbox that already publishes an overlapping port.
func publishedBy(tx *store.Tx, m Mapping) error {
	holders, err := tx.PortHolders(m.Proto, m.HostPort)
	if err != nil {
		return err
	}
	for ip, sb := range holders {
		held, _ := netip.ParseAddr(ip)
		if held.Is4() && held.IsUnspecified() {
			held = netip.Addr{} // every address
		}
		if types.HostsOverlap(held, m.HostIP) {
			o := Mapping{HostIP: held, HostPort: m.HostPort}
			return fmt.Errorf("host port %s/%s is already published by sandbox %s: choose another host port (nsnet port ls)", o.HostAddr(), m.Proto, sb)
		}
	}
	return nil
}

// checkIPv6Ports refuses ports on an IPv6 host address for a sandbox whose
// ports go to a network without IPv6 (sb's endpoints are those it will have).
func checkIPv6Ports(sb *Sandbox, specs []portspec.Spec) error {
	ep, ok := publishingEndpoint(sb)
	for _, sp := range specs {
		if sp.HostIP.Is6() && ok && !ep.Address6.IsValid() {
			return fmt.Errorf("publish %s on sandbox %s: its ports go to network %s, which is IPv4 only: publish on an IPv4 host address, or use a network made with --ipv6", sp, sb.Name, ep.Network)
		}
	}
	return nil
}

// holdPorts hands the host ports of ms, published by sb (whose ports tx
// has), to the resident, which holds them and proxies what reaches them to
// sb's publishing address; if no resident answers, it starts one and gives
// it everything. Ports not in bound are bound here (and closed by the caller
// with bound); u lets them go again on undo.
func (e *Engine) holdPorts(tx *store.Tx, u *undo, sb *Sandbox, ms []Mapping, bound boundPorts) error {
	if !e.residentOn() || len(heldKeys(ms)) == 0 || runtimeHeld(sb) {
		return nil
	}
	ep, ok := publishingEndpoint(sb)
	if !ok {
		return fmt.Errorf("sandbox %s has no network that its published ports can go to", sb.Name)
	}
	ports, err := e.bindAll(ms, ep.Address.Addr(), bound)
	if err != nil {
		return err
	}
	ns, err := e.namespaceOf(sb)
	if err != nil {
		return err
	}
	started, err := e.withResident(tx, u, bound, sb.Name, true, func() error { return e.k.res.Hold(sb.Name, ns, ports) })
	if err != nil || started {
		return err
	}
	keys := heldKeys(ms)
	u.push(func() error { return e.k.res.Release(sb.Name, keys) })
	return nil
}

// runtimeHeld reports whether sb's host ports are bound and held by the
// container runtime that owns it, as Podman's conmon holds them for a
// container attached through CNI: nsnet then neither binds them to test them
// nor holds them, and still refuses ports another sandbox publishes.
func runtimeHeld(sb *Sandbox) bool { return sb.Runtime != nil }

// heldPorts are the ports of sb that nsnet holds: none of a sandbox whose
// runtime holds them (runtimeHeld), all of any other's.
func heldPorts(sb *Sandbox) []Mapping {
	if runtimeHeld(sb) {
		return nil
	}
	return sb.Ports
}

// bindAll returns the held mappings of ms (not SCTP) as the resident takes
// them: each with its bound socket, from bound or bound now and added to it,
// and its target, the container port at addr.
func (e *Engine) bindAll(ms []Mapping, addr netip.Addr, bound boundPorts) ([]resident.Port, error) {
	unbound := 0
	for _, m := range ms {
		if hostport.Held(m.Proto) && bound[m.Key()] == nil {
			unbound++
		}
	}
	if err := resident.RaiseFileLimit(unbound); err != nil { // the sockets in bound are counted already
		return nil, err
	}
	var ports []resident.Port
	for _, m := range ms {
		f := bound[m.Key()]
		if f == nil {
			var err error
			if f, err = e.k.ports.Hold(m.Proto, m.HostIP, m.HostPort); err != nil {
				return nil, err
			}
		}
		if f != nil {
			bound[m.Key()] = f
			ports = append(ports, resident.Port{Key: m.Key(), Sock: f, Target: netip.AddrPortFrom(addr, m.CtrPort)})
		}
	}
	return ports, nil
}

// heldKeys are the keys of the mappings of ms whose host ports are held.
func heldKeys(ms []Mapping) []string {
	var keys []string
	for _, m := range ms {
		if hostport.Held(m.Proto) {
			keys = append(keys, m.Key())
		}
	}
	return keys
}

// releasePorts lets the host ports of ms go, once the change that
// unpublished them is committed (u.after), so a failure leaves a port bound
// that is no longer published (gc releases it), never one unbound that still
// is.
func (e *Engine) releasePorts(u *undo, name string, ms []Mapping) {
	keys := heldKeys(ms)
	if !e.residentOn() || len(keys) == 0 {
		return
	}
	u.after = append(u.after, func() {
		err := e.k.res.Release(name, keys)
		if err != nil && !errors.Is(err, resident.ErrNotRunning) {
			e.opts.Warn(fmt.Sprintf("%v: the host ports stay bound until nsnet gc releases them", err))
		}
	})
	e.shrunk = true
}

// keyDiff returns the keys of want that got lacks, and those of got that
// want lacks.
func keyDiff(want, got []string) (missing, extra []string) {
	in := map[string]int{}
	for _, k := range want {
		in[k] |= 1
	}
	for _, k := range got {
		in[k] |= 2
	}
	for k, where := range in {
		switch where {
		case 1:
			missing = append(missing, k)
		case 2:
			extra = append(extra, k)
		}
	}
	return missing, extra
}

// AddPorts publishes more ports of an existing sandbox.
func (e *Engine) AddPorts(name string, specs []string) ([]Mapping, error) {
	parsed, err := parseSpecs(specs)
	if err != nil {
		return nil, err
	}
	var added []Mapping
	bound := boundPorts{}
	defer bound.close()
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		sb, err := sandboxRecordByRef(tx, name) // not its ports: the cost stays flat
		if err != nil {
			return err
		}
		if err := checkPublishable(sb); err != nil {
			return err
		}
		if err := checkIPv6Ports(sb, parsed); err != nil {
			return err
		}
		if added, err = e.allocatePorts(tx, sb, sb.Endpoints, parsed, bound); err != nil {
			return err
		}
		if err := e.holdPorts(tx, u, sb, added, bound); err != nil {
			return err
		}
		return e.publish(tx, u, firewallPorts(&Sandbox{Endpoints: sb.Endpoints, Ports: added}))
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

// RemovePorts unpublishes the ports of a sandbox that specs name; a spec
// that names none is an error and nothing is removed. The host ports are
// released last, once the change is committed.
func (e *Engine) RemovePorts(name string, specs []string) ([]Mapping, error) {
	parsed, err := parseSpecs(specs)
	if err != nil {
		return nil, err
	}
	var removed []Mapping
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		sb, err := sandboxRecordByRef(tx, name)
		if err != nil {
			return err
		}
		if sb.Ports, err = candidatePorts(tx, sb.Name, parsed); err != nil {
			return err
		}
		if removed, err = matchPorts(sb, parsed, specs); err != nil {
			return err
		}
		for _, m := range removed {
			if err := tx.DeletePort(m, sb.Name); err != nil {
				return err
			}
		}
		ports := firewallPorts(&Sandbox{Endpoints: sb.Endpoints, Ports: removed})
		if err := e.dropPorts(tx, ports); err != nil {
			return err
		}
		if len(ports) > 0 {
			u.push(func() error { return e.k.fw.AddPorts(ports) })
		}
		if err := e.flushFlows(ports); err != nil {
			return err
		}
		if !runtimeHeld(sb) {
			e.releasePorts(u, sb.Name, removed)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// candidatePorts returns the sandbox's mappings that parsed may name. When
// every spec gives its host ports they are looked up one by one, so removing
// a mapping costs the same however many the sandbox has; otherwise all of
// the sandbox's mappings are read.
func candidatePorts(tx *store.Tx, name string, parsed []portspec.Spec) ([]Mapping, error) {
	var out []Mapping
	for _, sp := range parsed {
		if sp.HostPort == (portspec.Range{}) {
			sb, err := tx.Sandbox(name)
			if err != nil {
				return nil, err
			}
			return sb.Ports, nil
		}
		for p := int(sp.HostPort.Start); p <= int(sp.HostPort.End); p++ {
			ms, err := tx.PortsAt(name, sp.Proto, uint16(p))
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		}
	}
	return dedupe(out), nil
}

func dedupe(ms []Mapping) []Mapping {
	seen := map[Mapping]bool{}
	out := ms[:0]
	for _, m := range ms {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// matchPorts returns sb's mappings that any of parsed names; every spec must
// name at least one.
func matchPorts(sb *Sandbox, parsed []portspec.Spec, specs []string) ([]Mapping, error) {
	used := make([]bool, len(parsed))
	var removed []Mapping
	for _, m := range sb.Ports {
		hit := false
		for i, sp := range parsed {
			if sp.Matches(m) {
				hit, used[i] = true, true
			}
		}
		if hit {
			removed = append(removed, m)
		}
	}
	for i, ok := range used {
		if !ok {
			return nil, fmt.Errorf("sandbox %s publishes nothing matching %s (see nsnet port ls %s)", sb.Name, specs[i], sb.Name)
		}
	}
	return removed, nil
}
