package diagnose

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/types"
)

func target(t *testing.T, src, to string) Target {
	t.Helper()
	tg, err := ParseTarget(to)
	if err != nil {
		t.Fatal(err)
	}
	s := testWorld()
	if _, ok := s.Sandbox(tg.Host); ok && tg.Kind == KindName {
		tg = Resolve(s.Networks, s.Sandboxes, src, tg, tg.Host)
	}
	return tg
}

var forwardDrop = firewall.Chain{Family: "ip", Table: "filter", Name: "FORWARD", Hook: "forward", Type: "filter", Policy: "drop"}

// TestAnalyze breaks one thing at a time in a snapshot of a healthy world
// and checks the verdict, the first hop that is not ok, and its cause; each
// way also runs on the healthy world, where it must work (the control).
func TestAnalyze(t *testing.T) {
	tests := []struct {
		name    string
		sandbox string
		to      string
		outside bool
		breakIt func(s *observe.Snapshot)
		verdict string
		step    string   // of the first hop that is not ok
		cause   []string // in its cause
		fix     string   // in its fix
		healthy string   // the verdict without breakIt (default OK)
	}{
		{name: "ip_forward off", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { s.Host.Sysctls["net.ipv4.ip_forward"] = "0" },
			verdict: Broken, step: "forwarding on the host", cause: []string{"IPv4 forwarding is off"}, fix: "sysctl -w net.ipv4.ip_forward=1"},
		{name: "forwarding off on the bridge", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { s.Host.Sysctls["net.ipv4.conf.br01.forwarding"] = "0" },
			verdict: Broken, step: "forwarding on the host", cause: []string{"forwarding is off on br01"}, fix: "net.ipv4.conf.br01.forwarding=1"},
		{name: "ruleset flushed", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { s.Nsnet = observe.Table{} },
			verdict: Broken, step: "nsnet rules", cause: []string{"table inet nsnet-t is gone", "private source address 192.168.88.11"}, fix: "nsnet firewall reload"},
		{name: "masquerade rule gone", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dropRule(s, "nsnet network br01: masquerade") },
			verdict: Broken, step: "nsnet rules", cause: []string{"masquerade", "missing"}, fix: "nsnet firewall reload"},
		{name: "table drifted", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { s.Nsnet.Diffs = []string{"chain forward has 12 rules, nsnet makes 11"} },
			verdict: Warn, step: "nsnet rules", cause: []string{"chain forward has 12 rules"}, fix: "nsnet firewall reload"},
		{name: "bridge down", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dev(&s.Host, "br01").Up = false },
			verdict: Broken, step: "bridge br01", cause: []string{"is down"}, fix: "ip link set br01 up"},
		{name: "bridge gone", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) { dev(&s.Host, "br01").Name = "gone" },
			verdict: Broken, step: "bridge br01", cause: []string{"is gone"}, fix: "nsnet gc"},
		{name: "bridge without its gateway address", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dev(&s.Host, "br01").Addrs = nil },
			verdict: Broken, step: "bridge br01", cause: []string{"lacks network br01's gateway address 192.168.88.1/24"}},
		{name: "host veth down", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				dev(&s.Host, "veth-ns01").Up = false
				dev(s.Spaces["ns01"], "eth0").Carrier = false
			},
			verdict: Broken, step: "eth0 in ns01", cause: []string{"no carrier", "veth-ns01 on the host, is down"}, fix: "ip link set veth-ns01 up"},
		{name: "veth detached", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dev(&s.Host, "veth-ns01").Master = "" },
			verdict: Broken, step: "veth veth-ns01 (host)", cause: []string{"not a port of bridge br01"}, fix: "ip link set veth-ns01 master br01"},
		{name: "veth on another bridge", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) { dev(&s.Host, "veth-ns01").Master = "br-u1" },
			verdict: Broken, step: "veth veth-ns01 (host)", cause: []string{"a port of br-u1"}},
		{name: "sandbox eth0 down", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				dev(s.Spaces["ns01"], "eth0").Up = false
				s.Spaces["ns01"].Routes = nil // the kernel drops its routes with it
			},
			verdict: Broken, step: "eth0 in ns01", cause: []string{"eth0 in sandbox ns01 is down"}, fix: "ip -n ns01 link set eth0 up"},
		{name: "sandbox address gone", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) { dev(s.Spaces["ns01"], "eth0").Addrs = nil },
			verdict: Broken, step: "eth0 in ns01", cause: []string{"lacks its address 192.168.88.11/24"}},
		{name: "sandbox MAC changed, anti-spoofing on", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) { dev(s.Spaces["ns01"], "eth0").MAC = "02:00:00:00:00:55" },
			verdict: Broken, step: "eth0 in ns01", cause: []string{"has MAC 02:00:00:00:00:55, not its own 02:42:00:00:00:01", "anti-spoofing on network"},
			fix: "ip -n ns01 link set eth0 address 02:42:00:00:00:01"},
		{name: "sandbox MAC changed, anti-spoofing off", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) {
				dev(s.Spaces["ns01"], "eth0").MAC = "02:00:00:00:00:55"
				for i := range s.Networks {
					s.Networks[i].NoAntiSpoof = true
				}
			},
			verdict: OK},
		{name: "default route gone in the sandbox", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dropRoute(s.Spaces["ns01"], "0.0.0.0/0") },
			verdict: Broken, step: "route in ns01", cause: []string{"no route to 198.51.100.7", "default route via 192.168.88.1 is gone"},
			fix: "ip -n ns01 route add default via 192.168.88.1 dev eth0"},
		{name: "default route gone, from outside", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) { dropRoute(s.Spaces["ns01"], "0.0.0.0/0") },
			verdict: Broken, step: "route back in ns01", cause: []string{"its replies cannot leave it"}},
		{name: "host without a default route", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dropRoute(&s.Host, "0.0.0.0/0") },
			verdict: Broken, step: "route on the host", cause: []string{"the host has no route to 198.51.100.7"}, fix: "ip route add default"},
		{name: "host without a default route, no target", sandbox: "ns01",
			breakIt: func(s *observe.Snapshot) { dropRoute(&s.Host, "0.0.0.0/0") },
			verdict: Broken, step: "route on the host", cause: []string{"the host has no default route"}},
		{name: "uplink down", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dev(&s.Host, "eth0").Carrier = false },
			verdict: Broken, step: "uplink eth0", cause: []string{"no carrier"}},
		{name: "another table's forward chain drops by default", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { s.Chains = []firewall.Chain{forwardDrop} },
			verdict: Broken, step: "other tables", cause: []string{"table ip filter chain FORWARD drops it", "policy is drop"},
			fix: `nft insert rule ip filter FORWARD iifname "br01" accept; nft insert rule ip filter FORWARD oifname "br01" accept`},
		{name: "forward policy drop with accepts for the bridge", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				c := forwardDrop
				c.Rules = []firewall.ChainRule{
					{Conds: []firewall.Cond{{Field: "iifname", Op: "==", Values: []string{"br01"}}}, Verdict: "accept"},
					{Conds: []firewall.Cond{{Field: "oifname", Op: "==", Values: []string{"br01"}}}, Verdict: "accept"},
				}
				s.Chains = []firewall.Chain{c}
			},
			verdict: OK},
		{name: "forward policy drop, replies not accepted", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				c := forwardDrop
				c.Rules = []firewall.ChainRule{{Conds: []firewall.Cond{{Field: "iifname", Op: "==", Values: []string{"br*"}}}, Verdict: "accept"}}
				s.Chains = []firewall.Chain{c}
			},
			verdict: Broken, step: "other tables", cause: []string{"the replies from 198.51.100.7: table ip filter chain FORWARD drops it"}},
		{name: "a drop rule in a chain jumped to", sandbox: "ns01", to: "198.51.100.7:443",
			breakIt: func(s *observe.Snapshot) {
				base := firewall.Chain{Family: "inet", Table: "fw", Name: "fwd", Hook: "forward", Policy: "accept",
					Rules: []firewall.ChainRule{{Verdict: "jump", Target: "user"}}}
				user := firewall.Chain{Family: "inet", Table: "fw", Name: "user", Rules: []firewall.ChainRule{
					{Conds: []firewall.Cond{{Field: "dport", Op: "==", Values: []string{"22"}}}, Verdict: "drop"},
					{Conds: []firewall.Cond{{Field: "daddr", Op: "==", Values: []string{"198.51.100.0/24"}}, {Field: "l4proto", Op: "==", Values: []string{"tcp"}}}, Verdict: "drop"},
				}}
				s.Chains = []firewall.Chain{base, user}
			},
			verdict: Broken, step: "other tables", cause: []string{"table inet fw chain user drops it: its rule 2 (daddr 198.51.100.0/24 l4proto tcp drop)"}},
		{name: "a rule nsnet cannot follow may drop", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				c := firewall.Chain{Family: "ip", Table: "filter", Name: "FORWARD", Hook: "forward", Policy: "accept",
					Rules: []firewall.ChainRule{{Conds: []firewall.Cond{{What: "iptables match physdev"}}, Verdict: "drop"}}}
				s.Chains = []firewall.Chain{c}
			},
			verdict: Warn, step: "other tables", cause: []string{"may drop it", "iptables match physdev"}},
		{name: "legacy iptables", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { s.LegacyIptables = []string{"filter"} },
			verdict: Warn, step: "other tables", cause: []string{"legacy iptables"}},
		{name: "MTU mismatch", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) { dev(s.Spaces["ns01"], "eth0").MTU = 9000 },
			verdict: Broken, step: "MTU on br01", cause: []string{"eth0 in ns01 has MTU 9000", "network br01's is 1500"}, fix: "ip -n ns01 link set eth0 mtu 1500"},
		{name: "MTU mismatch at the other end", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) { dev(&s.Host, "veth-ns02").MTU = 1400 },
			verdict: Broken, step: "MTU on br01", cause: []string{"veth-ns02 on the host has MTU 1400"}},
		{name: "isolation between networks", sandbox: "ns01", to: "web",
			verdict: ByDesign, step: "network u1", cause: []string{"nsnet keeps networks apart by design"}, fix: "nsnet network connect u1 ns01", healthy: ByDesign},
		{name: "isolation lost with the table", sandbox: "ns01", to: "10.10.0.10",
			breakIt: func(s *observe.Snapshot) { s.Nsnet = observe.Table{} },
			verdict: Warn, step: "network u1", cause: []string{"is gone"}, healthy: ByDesign},
		{name: "an internal network", sandbox: "lone", to: "198.51.100.7",
			verdict: ByDesign, step: "network in", cause: []string{"network in is internal"}, fix: "nsnet network connect br01 lone", healthy: ByDesign},
		{name: "an internal network reaches its gateway", sandbox: "lone", to: "10.20.0.1"},
		{name: "address conflict with a host interface", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				s.Host.Devices = append(s.Host.Devices, netview.Device{Index: 40, Name: "dummy0", Kind: "dummy", MTU: 1500, Up: true, Carrier: true, Addrs: []netip.Prefix{pfx("192.168.88.2/25")}})
				s.Host.Routes = append(s.Host.Routes, netview.Route{Dst: pfx("192.168.88.0/25"), Dev: "dummy0", Type: "unicast"})
			},
			verdict: Broken, step: "host route to ns01", cause: []string{"via 192.168.88.0/25 dev dummy0", "overlaps network br01's subnet"}, fix: "ip addr del 192.168.88.2/25 dev dummy0"},
		{name: "the host holds the sandbox's address", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				s.Host.Devices = append(s.Host.Devices, netview.Device{Index: 40, Name: "dummy0", Kind: "dummy", Up: true, Carrier: true, Addrs: []netip.Prefix{pfx("192.168.88.11/32")}})
			},
			verdict: Broken, step: "host route to ns01", cause: []string{"the host itself holds sandbox ns01's address"}},
		{name: "published port, nothing listening", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) { s.Spaces["ns01"].Sockets = nil },
			verdict: Broken, step: "port 80/tcp in ns01", cause: []string{"nothing in sandbox ns01 listens on port 80/tcp"}},
		{name: "published port, listening on loopback only", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) { s.Spaces["ns01"].Sockets[0].Addr = addr("127.0.0.1") },
			verdict: Broken, step: "port 80/tcp in ns01", cause: []string{"listens on 127.0.0.1:80 only"}},
		{name: "a host process holds the host port", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) {
				s.Resident = observe.Resident{}
				s.Host.Sockets[0].PID, s.Host.Sockets[0].Process = 77, "nginx"
			},
			verdict: Warn, step: "host port 8080/tcp held", cause: []string{"held by nginx (pid 77), not by nsnet's resident"}, fix: "stop nginx (pid 77), then nsnet gc"},
		{name: "the resident holds no port", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) { s.Resident = observe.Resident{}; s.Host.Sockets = nil },
			verdict: Warn, step: "host port 8080/tcp held", cause: []string{"resident process is not running"}},
		{name: "published port's element gone", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) { s.Nsnet.Ports = nil },
			verdict: Broken, step: "nsnet translation", cause: []string{"map ports-any-ip has no element"}},
		{name: "published port's element points elsewhere", sandbox: "ns01", to: ":8080", outside: true,
			breakIt: func(s *observe.Snapshot) { s.Nsnet.Ports[0].CtrIP = addr("192.168.88.99") },
			verdict: Broken, step: "nsnet translation", cause: []string{"to 192.168.88.99:80, not to sandbox ns01's"}},
		{name: "published ports from outside, forward drop", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) { s.Chains = []firewall.Chain{forwardDrop} },
			verdict: Broken, step: "other tables", cause: []string{"clients' packets to host port 8080/tcp: table ip filter chain FORWARD drops it"}},
		{name: "no published port", sandbox: "ns02", outside: true, verdict: Broken, step: "published ports of ns02", healthy: Broken},
		{name: "an internal sandbox publishes nothing", sandbox: "lone", outside: true, verdict: ByDesign, step: "networks of lone", healthy: ByDesign},
		{name: "published on 127.0.0.1 only", sandbox: "ns01", outside: true,
			breakIt: func(s *observe.Snapshot) {
				s.Sandboxes[0].Ports[0].HostIP = addr("127.0.0.1")
				s.Nsnet.Ports[0].HostIP = addr("127.0.0.1")
			},
			verdict: ByDesign, step: "host address 127.0.0.1", cause: []string{"only the host itself reaches it"}},
		{name: "resolver down", sandbox: "web", to: "app",
			breakIt: func(s *observe.Snapshot) { s.Resident = observe.Resident{}; s.Host.Sockets = nil },
			verdict: Broken, step: "resolver 10.10.0.1:53", cause: []string{"resident process", "is not running"}, fix: "nsnet gc"},
		{name: "a name unknown to the resident", sandbox: "web", to: "app",
			breakIt: func(s *observe.Snapshot) {
				z := s.Resident.Zones["u1"]
				z.Records = z.Records[:1]
				s.Resident.Zones["u1"] = z
			},
			verdict: Broken, step: "name app", cause: []string{"does not know app"}},
		{name: "an alias", sandbox: "app", to: "www:80"},
		{name: "a name forwarded upstream", sandbox: "web", to: "example.org", verdict: Unknown, step: "name example.org", healthy: Unknown},
		{name: "a name on an internal network", sandbox: "lone", to: "example.org", verdict: ByDesign, step: "name example.org",
			cause: []string{"never forwards"}, healthy: ByDesign},
		{name: "no nameserver", sandbox: "web", to: "app",
			breakIt: func(s *observe.Snapshot) { s.Spaces["web"].Nameservers = nil },
			verdict: Broken, step: "resolv.conf of web", cause: []string{"names no nameserver"}},
		{name: "a nameserver that is not nsnet's", sandbox: "web", to: "app",
			breakIt: func(s *observe.Snapshot) { s.Spaces["web"].Nameservers = []netip.Addr{addr("198.51.100.53")} },
			verdict: Unknown, step: "name app", cause: []string{"not nsnet's"}},
		{name: "br_netfilter without nsnet's rule for the network", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) {
				s.Host.Sysctls["net.bridge.bridge-nf-call-iptables"] = "1"
				dropRule(s, "nsnet network br01: within the network")
			},
			verdict: Broken, step: "filtering on br01", cause: []string{"br_netfilter passes bridged packets"}},
		{name: "br_netfilter and a foreign forward drop", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) {
				s.Host.Sysctls["net.bridge.bridge-nf-call-iptables"] = "1"
				s.Chains = []firewall.Chain{forwardDrop}
			},
			verdict: Broken, step: "filtering on br01", cause: []string{"FORWARD drops it"}},
		{name: "a foreign forward drop without br_netfilter", sandbox: "ns01", to: "ns02",
			breakIt: func(s *observe.Snapshot) { s.Chains = []firewall.Chain{forwardDrop} }},
		{name: "a peer's port, nothing listening", sandbox: "app", to: "web:80", verdict: Broken, step: "port 80/tcp in web", healthy: Broken},
		{name: "a replaced namespace", sandbox: "ns01", to: "198.51.100.7",
			breakIt: func(s *observe.Snapshot) {
				s.Spaces["ns01"] = &observe.Namespace{Path: "/run/netns/ns01", Replaced: true}
			},
			verdict: Broken, step: "sandbox ns01", cause: []string{"not sandbox ns01's any more"}},
		{name: "a published port from a neighbour (hairpin)", sandbox: "ns02", to: "203.0.113.2:8080"},
		{name: "a published port from itself needs hairpin mode", sandbox: "ns01", to: "192.168.88.1:8080",
			breakIt: func(s *observe.Snapshot) { off := false; dev(&s.Host, "veth-ns01").Hairpin = &off },
			verdict: Broken, step: "veth veth-ns01 (host)", cause: []string{"hairpin mode is off"}},
		{name: "a published port without the hairpin masquerade", sandbox: "ns02", to: "203.0.113.2:8080",
			breakIt: func(s *observe.Snapshot) { dropRule(s, "nsnet network br01: hairpin to a published port") },
			verdict: Broken, step: "nsnet rules", cause: []string{"hairpin"}},
		{name: "a host port nothing listens on", sandbox: "ns01", to: "192.168.88.1:9999", verdict: Broken, step: "port 9999/tcp on the host", healthy: Broken},
		{name: "the resolver at the gateway", sandbox: "web", to: "10.10.0.1:53/udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := Query{Sandbox: tt.sandbox, Target: target(t, tt.sandbox, tt.to), FromOutside: tt.outside}
			want := tt.healthy
			if want == "" {
				want = OK
			}
			if r := analyze(t, testWorld(), q); r.Verdict != want {
				t.Fatalf("healthy world: verdict %s, want %s\n%s", r.Verdict, want, text(r))
			}
			s := testWorld()
			if tt.breakIt != nil {
				tt.breakIt(s)
			}
			r := analyze(t, s, q)
			want = tt.verdict
			if want == "" {
				want = OK
			}
			if r.Verdict != want {
				t.Fatalf("verdict %s, want %s\n%s", r.Verdict, want, text(r))
			}
			if tt.step == "" {
				return
			}
			h := firstNotOK(r)
			if h == nil || h.Step != tt.step {
				t.Fatalf("first hop that is not ok: %+v, want step %q\n%s", h, tt.step, text(r))
			}
			for _, c := range tt.cause {
				if !strings.Contains(h.Cause, c) {
					t.Errorf("cause %q lacks %q", h.Cause, c)
				}
			}
			if !strings.Contains(h.Fix, tt.fix) {
				t.Errorf("fix %q lacks %q", h.Fix, tt.fix)
			}
		})
	}
}

