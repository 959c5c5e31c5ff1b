package e2e

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

// routeLoopbackToHost makes sandbox attacker send packets for 127.0.0.1 to
// its gateway, as an attacker on a shared segment would (CVE-2020-8558).
func routeLoopbackToHost(t *testing.T, attacker, gateway string) {
	t.Helper()
	// The attacker's own 127.0.0.1 must go, or its kernel drops the replies
	// as martians (a source address of its own).
	mustRun(t, attacker, "ip", "addr", "flush", "dev", "lo")
	mustRun(t, attacker, "sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1")
	mustRun(t, attacker, "ip", "route", "add", "127.0.0.1/32", "via", gateway, "dev", "eth0")
}

// routeLocalnet reads net.ipv4.conf.DEV.route_localnet in the host namespace.
func routeLocalnet(t *testing.T, w *testenv.World, dev string) string {
	t.Helper()
	return testenv.Sysctl(t, w.Host, "net/ipv4/conf/"+dev+"/route_localnet")
}

// TestLoopbackClosedAfterFlush checks that after `nft flush ruleset` (which
// removes nsnet's guard) a sandbox that routes 127.0.0.1 to the host still
// cannot reach a host service on 127.0.0.1: nsnet leaves route_localnet off
// on its bridges, so the kernel drops such packets as martians. The control
// turns route_localnet on by hand, as nsnet used to, and the attack
// succeeds. Published ports keep answering the host at 127.0.0.1 after the
// flush, through the port holder; from outside they answer again once the
// table is back.
func TestLoopbackClosedAfterFlush(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	web, att, near := w.Name("web"), w.Name("att"), w.Name("near")
	w.MustNsnet(t, "network", "create", "--subnet", "10.88.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.89.0.0/24", "n2")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "127.0.0.1:9090:80", "-p", "8080:80", "-p", "127.0.0.1:5354:53/udp", web)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", att)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", near) // on the same network as web
	testenv.StartTCPEcho(t, web, "0.0.0.0:80")
	startUDPEcho(t, web, "web")
	testenv.StartTCPEcho(t, w.Host, "127.0.0.1:7777") // a host service on 127.0.0.1 only
	n1, n2 := inspectNetwork(t, w, "n1"), inspectNetwork(t, w, "n2")
	for _, br := range []string{n1.Bridge, n2.Bridge} {
		if got := routeLocalnet(t, w, br); got != "0" {
			t.Errorf("route_localnet on bridge %s is %s, want 0", br, got)
		}
	}

	routeLoopbackToHost(t, att, n2.Gateway)
	routeLoopbackToHost(t, near, n1.Gateway)
	for _, s := range []string{att, near} {
		reach(t, s, "127.0.0.1:7777", false, "sandbox routing 127.0.0.1 to the host, to a host service")
		reach(t, s, "127.0.0.1:9090", false, "sandbox routing 127.0.0.1 to the host, to a port published there")
	}
	mustRun(t, w.Host, "nft", "flush", "ruleset")
	reach(t, att, "127.0.0.1:7777", false, "after nft flush ruleset, to a host service on 127.0.0.1")
	reach(t, att, "127.0.0.1:9090", false, "after nft flush ruleset, to a port published on 127.0.0.1")

	reach(t, w.Host, "127.0.0.1:9090", true, "host at 127.0.0.1 after the flush (proxied)")
	reach(t, w.Host, "127.0.0.1:8080", true, "host at 127.0.0.1 to a port on every address after the flush (proxied)")
	if got := udpAsk(t, udpClient(t, w.Host, "127.0.0.1:5354")); got != "web" {
		t.Errorf("UDP at 127.0.0.1 after the flush: %q, want the sandbox's answer", got)
	}
	reach(t, w.Inet, testenv.UplinkIP+":8080", false, "internet to the uplink after the flush (the holder passes on only 127.0.0.0/8)")

	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf."+n2.Bridge+".route_localnet=1")
	reach(t, att, "127.0.0.1:7777", true, "control: with route_localnet on the bridge, as nsnet used to set it")
	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf."+n2.Bridge+".route_localnet=0")

	w.MustNsnet(t, "firewall", "reload")
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "internet to the uplink after firewall reload")
	w.MustNsnet(t, "sandbox", "rm", web, att, near)
	w.MustNsnet(t, "network", "rm", "n1", "n2")
	w.AssertClean(t)
}

