package observe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
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

// Identify is the device and inode of the namespace at path.
func (Kernel) Identify(path string) (uint64, uint64, error) {
	id, err := netns.Identify(path)
	return id.Dev, id.Ino, err
}

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
		for _, proto := range []string{"tcp", "udp"} {
			raw, err := os.ReadFile("/proc/thread-self/net/" + proto)
			if err != nil {
				return err
			}
			socks, ino := parseSockets(proto, raw)
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

// parseSockets reads /proc/net/tcp or udp: TCP sockets that listen, UDP
// sockets that are bound, and their inodes.
func parseSockets(proto string, raw []byte) ([]Socket, []string) {
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
		if !ok || err != nil || perr != nil || len(b) != 4 {
			continue
		}
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
		out = append(out, Socket{Proto: proto, Addr: netip.AddrFrom4(a), Port: uint16(port)})
		inodes = append(inodes, f[9])
	}
	return out, inodes
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
func (Kernel) Resident(root string) (resident.Status, error) { return resident.Probe(root) }