// TestOverlayRemoteAddress: an address of an overlay network that no
// sandbox of this host has may be another host's sandbox, beyond the VXLAN
// device: unknown, not broken as on a bridge network (the control).
func TestOverlayRemoteAddress(t *testing.T) {
	q := Query{Sandbox: "ns01", Target: target(t, "ns01", "192.168.88.99")}
	if r := analyze(t, testWorld(), q); r.Verdict != Broken {
		t.Fatalf("nobody's address on a bridge network: verdict %s, want %s\n%s", r.Verdict, Broken, text(r))
	}
	s := testWorld()
	s.Networks[0].Overlay = &types.Overlay{VNI: 4096, Device: "vx-0123456789ab"}
	r := analyze(t, s, q)
	h := firstNotOK(r)
	if r.Verdict != Unknown || h == nil || h.Step != "address 192.168.88.99" || !strings.Contains(h.Cause, "another host's") || !strings.Contains(h.Cause, "vx-0123456789ab") {
		t.Fatalf("an address on an overlay network that no local sandbox has: verdict %s, hop %+v, want unknown naming the VXLAN device\n%s", r.Verdict, h, text(r))
	}
}

func analyze(t *testing.T, s *observe.Snapshot, q Query) *Report {
	t.Helper()
	r, err := Analyze(s, q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func firstNotOK(r *Report) *Hop {
	if r.First != nil {
		return r.First
	}
	for _, p := range r.Paths {
		for i := range p.Hops {
			if p.Hops[i].Verdict != OK {
				return &p.Hops[i]
			}
		}
	}
	return nil
}

func text(r *Report) string {
	var b bytes.Buffer
	r.WriteText(&b)
	return b.String()
}

// TestReportText checks the text a person reads first: every hop with its
// verdict, the cause and fix under the first broken one, and the result.
func TestReportText(t *testing.T) {
	s := testWorld()
	s.Host.Sysctls["net.ipv4.ip_forward"] = "0"
	r := analyze(t, s, Query{Sandbox: "ns01", Target: target(t, "ns01", "198.51.100.7")})
	got := text(r)
	for _, want := range []string{
		"ns01 -> 198.51.100.7 (icmp)\n",
		"  ok        eth0 in ns01",
		"  BROKEN    forwarding on the host       net.ipv4.ip_forward = 0\n",
		"IPv4 forwarding is off on the host (net.ipv4.ip_forward = 0), so the kernel routes nothing from bridge br01 onwards",
		"fix: sysctl -w net.ipv4.ip_forward=1 (or: nsnet gc)",
		"result: broken at \"forwarding on the host\": IPv4 forwarding is off",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("text lacks %q:\n%s", want, got)
		}
	}
	var decoded map[string]any
	raw, _ := json.Marshal(r)
	if err := json.Unmarshal(raw, &decoded); err != nil || decoded["verdict"] != Broken || decoded["first"] == nil {
		t.Errorf("JSON: %s", raw)
	}
}

// TestParseTarget covers --to's forms and its refusals.
func TestParseTarget(t *testing.T) {
	good := map[string]Target{
		"":                 {Kind: KindDefault, Proto: "icmp"},
		"198.51.100.7":     {Kind: KindAddress, Host: "198.51.100.7", Addr: addr("198.51.100.7"), Proto: "icmp"},
		"198.51.100.7:80":  {Kind: KindAddress, Host: "198.51.100.7", Addr: addr("198.51.100.7"), Port: 80, Proto: "tcp"},
		"web:53/udp":       {Kind: KindName, Host: "web", Port: 53, Proto: "udp"},
		":8080":            {Kind: KindDefault, Port: 8080, Proto: "tcp"},
		"example.org/icmp": {Kind: KindName, Host: "example.org", Proto: "icmp"},
	}
	for in, want := range good {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"a:0", "a:70000", "a/sctp", "a:80/icmp", "a/tcp", "2001:db8::1", "a:b"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

// TestParseTargetIPv6: an IPv6 address, bare or in brackets with a port, is
// refused as IPv6 (diagnose follows IPv4 only), not as a bad port.
func TestParseTargetIPv6(t *testing.T) {
	for _, in := range []string{"2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80", "[fd00:60::2]:53/udp", "::1"} {
		_, err := ParseTarget(in)
		if err == nil || !strings.Contains(err.Error(), "only IPv4 addresses") {
			t.Errorf("ParseTarget(%q): %v, want a refusal that says only IPv4 addresses", in, err)
		}
	}
}

// TestAgree compares probes with the analysis.
func TestAgree(t *testing.T) {
	healthy := analyze(t, testWorld(), Query{Sandbox: "ns01", Target: target(t, "ns01", "198.51.100.7")})
	s := testWorld()
	s.Host.Sysctls["net.ipv4.ip_forward"] = "0"
	brk := analyze(t, s, Query{Sandbox: "ns01", Target: target(t, "ns01", "198.51.100.7")})
	s = testWorld()
	s.Spaces["ns01"].Sockets = nil
	refused := analyze(t, s, Query{Sandbox: "ns01", FromOutside: true})
	local := analyze(t, testWorld(), Query{Sandbox: "ns02", Target: target(t, "ns02", "ns01:80")})
	for _, c := range []struct {
		r       *Report
		reached string
		proto   string
		agrees  string // yes, no, unknown
	}{
		{healthy, Answered, "icmp", "yes"}, {healthy, Silent, "icmp", "no"}, {healthy, Silent, "udp", "unknown"},
		{brk, Silent, "icmp", "yes"}, {brk, Unreachable, "tcp", "yes"}, {brk, Answered, "icmp", "no"},
		{refused, Refused, "tcp", "yes"}, {refused, Answered, "tcp", "no"},
		// beyond the host the analysis cannot see a listener; within it, it can
		{healthy, Refused, "tcp", "yes"}, {local, Answered, "tcp", "yes"}, {local, Refused, "tcp", "no"},
	} {
		c.r.Agree(ProbeResult{Reached: c.reached, Proto: c.proto})
		got := "unknown"
		if a := c.r.Probe.Agrees; a != nil && *a {
			got = "yes"
		} else if a != nil {
			got = "no"
		}
		if got != c.agrees {
			t.Errorf("%s probe %s on a %s report: agrees %s, want %s (%s)", c.proto, c.reached, c.r.Verdict, got, c.agrees, c.r.Probe.Agreement)
		}
	}
}

// TestNeeds lists the namespaces a query reads.
func TestNeeds(t *testing.T) {
	s := testWorld()
	for _, c := range []struct {
		q    Query
		want string
	}{
		{Query{Sandbox: "ns01", Target: target(t, "ns01", "ns02")}, "ns01 ns02"},
		{Query{Sandbox: "ns01", Target: target(t, "ns01", "web")}, "ns01 web"},
		{Query{Sandbox: "ns01", Target: target(t, "ns01", "192.168.88.12:80")}, "ns01 ns02"},
		{Query{Sandbox: "ns02", Target: target(t, "ns02", "203.0.113.2:8080")}, "ns02 ns01"},
		{Query{Sandbox: "web", Target: target(t, "web", "www")}, "web app"},
		{Query{Sandbox: "web", Target: target(t, "web", "app")}, "web app"},
		{Query{Sandbox: "web", Target: target(t, "web", "198.51.100.7")}, "web"},
	} {
		if got := strings.Join(Needs(s.Networks, s.Sandboxes, c.q), " "); got != c.want {
			t.Errorf("Needs(%+v) = %s, want %s", c.q, got, c.want)
		}
	}
}

// TestFromOutsideIPv6Ports: a mapping on an IPv6 host address (:: or one
// address) is not analysed (its map is not read), so it is not reported as
// missing from the IPv4 map: beside an IPv4 mapping the path works, and
// alone it is unknown, not broken.
func TestFromOutsideIPv6Ports(t *testing.T) {
	s := testWorld()
	v6 := []types.Mapping{{Proto: "tcp", HostIP: netip.IPv6Unspecified(), HostPort: 8081, CtrPort: 80},
		{Proto: "tcp", HostIP: addr("2001:db8::2"), HostPort: 8082, CtrPort: 80}}
	s.Sandboxes[0].Ports = append(s.Sandboxes[0].Ports, v6...)
	if r := analyze(t, s, Query{Sandbox: "ns01", FromOutside: true}); r.Verdict != OK {
		t.Errorf("an IPv4 and two IPv6 mappings: verdict %q, first %+v; want ok", r.Verdict, r.First)
	}
	s.Sandboxes[0].Ports = v6
	r := analyze(t, s, Query{Sandbox: "ns01", FromOutside: true})
	last := r.Paths[len(r.Paths)-1].Hops
	if h := last[len(last)-1]; r.Verdict != Unknown || h.Verdict != Unknown || !strings.Contains(h.Cause, "only on IPv6 host addresses") {
		t.Errorf("IPv6 mappings only: verdict %q, last hop %+v; want unknown, saying IPv6 is not followed", r.Verdict, h)
	}
}
