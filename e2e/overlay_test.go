package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
	"golang.org/x/sys/unix"
)

// vxlanInfo is the info_data of a VXLAN device in `ip -d -j link`.
type vxlanInfo struct {
	ID       int    `json:"id"`
	Local    string `json:"local"`
	Port     int    `json:"port"`
	Learning bool   `json:"learning"`
	Proxy    bool   `json:"proxy"`
}

// TestOverlayAcrossHosts: an overlay network made once in etcd appears on
// three hosts; sandboxes on different hosts reach each other by address,
// over ICMP and TCP, without NAT (the server sees the client's own overlay
// address); each host's VXLAN device has the VNI, its underlay address,
// port 4789, no learning, proxy ARP, the underlay MTU minus 50, and one
// static FDB entry and neighbour per remote sandbox (no all-zeros flooding
// entry). A second overlay and a local network are out of reach, each with
// a control through the same kind of path. Anti-spoofing guards a local
// sandbox's port and not the VXLAN device: a sandbox sending from an
// address not its own reaches no other host, unless the overlay network was
// made with --antispoof=false (which, with its labels, every host's part
// has). A bridge driver option (-o) is refused on an overlay network.
// diagnose calls a remote sandbox's address unknown (not broken), and
// topology draws the host's parts of overlay networks. network ls shows
// and filters the overlay driver; network prune leaves a host's part.
func TestOverlayAcrossHosts(t *testing.T) {
	c := newCluster(t, 3)
	h := c.hosts
	c.createOverlay("ova", "10.200.0.0/16", "--vni", "4242")
	ips := make([]string, 3)
	names := make([]string, 3)
	for i := range 3 {
		names[i] = c.w.Name(fmt.Sprintf("a%d", i))
		args := []string{"--network", "ova"}
		if i == 0 {
			args = append(args, "-p", "8080:7000")
		}
		ips[i] = c.sandbox(i, names[i], args...)
		if l := mustLink(t, names[i], "eth0"); l.MTU != 1450 {
			t.Errorf("sandbox %s: eth0 MTU %d, want the underlay's 1500 minus VXLAN's 50", names[i], l.MTU)
		}
	}
	if ips[0] == ips[1] || ips[1] == ips[2] || ips[0] == ips[2] {
		t.Fatalf("hosts handed out one address twice: %v", ips)
	}
	for i := range 3 {
		for j := range 3 {
			if i != j {
				mustPing(t, names[i], ips[j])
			}
		}
	}
	srv := testenv.StartTCPEcho(t, names[1], ips[1]+":7000")
	if got, err := testenv.TCPHello(names[0], ips[1]+":7000", 3*time.Second); err != nil {
		t.Fatalf("TCP from %s to %s:7000: %v (%q)", names[0], ips[1], err, got)
	}
	if seen := srv.Seen(); len(seen) != 1 || seen[0] != ips[0] {
		t.Fatalf("the server on host 1 saw %v, want the client's own address %s (no NAT)", seen, ips[0])
	}
	srv.Close()

	// A port published on host 0 reaches its overlay sandbox from outside.
	pub := testenv.StartTCPEcho(t, names[0], ips[0]+":7000")
	if got, err := testenv.TCPHello(c.w.Inet, testenv.UplinkIP+":8080", 3*time.Second); err != nil {
		t.Fatalf("published port 8080 of %s from the internet: %v (%q)", names[0], err, got)
	}
	if seen := pub.Seen(); len(seen) != 1 || seen[0] != testenv.RouterIP {
		t.Fatalf("the overlay sandbox behind the published port saw %v, want %s", seen, testenv.RouterIP)
	}
	pub.Close()
	for i := range 3 {
		gcClean(t, h[i], fmt.Sprintf("host %d with an overlay network", i))
	}
	var insp []struct {
		Driver  string `json:"driver"`
		Overlay struct {
			VNI int `json:"vni"`
		} `json:"overlay"`
	}
	decode(t, h[1].MustNsnet(t, "network", "inspect", "ova"), &insp)
	if len(insp) != 1 || insp[0].Driver != "overlay" || insp[0].Overlay.VNI != 4242 {
		t.Errorf("network inspect ova on host 1: %+v, want driver overlay, VNI 4242", insp)
	}
	expectFail(t, h[1], 1, []string{"is an overlay network", "network rm --store " + storeURL + " ova"}, "network", "rm", "ova")

	// Drift: the VXLAN device deleted by hand comes back, with its entries.
	gone := vxlanDevice(t, h[1], "ova").IfName
	c.mustIP("-n", h[1].Host, "link", "del", gone)
	err := waitFor(agentWait, func() error {
		for _, l := range testenv.Links(t, h[1].Host) {
			if l.IfName == gone {
				if _, neigh := remoteEntries(t, h[1].Host, gone); len(neigh) == 2 {
					return nil
				}
			}
		}
		return fmt.Errorf("the VXLAN device %s on host 1 was not made again with its 2 neighbours", gone)
	})
	if err != nil {
		t.Fatal(err)
	}
	mustPing(t, names[1], ips[2])

	for i := range 3 {
		dev := vxlanDevice(t, h[i], "ova")
		var info vxlanInfo
		if err := json.Unmarshal(dev.LinkInfo.InfoData, &info); err != nil {
			t.Fatal(err)
		}
		want := vxlanInfo{ID: 4242, Local: underlayIP(i), Port: 4789, Learning: false, Proxy: true}
		if info != want || dev.MTU != 1450 || !strings.HasPrefix(dev.IfAlias, "nsnet:") {
			t.Errorf("host %d: VXLAN device %s: %+v, MTU %d, alias %q; want %+v, MTU 1450, an owner mark", i, dev.IfName, info, dev.MTU, dev.IfAlias, want)
		}
		macs, neigh := remoteEntries(t, h[i].Host, dev.IfName)
		for j := range 3 {
			if j == i {
				continue
			}
			mac := inspectSandbox(t, h[j], names[j]).Networks["ova"].MAC
			if macs[mac] != underlayIP(j) || neigh[ips[j]] != mac {
				t.Errorf("host %d: sandbox %s (%s, %s on host %d): FDB %v, neighbours %v", i, names[j], ips[j], mac, j, macs, neigh)
			}
		}
		if len(macs) != 2 || len(neigh) != 2 {
			t.Errorf("host %d: want exactly the 2 remote sandboxes' entries, have FDB %v (an all-zeros entry would flood), neighbours %v", i, macs, neigh)
		}
	}

	// A bridge driver option is refused, before the store is asked.
	expectFail(t, h[0], 1, []string{"-o com.docker.network.bridge.enable_icc is for bridge networks only"}, "network", "create",
		"--driver", "overlay", "--store", storeURL, "--subnet", "10.202.0.0/16", "-o", "com.docker.network.bridge.enable_icc=false", "ovc")

	// Isolation: a second overlay, and a local network on host 1.
	c.createOverlay("ovb", "10.201.0.0/16", "--antispoof=false", "--label", "tier=b")
	b0, b1 := c.w.Name("b0"), c.w.Name("b1")
	c.sandbox(0, b0, "--network", "ovb")
	ipb1 := c.sandbox(1, b1, "--network", "ovb")
	mustPing(t, b0, ipb1) // control: b1 answers over VXLAN from host 0
	mustNotPing(t, names[0], ipb1)

	// Anti-spoofing: host 0 guards its sandbox's port on ova (on by
	// default), not the VXLAN device, which brought the other hosts' frames
	// above; ovb, made with --antispoof=false, is so on every host. A
	// sandbox sending from an address not its own reaches the other host on
	// ovb (the control) and not on ova.
	for i := range 3 {
		insp := inspectNetworkJSON(t, h[i], "ovb")
		if insp["antispoof"] != false || fmt.Sprint(insp["labels"]) != "map[tier:b]" {
			t.Errorf("host %d: network inspect ovb: antispoof %v, labels %v; want false and tier=b, as created", i, insp["antispoof"], insp["labels"])
		}
	}
	overlayGuards(t, h[0], "ova", names[0], true)
	overlayGuards(t, h[0], "ovb", b0, false)
	if !spoofedDatagram(t, b0, "10.201.255.250", b1, ipb1, 5*time.Second) {
		t.Errorf("%s on ovb (--antispoof=false) sent from 10.201.255.250 and %s did not get it: this test cannot see the attack", b0, b1)
	}
	if spoofedDatagram(t, names[0], "10.200.255.250", names[1], ips[1], time.Second) {
		t.Errorf("%s on ova (anti-spoofing on) sent from 10.200.255.250 and %s on host 1 got it", names[0], names[1])
	}
	mustPing(t, names[0], ips[1]) // still from its own address

	// diagnose and topology on a host with overlay networks: a remote
	// sandbox's address is unknown here (beyond the VXLAN device), not
	// broken; the path out works; topology draws the local parts.
	r := h[0].Nsnet("diagnose", names[0], "--to", ips[1])
	if r.Code != 0 || !strings.Contains(r.Stdout, "another host's") || !strings.Contains(r.Stdout, vxlanDevice(t, h[0], "ova").IfName) {
		t.Errorf("diagnose %s --to %s (a sandbox on host 1): exit %d, want 0 and the address unknown beyond the VXLAN device\n%s%s", names[0], ips[1], r.Code, r.Stdout, r.Stderr)
	}
	if out := h[0].MustNsnet(t, "diagnose", names[0]); !strings.Contains(out, "the path works") {
		t.Errorf("diagnose %s (beyond the host): the path does not work\n%s", names[0], out)
	}
	for _, format := range []string{"text", "json", "dot"} {
		if out := h[0].MustNsnet(t, "topology", "--format", format); !strings.Contains(out, names[0]) || !strings.Contains(out, b0) {
			t.Errorf("topology --format %s on host 0 lacks its overlay sandboxes %s and %s:\n%s", format, names[0], b0, out)
		}
	}
	h[1].MustNsnet(t, "network", "create", "--subnet", "10.88.0.0/24", "loc")
	l1, l2 := c.w.Name("l1"), c.w.Name("l2")
	ipl1 := c.sandbox(1, l1, "--network", "loc")
	c.sandbox(1, l2, "--network", "loc")
	mustPing(t, l2, ipl1) // control: l1 answers on its network
	mustNotPing(t, names[0], ipl1)
	mustNotPing(t, names[1], ipl1)
	if out := h[1].MustNsnet(t, "network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"); out != "ova overlay global\novb overlay global\n" {
		t.Errorf("network ls --filter driver=overlay on host 1 (with local network loc):\n%s", out)
	}
	// network prune leaves host 2's part of ovb, on which it has no sandbox.
	h[2].MustNsnet(t, "network", "prune", "-f")
	inspectNetwork(t, h[2], "ovb")

	// Removal: a sandbox's entries leave the other hosts.
	h[2].MustNsnet(t, "sandbox", "rm", names[2])
	for _, i := range []int{0, 1} {
		dev := vxlanDevice(t, h[i], "ova").IfName
		err := waitFor(5*time.Second, func() error {
			if _, neigh := remoteEntries(t, h[i].Host, dev); neigh[ips[2]] != "" {
				return fmt.Errorf("host %d still has the neighbour entry of removed sandbox %s (%s)", i, names[2], ips[2])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c.teardown(map[int][]string{0: {names[0], b0}, 1: {names[1], b1, l1, l2}}, "ova", "ovb")
	h[1].MustNsnet(t, "network", "rm", "loc")
	c.stopAll()
}

// overlayGuards checks that host w's anti-spoofing table guards sandbox's
// port on overlay network if guarded, and never the network's VXLAN device.
func overlayGuards(t *testing.T, w *testenv.World, network, sandbox string, guarded bool) {
	t.Helper()
	veth := inspectSandbox(t, w, sandbox).Networks[network].HostVeth
	dev := vxlanDevice(t, w, network).IfName
	set := lastingElements(guardSet(t, w, "guarded"))
	if strings.Contains(set, fmt.Sprintf("%q", veth)) != guarded {
		t.Errorf("overlay network %s: %s's port %s guarded: %v, want %v\n%s", network, sandbox, veth, !guarded, guarded, set)
	}
	if strings.Contains(set, fmt.Sprintf("%q", dev)) {
		t.Errorf("overlay network %s: its VXLAN device %s is guarded as a sandbox port, so the other hosts' frames would be dropped\n%s", network, dev, set)
	}
}

// spoofedDatagram adds fake to sandbox from's eth0, sends a datagram from
// it to a UDP server at addr:5555 in sandbox to, and reports whether the
// server got it within wait. It removes fake and the server afterwards.
func spoofedDatagram(t *testing.T, from, fake, to, addr string, wait time.Duration) bool {
	t.Helper()
	var pc net.PacketConn
	if err := testenv.InNS(testenv.NSPath(to), func() (err error) { pc, err = net.ListenPacket("udp4", addr+":5555"); return }); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	mustRun(t, from, "ip", "addr", "add", fake+"/32", "dev", "eth0")
	defer mustRun(t, from, "ip", "addr", "del", fake+"/32", "dev", "eth0")
	payload := "from " + fake
	err := sendFrom(testenv.NSPath(from), netip.AddrPortFrom(netip.MustParseAddr(fake), 5555),
		netip.AddrPortFrom(netip.MustParseAddr(addr), 5555), []byte(payload))
	if err != nil {
		t.Fatalf("send from %s in %s: %v", fake, from, err)
	}
	pc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == payload {
			return true
		}
	}
}

// teardown removes sandboxes (by host) and overlay networks.
func (c *cluster) teardown(sbs map[int][]string, overlays ...string) {
	c.t.Helper()
	for i, names := range sbs {
		if len(names) > 0 {
			c.hosts[i].MustNsnet(c.t, append([]string{"sandbox", "rm"}, names...)...)
		}
	}
	for _, o := range overlays {
		c.removeOverlay(o)
	}
}

// stopAll stops the agents and etcd and checks that each host is clean.
func (c *cluster) stopAll() {
	c.t.Helper()
	for i := range c.agents {
		c.stopAgent(i, unix.SIGTERM)
	}
	c.stopEtcd()
	for i := range c.hosts {
		c.assertClean(i)
	}
}

// TestOverlayConcurrentAllocation: three hosts create sandboxes on one
// overlay network at the same moment; every sandbox has an address of its
// own (checked in the kernel, in each sandbox), and one on the last host is
// reachable from the first.
func TestOverlayConcurrentAllocation(t *testing.T) {
	const perHost = 30
	c := newCluster(t, 3)
	c.createOverlay("ovc", "10.200.0.0/24")
	names := make([][]string, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 3*perHost)
	for i := range 3 {
		for k := range perHost {
			names[i] = append(names[i], c.w.Name(fmt.Sprintf("c%d-%d", i, k)))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range names[i] {
				if r := c.hosts[i].Nsnet("sandbox", "create", "--network", "ovc", n); r.Code != 0 {
					errs <- fmt.Errorf("host %d: sandbox create %s: %s", i, n, r.Stderr)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for i := range 3 {
		for _, n := range names[i] {
			ip := ""
			for _, l := range testenv.Addrs(t, n) {
				if l.IfName == "eth0" && len(l.AddrInfo) > 0 {
					ip = l.AddrInfo[0].Local
				}
			}
			if ip == "" {
				t.Fatalf("sandbox %s has no address on eth0", n)
			}
			if o, ok := owner[ip]; ok {
				t.Fatalf("address %s is held by both %s and %s", ip, o, n)
			}
			owner[ip] = n
		}
	}
	last := names[2][perHost-1]
	mustPing(t, names[0][0], strings.Split(inspectSandbox(t, c.hosts[2], last).Networks["ovc"].Address, "/")[0])
	c.teardown(map[int][]string{0: names[0], 1: names[1], 2: names[2]}, "ovc")
	c.stopAll()
}
