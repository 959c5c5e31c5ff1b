// Package firewall keeps one nsnet state root's nftables table in the state
// the store calls for: masquerade for traffic leaving a non-internal network
// (IPv4, and IPv6 on a dual-stack one, unless it is routed), nothing
// forwarded into a network's bridge but replies, traffic within the network
// (unless its sandboxes may not reach each other: icc off) and published
// ports, nothing in or out of an internal network but its own traffic, and
// published ports as elements of two maps per family (the IPv6 ones only
// while a network is dual-stack), so that a packet's path and the cost of
// adding a mapping do not grow with the number of mappings.
//
// It is the only package that imports google/nftables.
//
// Anti-spoofing lives in a second table of the same name, bridge Name
// (guard.go): every frame a guarded sandbox port sends must carry the
// sandbox's own MAC and addresses, with the ports, MACs and addresses as set
// elements.
//
// Invariants: a Table's rules live only in its own tables (inet Name and
// bridge Name); no other table or chain is changed. Every change is one
// atomic batch: Sync replaces both tables whole (so a ruleset flushed from
// outside comes back), AddPorts, DeletePorts and the guard changes
// change only set elements. With no networks neither table exists. Diff
// compares every chain, rule body and set element with what Sync would write.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Network is what the firewall needs to know of a network.
type Network struct {
	Name     string
	Bridge   string
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Subnet6  netip.Prefix // a dual-stack network's; zero for IPv4 only
	Gateway6 netip.Addr
	Internal bool
	// NoMasquerade: traffic leaving the network keeps its source address
	// (a routed network; published ports' hairpin is still translated);
	// NoICC: nothing is forwarded between the network's sandboxes (it falls
	// to "nothing else enters a network").
	NoMasquerade bool
	NoICC        bool
}

// Port is one published port: host address (invalid for every address; for
// an IPv6 sandbox address, invalid or :: is every IPv6 host address),
// protocol and port, to a sandbox address (IPv4 or IPv6) and port.
type Port struct {
	Proto    string
	HostIP   netip.Addr
	HostPort uint16
	CtrIP    netip.Addr
	CtrPort  uint16
}

// Table is one state root's nftables table, inet Name, in the network
// namespace NetNS (a file descriptor; 0 for the current namespace).
type Table struct {
	Name  string
	NetNS int
}

func (t Table) nft() *nftables.Table {
	return &nftables.Table{Name: t.Name, Family: nftables.TableFamilyINet}
}

// chunk is the most set elements sent in one netlink message: google/nftables
// puts a message's elements in one attribute, whose 16-bit length would wrap
// past about 1,800 port elements.
const chunk = 1000

// batchBuffer is the socket buffer size for nsnet's batches, so that a batch
// holding tens of thousands of elements is sent and acknowledged whole.
const batchBuffer = 32 << 20

// connect opens an nftables connection in t's namespace whose socket buffers
// fit big batches (SO_SNDBUFFORCE and SO_RCVBUFFORCE: nsnet runs as root).
func (t Table) connect() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(nc *netlink.Conn) error {
		raw, err := nc.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchBuffer),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchBuffer))
		})
		return errors.Join(err, serr)
	})}
	if t.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(t.NetNS))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("open nftables connection: %w", err)
	}
	return c, nil
}

// addElements adds (or, with del, deletes) elements in messages of at most
// chunk elements each, all in the connection's one batch.
func addElements(c *nftables.Conn, s *nftables.Set, elems []nftables.SetElement, del bool) error {
	for len(elems) > 0 {
		n := min(chunk, len(elems))
		var err error
		if del {
			err = c.SetDeleteElements(s, elems[:n])
		} else {
			err = c.SetAddElements(s, elems[:n])
		}
		if err != nil {
			return fmt.Errorf("change nftables set %s: %w", s.Name, err)
		}
		elems = elems[n:]
	}
	return nil
}

// Sync makes the tables hold exactly the rules for nets and the elements for
// ports and guards, atomically; with no networks it deletes them.
func (t Table) Sync(nets []Network, ports []Port, guards []Guard) error {
	c, err := t.connect()
	if err != nil {
		return err
	}
	for _, tab := range []*nftables.Table{t.nft(), t.bridgeTable()} {
		c.AddTable(tab) // makes the delete below valid when the table is absent
		c.DelTable(tab)
	}
	if len(nets) > 0 {
		if err := t.build(c, nets, ports); err != nil {
			return err
		}
		if err := t.buildBridge(c, guards); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables tables inet and bridge %s: %w", t.Name, err)
	}
	return nil
}

