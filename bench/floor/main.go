// Command floor is the lower bound that bench/sandbox.sh measures nsnet
// against: it makes the same kernel objects as `nsnet sandbox create` and
// removes them like `nsnet sandbox rm`, with plain netlink calls, no state
// and no validation beyond parsing its arguments. Each subcommand does one
// operation and exits, so that, like the nsnet CLI, every operation pays for
// a process start.
//
// Usage (run inside the host network namespace):
//
//	floor bridge-up NAME CIDR           make bridge NAME with address CIDR, up
//	floor bridge-down NAME              delete bridge NAME
//	floor attach BRIDGE NSPATH IP/PREFIX GATEWAY MAC HOSTVETH
//	floor detach HOSTVETH
//	floor create BRIDGE NSNAME IP/PREFIX GATEWAY MAC HOSTVETH
//	floor delete HOSTVETH NSNAME
//	floor unmount NSNAME
//
// attach creates a veth pair HOSTVETH <-> eth0 with the peer created directly
// in the namespace at NSPATH (MAC and MTU 1500 set at creation), puts
// HOSTVETH on BRIDGE and up, then through a handle bound to the namespace adds
// IP/PREFIX to eth0, sets eth0 and lo up and adds a default route via
// GATEWAY. detach deletes HOSTVETH, which removes the pair: the kernel waits
// for RCU grace periods before it returns.
//
// create first makes a new namespace named NSNAME under /run/netns as `ip
// netns add` does (/run/netns a shared mount, an empty file bind-mounted with
// the namespace of a thread that unshared it), turning IPv6 off in it for
// every interface made there (net.ipv6.conf.default.disable_ipv6) as nsnet
// does for a bridge sandbox, then attaches it as attach does: what `nsnet
// sandbox create` does without --netns. (Without IPv6 off, each new sandbox
// would send IPv6 neighbour discovery that its bridge floods to every other
// sandbox: with 1,000 of them the floor's creates would slow down for a
// reason nsnet's do not have.) The two ways to remove it:
//
//   - delete deletes HOSTVETH, then unmounts and removes the name: the pair
//     goes at once, waiting for RCU as detach does.
//   - unmount only unmounts and removes the name. The namespace's last
//     reference goes with it, and the kernel destroys the namespace and the
//     pair with it later, in its batched clean-up of dead namespaces: the
//     least any removal can cost.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const mtu = 1500

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage: floor bridge-up NAME CIDR | bridge-down NAME | " +
		"attach BRIDGE NSPATH IP/PREFIX GATEWAY MAC HOSTVETH | detach HOSTVETH | " +
		"create BRIDGE NSNAME IP/PREFIX GATEWAY MAC HOSTVETH | delete HOSTVETH NSNAME | unmount NSNAME")
}

func run(args []string) error {
	if len(args) == 0 {
		return usage()
	}
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "bridge-up" && len(rest) == 2:
		return bridgeUp(rest[0], rest[1])
	case cmd == "bridge-down" && len(rest) == 1:
		return deleteLink(rest[0])
	case cmd == "attach" && len(rest) == 6:
		return attach(rest[0], rest[1], rest[2], rest[3], rest[4], rest[5])
	case cmd == "detach" && len(rest) == 1:
		return deleteLink(rest[0])
	case cmd == "create" && len(rest) == 6:
		return create(rest[0], rest[1], rest[2], rest[3], rest[4], rest[5])
	case cmd == "delete" && len(rest) == 2:
		if err := deleteLink(rest[0]); err != nil {
			return err
		}
		return unmount(rest[1])
	case cmd == "unmount" && len(rest) == 1:
		return unmount(rest[0])
	}
	return usage()
}

func bridgeUp(name, cidr string) error {
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.MTU = mtu
	la.Flags = net.FlagUp
	br := &netlink.Bridge{LinkAttrs: la}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s: %w", name, err)
	}
	if err := netlink.AddrAdd(br, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", cidr, name, err)
	}
	return nil
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func attach(bridge, nsPath, cidr, gateway, mac, hostVeth string) error {
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	gw := net.ParseIP(gateway)
	if gw == nil {
		return fmt.Errorf("bad gateway %q", gateway)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return err
	}
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer unix.Close(fd)

	// Host end: on the bridge and up. Peer: eth0, made in the target
	// namespace with its MAC and MTU.
	la := netlink.NewLinkAttrs()
	la.Name = hostVeth
	la.MTU = mtu
	la.MasterIndex = br.Attrs().Index
	la.Flags = net.FlagUp
	veth := &netlink.Veth{
		LinkAttrs:        la,
		PeerName:         "eth0",
		PeerHardwareAddr: hw,
		PeerNamespace:    netlink.NsFd(fd),
		PeerMTU:          mtu,
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", hostVeth, err)
	}

	h, err := netlink.NewHandleAt(netns.NsHandle(fd))
	if err != nil {
		return fmt.Errorf("handle in %s: %w", nsPath, err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0 in %s: %w", nsPath, err)
	}
	if err := h.AddrAdd(eth0, addr); err != nil {
		return fmt.Errorf("address %s on eth0: %w", cidr, err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo in %s: %w", nsPath, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("default route via %s: %w", gateway, err)
	}
	return nil
}

// netnsDir is where named namespaces live, as for iproute2.
const netnsDir = "/run/netns"

// create makes the namespace /run/netns/NSNAME as `ip netns add` does, then
// attaches it.
func create(bridge, name, cidr, gateway, mac, hostVeth string) error {
	path := filepath.Join(netnsDir, name)
	if err := makeNamespace(path); err != nil {
		return err
	}
	return attach(bridge, path, cidr, gateway, mac, hostVeth)
}

// makeNamespace makes netnsDir a shared mount, creates the empty file path
// and bind-mounts a new network namespace on it, made by unsharing on this
// thread (which then switches back: attach runs in the host namespace).
func makeNamespace(path string) error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, "")
		if err == nil {
			err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", netnsDir, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return err
	}
	f.Close()
	runtime.LockOSThread() // never unlocked: the process exits soon
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(orig)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	// As nsnet does for a bridge sandbox: IPv6 off for every interface made
	// in the namespace (eth0 included), written inside it.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1\n"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disable IPv6: %w", err)
	}
	if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount namespace at %s: %w", path, err)
	}
	return unix.Setns(orig, unix.CLONE_NEWNET)
}

// unmount removes the name of the namespace NSNAME: its last reference,
// so the kernel destroys it, and the veth pair with an end in it, later.
func unmount(name string) error {
	path := filepath.Join(netnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return os.Remove(path)
}
