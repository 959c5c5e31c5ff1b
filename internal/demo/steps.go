package demo

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/probe"
)

func (d *demo) createBridge() error {
	d.heading(1, "Create the bridge br01 with gateway 192.168.88.1", "the article: ip link add br01 type bridge; ip addr add 192.168.88.1/24 dev br01; ip link set br01 up")
	_, err := d.nsnet("network", "create", "--subnet", "192.168.88.0/24", "--gateway", "192.168.88.1", "--bridge", "br01", "br01")
	if err != nil {
		return err
	}
	return d.showLinks(d.host, "host", func(l netview.Info) bool { return l.Name == "br01" })
}

func (d *demo) createSandboxes() error {
	d.heading(2, "Create sandboxes ns01 and ns02 on br01", "the article: ip netns add; ip link add ... type veth; brctl addif; ip addr add; ip route add default")
	for _, sb := range sandboxes {
		if _, err := d.nsnet("sandbox", "create", "--network", "br01", "--ip", sb.ip, sb.name); err != nil {
			return err
		}
	}
	_, err := d.nsnet("sandbox", "ls")
	return err
}

func (d *demo) showBridge() error {
	d.heading(3, "The bridge and its ports", "the article: brctl show br01")
	links, err := netview.Links(d.host)
	if err != nil {
		return err
	}
	var ports []string
	for _, l := range links {
		if l.Master == "br01" {
			ports = append(ports, fmt.Sprintf("%s (%s, %s)", l.Name, state(l.Up), l.Alias))
		}
	}
	d.say("bridge br01, %d ports:", len(ports))
	for _, p := range ports {
		d.say("    %s", p)
	}
	if len(ports) != len(sandboxes) {
		return fmt.Errorf("demo: bridge br01 has %d ports, want %d", len(ports), len(sandboxes))
	}
	return nil
}

func (d *demo) showSandboxes() error {
	d.heading(4, "Addresses and routes inside the sandboxes", "the article: ip netns exec ns01 ip addr; ip netns exec ns01 ip route")
	for _, sb := range sandboxes {
		path := netns.Path(sb.name)
		if err := d.showLinks(path, sb.name, func(netview.Info) bool { return true }); err != nil {
			return err
		}
		gw, err := netview.DefaultGateway(path)
		if err != nil {
			return err
		}
		d.say("  %s: default via %s", sb.name, gw)
	}
	return nil
}

func (d *demo) showLinks(path, where string, keep func(netview.Info) bool) error {
	links, err := netview.Links(path)
	if err != nil {
		return err
	}
	for _, l := range links {
		if keep(l) {
			d.say("  %s: %-6s %-7s %-4s %s %v", where, l.Name, l.Kind, state(l.Up), l.MAC, l.Addrs)
		}
	}
	return nil
}

func state(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}

func (d *demo) ping() error {
	d.heading(5, "ns01 pings ns02 across the bridge", "the article: ip netns exec ns01 ping 192.168.88.12 -c 1")
	rtt, err := probe.Ping(netns.Path("ns01"), netip.MustParseAddr(sandboxes[1].ip), d.timeout())
	if err != nil {
		return fmt.Errorf("demo: ns01 -> ns02: %w", err)
	}
	d.say("  reply from %s: icmp_seq=1 time=%.3f ms", sandboxes[1].ip, float64(rtt.Microseconds())/1000)
	return nil
}

func (d *demo) showNeighbours() error {
	d.heading(6, "ns01's neighbour table holds ns02's real MAC", "the article: ip netns exec ns01 arp")
	neigh, err := netview.Neighbours(netns.Path("ns01"))
	if err != nil {
		return err
	}
	want := macOf(netns.Path("ns02"))
	found := false
	for _, n := range neigh {
		d.say("  %-15s %s %s %s", n.IP, n.MAC, n.Dev, n.State)
		found = found || (n.IP.String() == sandboxes[1].ip && n.MAC == want)
	}
	if !found {
		return fmt.Errorf("demo: ns01 has no neighbour entry for %s with ns02's MAC %s", sandboxes[1].ip, want)
	}
	d.say("  ns02's eth0 really has MAC %s: ARP worked across br01.", want)
	return nil
}

func macOf(path string) string {
	links, _ := netview.Links(path)
	for _, l := range links {
		if l.Name == "eth0" {
			return l.MAC
		}
	}
	return ""
}

func (d *demo) reachInternet() error {
	d.heading(7, "ns02 reaches the internet through ip_forward and masquerade", "the article: sysctl -w net.ipv4.conf.all.forwarding=1; iptables -t nat -A POSTROUTING -s 192.168.88.0/24 -j MASQUERADE")
	if err := d.showFirewall(); err != nil {
		return err
	}
	ns02 := netns.Path("ns02")
	rtt, err := probe.Ping(ns02, netip.MustParseAddr(PublicIP), d.timeout())
	if err != nil {
		return fmt.Errorf("demo: ns02 -> %s: %w", PublicIP, err)
	}
	d.say("  ping %s from ns02: reply in %.3f ms", PublicIP, float64(rtt.Microseconds())/1000)
	srv, err := probe.Serve(d.inet, PublicIP+":80")
	if err != nil {
		return err
	}
	defer srv.Close()
	greeting, err := probe.Hello(ns02, PublicIP+":80", d.timeout())
	if err != nil {
		return fmt.Errorf("demo: ns02 -> %s:80: %w", PublicIP, err)
	}
	d.say("  TCP from ns02 (%s) to %s:80, the server answers: %q", sandboxes[1].ip, PublicIP, greeting)
	if seen := srv.Seen(); len(seen) != 1 || seen[0] != UplinkIP {
		return fmt.Errorf("demo: the internet server saw %v, want the host's uplink %s", seen, UplinkIP)
	}
	d.say("  The internet saw %s, the host's uplink address, not %s: masquerade at work.", UplinkIP, sandboxes[1].ip)
	return nil
}