// buildBridge adds the bridge table, its chains and rules, and the
// elements for guards.
func (t Table) buildBridge(c *nftables.Conn, guards []Guard) error {
	tab := c.AddTable(t.bridgeTable())
	chains := map[string]*nftables.Chain{}
	for _, ch := range bridgeChainDefs() {
		ch.Table = tab
		chains[ch.Name] = c.AddChain(ch)
	}
	sets := map[string]*nftables.Set{}
	for _, s := range bridgeSetDefs(tab) {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("add nftables set %s: %w", s.Name, err)
		}
		if err := addElements(c, s, guardElements(s.Name, guards), false); err != nil {
			return err
		}
		sets[s.Name] = s
	}
	for _, r := range bridgePlan() {
		c.AddRule(&nftables.Rule{Table: tab, Chain: chains[r.chain], Exprs: bindSets(r.exprs, sets), UserData: comment(r.comment)})
	}
	return nil
}

// guardChange is what a batch does to the elements of guarded ports.
type guardChange int

const (
	guardAdd    guardChange = iota // add them, lasting
	guardDelete                    // delete them
	guardExpire                    // give them a timeout (expireAfter)
	guardBlock                     // the same, but blockFor for the guarded ports
)

// AddGuards adds guarded sandbox ports to the bridge table's sets in one
// batch.
func (t Table) AddGuards(guards []Guard) error { return t.changeGuards(guards, guardAdd) }

// DeleteGuards removes guarded sandbox ports from the bridge table's sets in
// one batch, at once (an undo: the tables are as they were when it returns).
func (t Table) DeleteGuards(guards []Guard) error { return t.changeGuards(guards, guardDelete) }

// ExpireGuards lets go of guarded sandbox ports that went: their elements
// expire (expireAfter), in one batch. Deleting them would make the command
// wait for an RCU grace period as it exits.
func (t Table) ExpireGuards(guards []Guard) error { return t.changeGuards(guards, guardExpire) }

// BlockGuards lets go of guarded sandbox ports whose veths were released,
// up, to go with their namespaces: their MAC and addresses expire
// (expireAfter), the ports themselves later (blockFor), in one batch;
// meanwhile they send nothing into any bridge.
func (t Table) BlockGuards(guards []Guard) error { return t.changeGuards(guards, guardBlock) }

func (t Table) changeGuards(guards []Guard, change guardChange) error {
	if len(guards) == 0 {
		return nil
	}
	c, err := t.connect()
	if err != nil {
		return err
	}
	for _, s := range bridgeSetDefs(t.bridgeTable()) {
		elems := guardElements(s.Name, guards)
		if len(elems) == 0 {
			continue
		}
		if change == guardExpire || change == guardBlock {
			timeout := expireAfter
			if change == guardBlock && s.Name == setGuarded {
				timeout = blockFor
			}
			for i := range elems {
				elems[i].Timeout = timeout
			}
		}
		if err := addElements(c, s, elems, change == guardDelete); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("change guarded sandbox ports in table bridge %s: %w", t.Name, err)
	}
	return nil
}

func (t Table) build(c *nftables.Conn, nets []Network, ports []Port) error {
	tab := c.AddTable(t.nft())
	chains := map[string]*nftables.Chain{}
	for _, ch := range chainDefs() {
		ch.Table = tab
		chains[ch.Name] = c.AddChain(ch)
	}
	sets := map[string]*nftables.Set{}
	for _, s := range setDefs(tab, dualStack(nets)) {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("add nftables set %s: %w", s.Name, err)
		}
		if err := addElements(c, s, elements(s.Name, nets, ports), false); err != nil {
			return err
		}
		sets[s.Name] = s
	}
	for _, r := range plan(nets) {
		c.AddRule(&nftables.Rule{Table: tab, Chain: chains[r.chain], Exprs: bindSets(r.exprs, sets), UserData: comment(r.comment)})
	}
	return nil
}

// AddPorts adds published ports to the maps in one batch.
func (t Table) AddPorts(ports []Port) error { return t.changePorts(ports, true) }

// DeletePorts removes published ports from the maps in one batch.
func (t Table) DeletePorts(ports []Port) error { return t.changePorts(ports, false) }

func (t Table) changePorts(ports []Port, add bool) error {
	if len(ports) == 0 {
		return nil
	}
	c, err := t.connect()
	if err != nil {
		return err
	}
	tab := t.nft()
	for _, s := range setDefs(tab, true) {
		elems := elements(s.Name, nil, ports)
		if len(elems) == 0 {
			continue
		}
		if err := addElements(c, s, elems, !add); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("change published ports in table inet %s: %w", t.Name, err)
	}
	return nil
}

func comment(s string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, s)
}
