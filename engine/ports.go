package engine

import (
	"fmt"
	"os"
	"strings"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/holder"
	"github.com/nsnet/nsnet/internal/hostport"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/portspec"
	"github.com/nsnet/nsnet/internal/store"
)

// Mapping is a published port.
type Mapping = portspec.Mapping

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

// firewallPorts are sb's published ports as the firewall needs them: to
// its address on the network of its default route.
func firewallPorts(sb *Sandbox) []firewall.Port {
	ep, ok := publishingEndpoint(sb)
	if len(sb.Ports) == 0 || !ok {
		return nil
	}
	ip := ep.Address.Addr()
	out := make([]firewall.Port, len(sb.Ports))
	for i, m := range sb.Ports {
		out[i] = firewall.Port{Proto: m.Proto, HostIP: m.HostIP, HostPort: m.HostPort, CtrIP: ip, CtrPort: m.CtrPort}
	}
	return out
}

// publishingEndpoint is the endpoint that published ports go to, as in
// Docker: the one with the default route, on the sandbox's first non-internal
// network. A sandbox only on internal networks has none.
func publishingEndpoint(sb *Sandbox) (Endpoint, bool) {
	for _, ep := range sb.Endpoints {
		if ep.Gateway.IsValid() {
			return ep, true
		}
	}
	return Endpoint{}, false
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
// mapping key; they go to the sandbox's holder, and the command closes its
// copies when it ends, whatever happened.
type boundPorts map[string]*os.File

func (b boundPorts) close() {
	for _, f := range b {
		f.Close()
	}
}

// allocatePorts expands specs into mappings whose host ports neither nsnet
// nor a host process holds, and records them in tx for sb. The test of a
// host port binds it, and the socket is kept in bound for holdPorts.
func allocatePorts(tx *store.Tx, sb *Sandbox, specs []portspec.Spec, bound boundPorts) ([]Mapping, error) {
	lo, hi := hostport.LocalPortRange()
	if err := holder.RaiseFileLimit(portCount(specs)); err != nil {
		return nil, err
	}
	var planned []Mapping
	free := func(m Mapping) error {
		for _, p := range planned {
			if p.Overlaps(m) {
				return fmt.Errorf("host port %s:%d/%s is given twice", m.HostIPString(), m.HostPort, m.Proto)
			}
		}
		if err := publishedBy(tx, m); err != nil {
			return err
		}
		f, err := hostport.Hold(m.Proto, m.HostIP, m.HostPort)
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
		if ip == "0.0.0.0" || !m.HostIP.IsValid() || ip == m.HostIP.String() {
			return fmt.Errorf("host port %s:%d/%s is already published by sandbox %s: choose another host port (nsnet port ls)", ip, m.HostPort, m.Proto, sb)
		}
	}
	return nil
}

// holdPorts hands the host ports of ms to sb's holder process, starting one
// if sb has none running (sb.Holder is updated; the caller stores it). Ports
// not in bound are bound here (and closed by the caller with bound).
func (e *Engine) holdPorts(u *undo, sb *Sandbox, ms []Mapping, bound boundPorts) error {
	if e.opts.PortHolder == "" || len(ms) == 0 {
		return nil
	}
	keys, socks, err := bindAll(ms, bound)
	if err != nil || len(socks) == 0 {
		return err
	}
	root := e.opts.Root
	if !holder.Alive(root, sb.Name, sb.Holder) {
		pid, err := holder.Spawn(e.opts.PortHolder, root, sb.Name)
		if err != nil {
			return err
		}
		sb.Holder = pid
		u.push(func() error { return holder.Stop(root, sb.Name, pid) })
	}
	if err := holder.Hold(root, sb.Name, keys, socks); err != nil {
		return err
	}
	u.push(func() error { return holder.Release(root, sb.Name, keys) })
	return nil
}

// bindAll returns the bound socket of every mapping, from bound or bound
// now and added to it (SCTP ports are not held).
func bindAll(ms []Mapping, bound boundPorts) (keys []string, socks []*os.File, err error) {
	if err := holder.RaiseFileLimit(len(ms)); err != nil {
		return nil, nil, err
	}
	for _, m := range ms {
		f := bound[m.Key()]
		if f == nil {
			if f, err = hostport.Hold(m.Proto, m.HostIP, m.HostPort); err != nil {
				return nil, nil, err
			}
		}
		if f != nil {
			bound[m.Key()] = f
			keys, socks = append(keys, m.Key()), append(socks, f)
		}
	}
	return keys, socks, nil
}

// releasePorts lets the host ports of ms go.
func (e *Engine) releasePorts(sb *Sandbox, ms []Mapping) error {
	if !holder.Alive(e.opts.Root, sb.Name, sb.Holder) {
		return nil
	}
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = m.Key()
	}
	return holder.Release(e.opts.Root, sb.Name, keys)
}

// publish installs ports in the firewall; if the table is not as the store
// says (flushed from outside), it rebuilds it from the store instead.
func publish(tx *store.Tx, u *undo, ports []firewall.Port) error {
	if len(ports) == 0 {
		return nil
	}
	if err := firewall.AddPorts(ports); err != nil {
		if err := syncFirewall(tx); err != nil {
			return err
		}
	}
	u.push(func() error { return firewall.DeletePorts(ports) })
	return nil
}

// unpublish removes ports from the firewall (rebuilding it from tx if the
// elements are not there) and flushes their connection-tracking entries.
func unpublish(tx *store.Tx, ports []firewall.Port) error {
	if len(ports) == 0 {
		return nil
	}
	if err := firewall.DeletePorts(ports); err != nil {
		if err := syncFirewall(tx); err != nil {
			return err
		}
	}
	flows := make([]link.Flow, len(ports))
	for i, p := range ports {
		flows[i] = link.Flow{Proto: protoNumber(p.Proto), HostPort: p.HostPort, CtrIP: p.CtrIP}
	}
	_, err := link.DeleteConntrack(flows)
	return err
}

func protoNumber(p string) uint8 {
	switch p {
	case "udp":
		return 17
	case "sctp":
		return 132
	}
	return 6
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
		if added, err = allocatePorts(tx, sb, parsed, bound); err != nil {
			return err
		}
		before := sb.Holder
		if err := e.holdPorts(u, sb, added, bound); err != nil {
			return err
		}
		if sb.Holder != before {
			if err := tx.PutSandbox(sb); err != nil {
				return err
			}
		}
		return publish(tx, u, firewallPorts(&Sandbox{Endpoints: sb.Endpoints, Ports: added}))
	})
	return added, err
}

// RemovePorts unpublishes the ports of a sandbox that specs name; a spec
// that names none is an error and nothing is removed.
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
		if err := e.releasePorts(sb, removed); err != nil {
			return err
		}
		return unpublish(tx, firewallPorts(&Sandbox{Endpoints: sb.Endpoints, Ports: removed}))
	})
	return removed, err
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
