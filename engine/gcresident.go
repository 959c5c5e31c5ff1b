package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/resolver"
)

// residentPlan is what the store calls for from the resident: the sandboxes
// with held ports, and the zones, by network.
type residentPlan struct {
	sandboxes map[string]*Sandbox
	zones     map[string]resolver.Zone
	ports     int
	// gone are the addresses, by network, of the sandboxes gc forgets or
	// removes (in a dry run: their removal drops them from the zones).
	gone map[string][]netip.Addr
}

func (p residentPlan) empty() bool { return len(p.sandboxes) == 0 && len(p.zones) == 0 }

// wantFromResident is what the store calls for from the resident, leaving
// out the sandboxes gc forgets or removes (a dry run still has them).
func (g *gc) wantFromResident() (residentPlan, error) {
	p := residentPlan{sandboxes: map[string]*Sandbox{}, zones: map[string]resolver.Zone{}, gone: map[string][]netip.Addr{}}
	sbs, err := g.tx.Sandboxes()
	if err != nil {
		return p, err
	}
	for i := range sbs {
		sb := &sbs[i]
		if g.gone[sb.Name] {
			for _, ep := range sb.Endpoints {
				p.gone[ep.Network] = append(p.gone[ep.Network], endpointAddrs(ep)...)
			}
			continue
		}
		if n := len(heldKeys(heldPorts(sb))); n > 0 {
			if _, ok := publishingEndpoint(sb); ok {
				p.sandboxes[sb.Name], p.ports = sb, p.ports+n
			}
		}
	}
	zones, err := g.e.allZones(g.tx, g.gone)
	for _, z := range zones {
		p.zones[z.Network] = z
	}
	return p, err
}

// resident makes the resident hold exactly the published TCP and UDP ports
// of every sandbox and serve exactly the zones the store calls for: it
// starts one that is needed and does not answer (giving it everything),
// stops one that has nothing to hold or serve, gives a live one the ports it
// lacks and takes back those it should not hold, points ports that go
// elsewhere at their sandbox, lets go of sandboxes that are gone, and serves
// the zones that are missing, stale or extra. SCTP ports are not held.
func (g *gc) resident() error {
	if !g.e.residentOn() {
		return nil
	}
	want, err := g.wantFromResident()
	if err != nil {
		return err
	}
	st, err := g.e.k.res.Status()
	switch {
	case errors.Is(err, resident.ErrNotRunning) && want.empty():
		return nil
	case errors.Is(err, resident.ErrNotRunning):
		what := fmt.Sprintf("start the resident process: %d ports of %d sandboxes to hold, %d networks to serve", want.ports, len(want.sandboxes), len(want.zones))
		g.do(what, g.startResident)
		return nil
	case err != nil:
		g.errs = append(g.errs, err)
		return nil
	case want.empty():
		if !g.settled["names"] { // settling stops it
			g.do(fmt.Sprintf("stop the resident process (pid %d): it has no port to hold and no network to serve", st.Pid), g.e.k.res.Stop)
		}
		return nil
	}
	g.residentPorts(st, want)
	if !g.settled["names"] { // settling serves them all again
		g.residentZones(st, want)
	}
	return nil
}

// startResident starts the resident and gives it everything; ports it
// cannot hold are errors of this gc, not of the start.
func (g *gc) startResident() error {
	bound := boundPorts{}
	defer bound.close()
	return g.e.startResident(g.tx, nil, bound, "", func(err error) { g.errs = append(g.errs, err) })
}

// residentPorts puts the ports of each sandbox in order.
func (g *gc) residentPorts(st resident.Status, want residentPlan) {
	held := map[string]resident.Held{}
	for _, h := range st.Sandboxes {
		held[h.Sandbox] = h
		if want.sandboxes[h.Sandbox] != nil || g.gone[h.Sandbox] || g.settled["ports "+h.Sandbox] {
			continue
		}
		g.do(fmt.Sprintf("make the resident process (pid %d) let go of the %d ports of missing sandbox %s", st.Pid, len(h.Keys), h.Sandbox),
			func() error { return g.e.k.res.Drop(h.Sandbox, resident.Names{}) })
	}
	for _, name := range slices.Sorted(maps.Keys(want.sandboxes)) {
		sb := want.sandboxes[name]
		h, ok := held[name]
		ns, err := g.e.namespaceOf(sb)
		switch {
		case err != nil:
			g.errs = append(g.errs, err)
		case !ok || !h.NetNS.Same(ns):
			g.do(fmt.Sprintf("make the resident process (pid %d) hold the %d published host ports of sandbox %s", st.Pid, len(heldKeys(heldPorts(sb))), name),
				func() error { return g.e.holdFresh(sb, heldKeys(heldPorts(sb))) })
		default:
			g.sandboxPorts(st.Pid, sb, h)
		}
	}
}

