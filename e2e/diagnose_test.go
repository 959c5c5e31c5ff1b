package e2e

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

// diagReport is the part of `nsnet diagnose --format json` the tests read.
type diagReport struct {
	Verdict string `json:"verdict"`
	First   *struct {
		Step    string `json:"step"`
		Verdict string `json:"verdict"`
		Cause   string `json:"cause"`
		Fix     string `json:"fix"`
	} `json:"first"`
	Probe *struct {
		Reached   string `json:"reached"`
		Agrees    *bool  `json:"agrees"`
		Agreement string `json:"agreement"`
	} `json:"probe"`
}

// diagnose runs nsnet diagnose --format json --probe with args and checks
// its exit status matches the verdict.
func diagnose(t *testing.T, w *testenv.World, args ...string) diagReport {
	t.Helper()
	argv := append([]string{"diagnose", "--format", "json", "--probe"}, args...)
	res := w.Nsnet(argv...)
	var r diagReport
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("nsnet %s: exit %d, not a report: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), res.Code, err, res.Stdout, res.Stderr)
	}
	works := r.Verdict == "ok" || r.Verdict == "warn" || r.Verdict == "unknown"
	if want := map[bool]int{true: 0, false: 1}[works]; res.Code != want {
		t.Errorf("nsnet %s: verdict %q but exit status %d, want %d", strings.Join(argv, " "), r.Verdict, res.Code, want)
	}
	t.Logf("nsnet %s:\n%s", strings.Join(argv, " "), w.Nsnet(append([]string{"diagnose", "--probe"}, args...)...).Stdout)
	return r
}

// faultWorld is what every seeded fault starts from: network n1 (bridge
// br-<prefix>) with sandbox a, which publishes 8080:80/tcp and has a TCP
// echo server on port 80, and user network n2 with sandboxes b (named
// "bee" too) and c; internal network in with lone.
type faultWorld struct {
	w                 *testenv.World
	a, b, c, lone, br string
	aVeth             string
	aAddr, bAddr      string
	echo              *testenv.EchoServer // on a's port 80
}

func newFaultWorld(t *testing.T) *faultWorld {
	w := testenv.New(t)
	f := &faultWorld{w: w, a: w.Name("a"), b: w.Name("b"), c: w.Name("c"), lone: w.Name("lone"), br: "br-" + w.Prefix,
		aAddr: "10.77.0.10", bAddr: "10.78.0.20"}
	w.MustNsnet(t, "network", "create", "--subnet", "10.77.0.0/24", "--bridge", f.br, "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.78.0.0/24", "n2")
	w.MustNsnet(t, "network", "create", "--subnet", "10.79.0.0/24", "--internal", "in")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", f.aAddr, "-p", "8080:80", f.a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", "--ip", f.bAddr, "--alias", "bee", f.b)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", f.c)
	w.MustNsnet(t, "sandbox", "create", "--network", "in", f.lone)
	f.aVeth = f.inspect(t, f.a).Networks["n1"].HostVeth
	f.echo = testenv.StartTCPEcho(t, f.a, "0.0.0.0:80")
	t.Cleanup(func() { f.teardown(t) })
	return f
}

type inspected struct {
	Networks map[string]struct {
		HostVeth string `json:"host_veth"`
	} `json:"networks"`
	Resident *struct {
		Pid int `json:"pid"`
	} `json:"resident"`
}

func (f *faultWorld) inspect(t *testing.T, sb string) inspected {
	t.Helper()
	var out []inspected
	if err := json.Unmarshal([]byte(f.w.MustNsnet(t, "sandbox", "inspect", sb)), &out); err != nil || len(out) != 1 {
		t.Fatalf("sandbox inspect %s: %v", sb, err)
	}
	return out[0]
}

// teardown removes what nsnet made, whatever the fault left of it, and
// checks the world is clean.
func (f *faultWorld) teardown(t *testing.T) {
	if t.Failed() {
		return // the world's own cleanup still removes the namespaces
	}
	f.w.MustNsnet(t, "sandbox", "rm", "--force", f.a, f.b, f.c, f.lone)
	f.w.MustNsnet(t, "network", "rm", "n1", "n2", "in")
	f.w.AssertClean(t)
}

