package observe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/resident"
	"github.com/nsnet/nsnet/internal/resolvconf"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// Kernel reads the live kernel, from the host's network namespace.
type Kernel struct{}

// Namespace reads links, addresses and routes through netlink.
func (Kernel) Namespace(path string, hairpin []string) (netview.Snapshot, error) {
	return netview.Observe(path, hairpin...)
}

// Identify is the ID of the namespace at path.
func (Kernel) Identify(path string) (netns.ID, error) { return netns.Identify(path) }

// Sysctls reads the keys that exist, in the namespace at path.
func (Kernel) Sysctls(path string, keys []string) map[string]string {
	out := map[string]string{}
	read := func() error {
		for _, k := range keys {
			if v, err := sysctl.Get(sysctlPath(k)); err == nil {
				out[k] = v
			}
		}
		return nil
	}
	if path == "" {
		read()
	} else {
		netns.Do(path, read)
	}
	return out
}

// Sockets lists the listening TCP and bound UDP sockets of the namespace at
// path (/proc/thread-self/net follows the thread's namespace) and the
// processes that hold them.
func (Kernel) Sockets(path string) ([]Socket, error) {
	var out []Socket
	var inodes []string
	read := func() error {
		for _, file := range []string{"tcp", "udp", "tcp6", "udp6"} {
			raw, err := os.ReadFile("/proc/thread-self/net/" + file)
			if errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(file, "6") {
				continue // IPv6 is off in this kernel
			}
			if err != nil {
				return err
			}
			socks, ino := parseSockets(file, raw)
			out, inodes = append(out, socks...), append(inodes, ino...)
		}
		return nil
	}
	var err error
	if path == "" {
		err = read()
	} else {
		err = netns.Do(path, read)
	}
	if err != nil {
		return nil, err
	}
	owners := socketOwners(inodes)
	for i := range out {
		if o, ok := owners[inodes[i]]; ok {
			out[i].PID, out[i].Process = o.pid, o.comm
		}
	}
	return out, nil
}

// parseSockets reads /proc/net/tcp, udp, tcp6 or udp6: TCP sockets that
// listen, UDP sockets that are bound, and their inodes. An IPv6 socket
// counts for the IPv4 address it takes: one bound to :: takes every IPv4
// address too (as Go's net.Listen("tcp", ":80") does; /proc does not show
// IPV6_V6ONLY, so a v6-only socket is counted wrongly), one bound to
// ::ffff:a.b.c.d takes a.b.c.d; others are left out.
func parseSockets(file string, raw []byte) ([]Socket, []string) {
	proto := strings.TrimSuffix(file, "6")
	var out []Socket
	var inodes []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || (proto == "tcp" && f[3] != "0A") || (proto == "udp" && f[3] != "07") {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		b, err := hex.DecodeString(hexAddr)
		port, perr := strconv.ParseUint(hexPort, 16, 16)
		a, aok := procAddr(b)
		if !ok || err != nil || perr != nil || !aok {
			continue
		}
		out = append(out, Socket{Proto: proto, Addr: a, Port: uint16(port)})
		inodes = append(inodes, f[9])
	}
	return out, inodes
}

// procAddr decodes an address of /proc/net/*: 32-bit words in host order
// (little-endian here), mapped to the IPv4 address it takes.
func procAddr(b []byte) (netip.Addr, bool) {
	if len(b) != 4 && len(b) != 16 {
		return netip.Addr{}, false
	}
	w := make([]byte, len(b))
	for i := 0; i < len(b); i += 4 {
		binary.BigEndian.PutUint32(w[i:], binary.LittleEndian.Uint32(b[i:]))
	}
	a, _ := netip.AddrFromSlice(w)
	switch {
	case a.Is4():
		return a, true
	case a.IsUnspecified():
		return netip.IPv4Unspecified(), true
	case a.Is4In6():
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

type owner struct {
	pid  int
	comm string
}

// socketOwners finds, through /proc/PID/fd, the process holding each socket
// inode.
func socketOwners(inodes []string) map[string]owner {
	want := map[string]bool{}
	for _, i := range inodes {
		want[i] = true
	}
	out := map[string]owner{}
	if len(want) == 0 {
		return out
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		ino, ok := strings.CutPrefix(link, "socket:[")
		ino = strings.TrimSuffix(ino, "]")
		if err != nil || !ok || !want[ino] {
			continue
		}
		if _, seen := out[ino]; seen {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		out[ino] = owner{pid: pid, comm: strings.TrimSpace(string(comm))}
	}
	return out
}

// Table reads nsnet's table.
func (Kernel) Table(name string) (firewall.View, error) { return firewall.Table{Name: name}.Observe() }

// Chains reads every other table's chains.
func (Kernel) Chains(skip string) ([]firewall.Chain, error) {
	return firewall.Table{Name: skip}.Chains()
}

// LegacyIptables lists the legacy iptables tables loaded in the host's
// namespace.
func (Kernel) LegacyIptables() []string {
	raw, err := os.ReadFile("/proc/net/ip_tables_names")
	if err != nil {
		return nil
	}
	return strings.Fields(string(raw))
}

// Nameservers are those of the sandbox's resolv.conf in /etc/netns.
func (Kernel) Nameservers(sandbox string) []netip.Addr {
	f, err := os.Open(filepath.Join(netns.EtcDir, sandbox, "resolv.conf"))
	if err != nil {
		return nil
	}
	defer f.Close()
	c, err := resolvconf.Parse(f)
	if err != nil {
		return nil
	}
	return c.Nameservers
}

// Resident asks the state root's resident what it holds and serves.
func (Kernel) Resident(root string) (resident.Status, error) {
	s := resident.NewSession(root)
	defer s.Close()
	return s.Probe()
}
