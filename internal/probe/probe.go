// Package probe sends real traffic from inside a namespace: ICMP echo and a
// tiny TCP hello server and client, which nsnet demo uses to show
// connectivity without running ping or nc, and the probes of `nsnet diagnose
// --probe` (send.go): an echo of a full frame, a TCP connect, a UDP
// datagram, a DNS query, each saying what it met.
//
// Invariants: every socket is created on a thread switched into the target
// namespace (netns.Do), so it belongs to that namespace for its lifetime; all
// waits are bounded by the caller's timeout.
package probe

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/nsnet/nsnet/internal/netns"
)

// Ping sends one ICMP echo request from the namespace at nsPath to dst and
// waits for the reply; it returns the round-trip time.
func Ping(nsPath string, dst netip.Addr, timeout time.Duration) (time.Duration, error) {
	var conn *icmp.PacketConn
	err := netns.Do(nsPath, func() error {
		var err error
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("open ICMP socket in %s: %w", nsPath, err)
	}
	defer conn.Close()
	id, seq := os.Getpid()&0xffff, 1
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("nsnet")}}
	raw, _ := msg.Marshal(nil)
	start := time.Now()
	conn.SetDeadline(start.Add(timeout))
	if _, err := conn.WriteTo(raw, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return 0, fmt.Errorf("send echo request to %s: %w", dst, err)
	}
	return waitReply(conn, dst, id, seq, start)
}

func waitReply(conn *icmp.PacketConn, dst netip.Addr, id, seq int, start time.Time) (time.Duration, error) {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return 0, fmt.Errorf("no echo reply from %s: %w", dst, err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if ok && echo.ID == id && echo.Seq == seq && from.String() == dst.String() {
			return time.Since(start), nil
		}
	}
}

// Server is a TCP server that greets each client with the address it saw.
type Server struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
	wg   sync.WaitGroup
}

// Serve listens on addr inside the namespace at nsPath.
func Serve(nsPath, addr string) (*Server, error) {
	var ln net.Listener
	err := netns.Do(nsPath, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, nsPath, err)
	}
	s := &Server{ln: ln}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

func (s *Server) loop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		s.mu.Lock()
		s.seen = append(s.seen, host)
		s.mu.Unlock()
		fmt.Fprintf(c, "hello %s\n", host)
		c.Close()
	}
}

// Seen returns the client addresses the server has greeted.
func (s *Server) Seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Close stops the server.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Hello connects from the namespace at nsPath to addr and returns the
// server's greeting line.
func Hello(nsPath, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	err := netns.Do(nsPath, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("connect from %s to %s: %w", nsPath, addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}