func (f *faultWorld) run(t *testing.T, ns string, argv ...string) {
	t.Helper()
	if out, err := testenv.RunIn(ns, argv[0], argv[1:]...); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// seededFault is one thing broken in a healthy world, and what diagnose
// must say about it.
type seededFault struct {
	name string
	from string   // the sandbox diagnosed (default a)
	args []string // after SANDBOX (default --to PublicIP)
	// works checks with an independent tool (ping, a TCP client) that the
	// path works (want true) or not; it runs before breakIt, as the
	// control, and after.
	works   func(t *testing.T, f *faultWorld) bool
	breakIt func(t *testing.T, f *faultWorld) // nil: closed by design, no control before
	// repair, when the fix diagnose gives is not a command to run
	repair  func(t *testing.T, f *faultWorld)
	verdict string // default broken
	step    string // of the first hop that is not ok
	cause   string // in its cause
	fix     string // in its fix
}

func pingWorks(from, to string) func(*testing.T, *faultWorld) bool {
	return func(t *testing.T, f *faultWorld) bool {
		return testenv.Ping(pick(f, from), pick(f, to)) == nil
	}
}

// pick resolves the placeholders of the fault table: sandbox a, b, ...
func pick(f *faultWorld, s string) string {
	return strings.NewReplacer("{a}", f.a, "{b}", f.b, "{c}", f.c, "{lone}", f.lone, "{br}", f.br, "{aveth}", f.aVeth,
		"{aaddr}", f.aAddr, "{baddr}", f.bAddr, "{host}", f.w.Host, "{inet}", f.w.Inet).Replace(s)
}

func sh(ns string, argv ...string) func(*testing.T, *faultWorld) {
	return func(t *testing.T, f *faultWorld) {
		for i := range argv {
			argv[i] = pick(f, argv[i])
		}
		f.run(t, pick(f, ns), argv...)
	}
}

var seededFaults = []seededFault{
	{name: "ip_forward off", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{host}", "sysctl", "-qw", "net.ipv4.ip_forward=0"),
		step:    "forwarding on the host", cause: "IPv4 forwarding is off", fix: "sysctl -w net.ipv4.ip_forward=1"},
	{name: "ruleset flushed", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{host}", "nft", "flush", "ruleset"),
		step:    "nsnet rules", cause: "is gone (nft flush ruleset removes it)", fix: "nsnet firewall reload"},
	{name: "bridge down", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{host}", "ip", "link", "set", "{br}", "down"),
		step:    "bridge {br}", cause: "is down", fix: "ip link set {br} up"},
	{name: "host veth down", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{host}", "ip", "link", "set", "{aveth}", "down"),
		step:    "eth0 in {a}", cause: "its other end, {aveth} on the host, is down", fix: "ip link set {aveth} up"},
	{name: "veth detached from the bridge", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{host}", "ip", "link", "set", "{aveth}", "nomaster"),
		step:    "veth {aveth} (host)", cause: "is not a port of bridge {br}", fix: "ip link set {aveth} master {br}"},
	{name: "sandbox eth0 down", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{a}", "ip", "link", "set", "eth0", "down"),
		step:    "eth0 in {a}", cause: "eth0 in sandbox {a} is down", fix: "ip -n {a} link set eth0 up"},
	{name: "sandbox MAC changed, which anti-spoofing drops", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{a}", "ip", "link", "set", "eth0", "address", "02:00:00:00:00:55"),
		step:    "eth0 in {a}", cause: "has MAC 02:00:00:00:00:55, not its own 02:42:", fix: "ip -n {a} link set eth0 address 02:42:"},
	{name: "default route gone", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{a}", "ip", "route", "del", "default"),
		step:    "route in {a}", cause: "its default route via 10.77.0.1 is gone", fix: "ip -n {a} route add default via 10.77.0.1 dev eth0"},
	{name: "host without a default route", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: sh("{host}", "ip", "route", "del", "default"),
		repair:  sh("{host}", "ip", "route", "add", "default", "via", testenv.RouterIP, "dev", "eth0"),
		step:    "route on the host", cause: "the host has no route to " + testenv.PublicIP, fix: "ip route add default via ROUTER dev UPLINK"},
	{name: "another table's forward chain drops by default", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: func(t *testing.T, f *faultWorld) {
			f.run(t, f.w.Host, "nft", "add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }")
			t.Cleanup(func() { testenv.RunIn(f.w.Host, "nft", "delete", "table", "ip", "filter") })
		},
		step: "other tables", cause: "table ip filter chain FORWARD drops it", fix: "nft insert rule ip filter FORWARD iifname \"{br}\" accept"},
	{name: "MTU mismatch", works: fullFrameWorks,
		breakIt: func(t *testing.T, f *faultWorld) {
			// a jumbo path everywhere but on the sandbox's host veth
			f.run(t, f.w.Inet, "ip", "link", "set", "wan0", "mtu", "9000")
			f.run(t, f.w.Host, "ip", "link", "set", "eth0", "mtu", "9000")
			f.run(t, f.a, "ip", "link", "set", "eth0", "mtu", "9000")
		},
		step: "MTU on {br}", cause: "eth0 in {a} has MTU 9000 but network n1's is 1500", fix: "ip -n {a} link set eth0 mtu 1500"},
	{name: "address conflict with a host interface", works: pingWorks("{a}", testenv.PublicIP),
		breakIt: func(t *testing.T, f *faultWorld) {
			// someone's interface with an address in a more specific subnet of n1's
			f.run(t, f.w.Host, "ip", "link", "add", "conflict0", "type", "veth", "peer", "name", "conflict1")
			f.run(t, f.w.Host, "ip", "addr", "add", "10.77.0.2/28", "dev", "conflict0")
			f.run(t, f.w.Host, "ip", "link", "set", "conflict0", "up")
			f.run(t, f.w.Host, "ip", "link", "set", "conflict1", "up")
			t.Cleanup(func() { testenv.RunIn(f.w.Host, "ip", "link", "del", "conflict0") })
		},
		step: "host route to {a}", cause: "overlaps network n1's subnet", fix: "ip addr del 10.77.0.2/28 dev conflict0"},
	{name: "isolation between networks (by design)", args: []string{"--to", "{b}"},
		works: pingWorks("{a}", "{baddr}"), verdict: "by design",
		step: "network n2", cause: "nsnet keeps networks apart by design", fix: "nsnet network connect n2 {a}"},
	{name: "an internal network (by design)", from: "{lone}",
		works: pingWorks("{lone}", testenv.PublicIP), verdict: "by design",
		step: "network in", cause: "network in is internal", fix: "nsnet network connect n1 {lone}"},
	{name: "published port with nothing listening", args: []string{"--from-outside"},
		works: func(t *testing.T, f *faultWorld) bool {
			_, err := testenv.TCPHello(f.w.Inet, testenv.UplinkIP+":8080", dialTimeout)
			return err == nil
		},
		breakIt: func(t *testing.T, f *faultWorld) { f.echo.Close() },
		repair:  func(t *testing.T, f *faultWorld) { f.echo = testenv.StartTCPEcho(t, f.a, "0.0.0.0:80") },
		step:    "port 80/tcp in {a}", cause: "nothing in sandbox {a} listens on port 80/tcp", fix: "start the server in the sandbox"},
	{name: "resolver down", from: "{c}", args: []string{"--to", "bee"},
		works: func(t *testing.T, f *faultWorld) bool {
			out, _ := testenv.RunIn(f.c, "dig", "+short", "+time=1", "+tries=1", "@10.78.0.1", "bee")
			return strings.TrimSpace(out) == f.bAddr
		},
		breakIt: func(t *testing.T, f *faultWorld) {
			pid := f.inspect(t, f.c).Resident.Pid
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("killing the resident (pid %d): %v", pid, err)
			}
		},
		step: "resolver 10.78.0.1:53", cause: "is not running", fix: "nsnet gc"},
}

