// Package firewall keeps nsnet's nftables table in the state the store calls
// for: masquerade for traffic leaving a non-internal network, isolation
// between networks, drops around internal ones, and published ports as
// elements of two maps, so that a packet's path and the cost of adding a
// mapping do not grow with the number of mappings.
//
// It is the only package that imports google/nftables.
//
// Invariants: nsnet's rules live only in its own table (inet nsnet); no other
// table or chain is changed. Every change is one atomic batch: Sync replaces
// the whole table (so a ruleset flushed from outside comes back), AddPorts and
// DeletePorts change only map elements. With no networks the table does not
// exist.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the name of nsnet's nftables table (family inet).
const TableName = "nsnet"

// Network is what the firewall needs to know of a network.
type Network struct {
	Name     string
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
}

// Port is one published port: host address (invalid for every address),
// protocol and port, to a sandbox address and port.
type Port struct {
	Proto    string
	HostIP   netip.Addr
	HostPort uint16
	CtrIP    netip.Addr
	CtrPort  uint16
}

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}

// chunk is the most set elements sent in one netlink message: google/nftables
// puts a message's elements in one attribute, whose 16-bit length would wrap
// past about 1,800 port elements.
const chunk = 1000

// batchBuffer is the socket buffer size for nsnet's batches, so that a batch
// holding tens of thousands of elements is sent and acknowledged whole.
const batchBuffer = 32 << 20

// connect opens an nftables connection whose socket buffers fit big batches
// (SO_SNDBUFFORCE and SO_RCVBUFFORCE: nsnet runs as root).
func connect() (*nftables.Conn, error) {
	return nftables.New(nftables.WithSockOptions(func(nc *netlink.Conn) error {
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
	}))
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

// Sync makes nsnet's table hold exactly the rules for nets and the elements
// for ports, atomically.
func Sync(nets []Network, ports []Port) error {
	c, err := connect()
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	c.AddTable(table) // makes the delete below valid when the table is absent
	c.DelTable(table)
	if len(nets) > 0 {
		if err := build(c, nets, ports); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table inet %s: %w", TableName, err)
	}
	return nil
}

func build(c *nftables.Conn, nets []Network, ports []Port) error {
	c.AddTable(table)
	chains := addChains(c)
	sets, err := addSets(c, nets, ports)
	if err != nil {
		return err
	}
	for _, r := range plan(nets) {
		c.AddRule(&nftables.Rule{Table: table, Chain: chains[r.chain], Exprs: bindSets(r.exprs, sets), UserData: comment(r.comment)})
	}
	return nil
}

func addChains(c *nftables.Conn) map[string]*nftables.Chain {
	guard := nftables.ChainPriority(-150) // before dstnat (-100): mangle
	defs := []*nftables.Chain{
		{Name: chainGuard, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: &guard},
		{Name: chainPrerouting, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		{Name: chainOutput, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
		{Name: chainPostrouting, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		{Name: chainForward, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
	}
	out := map[string]*nftables.Chain{}
	for _, ch := range defs {
		ch.Table = table
		out[ch.Name] = c.AddChain(ch)
	}
	return out
}

// portMaps returns the two port maps' definitions.
func portMaps() (byIP, anyIP *nftables.Set) {
	val := nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	byIP = &nftables.Set{Table: table, Name: mapPortsByIP, IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType: val}
	anyIP = &nftables.Set{Table: table, Name: mapPortsAnyIP, IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
		DataType: val}
	return byIP, anyIP
}

func addSets(c *nftables.Conn, nets []Network, ports []Port) (map[string]*nftables.Set, error) {
	byIP, anyIP := portMaps()
	// Interface names are host-order strings to nft; without this it prints them reversed (as "").
	bridges := &nftables.Set{Table: table, Name: setBridges, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	elems := map[string][]nftables.SetElement{}
	for _, p := range ports {
		e, m := element(p)
		elems[m] = append(elems[m], *e)
	}
	for _, n := range nets {
		elems[setBridges] = append(elems[setBridges], nftables.SetElement{Key: ifnameBytes(n.Bridge)})
	}
	sets := map[string]*nftables.Set{}
	for _, s := range []*nftables.Set{byIP, anyIP, bridges} {
		if err := c.AddSet(s, nil); err != nil {
			return nil, fmt.Errorf("add nftables set %s: %w", s.Name, err)
		}
		if err := addElements(c, s, elems[s.Name], false); err != nil {
			return nil, err
		}
		sets[s.Name] = s
	}
	return sets, nil
}

// bindSets fills in the set IDs of lookups, which the kernel needs to find a
// set made in the same batch.
func bindSets(exprs []expr.Any, sets map[string]*nftables.Set) []expr.Any {
	for _, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			l.SetID = sets[l.SetName].ID
		}
	}
	return exprs
}

// AddPorts adds published ports to the maps in one batch.
func AddPorts(ports []Port) error { return changePorts(ports, true) }

// DeletePorts removes published ports from the maps in one batch.
func DeletePorts(ports []Port) error { return changePorts(ports, false) }

func changePorts(ports []Port, add bool) error {
	if len(ports) == 0 {
		return nil
	}
	c, err := connect()
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	byIP, anyIP := portMaps()
	groups := map[*nftables.Set][]nftables.SetElement{}
	for _, p := range ports {
		e, m := element(p)
		s := byIP
		if m == mapPortsAnyIP {
			s = anyIP
		}
		groups[s] = append(groups[s], *e)
	}
	for s, elems := range groups {
		if err := addElements(c, s, elems, !add); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("change published ports in table inet %s: %w", TableName, err)
	}
	return nil
}

// Expected returns the rules Sync(nets, ...) makes, as Rules reads them back.
func Expected(nets []Network) []Rule {
	var out []Rule
	for _, r := range plan(nets) {
		out = append(out, Rule{Chain: r.chain, Comment: r.comment})
	}
	return out
}

func comment(s string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, s)
}
