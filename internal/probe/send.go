package probe

// The probes of `nsnet diagnose --probe`: one ICMP echo, TCP connect, UDP
// datagram or DNS query from inside a sandbox's namespace, each saying
// whether it was answered, refused, met an error on the way, or heard
// nothing.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/netns"
)

// What a probe met.
const (
	Answered    = "answered"
	Refused     = "refused"
	Unreachable = "unreachable"
	Silent      = "silent"
)

// Outcome is what a probe met, in words, and for a DNS query the addresses
// of the answer.
type Outcome struct {
	Reached string
	Detail  string
	Addrs   []netip.Addr
	MTU     int // of a "fragmentation needed" error
}

// in runs fn in the namespace at path, or where the caller is for "".
func in(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return netns.Do(path, fn)
}

// Echo sends one ICMP echo request of size bytes (IP header included) with
// Don't Fragment set, from the namespace at path to dst, and waits for the
// reply or an ICMP error about it. A "fragmentation needed" error with a
// smaller MTU is followed once, with that size.
func Echo(path string, dst netip.Addr, size int, timeout time.Duration) Outcome {
	o := echoOnce(path, dst, size, timeout)
	if mtu := o.MTU; mtu >= 68 && mtu < size {
		o = echoOnce(path, dst, mtu, timeout)
		o.Detail += fmt.Sprintf(" (the path's MTU is %d)", mtu)
	}
	return o
}

func echoOnce(path string, dst netip.Addr, size int, timeout time.Duration) Outcome {
	var fd int
	err := in(path, func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return Outcome{Reached: Unreachable, Detail: fmt.Sprintf("cannot open an ICMP socket in %s: %v", path, err)}
	}
	defer unix.Close(fd)
	unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	tv := unix.NsecToTimeval(int64(timeout))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	id := randomID()
	req := echoRequest(id, max(size-20, 8))
	start := time.Now()
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return Outcome{Reached: Unreachable, Detail: fmt.Sprintf("the sandbox cannot send to %s: %v", dst, err)}
	}
	buf := make([]byte, 65536)
	for time.Since(start) < timeout {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			break
		}
		if o, mine := readICMP(buf[:n], dst, id); mine {
			if o.Reached == Answered {
				o.Detail = fmt.Sprintf("echo reply from %s, %d bytes, in %.3f ms", dst, size, float64(time.Since(start).Microseconds())/1000)
			}
			return o
		}
	}
	return Outcome{Reached: Silent, Detail: fmt.Sprintf("no echo reply from %s within %s (%d bytes, Don't Fragment)", dst, timeout, size)}
}

func randomID() uint16 {
	var b [2]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}

// echoRequest is an ICMP echo request of id, sequence 1, n bytes long.
func echoRequest(id uint16, n int) []byte {
	b := make([]byte, n)
	b[0] = 8 // echo request
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], 1)
	copy(b[8:], "nsnet diagnose")
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
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

// readICMP reads a packet of a raw ICMP socket (IP header first): our echo
// reply from dst, or an ICMP error whose quoted packet is our request.
func readICMP(b []byte, dst netip.Addr, id uint16) (Outcome, bool) {
	if len(b) < 20 {
		return Outcome{}, false
	}
	hl := int(b[0]&0x0f) * 4
	if len(b) < hl+8 {
		return Outcome{}, false
	}
	from := netip.AddrFrom4([4]byte(b[12:16]))
	icmp := b[hl:]
	switch icmp[0] {
	case 0: // echo reply
		return Outcome{Reached: Answered}, from == dst && binary.BigEndian.Uint16(icmp[4:]) == id
	case 3, 11, 12: // destination unreachable, time exceeded, parameter problem
		quoted := icmp[8:]
		if len(quoted) < 20 {
			return Outcome{}, false
		}
		qhl := int(quoted[0]&0x0f) * 4
		if len(quoted) < qhl+8 || netip.AddrFrom4([4]byte(quoted[16:20])) != dst || binary.BigEndian.Uint16(quoted[qhl+4:]) != id {
			return Outcome{}, false
		}
		o := Outcome{Reached: Unreachable, Detail: fmt.Sprintf("%s from %s", icmpError(icmp[0], icmp[1]), from)}
		if icmp[0] == 3 && icmp[1] == 4 {
			o.MTU = int(binary.BigEndian.Uint16(icmp[6:]))
			o.Detail += ", mtu " + strconv.Itoa(o.MTU)
		}
		return o, true
	}
	return Outcome{}, false
}

func icmpError(typ, code byte) string {
	if typ == 11 {
		return "time exceeded"
	}
	if typ == 12 {
		return "parameter problem"
	}
	switch code {
	case 0:
		return "network unreachable"
	case 1:
		return "host unreachable"
	case 3:
		return "port unreachable"
	case 4:
		return "fragmentation needed"
	case 9, 10, 13:
		return "administratively prohibited"
	}
	return "destination unreachable (code " + strconv.Itoa(int(code)) + ")"
}

// Connect opens a TCP connection, or sends a UDP datagram and waits for an
// answer, from the namespace at path ("" for the caller's) to addr.
func Connect(path, proto string, addr netip.AddrPort, timeout time.Duration) Outcome {
	var c net.Conn
	err := in(path, func() (err error) {
		c, err = net.DialTimeout(proto+"4", addr.String(), timeout)
		return err
	})
	if err == nil && proto == "udp" {
		c.SetDeadline(time.Now().Add(timeout))
		if _, err = c.Write([]byte("nsnet diagnose\n")); err == nil {
			_, err = c.Read(make([]byte, 1500))
		}
	}
	if c != nil {
		defer c.Close()
	}
	if err == nil {
		what := "a TCP connection to " + addr.String()
		if proto == "udp" {
			what = "a UDP datagram back from " + addr.String()
		}
		return Outcome{Reached: Answered, Detail: what}
	}
	return failed(err, fmt.Sprintf("%s %s", proto, addr), timeout)
}

// failed turns a socket error into what the probe met.
func failed(err error, what string, timeout time.Duration) Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return Outcome{Reached: Refused, Detail: what + ": refused (nothing listens there)"}
	case errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return Outcome{Reached: Unreachable, Detail: what + ": " + errors.Unwrap(err).Error()}
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return Outcome{Reached: Silent, Detail: fmt.Sprintf("%s: no answer within %s", what, timeout)}
	}
	return Outcome{Reached: Unreachable, Detail: what + ": " + err.Error()}
}

// Lookup asks the DNS server at server:53 (UDP) for the IPv4 addresses of
// name, from the namespace at path.
func Lookup(path string, server netip.Addr, name string, timeout time.Duration) Outcome {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	var r *dns.Msg
	err := in(path, func() (err error) {
		r, _, err = c.Exchange(m, netip.AddrPortFrom(server, 53).String())
		return err
	})
	what := fmt.Sprintf("DNS query for %s at %s:53", name, server)
	if err != nil {
		return failed(err, what, timeout)
	}
	o := Outcome{Reached: Answered, Detail: fmt.Sprintf("%s: %s", what, dns.RcodeToString[r.Rcode])}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A.To4())
			o.Addrs = append(o.Addrs, ip)
		}
	}
	if len(o.Addrs) > 0 {
		o.Detail += fmt.Sprintf(", %v", o.Addrs)
	}
	return o
}