// sandboxPorts puts in order the ports the resident holds for sb, h.
func (g *gc) sandboxPorts(pid int, sb *Sandbox, h resident.Held) {
	missing, extra := keyDiff(heldKeys(heldPorts(sb)), h.Keys)
	if len(missing)+len(extra) > 0 {
		g.do(fmt.Sprintf("make the resident process (pid %d) hold the %d published host ports of sandbox %s it lacks and let go of %d unpublished ones",
			pid, len(missing), sb.Name, len(extra)), func() error { return g.e.syncPorts(sb, missing, extra) })
	}
	if keys := misdirected(sb, h); len(keys) > 0 {
		g.do(fmt.Sprintf("make the resident process (pid %d) send %d ports of sandbox %s to the sandbox's address", pid, len(keys), sb.Name),
			func() error { return g.e.retargetKeys(sb, keys) })
	}
}

// residentZones serves the zones that the resident lacks, has in another
// form, or should not have.
func (g *gc) residentZones(st resident.Status, want residentPlan) {
	have := map[string]resolver.Zone{}
	for _, z := range st.Zones {
		have[z.Network] = z
	}
	g.dropGone(have, want)
	var missing, stale, extra []string
	for _, n := range slices.Sorted(maps.Keys(want.zones)) {
		z, ok := have[n]
		switch {
		case !ok:
			missing = append(missing, n)
		case !sameZone(z, want.zones[n]):
			stale = append(stale, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want.zones[n]; !ok {
			extra = append(extra, n)
		}
	}
	nets := slices.Concat(missing, stale, extra)
	if len(nets) == 0 {
		return
	}
	var why []string
	for _, c := range []struct {
		what string
		nets []string
	}{{"missing", missing}, {"stale", stale}, {"not to be served", extra}} {
		if len(c.nets) > 0 {
			why = append(why, c.what+": "+strings.Join(c.nets, ", "))
		}
	}
	var zones []resolver.Zone
	for _, n := range nets {
		if z, ok := want.zones[n]; ok {
			zones = append(zones, z)
		}
	}
	g.do(fmt.Sprintf("make the resident process (pid %d) serve the names of the store (%s)", st.Pid, strings.Join(why, "; ")),
		func() error { return g.e.k.res.Serve(resident.Names{Zones: zones, Networks: nets}) })
}

// dropGone changes have, the zones the resident serves, as removing the
// sandboxes gc forgets or removes will (dropFromResident): their records go, and
// their networks' zones get the store's address, flags and upstream.
func (g *gc) dropGone(have map[string]resolver.Zone, want residentPlan) {
	for n, addrs := range want.gone {
		z, ok := have[n]
		if !ok {
			continue
		}
		if w, ok := want.zones[n]; ok {
			z.Listen, z.Internal, z.Upstream = w.Listen, w.Internal, w.Upstream
		}
		z.Records = slices.DeleteFunc(slices.Clone(z.Records), func(r resolver.Record) bool { return slices.Contains(addrs, r.Addr) })
		if len(z.Records) == 0 {
			delete(have, n)
		} else {
			have[n] = z
		}
	}
}

// sameZone compares zones as the resident takes them.
func sameZone(a, b resolver.Zone) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

// misdirected returns the keys of the ports the resident holds for sb, h,
// with a target other than the sandbox's container port on its publishing
// address (its address changed).
func misdirected(sb *Sandbox, h resident.Held) []string {
	keys, targets := portTargets(sb)
	want := map[string]string{}
	for i, k := range keys {
		want[k] = targets[i].String()
	}
	var out []string
	for i, k := range h.Keys {
		if t, ok := want[k]; ok && (i >= len(h.Targets) || h.Targets[i] != t) {
			out = append(out, k)
		}
	}
	return out
}

// holdFresh binds and hands the resident the ports of sb with keys.
func (e *Engine) holdFresh(sb *Sandbox, keys []string) error {
	var ms []Mapping
	for _, m := range sb.Ports {
		if slices.Contains(keys, m.Key()) {
			ms = append(ms, m)
		}
	}
	ep, _ := publishingEndpoint(sb)
	bound := boundPorts{}
	defer bound.close()
	ports, err := e.bindAll(ms, ep.Address.Addr(), bound)
	if err != nil {
		return err
	}
	ns, err := e.namespaceOf(sb)
	if err != nil {
		return err
	}
	return e.k.res.Hold(sb.Name, ns, ports)
}

// syncPorts makes the resident hold exactly sb's held ports: it takes back
// the extra keys, then binds and hands over the missing ones.
func (e *Engine) syncPorts(sb *Sandbox, missing, extra []string) error {
	if len(extra) > 0 {
		if err := e.k.res.Release(sb.Name, extra); err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return e.holdFresh(sb, missing)
}

// retargetKeys points sb's held ports of keys at sb's publishing address.
func (e *Engine) retargetKeys(sb *Sandbox, keys []string) error {
	all, targets := portTargets(sb)
	to := map[string]netip.AddrPort{}
	for i, k := range all {
		to[k] = targets[i]
	}
	ts := make([]netip.AddrPort, len(keys))
	for i, k := range keys {
		ts[i] = to[k]
	}
	return e.k.res.Retarget(sb.Name, keys, ts)
}