func (d *demo) showFirewall() error {
	return d.inHost(func() error {
		fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err != nil {
			return err
		}
		d.say("  host net.ipv4.ip_forward = %s", strings.TrimSpace(string(fwd)))
		fw := d.table()
		rules, err := fw.Rules()
		for _, r := range rules {
			d.say("  nftables table inet %s, chain %s: %s", fw.Name, r.Chain, r.Comment)
		}
		return err
	})
}

func (d *demo) publish() error {
	d.heading(8, "Publish ns01's port 80 on the host's port 8080, as docker run -p 8080:80", "beyond the article; by hand: iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to 192.168.88.11:80")
	srv, err := probe.Serve(netns.Path("ns01"), "0.0.0.0:80")
	if err != nil {
		return err
	}
	defer srv.Close()
	if _, err := d.nsnet("port", "add", "ns01", "8080:80"); err != nil {
		return err
	}
	greeting, err := probe.Hello(d.inet, UplinkIP+":8080", d.timeout())
	if err != nil {
		return fmt.Errorf("demo: internet -> %s:8080: %w", UplinkIP, err)
	}
	d.say("  TCP from the internet (%s) to the host's %s:8080, ns01's server answers: %q", RouterIP, UplinkIP, greeting)
	if seen := srv.Seen(); len(seen) != 1 || seen[0] != RouterIP {
		return fmt.Errorf("demo: ns01's server saw %v, want the internet client %s", seen, RouterIP)
	}
	d.say("  The server sees the real client; the mapping is one element of nsnet's nftables map:")
	_, err = d.nsnet("port", "ls")
	return err
}

// explain draws the network from live state and asks diagnose why ns02
// reaches the internet.
func (d *demo) explain() error {
	d.heading(9, "Draw the network, and explain ns02's way out", "beyond the article, which drew it by hand and found the way by trial: ip_forward, then MASQUERADE")
	if _, err := d.nsnet("topology"); err != nil {
		return err
	}
	if d.svg != "" {
		out, err := d.run("topology", "--format", "svg")
		if err != nil {
			return fmt.Errorf("demo: nsnet topology --format svg: %w", err)
		}
		if err := os.WriteFile(d.svg, []byte(out), 0o644); err != nil {
			return fmt.Errorf("demo: writing the drawing: %w", err)
		}
		d.say("  (the drawing as SVG: %s)", d.svg)
	}
	_, err := d.nsnet("diagnose", "ns02", "--to", PublicIP, "--probe")
	return err
}

func (d *demo) cleanUp() error {
	d.heading(10, "Clean up", "the article: ip netns del ns01 ns02; ip link set br01 down; brctl delbr br01; iptables -t nat -D POSTROUTING ...")
	if _, err := d.nsnet("sandbox", "rm", "ns01", "ns02"); err != nil {
		return err
	}
	if _, err := d.nsnet("network", "rm", "br01"); err != nil {
		return err
	}
	return d.proveClean()
}

// proveClean checks that nothing of nsnet is left in the host namespace.
// The veth pairs of removed sandboxes go with their namespaces, which the
// kernel destroys in its own time: it waits for that, a few seconds at most.
func (d *demo) proveClean() error {
	links, err := d.linksOnceSettled()
	if err != nil {
		return err
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	d.say("  host links now: %s", strings.Join(names, ", "))
	var table bool
	fw := d.table()
	if err := d.inHost(func() error { table, err = fw.Exists(); return err }); err != nil {
		return err
	}
	d.say("  nftables table inet %s present: %t", fw.Name, table)
	left := []string{}
	for _, sb := range sandboxes {
		if netns.Exists(netns.Path(sb.name)) {
			left = append(left, sb.name)
		}
	}
	d.say("  sandbox namespaces left under %s: %v", netns.Dir, left)
	if len(names) != 2 || table || len(left) > 0 {
		return fmt.Errorf("demo: something was left behind: links %v, table %t, namespaces %v", names, table, left)
	}
	return nil
}

// table is the demo's state root's nftables table.
func (d *demo) table() firewall.Table { return firewall.Table{Name: owner.Table(d.root)} }

// linksOnceSettled lists the host's links once only eth0 and lo are left,
// or after five seconds.
func (d *demo) linksOnceSettled() ([]netview.Info, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		links, err := netview.Links(d.host)
		if err != nil || len(links) <= 2 || time.Now().After(deadline) {
			return links, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