// TestLoopbackProxied checks that published ports answer the host at
// 127.0.0.1, for TCP and UDP and for mappings on every address and on
// 127.0.0.1, through the port holder: the server in the sandbox sees the
// bridge's gateway address. Removing the port, or the sandbox, closes the
// proxied connections and stops the answers.
func TestLoopbackProxied(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	web := w.Name("web")
	w.MustNsnet(t, "network", "create", "--subnet", "10.87.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", "-p", "127.0.0.1:9090:80",
		"-p", "5353:53/udp", "-p", "127.0.0.1:5354:53/udp", web)
	testenv.StartTCPEcho(t, web, "0.0.0.0:80")
	startUDPWho(t, web)
	gw := inspectNetwork(t, w, "n1").Gateway

	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:9090"} {
		if got := reach(t, w.Host, addr, true, "host at 127.0.0.1"); got != "from "+gw {
			t.Errorf("%s: the server saw %q, want the gateway %s", addr, got, gw)
		}
	}
	if got := reach(t, w.Host, testenv.UplinkIP+":8080", true, "host at its uplink address"); got != "from "+testenv.UplinkIP {
		t.Errorf("the server saw %q, want the host's address (translated by the kernel, not proxied)", got)
	}
	for _, addr := range []string{"127.0.0.1:5353", "127.0.0.1:5354"} {
		if got := udpAsk(t, udpClient(t, w.Host, addr)); got != "from "+gw {
			t.Errorf("UDP %s: the server saw %q, want the gateway %s", addr, got, gw)
		}
	}

	open := dialEcho(t, w.Host, "127.0.0.1:8080")
	w.MustNsnet(t, "port", "rm", web, "8080:80")
	expectClosed(t, open, "a proxied connection after port rm")
	reach(t, w.Host, "127.0.0.1:8080", false, "host at 127.0.0.1 after port rm")

	open = dialEcho(t, w.Host, "127.0.0.1:9090")
	w.MustNsnet(t, "sandbox", "rm", web)
	expectClosed(t, open, "a proxied connection after sandbox rm")
	reach(t, w.Host, "127.0.0.1:9090", false, "host at 127.0.0.1 after sandbox rm")
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// startUDPWho serves UDP port 53 in ns, answering each datagram with the
// address it came from ("from 10.87.0.1").
func startUDPWho(t *testing.T, ns string) {
	t.Helper()
	var pc net.PacketConn
	if err := testenv.InNS(testenv.NSPath(ns), func() (err error) { pc, err = net.ListenPacket("udp4", "0.0.0.0:53"); return }); err != nil {
		t.Fatal(err)
	}
	testenv.CloseAtEnd(t, pc)
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte("from "+from.(*net.UDPAddr).IP.String()), from)
		}
	}()
}

// dialEcho connects from ns to addr, reads the echo server's greeting and
// checks that the connection echoes.
func dialEcho(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	c, err := testenv.DialIn(ns, addr, dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(dialTimeout))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "from ") {
		t.Fatalf("greeting at %s: %q, %v", addr, buf[:n], err)
	}
	c.Write([]byte("ping"))
	if _, err := io.ReadFull(c, buf[:4]); err != nil || string(buf[:4]) != "ping" {
		t.Fatalf("echo at %s: %q, %v", addr, buf[:4], err)
	}
	c.SetDeadline(time.Time{})
	// Let the ACK of the echo go out (Linux delays it up to 200 ms): a packet
	// of the connection still in flight when nsnet changes the ports could
	// reset it, and the test could not tell who closed it.
	time.Sleep(300 * time.Millisecond)
	return c
}

// expectClosed checks that c is closed by its peer (end of stream or reset)
// within a few seconds.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 16)); err == nil || isTimeout(err) {
		t.Errorf("%s: read %d bytes, %v; want the connection closed", what, n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestWarnsOfLocalnetForAll: with route_localnet on for every interface
// (net.ipv4.conf.all), which nsnet leaves alone, network create and gc warn
// that only the guard rule then protects 127.0.0.1; without it (the
// control) they do not.
func TestWarnsOfLocalnetForAll(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	const warning = "net.ipv4.conf.all.route_localnet is 1"
	if r := w.Nsnet("network", "create", "--subnet", "10.72.0.0/24", "n1"); r.Code != 0 || strings.Contains(r.Stderr, warning) {
		t.Errorf("control: network create: exit %d, stderr %q", r.Code, r.Stderr)
	}
	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
	for _, args := range [][]string{{"network", "create", "--subnet", "10.72.1.0/24", "n2"}, {"gc"}} {
		if r := w.Nsnet(args...); r.Code != 0 || !strings.Contains(r.Stderr, warning) {
			t.Errorf("%v with all.route_localnet=1: exit %d, stderr %q, want a warning", args, r.Code, r.Stderr)
		}
	}
	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=0")
	w.MustNsnet(t, "network", "rm", "n1", "n2")
	w.AssertClean(t)
}
