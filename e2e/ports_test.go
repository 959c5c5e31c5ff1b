package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/testenv"
)

const dialTimeout = 2 * time.Second

// reach asserts that a TCP connection from ns to addr gets the greeting of
// the echo server (which names the client address it saw), or not.
func reach(t *testing.T, ns, addr string, want bool, why string) string {
	t.Helper()
	got, err := testenv.TCPHello(ns, addr, dialTimeout)
	switch {
	case want && err != nil:
		t.Errorf("%s: %s -> %s failed: %v", why, ns, addr, err)
	case !want && err == nil:
		t.Errorf("%s: %s -> %s connected (%q), want no connection", why, ns, addr, got)
	}
	return got
}

// TestPublishedPorts checks where a published port answers and where it
// must not, with a real server in the sandbox and clients in the internet,
// the host and other sandboxes.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	web, web2, other := w.Name("web"), w.Name("web2"), w.Name("other")
	w.MustNsnet(t, "network", "create", "--subnet", "10.90.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.91.0.0/24", "n2")
	out := w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.90.0.10",
		"-p", "8080:80", "-p", "127.0.0.1:9090:80", "-p", "80", web)
	auto := autoPort(t, out)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", web2)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", "--ip", "10.91.0.20", other)
	testenv.StartTCPEcho(t, web, "0.0.0.0:80")

	up := testenv.UplinkIP
	if got := reach(t, w.Inet, up+":8080", true, "internet to the uplink"); got != "from "+testenv.RouterIP {
		t.Errorf("server saw %q, want the real client %s", got, testenv.RouterIP)
	}
	reach(t, w.Inet, fmt.Sprintf("%s:%d", up, auto), true, "internet to the chosen port")
	reach(t, w.Host, "127.0.0.1:8080", true, "host at 127.0.0.1")
	reach(t, w.Host, up+":8080", true, "host at its uplink address")
	reach(t, w.Host, "10.90.0.1:8080", true, "host at its bridge address")
	reach(t, other, up+":8080", true, "sandbox of another network via a host address")
	reach(t, web2, up+":8080", true, "sandbox of the same network via a host address")
	reach(t, web, up+":8080", true, "hairpin: the sandbox to its own published port")

	reach(t, w.Host, "127.0.0.1:9090", true, "host at 127.0.0.1 to a port bound there")
	reach(t, w.Inet, up+":9090", false, "internet to a port bound to 127.0.0.1")
	reach(t, w.Host, up+":9090", false, "host uplink address to a port bound to 127.0.0.1")
	reach(t, other, up+":9090", false, "sandbox to a port bound to 127.0.0.1")
	reach(t, w.Inet, up+":8081", false, "internet to a port nobody published")

	t.Run("127.0.0.1 from a neighbour (CVE-2020-8558)", func(t *testing.T) { checkLocalhostGuard(t, w, other) })
	t.Run("isolation", func(t *testing.T) {
		reach(t, other, "10.90.0.10:80", false, "sandbox of another network to the address directly")
		testenv.StartTCPEcho(t, other, "0.0.0.0:81")
		reach(t, web, "10.91.0.20:81", false, "and the other way")
		reach(t, w.Host, "10.91.0.20:81", true, "the host still reaches both")
	})
	w.MustNsnet(t, "sandbox", "rm", web, web2, other)
	w.MustNsnet(t, "network", "rm", "n1", "n2")
	w.AssertClean(t)
}

var mappingLine = regexp.MustCompile(`80/tcp -> 0\.0\.0\.0:(\d+)`)

// autoPort finds the host port nsnet chose for `-p 80` in create's output.
func autoPort(t *testing.T, out string) int {
	t.Helper()
	for _, m := range mappingLine.FindAllStringSubmatch(out, -1) {
		if p, _ := strconv.Atoi(m[1]); p != 8080 {
			return p
		}
	}
	t.Fatalf("no chosen host port in:\n%s", out)
	return 0
}

