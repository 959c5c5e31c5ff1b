package resolver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Patch is a change to the zone whose address is Zone.Listen: the records at
// the addresses of Drop go, those of Zone.Records are put (each replacing the
// record at its address), and the zone takes Zone's internal flag and
// upstream servers.
type Patch struct {
	Zone Zone         `json:"zone"`
	Drop []netip.Addr `json:"drop,omitempty"`
}

// Patch changes zones that are served already, in place, all or none; its
// cost grows with the records it puts and drops, not with the size of the
// zones (Update compiles every zone anew). It changes nothing and returns
// false where a patch would start or stop serving an address (a zone not
// served, or one it leaves without records), names a zone by another
// network's address, or shares its zone with another patch: the caller then
// gives the whole configuration to Update. As after Update, once it returns
// no reply from the previous names is sent.
func (s *Server) Patch(patches []Patch) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, errors.New("resolver: patch after close: make a new server")
	}
	targets, err := s.patchTargets(patches)
	if targets == nil || err != nil {
		return false, err
	}
	for i, p := range patches {
		s.apply(targets[i], p)
	}
	s.barrier()
	return true, nil
}

// patchTargets checks patches and returns the table each one changes, or
// nil if one cannot be applied in place. Only the writer, which holds s.mu,
// changes tables, so it reads them without their locks.
func (s *Server) patchTargets(patches []Patch) ([]*table, error) {
	out := make([]*table, len(patches))
	for i, p := range patches {
		l := s.listeners[p.Zone.Listen.Unmap()]
		if l == nil {
			return nil, nil
		}
		t := l.current()
		if t.network != p.Zone.Network || slices.Contains(out[:i], t) || remaining(t, p) == 0 {
			return nil, nil
		}
		if err := s.checkPatch(p); err != nil {
			return nil, fmt.Errorf("resolver: network %s: %w", p.Zone.Network, err)
		}
		out[i] = t
	}
	return out, nil
}

// checkPatch refuses what compile would refuse in the zone p leaves: bad
// records or upstream servers, two records at one address, and an upstream
// server that is one of the zones itself.
func (s *Server) checkPatch(p Patch) error {
	if err := checkUpstream(p.Zone.Upstream); err != nil {
		return err
	}
	servers := slices.Clone(p.Zone.Upstream)
	seen := map[netip.Addr]bool{}
	for _, r := range p.Zone.Records {
		if err := checkRecord(r); err != nil {
			return err
		}
		if a := r.Addr.Unmap(); seen[a] {
			return fmt.Errorf("address %s is given to two records: each sandbox has its own address on a network", a)
		}
		seen[r.Addr.Unmap()] = true
		servers = append(servers, r.Upstream...)
	}
	for _, srv := range servers {
		if l, ok := s.listeners[srv.Addr().Unmap()]; ok && srv.Port() == Port {
			return fmt.Errorf("upstream server %s is the resolver of network %s itself: give a resolver outside nsnet", srv, l.current().network)
		}
	}
	return nil
}

// remaining is how many records t has once p is applied.
func remaining(t *table, p Patch) int {
	n := len(t.records) + len(p.Zone.Records)
	for _, a := range replaced(p) {
		if _, ok := t.records[a]; ok {
			n--
		}
	}
	return n
}

// replaced are the addresses whose records p takes out: those it drops and
// those it puts anew, without repeats.
func replaced(p Patch) []netip.Addr {
	var out []netip.Addr
	for _, a := range p.Drop {
		out = append(out, a.Unmap())
	}
	for _, r := range p.Zone.Records {
		out = append(out, r.Addr.Unmap())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// apply changes t as p says, and the links between t's members and the other
// zones of their sandboxes. It locks one table at a time.
func (s *Server) apply(t *table, p Patch) {
	gone := replaced(p)
	for _, a := range gone {
		if r, ok := t.records[a]; ok && r.Sandbox != "" {
			s.unlink(member{t, a}, r.Sandbox)
		}
	}
	t.mu.Lock()
	for _, a := range gone {
		t.remove(a)
	}
	for _, r := range p.Zone.Records {
		t.add(r) // checked by checkPatch; its address is free now
	}
	t.internal, t.upstream = p.Zone.Internal, slices.Clone(p.Zone.Upstream)
	for _, r := range p.Zone.Records {
		if others := s.otherZones(t, r.Sandbox); r.Sandbox != "" && len(others) > 0 {
			t.linked[r.Addr.Unmap()] = others
		}
	}
	t.mu.Unlock()
	for _, r := range p.Zone.Records {
		if r.Sandbox != "" {
			s.link(member{t, r.Addr.Unmap()}, r.Sandbox)
		}
	}
}

// otherZones are the zones other than t that sandbox has a record in, once
// per record, as link has them.
func (s *Server) otherZones(t *table, sandbox string) []*table {
	var out []*table
	for _, o := range s.members[sandbox] {
		if o.t != t {
			out = append(out, o.t)
		}
	}
	return out
}

// link adds m, a new record of sandbox, to the sandbox's members, and m's
// zone to the linked zones of the sandbox's records in other zones.
func (s *Server) link(m member, sandbox string) {
	for _, o := range s.members[sandbox] {
		if o.t != m.t {
			o.t.mu.Lock()
			o.t.linked[o.addr] = append(slices.Clip(o.t.linked[o.addr]), m.t)
			o.t.mu.Unlock()
		}
	}
	s.members[sandbox] = append(s.members[sandbox], m)
}

// unlink takes m, a record of sandbox that goes, out of the sandbox's
// members, and one occurrence of m's zone out of the linked zones of the
// sandbox's records in other zones.
func (s *Server) unlink(m member, sandbox string) {
	ms := slices.DeleteFunc(slices.Clone(s.members[sandbox]), func(o member) bool { return o == m })
	if len(ms) == 0 {
		delete(s.members, sandbox)
	} else {
		s.members[sandbox] = ms
	}
	for _, o := range ms {
		if o.t == m.t {
			continue
		}
		o.t.mu.Lock()
		linked := slices.Clone(o.t.linked[o.addr])
		if i := slices.Index(linked, m.t); i >= 0 {
			linked = slices.Delete(linked, i, i+1)
		}
		if len(linked) == 0 {
			delete(o.t.linked, o.addr)
		} else {
			o.t.linked[o.addr] = linked
		}
		o.t.mu.Unlock()
	}
}

// barrier waits for every reply made before it was called, on every
// zone: a query reads its own zone and the zones linked to it.
func (s *Server) barrier() {
	var old []*generation
	for _, l := range s.listeners {
		old = append(old, l.swap(l.current()))
	}
	for _, g := range old {
		g.busy.Wait()
	}
}
