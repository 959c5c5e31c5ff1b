package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/testenv"
)

// stream is a TCP connection that keeps flowing: each check sends a line
// and reads its echo.
type stream struct {
	c net.Conn
	r *bufio.Reader
}

func openStream(t *testing.T, ns, addr string) *stream {
	t.Helper()
	c, err := testenv.DialIn(ns, addr, dialTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // closed with a reset: nothing left closing keeps the namespace alive
	}
	testenv.CloseAtEnd(t, c)
	s := &stream{c: c, r: bufio.NewReader(c)}
	s.r.ReadString('\n') // the server's greeting
	return s
}

// flows reports whether the stream still carries a line both ways.
func (s *stream) flows(line string) error {
	s.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(s.c, line); err != nil {
		return err
	}
	got, err := s.r.ReadString('\n')
	if err == nil && strings.TrimSpace(got) != line {
		err = fmt.Errorf("echo %q, want %q", got, line)
	}
	return err
}

// TestConnectDisconnect connects a running sandbox to more networks and
// disconnects it again: each connect adds the next interface with its
// address, reaches the network's sandboxes, leaves the default route where it
// was; a disconnect of the route's network moves the route and the published
// ports to the next network that is not internal; connections on the other
// interfaces keep flowing through all of it. Docker's refusals hold.
func TestConnectDisconnect(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	a, b, none := w.Name("a"), w.Name("b"), w.Name("none")
	w.MustNsnet(t, "network", "create", "--subnet", "10.70.0.0/24", "n1")
	w.MustNsnet(t, "network", "create", "--subnet", "10.70.1.0/24", "n2")
	w.MustNsnet(t, "network", "create", "--subnet", "10.70.2.0/24", "--internal", "in")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--ip", "10.70.0.10", "-p", "8080:80", a)
	w.MustNsnet(t, "sandbox", "create", "--network", "n2", "--ip", "10.70.1.20", b)
	w.MustNsnet(t, "sandbox", "create", "--network", "none", none)
	testenv.StartTCPEcho(t, a, "0.0.0.0:80")
	testenv.StartTCPEcho(t, b, "0.0.0.0:81")
	onN1 := openStream(t, w.Host, "10.70.0.10:80")

	reach(t, a, "10.70.1.20:81", false, "before connect, n2 is another network")
	w.MustNsnet(t, "network", "connect", "--ip", "10.70.1.10", "n2", a)
	w.MustNsnet(t, "network", "connect", "in", a)
	if got := inspectSandbox(t, w, a).Networks; got["n2"].Interface != "eth1" || got["n2"].Address != "10.70.1.10/24" || got["in"].Interface != "eth2" {
		t.Errorf("after connect: %+v", got)
	}
	if l := mustLink(t, a, "eth1"); !l.IsUp() || !contains(l.IPs("inet"), "10.70.1.10/24") {
		t.Errorf("eth1 in the sandbox: %+v", l)
	}
	reach(t, a, "10.70.1.20:81", true, "after connect, a reaches b on n2")
	if gw := defaultGateway(t, a); gw != "10.70.0.1" {
		t.Errorf("after connect the default route goes via %q, want n1's 10.70.0.1 still", gw)
	}
	onN2 := openStream(t, b, "10.70.1.10:80")
	if err := onN1.flows("after connect"); err != nil {
		t.Errorf("the connection on eth0 broke at connect: %v", err)
	}

	expectFail(t, w, 1, []string{"already on network n2"}, "network", "connect", "n2", a)
	expectFail(t, w, 1, []string{"held by sandbox " + a}, "network", "connect", "--ip", "10.70.0.10", "n1", b)
	expectFail(t, w, 1, []string{"10.70.9.9"}, "network", "connect", "--ip", "10.70.9.9", "n1", b)
	expectFail(t, w, 1, []string{"none mode"}, "network", "connect", "n1", none)
	expectFail(t, w, 1, []string{"is not on network n1"}, "network", "disconnect", "n1", b)

	w.MustNsnet(t, "network", "disconnect", "n1", a)
	if gw := defaultGateway(t, a); gw != "10.70.1.1" {
		t.Errorf("after disconnecting n1 the default route goes via %q, want n2's 10.70.1.1", gw)
	}
	if err := onN2.flows("after disconnect"); err != nil {
		t.Errorf("the connection on eth1 broke at disconnect: %v", err)
	}
	if got := reach(t, w.Inet, testenv.UplinkIP+":8080", true, "the published port, through n2 now"); got != "from "+testenv.RouterIP {
		t.Errorf("the server saw %q, want the real client", got)
	}
	if _, err := testenv.TCPHello(w.Host, "127.0.0.1:8080", dialTimeout); err != nil {
		t.Errorf("the published port at the host's 127.0.0.1 (the resident's proxy), after disconnect: %v", err)
	}
	if err := testenv.Ping(a, testenv.PublicIP); err != nil {
		t.Errorf("after disconnect, no way out via n2: %v", err)
	}
	if _, err := testenv.TCPHello(w.Host, "10.70.0.10:80", dialTimeout); err == nil {
		t.Errorf("the address on n1 still answers after disconnect")
	}

	expectFail(t, w, 1, []string{"publishes ports", "--force"}, "network", "disconnect", "n2", a)
	w.MustNsnet(t, "network", "disconnect", "--force", "n2", a)
	if got := inspectSandbox(t, w, a); len(got.Networks) != 1 || got.Networks["in"].Gateway != "" {
		t.Errorf("after the last disconnect but in: %+v", got.Networks)
	}
	if out := w.MustNsnet(t, "port", "ls", a); strings.Contains(out, "8080") {
		t.Errorf("ports still published: %s", out)
	}
	gcClean(t, w, "after connects and disconnects")
	w.MustNsnet(t, "sandbox", "rm", a, b, none)
	w.MustNsnet(t, "network", "rm", "n1", "n2", "in")
	w.AssertClean(t)
}