// checkLocalhostGuard makes a sandbox route 127.0.0.1 to the host, as an
// attacker on a shared segment would, and checks the port bound to the host's
// 127.0.0.1 stays out of reach through each of nsnet's layers: with the guard
// flushed, no rule translates 127.0.0.0/8 and the kernel drops the packets
// (route_localnet is off on the bridge); with route_localnet turned on by
// hand as well, it is reached (the control); and after firewall reload the
// guard alone keeps it out.
func checkLocalhostGuard(t *testing.T, w *testenv.World, attacker string) {
	br := inspectNetwork(t, w, "n2").Bridge
	routeLoopbackToHost(t, attacker, "10.91.0.1")
	reach(t, attacker, "127.0.0.1:9090", false, "neighbour routing 127.0.0.1 to the host")
	mustRun(t, w.Host, "nft", "flush", "chain", "inet", w.Table(), "prerouting-guard")
	reach(t, attacker, "127.0.0.1:9090", false, "without the guard")
	mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf."+br+".route_localnet=1")
	defer mustRun(t, w.Host, "sysctl", "-qw", "net.ipv4.conf."+br+".route_localnet=0")
	reach(t, attacker, "127.0.0.1:9090", true, "control: without the guard and with route_localnet on the bridge")
	w.MustNsnet(t, "firewall", "reload")
	reach(t, attacker, "127.0.0.1:9090", false, "after firewall reload, with route_localnet on the bridge")
}

// TestPortConflictsAndChanges checks refusals of taken host ports, adding and
// removing ports of a running sandbox, and that internal networks cannot
// publish.
func TestPortConflictsAndChanges(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, c := w.Name("a"), w.Name("b"), w.Name("c")
	w.MustNsnet(t, "network", "create", "--subnet", "10.92.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--internal", "--subnet", "10.93.0.0/24", "in")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", a)
	testenv.StartTCPEcho(t, a, "0.0.0.0:80")

	before := w.Snapshot(t)
	expectFail(t, w, 1, []string{"8080", "already published by sandbox " + a}, "sandbox", "create", "--network", "n1", "-p", "8080:81", b)
	expectFail(t, w, 1, []string{"8080", "already published by sandbox " + a}, "sandbox", "create", "--network", "n1", "-p", "127.0.0.1:8080:81", b)
	testenv.StartTCPEcho(t, w.Host, "0.0.0.0:7070")
	expectFail(t, w, 1, []string{"7070", "in use by process", "pid"}, "port", "add", a, "7070:80")
	expectFail(t, w, 1, []string{"internal network in", "cannot publish"}, "sandbox", "create", "--network", "in", "-p", "80", c)
	expectFail(t, w, 1, []string{"publishes nothing matching 9999"}, "port", "rm", a, "9999:80")
	if d := before.Diff(w.Snapshot(t)); d != "" {
		t.Errorf("refused commands changed the world:\n%s", d)
	}

	if out := w.MustNsnet(t, "port", "add", a, "6060:80", "6061-6062:80-81/udp"); !strings.Contains(out, "80/tcp -> 0.0.0.0:6060") {
		t.Errorf("port add printed %q", out)
	}
	reach(t, w.Inet, testenv.UplinkIP+":6060", true, "port added to a running sandbox")
	ls := w.MustNsnet(t, "port", "ls", a)
	for _, want := range []string{`80/tcp\s+0\.0\.0\.0:6060`, `81/udp\s+0\.0\.0\.0:6062`, `80/tcp\s+0\.0\.0\.0:8080`} {
		if !regexp.MustCompile(want).MatchString(ls) {
			t.Errorf("port ls lacks %q:\n%s", want, ls)
		}
	}
	w.MustNsnet(t, "port", "rm", a, "6060:80", "80/udp", "81/udp")
	reach(t, w.Inet, testenv.UplinkIP+":6060", false, "removed port")
	reach(t, w.Inet, testenv.UplinkIP+":8080", true, "the other port stays")
	w.MustNsnet(t, "sandbox", "rm", a)
	reach(t, w.Inet, testenv.UplinkIP+":8080", false, "port of a removed sandbox")
	w.MustNsnet(t, "network", "rm", "n1", "in")
	w.AssertClean(t)
}

