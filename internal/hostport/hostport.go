// Package hostport checks whether a host port is free for publishing: it
// tries to bind it in the current (host) network namespace, and when a host
// process holds it, finds that process through /proc so the error can name it.
//
// Invariants: the only socket it leaves open is the one Hold returns, and it
// never changes the kernel's state; the bind uses SO_REUSEADDR for TCP so
// that connections in TIME_WAIT do not count as holders.
package hostport

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Hold binds proto/port on ip (invalid: every address, IPv4 and IPv6, in
// one dual-stack socket where the kernel has IPv6; ::, every IPv6 address)
// and returns the
// socket, or an error naming the process that holds the port, so that no host
// process can take the port while it is open: a TCP socket also listens,
// which keeps out servers that set SO_REUSEADDR (the resident accepts on
// it what nsnet's DNAT rules leave to it: the host's own connections to
// 127.0.0.1). SCTP is not held (f is nil): binding it needs the sctp
// module, and the port map alone decides.
func Hold(proto string, ip netip.Addr, port uint16) (f *os.File, err error) {
	if !Held(proto) {
		return nil, nil
	}
	fd, err := bindSocket(proto, ip, port)
	where := "0.0.0.0:" + strconv.Itoa(int(port))
	switch {
	case ip.Is6():
		where = "[" + ip.String() + "]:" + strconv.Itoa(int(port))
	case ip.IsValid():
		where = ip.String() + ":" + strconv.Itoa(int(port))
	}
	if err == nil {
		return os.NewFile(uintptr(fd), where+"/"+proto), nil
	}
	if holder := Holder(proto, port); holder != "" {
		return nil, fmt.Errorf("host port %s/%s is in use by %s: stop it or publish another host port", where, proto, holder)
	}
	return nil, fmt.Errorf("host port %s/%s cannot be bound (%v): publish another host port", where, proto, err)
}

// Held reports whether ports of proto are held bound while published (TCP
// and UDP are; SCTP is not).
func Held(proto string) bool { return proto != "sctp" }

// bindSocket binds an IPv4 socket for an IPv4 ip, an IPv6-only one for an
// IPv6 ip, and for every address a dual-stack IPv6 one on [::], or an IPv4
// one on 0.0.0.0 where the kernel has no IPv6.
func bindSocket(proto string, ip netip.Addr, port uint16) (int, error) {
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	family := unix.AF_INET
	if !ip.Is4() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err == unix.EAFNOSUPPORT && !ip.IsValid() {
		family = unix.AF_INET
		fd, err = unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, err
	}
	if proto == "tcp" {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(port)}
	if family == unix.AF_INET6 {
		v6only := 0
		if ip.IsValid() {
			v6only = 1
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
		sa6 := &unix.SockaddrInet6{Port: int(port)}
		if ip.IsValid() {
			sa6.Addr = ip.As16()
		}
		sa = sa6
	} else if ip.IsValid() {
		sa.(*unix.SockaddrInet4).Addr = ip.As4()
	}
	err = unix.Bind(fd, sa)
	if err == nil && proto == "tcp" {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Holder names the process with a socket bound to port ("nginx (pid 42)"),
// or returns "" if none is found.
func Holder(proto string, port uint16) string {
	inodes := socketInodes(proto, port)
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		link, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			pid := strings.Split(fd, "/")[2]
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			return fmt.Sprintf("process %s (pid %s)", strings.TrimSpace(string(comm)), pid)
		}
	}
	return "a socket of another network namespace or of the kernel"
}

// socketInodes returns the inodes of IPv4 and IPv6 sockets bound to port
// (listening, for TCP).
func socketInodes(proto string, port uint16) map[string]bool {
	out := map[string]bool{}
	for _, file := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			p, err := strconv.ParseUint(hexPort, 16, 16)
			if err != nil || uint16(p) != port || (proto == "tcp" && fields[3] != "0A") {
				continue
			}
			out[fields[9]] = true
		}
		f.Close()
	}
	return out
}

// LocalPortRange is the kernel's ephemeral port range, from which nsnet
// chooses host ports that a spec leaves out (as Docker does).
func LocalPortRange() (uint16, uint16) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(raw))
		if len(f) == 2 {
			lo, err1 := strconv.ParseUint(f[0], 10, 16)
			hi, err2 := strconv.ParseUint(f[1], 10, 16)
			if err1 == nil && err2 == nil && lo > 0 && lo <= hi {
				return uint16(lo), uint16(hi)
			}
		}
	}
	return 49153, 65535
}
