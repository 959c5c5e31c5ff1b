package resident

import (
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/hostport"
	"github.com/nsnet/nsnet/internal/testenv"
)

// proxyWorld is a resident in a throwaway world's host namespace, whose
// targets are servers in the world's internet.
type proxyWorld struct {
	*testenv.World
	root string
	pid  int
	ns   Namespace // a file that stands in for the sandbox's namespace
}

func newProxyWorld(t *testing.T) proxyWorld {
	t.Helper()
	w := testenv.New(t)
	netns := filepath.Join(t.TempDir(), "netns") // stands in for a sandbox's namespace
	if err := os.WriteFile(netns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pw := proxyWorld{World: w, root: w.Root, ns: identify(t, netns)}
	err := testenv.InNS(w.HostPath(), func() (err error) { // the resident starts in the host namespace
		pw.pid, err = Start(os.Args[0], w.Root)
		return err
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { Stop(w.Root) })
	return pw
}

// hold binds proto/ip:port (ip "": every address) in the host namespace and
// hands it to the resident with target, as sandbox s's.
func (w proxyWorld) hold(t *testing.T, proto, ip string, port uint16, target string) string {
	t.Helper()
	var f *os.File
	var addr netip.Addr
	if ip != "" {
		addr = netip.MustParseAddr(ip)
	}
	err := testenv.InNS(w.HostPath(), func() (err error) {
		f, err = hostport.Hold(proto, addr, port)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	key := f.Name()
	if err := Hold(w.root, "s", w.ns, []Port{{Key: key, Sock: f, Target: netip.MustParseAddrPort(target)}}); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	return key
}

// TestProxiesTCP checks that a held TCP port passes the host's connections
// to 127.0.0.1 on to its target, with half-closes, and closes connections
// to its other addresses (this world has no DNAT rules); and that releasing
// it closes the connections it proxies and stops answering.
func TestProxiesTCP(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	echo := testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":7777")
	key := w.hold(t, "tcp", "127.0.0.1", 7070, testenv.PublicIP+":7777")
	w.hold(t, "tcp", "", 7071, testenv.PublicIP+":7777")
	if _, err := testenv.TCPHello(w.Inet, testenv.UplinkIP+":7071", time.Second); err == nil {
		t.Error("a connection from outside to a port held on every address was proxied")
	}
	if _, err := testenv.TCPHello(w.Host, "127.0.0.1:7071", 2*time.Second); err != nil {
		t.Errorf("control: the host at 127.0.0.1 to the port held on every address: %v", err)
	}

	if got, err := testenv.TCPHello(w.Host, "127.0.0.1:7070", 2*time.Second); err != nil || got != "from "+testenv.UplinkIP {
		t.Fatalf("through the proxy: %q, %v; want the greeting of the target, which sees the host's address", got, err)
	}
	c := dialHello(t, w.Host, "127.0.0.1:7070")
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "ping" {
		t.Errorf("after a half-close the echo is %q, %v; want \"ping\" and the end of the stream", got, err)
	}
	c.Close()

	open := dialHello(t, w.Host, "127.0.0.1:7070")
	defer open.Close()
	if err := Release(w.root, "s", []string{key}); err != nil {
		t.Fatal(err)
	}
	open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := open.Read(make([]byte, 16)); err == nil || os.IsTimeout(err) {
		t.Errorf("a proxied connection after Release: read %d, %v; want it closed", n, err)
	}
	if _, err := testenv.TCPHello(w.Host, "127.0.0.1:7070", time.Second); err == nil {
		t.Error("the port still answers after Release")
	}
	if seen := echo.Seen(); len(seen) != 4 {
		t.Errorf("the target saw %v, want four connections", seen)
	}
}

// dialHello connects to addr from ns and reads the echo server's greeting.
func dialHello(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	c, err := testenv.DialIn(ns, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, len("from ")+len(testenv.UplinkIP)+1)
	if _, err := io.ReadFull(c, buf); err != nil || !strings.HasPrefix(string(buf), "from ") {
		t.Fatalf("greeting through the proxy: %q, %v", buf, err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// TestProxiesUDP checks that a held UDP port passes each client's datagrams
// to 127.0.0.1 on to its target and the replies back from the held port,
// drops datagrams to its other addresses, and that releasing it stops that.
func TestProxiesUDP(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	var server net.PacketConn
	if err := testenv.InNS(w.InetPath(), func() (err error) {
		server, err = net.ListenPacket("udp4", testenv.PublicIP+":5353")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	go func() { // answers with the address it saw
		buf := make([]byte, 512)
		for {
			n, from, err := server.ReadFrom(buf)
			if err != nil {
				return
			}
			server.WriteTo([]byte(string(buf[:n])+" from "+from.(*net.UDPAddr).IP.String()), from)
		}
	}()
	key := w.hold(t, "udp", "127.0.0.1", 5300, testenv.PublicIP+":5353")
	w.hold(t, "udp", "", 5301, testenv.PublicIP+":5353")
	if got := ask(udpDial(t, w.Inet, testenv.UplinkIP+":5301"), "outside"); got != "" {
		t.Errorf("a datagram from outside to a port held on every address was answered: %q", got)
	}
	if got := ask(udpDial(t, w.Host, "127.0.0.1:5301"), "inside"); got != "inside from "+testenv.UplinkIP {
		t.Errorf("control: the host at 127.0.0.1 to the port held on every address: %q", got)
	}

	a, b := udpDial(t, w.Host, "127.0.0.1:5300"), udpDial(t, w.Host, "127.0.0.1:5300")
	for _, c := range []struct {
		conn net.Conn
		say  string
	}{{a, "a"}, {b, "b"}, {a, "a again"}} {
		if got := ask(c.conn, c.say); got != c.say+" from "+testenv.UplinkIP {
			t.Errorf("client %s: answer %q, want its own datagram back from the target", c.say, got)
		}
	}
	if err := Release(w.root, "s", []string{key}); err != nil {
		t.Fatal(err)
	}
	if got := ask(a, "after"); got != "" {
		t.Errorf("answer after Release: %q", got)
	}
}

// udpDial opens a UDP socket in ns connected to addr: it takes datagrams
// from addr only.
func udpDial(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := testenv.InNS(testenv.NSPath(ns), func() (err error) { c, err = net.Dial("udp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ask sends say a few times until an answer comes; "" if none does.
func ask(c net.Conn, say string) string {
	buf := make([]byte, 512)
	for range 3 {
		c.Write([]byte(say))
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n])
		}
	}
	return ""
}