// TestUDPFlowMovesOn checks that removing a sandbox flushes the conntrack
// entries of its UDP mapping: the same client flow then reaches the sandbox
// that publishes the port next, instead of the one that is gone.
func TestUDPFlowMovesOn(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b := w.Name("a"), w.Name("b")
	w.MustNsnet(t, "network", "create", "--subnet", "10.94.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "5353:53/udp", a)
	startUDPEcho(t, a, "first")

	conn := udpClient(t, w.Inet, testenv.UplinkIP+":5353")
	if got := udpAsk(t, conn); got != "first" {
		t.Fatalf("udp through the mapping: %q", got)
	}
	w.MustNsnet(t, "sandbox", "rm", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "5353:53/udp", b)
	startUDPEcho(t, b, "second")
	if got := udpAsk(t, conn); got != "second" {
		t.Errorf("the same UDP flow after the mapping moved: %q, want \"second\"", got)
	}
	w.MustNsnet(t, "sandbox", "rm", b)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

func startUDPEcho(t *testing.T, ns, name string) {
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
			pc.WriteTo([]byte(name), from)
		}
	}()
}

func udpClient(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := testenv.InNS(testenv.NSPath(ns), func() (err error) { c, err = net.Dial("udp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	testenv.CloseAtEnd(t, c)
	return c
}

// udpAsk sends a few datagrams on one flow until one is answered.
func udpAsk(t *testing.T, c net.Conn) string {
	buf := make([]byte, 512)
	for i := 0; i < 5; i++ {
		c.Write([]byte("hi"))
		c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n])
		}
	}
	return ""
}

// TestForwardDropWarning checks that a host firewall dropping forwarded
// traffic by default is reported, since nsnet does not edit it.
func TestForwardDropWarning(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	mustRun(t, w.Host, "nft", "add", "table", "ip", "filter")
	mustRun(t, w.Host, "nft", "add", "chain", "ip", "filter", "FORWARD", "{ type filter hook forward priority 0; policy drop; }")
	r := w.Nsnet("network", "create", "--subnet", "10.95.0.0/24", "--bridge", "br-w", "n1")
	if r.Code != 0 || !strings.Contains(r.Stderr, "Warning: table ip filter chain FORWARD drops forwarded packets") ||
		!strings.Contains(r.Stderr, `nft insert rule ip filter FORWARD iifname "br-w" accept`) {
		t.Errorf("network create: exit %d, stderr %q", r.Code, r.Stderr)
	}
	sb := w.Name("s")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", sb)
	testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":7777")
	reach(t, sb, testenv.PublicIP+":7777", false, "the warning is true: traffic is dropped")
	mustRun(t, w.Host, "nft", "insert", "rule", "ip", "filter", "FORWARD", "iifname", "br-w", "accept")
	mustRun(t, w.Host, "nft", "insert", "rule", "ip", "filter", "FORWARD", "oifname", "br-w", "accept")
	reach(t, sb, testenv.PublicIP+":7777", true, "with the suggested rules")
	w.MustNsnet(t, "sandbox", "rm", sb)
	w.MustNsnet(t, "network", "rm", "n1")
	mustRun(t, w.Host, "nft", "delete", "table", "ip", "filter")
	w.AssertClean(t)
}

