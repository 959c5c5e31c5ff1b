// Package diagnose explains, from a snapshot of the kernel's state (package
// observe), why a sandbox can or cannot reach an address, another sandbox, a
// name, or be reached at a published port from outside: it walks the
// packet's path hop by hop (the sandbox's interface and route, its veth and
// bridge, the host's route back, forwarding and its sysctls, nsnet's rules and
// map elements, other tables' chains, the uplink, the listener behind a
// port, the resolver) and gives each hop a verdict; at the first hop that
// breaks the path it says why in one sentence and which command fixes it.
//
// Invariants: every function here is pure: it reads a snapshot and changes
// nothing, so it is tested on snapshots built by hand. The fixes it prints
// are advice only; nothing runs them. Only --probe (in the command line)
// sends traffic, and Agree only compares its result with the analysis.
package diagnose

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Verdicts of a hop and of a path.
const (
	OK       = "ok"
	Broken   = "broken"
	ByDesign = "by design" // the path is closed on purpose (isolation, an internal network)
	Warn     = "warn"      // the path works, but something may break it or breaks part of it
	Unknown  = "unknown"   // cannot be told without sending traffic (--probe)
)

// Hop is one step of a packet's path and what the snapshot shows of it.
type Hop struct {
	Step    string `json:"step"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail,omitempty"` // what was seen
	Cause   string `json:"cause,omitempty"`  // one sentence, for any verdict but ok
	Fix     string `json:"fix,omitempty"`    // a command that fixes it (advice only)
	// listener is set on hops about a server behind a port: when only such
	// a hop is broken, a probe is refused rather than unanswered.
	listener bool
}

// Path is the hops of one way through the network.
type Path struct {
	Title   string `json:"title"`
	Verdict string `json:"verdict"`
	Hops    []Hop  `json:"hops"`
	// To is the address the path leads to, and MTU that of the sandbox's
	// interface it leaves by: what a probe sends.
	To  netip.Addr `json:"to,omitzero"`
	MTU int        `json:"-"`
	// Remote is set when the path ends beyond the host, where the snapshot
	// cannot show whether anything listens on the port.
	Remote bool `json:"remote,omitempty"`
}

// Report is the answer of Analyze.
type Report struct {
	Sandbox string `json:"sandbox"`
	Target  string `json:"target"`
	Verdict string `json:"verdict"` // ok, broken, by design, warn
	Paths   []Path `json:"paths"`
	// First is the first hop that breaks a path (or closes it by design).
	First *Hop         `json:"first,omitempty"`
	Probe *ProbeResult `json:"probe,omitempty"`
}

// Destination is the address the last path leads to and the MTU of the
// sandbox's interface towards it (invalid when no path leads to one).
func (r *Report) Destination() (netip.Addr, int) {
	if len(r.Paths) == 0 {
		return netip.Addr{}, 0
	}
	p := r.Paths[len(r.Paths)-1]
	return p.To, p.MTU
}

// Works reports whether every path works (exit status 0).
func (r *Report) Works() bool { return r.Verdict == OK || r.Verdict == Warn || r.Verdict == Unknown }

// Refinish sets the verdicts again, after paths were added.
func (r *Report) Refinish() {
	r.First = nil
	r.finish()
}

// finish sets the verdicts of each path and the report, and First.
func (r *Report) finish() {
	r.Verdict = OK
	for i := range r.Paths {
		p := &r.Paths[i]
		p.Verdict = OK
		for j := range p.Hops {
			h := &p.Hops[j]
			p.Verdict = worse(p.Verdict, h.Verdict)
			if (h.Verdict == Broken || h.Verdict == ByDesign) && r.First == nil {
				r.First = h
			}
		}
		r.Verdict = worse(r.Verdict, p.Verdict)
	}
}

var rank = map[string]int{OK: 0, Unknown: 1, Warn: 2, ByDesign: 3, Broken: 4}

func worse(a, b string) string {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// WriteText prints the report for a person: each path's hops with their
// verdicts, causes and fixes, then the result.
func (r *Report) WriteText(w io.Writer) {
	for _, p := range r.Paths {
		fmt.Fprintf(w, "%s\n", p.Title)
		for _, h := range p.Hops {
			fmt.Fprintf(w, "  %-9s %-28s %s\n", label(h.Verdict), h.Step, h.Detail)
			if h.Cause != "" {
				fmt.Fprintf(w, "  %-9s %-28s %s\n", "", "", h.Cause)
			}
			if h.Fix != "" {
				fmt.Fprintf(w, "  %-9s %-28s fix: %s\n", "", "", h.Fix)
			}
		}
	}
	fmt.Fprintf(w, "result: %s\n", r.summary())
	if r.First != nil && r.First.Fix != "" {
		fmt.Fprintf(w, "fix: %s\n", r.First.Fix)
	}
	if r.Probe != nil {
		fmt.Fprintf(w, "probe: %s\n", r.Probe.Sent)
		fmt.Fprintf(w, "probe result: %s\n", r.Probe.Outcome)
		fmt.Fprintf(w, "probe verdict: %s\n", r.Probe.Agreement)
	}
}

func (r *Report) summary() string {
	switch {
	case r.First != nil && r.First.Verdict == ByDesign:
		return fmt.Sprintf("closed by design at %q: %s", r.First.Step, r.First.Cause)
	case r.First != nil:
		return fmt.Sprintf("broken at %q: %s", r.First.Step, r.First.Cause)
	case r.Verdict == Warn:
		return "the path works, with warnings (above)"
	case r.Verdict == Unknown:
		return "no hop is broken as far as the kernel's state shows; the rest needs traffic (--probe)"
	}
	return "the path works"
}

func label(v string) string {
	switch v {
	case OK:
		return "ok"
	case Broken:
		return "BROKEN"
	case ByDesign:
		return "CLOSED"
	case Warn:
		return "WARN"
	}
	return strings.ToUpper(v)
}