// fullFrameWorks pings the public server from a with a full frame of its
// eth0's MTU, not to be fragmented.
func fullFrameWorks(t *testing.T, f *faultWorld) bool {
	l, ok := testenv.FindLink(testenv.Links(t, f.a), "eth0")
	if !ok {
		return false
	}
	_, err := testenv.RunIn(f.a, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", strconv.Itoa(l.MTU-28), testenv.PublicIP)
	return err == nil
}

// TestDiagnoseSeededFaults breaks one thing at a time in a world where the
// path works, and checks that diagnose names that cause at the right hop
// with its fix, that an independent tool agrees the path is broken, and that
// diagnose's probe agrees with its analysis. The control is in every case:
// before the fault diagnose says the path works and the tool agrees; after
// it, following the fixes diagnose gives (at most three rounds) makes it
// work again, by diagnose's word and the tool's. A way closed by design
// (isolation, an internal network) has no fault; its control is that the
// fix diagnose gives opens it.
func TestDiagnoseSeededFaults(t *testing.T) {
	t.Parallel()
	for _, c := range seededFaults {
		t.Run(c.name, func(t *testing.T) {
			f := newFaultWorld(t)
			from := pick(f, or(c.from, "{a}"))
			args := c.args
			if args == nil {
				args = []string{"--to", testenv.PublicIP}
			}
			args = append([]string{from}, args...)
			for i := range args {
				args[i] = pick(f, args[i])
			}
			if c.breakIt != nil {
				checkWorks(t, f, c, args, "before the fault (the control)")
				c.breakIt(t, f)
			}
			if c.works(t, f) {
				t.Fatalf("the fault did not break the path: the independent check still works")
			}
			r := diagnose(t, f.w, args...)
			if r.First == nil || r.Verdict != or(c.verdict, "broken") {
				t.Fatalf("verdict %q, first %+v; want %s at %q", r.Verdict, r.First, or(c.verdict, "broken"), pick(f, c.step))
			}
			if r.First.Step != pick(f, c.step) || !strings.Contains(r.First.Cause, pick(f, c.cause)) || !strings.Contains(r.First.Fix, pick(f, c.fix)) {
				t.Errorf("first broken hop %q: %s (fix: %s)\nwant %q, cause with %q, fix with %q", r.First.Step, r.First.Cause, r.First.Fix, pick(f, c.step), pick(f, c.cause), pick(f, c.fix))
			}
			checkProbeAgrees(t, r)
			repair(t, f, c, args, r)
			checkWorks(t, f, c, args, "after the fixes diagnose gave")
		})
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkWorks: diagnose says the path works, the probe agrees, and so does
// the independent check.
func checkWorks(t *testing.T, f *faultWorld, c seededFault, args []string, when string) {
	t.Helper()
	r := diagnose(t, f.w, args...)
	if r.Verdict != "ok" {
		t.Fatalf("%s: verdict %q (first %+v), want ok", when, r.Verdict, r.First)
	}
	checkProbeAgrees(t, r)
	if !c.works(t, f) {
		t.Fatalf("%s: diagnose says the path works, the independent check says it does not", when)
	}
}

func checkProbeAgrees(t *testing.T, r diagReport) {
	t.Helper()
	if r.Probe == nil || r.Probe.Agrees == nil || !*r.Probe.Agrees {
		t.Errorf("the probe does not agree with the analysis: %+v", r.Probe)
	}
}

// repair runs the fix diagnose gives (its first command, before " (" or
// ", or ") until the path
// works, at most three rounds; or c.repair.
func repair(t *testing.T, f *faultWorld, c seededFault, args []string, r diagReport) {
	t.Helper()
	if c.repair != nil {
		c.repair(t, f)
		return
	}
	for round := 0; round < 3 && r.First != nil; round++ {
		fix, _, _ := strings.Cut(r.First.Fix, " (")
		fix, _, _ = strings.Cut(fix, ", or ")
		t.Logf("round %d: running the fix %q", round+1, fix)
		if rest, ok := strings.CutPrefix(fix, "nsnet "); ok {
			f.w.MustNsnet(t, strings.Fields(rest)...)
		} else {
			f.run(t, f.w.Host, "sh", "-c", fix)
		}
		r = diagnose(t, f.w, args...)
	}
}

// TestTopology draws a world's networks and checks each drawing against
// the kernel as ip -j shows it: every interface's MAC and address, the
// bridges, the published port, the internal network marked, and a state the
// store cannot know (a host veth set down by hand, and the ruleset flushed:
// NAT shown missing). The SVG comes from nsnet-svg built beside nsnet; an
// nsnet without it fails, saying how to build it or draw with dot -Tsvg.
func TestTopology(t *testing.T) {
	t.Parallel()
	f := newFaultWorld(t)
	f.run(t, f.w.Host, "ip", "link", "set", f.aVeth, "down")
	var g struct {
		Host struct {
			TableExists bool `json:"table_exists"`
		} `json:"host"`
		Networks []struct {
			Name     string `json:"name"`
			Internal bool   `json:"internal"`
			Bridge   struct {
				Name, MAC string
				Addrs     []string
			} `json:"bridge"`
			Sandboxes []struct {
				Sandbox string
				Inside  struct {
					Name, MAC, State string
					Addrs            []string
				} `json:"inside"`
				HostVeth struct{ Name, MAC, State string } `json:"host_veth"`
				Ports    []string
			} `json:"sandboxes"`
		} `json:"networks"`
	}
	if err := json.Unmarshal([]byte(f.w.MustNsnet(t, "topology", "--format", "json")), &g); err != nil {
		t.Fatal(err)
	}
	hostLinks := testenv.Addrs(t, f.w.Host)
	var objects []string
	for _, n := range g.Networks {
		br, ok := testenv.FindLink(hostLinks, n.Bridge.Name)
		if !ok || br.Address != n.Bridge.MAC || strings.Join(br.IPs("inet"), ",") != strings.Join(n.Bridge.Addrs, ",") {
			t.Errorf("network %s: bridge %+v, ip -j shows %+v", n.Name, n.Bridge, br)
		}
		if n.Internal != (n.Name == "in") {
			t.Errorf("network %s: internal %v", n.Name, n.Internal)
		}
		objects = append(objects, n.Name, n.Bridge.Name)
		for _, a := range n.Sandboxes {
			in, _ := testenv.FindLink(testenv.Addrs(t, a.Sandbox), a.Inside.Name)
			veth, _ := testenv.FindLink(hostLinks, a.HostVeth.Name)
			if in.Address != a.Inside.MAC || strings.Join(in.IPs("inet"), ",") != strings.Join(a.Inside.Addrs, ",") || veth.Address != a.HostVeth.MAC {
				t.Errorf("sandbox %s: %+v / %+v, ip -j shows %+v / %+v", a.Sandbox, a.Inside, a.HostVeth, in, veth)
			}
			if up := a.HostVeth.State == "up"; up != veth.IsUp() {
				t.Errorf("sandbox %s: host veth %s state %q, ip -j flags %v", a.Sandbox, veth.IfName, a.HostVeth.State, veth.Flags)
			}
			objects = append(objects, a.Sandbox, a.Inside.MAC, a.HostVeth.Name, a.HostVeth.MAC)
			objects = append(objects, a.Inside.Addrs...)
			objects = append(objects, a.Ports...)
		}
	}
	if !slices.Contains(objects, f.a) || !slices.Contains(objects, "0.0.0.0:8080->80/tcp") || !g.Host.TableExists {
		t.Errorf("the drawing lacks sandbox %s, its published port or nsnet's table: %v", f.a, objects)
	}
	text := f.w.MustNsnet(t, "topology")
	dot := f.w.MustNsnet(t, "topology", "--format", "dot")
	testenv.SVGRenderer(t)
	svg := f.w.MustNsnet(t, "topology", "--format", "svg")
	for _, o := range objects {
		if !strings.Contains(text, o) || !strings.Contains(dot, o) || !svgShows(t, svg, o) {
			t.Errorf("%q missing from the text, dot or svg drawing", o)
		}
	}
	// The same command, by an nsnet with no nsnet-svg beside it or in $PATH.
	bin, env := nsnetWithoutSVG(t)
	cmd := exec.Command("nsenter", "--net="+f.w.HostPath(), "--", bin, "--root", f.w.Root, "topology", "--format", "svg")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	assertSaysHowToDrawSVG(t, "nsnet topology --format svg", out, err)
	f.run(t, f.w.Host, "nft", "flush", "ruleset")
	if text := f.w.MustNsnet(t, "topology", "n1"); !strings.Contains(text, "MISSING") || strings.Contains(text, "network n2") {
		t.Errorf("after nft flush ruleset, topology n1 shows:\n%s", text)
	}
	f.w.MustNsnet(t, "firewall", "reload")
	f.run(t, f.w.Host, "ip", "link", "set", f.aVeth, "up")
}

// svgShows reports whether the text of the SVG's elements holds s
// (Graphviz writes "-" as &#45;, which the decoder turns back).
func svgShows(t *testing.T, svg, s string) bool {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	var text strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return strings.Contains(text.String(), s)
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
			text.WriteByte('\n')
		}
	}
}

// TestDiagnoseHostPortHeldByAnother: with the resident gone, a host process
// takes a published host port. diagnose --from-outside says the path works
// with a warning that names the holder; the kernel agrees on both counts (a
// client outside still reaches the sandbox's server, the host's own
// connection to 127.0.0.1 reaches the holder). The control: before, and
// after the fix it gives (stop the holder, nsnet gc), the resident holds the
// port and nothing is warned about.
func TestDiagnoseHostPortHeldByAnother(t *testing.T) {
	t.Parallel()
	f := newFaultWorld(t)
	held := func() (verdict string, h diagHop) {
		r := diagnoseHops(t, f.w, f.a, "--from-outside")
		for _, p := range r.Paths {
			for _, hop := range p.Hops {
				if hop.Step == "host port 8080/tcp held" {
					return r.Verdict, hop
				}
			}
		}
		t.Fatalf("no hop about the host port held: %+v", r)
		return
	}
	if v, h := held(); v != "ok" || h.Verdict != "ok" || !strings.Contains(h.Detail, "nsnet's resident") {
		t.Fatalf("control: verdict %s, hop %+v", v, h)
	}
	pid := f.inspect(t, f.a).Resident.Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the resident (pid %d): %v", pid, err)
	}
	var taker net.Listener
	for i := 0; taker == nil; i++ { // the killed resident's socket goes with its exit
		var err error
		if taker, err = takePort(t, f.w.Host, "0.0.0.0:8080"); err != nil && i > 50 {
			t.Fatalf("taking host port 8080: %v", err)
		} else if err != nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	v, h := held()
	if v != "warn" || h.Verdict != "warn" || !strings.Contains(h.Cause, "is held by") || !strings.Contains(h.Cause, "not by nsnet's resident") || !strings.HasPrefix(h.Fix, "stop ") {
		t.Errorf("with the port taken: verdict %s, hop %+v", v, h)
	}
	if got := reach(t, f.w.Inet, testenv.UplinkIP+":8080", true, "a client outside, with the port taken"); got != "from "+testenv.RouterIP {
		t.Errorf("a client outside got %q, want the sandbox's server's \"from %s\"", got, testenv.RouterIP)
	}
	if got := reach(t, f.w.Host, "127.0.0.1:8080", true, "the host's own connection to 127.0.0.1"); got != "holder" {
		t.Errorf("the host's own connection to 127.0.0.1:8080 got %q, want the holder's answer", got)
	}
	taker.Close()
	f.w.MustNsnet(t, "gc")
	if v, h := held(); v != "ok" || h.Verdict != "ok" {
		t.Errorf("after the fix: verdict %s, hop %+v", v, h)
	}
}

type diagHop struct {
	Step, Verdict, Detail, Cause, Fix string
}

// diagnoseHops is diagnose with every hop of the report.
func diagnoseHops(t *testing.T, w *testenv.World, args ...string) (r struct {
	Verdict string
	Paths   []struct{ Hops []diagHop }
}) {
	t.Helper()
	diagnose(t, w, args...) // checks the exit status and the probe's shape
	res := w.Nsnet(append([]string{"diagnose", "--format", "json"}, args...)...)
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("nsnet diagnose %v: %v\n%s%s", args, err, res.Stdout, res.Stderr)
	}
	return r
}

// takePort listens on addr in ns and answers every connection with
// "holder"; it fails while the port is taken.
func takePort(t *testing.T, ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := testenv.InNS(testenv.NSPath(ns), func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	testenv.CloseAtEnd(t, ln)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "holder")
			c.Close()
		}
	}()
	return ln, nil
}
