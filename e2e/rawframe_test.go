package e2e

// Raw Ethernet frames sent and seen inside a namespace (AF_PACKET), for the
// spoofing tests: an attacker crafts what its kernel would not send, and a
// victim sees what reaches its interface whatever its stack does with it.

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/testenv"
)

// rawLink is an AF_PACKET socket bound to one interface of a namespace.
type rawLink struct {
	fd   int
	mac  net.HardwareAddr
	once sync.Once
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openRaw opens a raw socket on ifname in the namespace at path; it is
// closed when the test ends.
func openRaw(t *testing.T, path, ifname string) *rawLink {
	t.Helper()
	var l rawLink
	err := testenv.InNS(path, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		l.fd, l.mac = fd, ifi.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatalf("raw socket on %s in %s: %v", ifname, path, err)
	}
	testenv.CloseAtEnd(t, &l) // before AssertClean: the socket holds the namespace
	return &l
}

func (l *rawLink) Close() error {
	l.once.Do(func() { unix.Close(l.fd) })
	return nil
}

func (l *rawLink) send(t *testing.T, frame []byte) {
	t.Helper()
	if _, err := unix.Write(l.fd, frame); err != nil {
		t.Fatalf("send raw frame: %v", err)
	}
}

// seen reads incoming frames for d and reports whether one matched.
func (l *rawLink) seen(d time.Duration, match func(frame []byte) bool) bool {
	buf := make([]byte, 65536)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		n, from, err := unix.Recvfrom(l.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if match(buf[:n]) {
			return true
		}
	}
	return false
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func ethernet(dst, src net.HardwareAddr, etype uint16, payload []byte) []byte {
	f := append(append([]byte{}, dst...), src...)
	f = binary.BigEndian.AppendUint16(f, etype)
	return append(f, payload...)
}

// garp is a gratuitous ARP request: sender and target are ip, at mac.
func garp(mac net.HardwareAddr, ip netip.Addr) []byte {
	p := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	p = append(p, mac...)
	p = append(p, ip.AsSlice()...)
	p = append(p, 0, 0, 0, 0, 0, 0)
	p = append(p, ip.AsSlice()...)
	return ethernet(broadcastMAC, mac, unix.ETH_P_ARP, p)
}

// udp4 is an IPv4 UDP datagram (no UDP checksum, as IPv4 allows).
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	u := binary.BigEndian.AppendUint16(nil, sport)
	u = binary.BigEndian.AppendUint16(u, dport)
	u = binary.BigEndian.AppendUint16(u, uint16(8+len(payload)))
	u = append(u, 0, 0)
	u = append(u, payload...)
	return ipv4(src, dst, unix.IPPROTO_UDP, u)
}

func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := []byte{0x45, 0}
	h = binary.BigEndian.AppendUint16(h, uint16(20+len(payload)))
	h = append(h, 0, 0, 0, 0, 64, proto, 0, 0)
	h = append(h, src.AsSlice()...)
	h = append(h, dst.AsSlice()...)
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, payload...)
}

// routerAdvert is an ICMPv6 router advertisement from the link-local
// address of mac to all nodes, offering a default route.
func routerAdvert(mac net.HardwareAddr) []byte {
	src := eui64LinkLocal(mac)
	dst := netip.MustParseAddr("ff02::1")
	icmp := []byte{134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}
	icmp = append(append(icmp, 1, 1), mac...) // source link-layer address option
	pseudo := append(append(src.AsSlice(), dst.AsSlice()...), 0, 0, 0, byte(len(icmp)), 0, 0, 0, unix.IPPROTO_ICMPV6)
	binary.BigEndian.PutUint16(icmp[2:], checksum(append(pseudo, icmp...)))
	h := []byte{0x60, 0, 0, 0}
	h = binary.BigEndian.AppendUint16(h, uint16(len(icmp)))
	h = append(h, unix.IPPROTO_ICMPV6, 255)
	h = append(append(h, src.AsSlice()...), dst.AsSlice()...)
	return ethernet(net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, mac, unix.ETH_P_IPV6, append(h, icmp...))
}

// eui64LinkLocal is the EUI-64 link-local address of mac.
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	a := [16]byte{0xfe, 0x80}
	copy(a[8:], []byte{mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
	return netip.AddrFrom16(a)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// Frame matchers.

func fromMAC(f []byte, mac net.HardwareAddr) bool {
	return len(f) >= 14 && net.HardwareAddr(f[6:12]).String() == mac.String()
}

func isRouterAdvert(f []byte) bool {
	return len(f) >= 14+40+1 && binary.BigEndian.Uint16(f[12:]) == unix.ETH_P_IPV6 && f[14+6] == unix.IPPROTO_ICMPV6 && f[14+40] == 134
}

func isUDPFromPort(f []byte, sport uint16) bool {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:]) != unix.ETH_P_IP || f[14+9] != unix.IPPROTO_UDP {
		return false
	}
	ihl := int(f[14]&0x0f) * 4
	return len(f) >= 14+ihl+8 && binary.BigEndian.Uint16(f[14+ihl:]) == sport
}