// TestManyPorts publishes 10,000 ports in one command (more than fit in one
// netlink attribute) under an open-file limit of 20,000 that nsnet may not
// raise (as an unprivileged service manager would set it), and checks that
// every one reaches the kernel, is held, and leaves both again.
func TestManyPorts(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.Bin = limitedBinary(t, 20000)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.98.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", s)
	w.MustNsnet(t, "port", "add", s, "20000-29999:20000-29999")
	if n := mapElements(t, w); n != 10000 {
		t.Errorf("ports-any-ip holds %d elements, want 10000", n)
	}
	if out := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(out, "nothing to do") {
		t.Errorf("gc after 10,000 ports:\n%s", out)
	}
	canListen(t, w, "tcp4", "0.0.0.0:20000", false)
	canListen(t, w, "tcp4", "0.0.0.0:29999", false)
	testenv.StartTCPEcho(t, s, "0.0.0.0:29999")
	reach(t, w.Inet, testenv.UplinkIP+":29999", true, "the last of 10,000 ports")
	w.MustNsnet(t, "port", "rm", s, "20000-29999:20000-29999")
	if n := mapElements(t, w); n != 0 {
		t.Errorf("ports-any-ip holds %d elements after removal, want 0", n)
	}
	canListen(t, w, "tcp4", "0.0.0.0:29999", true)
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// limitedBinary returns a script that runs nsnet with an open-file limit of
// n (soft and hard) and without CAP_SYS_RESOURCE, so the limit cannot be
// raised; the resident process nsnet starts inherits both.
func limitedBinary(t *testing.T, n int) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "nsnet-limited")
	body := fmt.Sprintf("#!/bin/sh\nexec prlimit --nofile=%d:%d setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource %s \"$@\"\n",
		n, n, testenv.Binary(t))
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// mapElements counts the elements of the ports-any-ip map with nft -j.
func mapElements(t *testing.T, w *testenv.World) int {
	t.Helper()
	out, err := testenv.RunIn(w.Host, "nft", "-j", "list", "map", "inet", w.Table(), "ports-any-ip")
	if err != nil {
		t.Fatalf("nft list map: %v\n%s", err, out)
	}
	var doc struct {
		Nftables []struct {
			Map *struct {
				Elem []any `json:"elem"`
			} `json:"map"`
		} `json:"nftables"`
	}
	decode(t, out, &doc)
	for _, o := range doc.Nftables {
		if o.Map != nil {
			return len(o.Map.Elem)
		}
	}
	t.Fatalf("no map in %s", out)
	return 0
}

// TestPortsAreHeld checks that a published host port stays bound while the
// sandbox publishes it, so no host process can take it, and is free again
// when unpublished; a resident process that dies is restarted by gc.
func TestPortsAreHeld(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.99.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "-p", "8080:80", "-p", "5353:53/udp", s)
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)
	canListen(t, w, "tcp4", "127.0.0.1:8080", false)
	canListen(t, w, "udp4", "0.0.0.0:5353", false)
	canListen(t, w, "tcp4", "0.0.0.0:8081", true)

	pid := inspectResident(t, w, s)
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill resident %d: %v", pid, err)
	}
	waitExit(t, pid)
	canListen(t, w, "tcp4", "0.0.0.0:8080", true)
	if out := w.MustNsnet(t, "gc"); !strings.Contains(out, "start the resident process: 2 ports of 1 sandboxes to hold") {
		t.Errorf("gc after the resident died:\n%s", out)
	}
	canListen(t, w, "tcp4", "0.0.0.0:8080", false)

	w.MustNsnet(t, "port", "rm", s, "8080:80")
	canListen(t, w, "tcp4", "0.0.0.0:8080", true)
	canListen(t, w, "udp4", "0.0.0.0:5353", false)
	pid = inspectResident(t, w, s)
	w.MustNsnet(t, "sandbox", "rm", s)
	waitExit(t, pid)
	canListen(t, w, "udp4", "0.0.0.0:5353", true)
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// canListen tries to bind addr in the world's host namespace as a host
// process would (TCP with SO_REUSEADDR, as Go sets it).
func canListen(t *testing.T, w *testenv.World, network, addr string, want bool) {
	t.Helper()
	err := testenv.InNS(w.HostPath(), func() error { return tryBind(network, addr) })
	if (err == nil) != want {
		t.Errorf("host process binding %s %s: err %v, want success %t", network, addr, err, want)
	}
}

func tryBind(network, addr string) error {
	if strings.HasPrefix(network, "udp") {
		c, err := net.ListenPacket(network, addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	l, err := net.Listen(network, addr)
	if err == nil {
		l.Close()
	}
	return err
}

// waitExit waits until process pid, which need not be our child, has exited
// with all its threads (so its files are closed), through a pidfd.
func waitExit(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	if !pidfdExited(fd, 10*time.Second) {
		t.Fatalf("process %d still running", pid)
	}
}

// pidfdExited waits up to d for the process behind pidfd to have exited
// with all its threads.
func pidfdExited(fd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if n, err := unix.Poll(fds, 100); err == nil && n > 0 {
			return true
		}
	}
	return false
}
