package cli

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/diagnose"
	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/internal/probe"
)

// probeTimeout bounds each probe's wait for an answer.
const probeTimeout = 2 * time.Second

type diagnoseFlags struct {
	to, format  string
	fromOutside bool
	probe       bool
}

func (a *app) diagnoseCommand() *cobra.Command {
	var f diagnoseFlags
	cmd := &cobra.Command{
		Use:   "diagnose SANDBOX [--to ADDRESS|SANDBOX|NAME][:PORT][/tcp|udp|icmp] [--from-outside] [--probe] [--format text|json]",
		Short: "Explain, hop by hop from the kernel's state, whether a sandbox reaches a target and why not",
		Example: "  nsnet diagnose web                     # web's way out, beyond the host\n" +
			"  nsnet diagnose web --to db:5432/tcp     # web to sandbox db's port 5432\n" +
			"  nsnet diagnose web --from-outside --probe",
		Long: "diagnose walks the path of a packet from SANDBOX to the target (without --to: the host's default gateway, beyond the host), " +
			"or with --from-outside from a client beyond the host to SANDBOX's published ports, reading the live state of the kernel, " +
			"and gives each hop a verdict; at the first broken hop it says why and which command fixes it (advice: nothing is run). " +
			"Nothing is sent unless --probe, which sends one real packet (ICMP echo, TCP connect, UDP datagram or DNS query) and says " +
			"whether the kernel agrees. Exit status 0 when the path works, 1 when it is broken or closed by design.",
		Args: exactArgs(1, "SANDBOX"),
		RunE: func(_ *cobra.Command, args []string) error { return a.diagnose(args[0], f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "the target: an IPv4 address, a sandbox or a name, with :PORT and /tcp, /udp or /icmp (default: beyond the host)")
	fl.BoolVar(&f.fromOutside, "from-outside", false, "the way in from beyond the host to SANDBOX's published ports (--to :PORT picks one)")
	fl.BoolVar(&f.probe, "probe", false, "also send one real packet and compare what the kernel does with the analysis")
	fl.StringVar(&f.format, "format", "text", "text or json")
	return cmd
}

func (a *app) diagnose(ref string, f diagnoseFlags) error {
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("unknown --format %q: use text or json", f.format)
	}
	t, err := diagnose.ParseTarget(f.to)
	if err != nil {
		return err
	}
	snap, q, err := a.observe(ref, t, f.fromOutside)
	if err != nil {
		return err
	}
	r, err := diagnose.Analyze(snap, q)
	if err != nil {
		return err
	}
	if f.probe {
		r = probeReport(snap, q, r)
	}
	if f.format == "json" {
		err = writeJSON(a.stdout, r)
	} else {
		r.WriteText(a.stdout)
	}
	if err == nil && !r.Works() {
		return &exitError{code: 1}
	}
	return err
}

// observe reads the store (read-only) and then the kernel's state for q.
func (a *app) observe(ref string, t diagnose.Target, fromOutside bool) (*observe.Snapshot, diagnose.Query, error) {
	req := observe.Request{}
	var q diagnose.Query
	err := a.withEngine(true, func(e *engine.Engine) error {
		sb, err := e.InspectSandbox(ref)
		if err != nil {
			return err
		}
		if req.Networks, err = e.Networks(); err != nil {
			return err
		}
		if req.Sandboxes, err = e.Sandboxes(); err != nil {
			return err
		}
		if t.Kind == diagnose.KindName {
			if other, err := e.InspectSandbox(t.Host); err == nil {
				t = diagnose.Resolve(req.Networks, req.Sandboxes, sb.Name, t, other.Name)
			}
		}
		q = diagnose.Query{Sandbox: sb.Name, Target: t, FromOutside: fromOutside}
		req.Table = e.FirewallTable()
		diffs, err := e.FirewallDiff()
		if err != nil {
			diffs = []string{"cannot be compared with the store: " + err.Error()}
		}
		req.TableDiffs = diffs
		return nil
	})
	if err != nil {
		return nil, q, err
	}
	if req.Root, err = filepath.Abs(a.root); err != nil {
		return nil, q, err
	}
	req.Read = diagnose.Needs(req.Networks, req.Sandboxes, q)
	snap, err := observe.Gather(observe.Kernel{}, req)
	return snap, q, err
}

// probeReport sends the probe the query calls for and records whether the
// kernel agrees with the analysis.
func probeReport(snap *observe.Snapshot, q diagnose.Query, r *diagnose.Report) *diagnose.Report {
	sb, _ := snap.Sandbox(r.Sandbox)
	ns := sb.NetNS
	if c, ok := snap.Sandbox(sb.Container); ok {
		ns = c.NetNS
	}
	t := q.Target
	var res diagnose.ProbeResult
	switch {
	case q.FromOutside:
		res = probeFromHost(snap, sb.Name)
	case t.Kind == diagnose.KindName:
		res = probeName(snap, q, ns, &r)
	default:
		dst, mtu := r.Destination()
		res = probeAddress(ns, sb.Name, dst, mtu, t)
	}
	r.Agree(res)
	return r
}

// probeAddress sends to dst what the target's protocol calls for.
func probeAddress(ns, sandbox string, dst netip.Addr, mtu int, t diagnose.Target) diagnose.ProbeResult {
	if !dst.IsValid() || dst.IsUnspecified() {
		return diagnose.ProbeResult{Sent: "nothing: the path leads to no address", Proto: t.Proto, Reached: diagnose.Unreachable, Outcome: "no address to send to"}
	}
	if t.Proto == "icmp" {
		o := probe.Echo(ns, dst, mtu, probeTimeout)
		return result(fmt.Sprintf("one ICMP echo request of %d bytes (a full frame, Don't Fragment) from %s to %s", mtu, sandbox, dst), "icmp", o)
	}
	to := netip.AddrPortFrom(dst, t.Port)
	o := probe.Connect(ns, t.Proto, to, probeTimeout)
	what := "a TCP connection"
	if t.Proto == "udp" {
		what = "one UDP datagram"
	}
	return result(fmt.Sprintf("%s from %s to %s", what, sandbox, to), t.Proto, o)
}

// probeName asks the sandbox's nameserver, then probes the address it
// gives; a way to that address the analysis did not know yet is added to
// the report.
func probeName(snap *observe.Snapshot, q diagnose.Query, ns string, r **diagnose.Report) diagnose.ProbeResult {
	space := snap.Space((*r).Sandbox)
	if space == nil || len(space.Nameservers) == 0 {
		return diagnose.ProbeResult{Sent: "nothing: the sandbox has no nameserver", Proto: "dns", Reached: diagnose.Unreachable, Outcome: "no nameserver to ask"}
	}
	server := space.Nameservers[0]
	sent := fmt.Sprintf("a DNS query for %s from %s to %s:53", q.Target.Host, (*r).Sandbox, server)
	o := probe.Lookup(ns, server, q.Target.Host, probeTimeout)
	if o.Reached != probe.Answered || len(o.Addrs) == 0 {
		if o.Reached == probe.Answered {
			o.Reached = probe.Unreachable // answered, but with no address: the name does not resolve
		}
		return result(sent, "dns", o)
	}
	dst, _ := (*r).Destination()
	if dst != o.Addrs[0] {
		t := q.Target
		t.Kind, t.Addr = diagnose.KindAddress, o.Addrs[0]
		if more, err := diagnose.Analyze(snap, diagnose.Query{Sandbox: q.Sandbox, Target: t}); err == nil {
			more.Paths = append((*r).Paths, more.Paths...)
			more.Target, more.First = (*r).Target, nil
			more.Refinish()
			*r = more
		}
	}
	dst, mtu := (*r).Destination()
	res := probeAddress(ns, (*r).Sandbox, dst, mtu, q.Target)
	res.Sent = sent + fmt.Sprintf(" (answer: %s), then %s", o.Addrs[0], res.Sent)
	return res
}

// probeFromHost connects from the host itself to the first of the
// sandbox's published TCP or UDP ports, at the host's address: the host's
// own traffic is translated in nsnet's output chain, so it crosses neither
// the prerouting nor the forward chains a client outside crosses.
func probeFromHost(snap *observe.Snapshot, sandbox string) diagnose.ProbeResult {
	sb, _ := snap.Sandbox(sandbox)
	for _, m := range sb.Ports {
		if m.Proto == "sctp" || m.HostIP.Is6() {
			continue // not probed: diagnose follows IPv4 only
		}
		host := m.HostIP
		if !host.IsValid() {
			host = firstHostAddress(snap)
		}
		to := netip.AddrPortFrom(host, m.HostPort)
		o := probe.Connect("", m.Proto, to, probeTimeout)
		sent := fmt.Sprintf("a %s connection from the host itself to %s (the host's own traffic: translated in nsnet's output chain, it skips the prerouting and forward chains a client outside crosses)", m.Proto, to)
		return result(sent, m.Proto, o)
	}
	return diagnose.ProbeResult{Sent: "nothing: no published TCP or UDP port", Proto: "tcp", Reached: diagnose.Unreachable, Outcome: "nothing to connect to"}
}

// firstHostAddress is the address of the host's default route's device.
func firstHostAddress(snap *observe.Snapshot) netip.Addr {
	for _, r := range snap.Host.Routes {
		if r.Dst.Bits() == 0 {
			if d, ok := snap.Host.Device(r.Dev); ok && len(d.Addrs) > 0 {
				return d.Addrs[0].Addr()
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

func result(sent, proto string, o probe.Outcome) diagnose.ProbeResult {
	return diagnose.ProbeResult{Sent: sent, Proto: proto, Reached: o.Reached, Outcome: o.Detail}
}
