package diagnose

import (
	"net/netip"

	"github.com/nsnet/nsnet/internal/firewall"
	"github.com/nsnet/nsnet/internal/netview"
	"github.com/nsnet/nsnet/internal/observe"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/types"
)

// The snapshot tests start from: the article's network br01 with ns01
// (publishing 8080:80/tcp, a server on 80) and ns02; a user network u1 with
// web and app (alias www, a server on 80), whose names the resident serves; an internal
// network in with lone. Every network is a user network: the resident
// serves its names at its gateway. The host's uplink is eth0 203.0.113.2/24, default
// via 203.0.113.1; forwarding is on; nsnet's table is as Sync writes it.

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

const residentPID = 50

func testWorld() *observe.Snapshot {
	nets := []types.Network{
		{Name: "br01", Bridge: "br01", Subnet: pfx("192.168.88.0/24"), Gateway: addr("192.168.88.1"), MTU: 1500},
		{Name: "u1", Bridge: "br-u1", Subnet: pfx("10.10.0.0/24"), Gateway: addr("10.10.0.1")},
		{Name: "in", Bridge: "br-in", Subnet: pfx("10.20.0.0/24"), Gateway: addr("10.20.0.1"), Internal: true},
	}
	s := &observe.Snapshot{Table: "nsnet-t", Networks: nets, Spaces: map[string]*observe.Namespace{},
		Resident: observe.Resident{Alive: true, PID: residentPID, Held: map[string][]string{"ns01": {"tcp/0.0.0.0/08080"}}, Zones: map[string]resolver.Zone{}}}
	s.Host = observe.Namespace{
		Devices: []netview.Device{
			{Index: 1, Name: "lo", Kind: "device", MTU: 65536, Up: true, Carrier: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8")}},
			{Index: 2, Name: "eth0", Kind: "veth", MTU: 1500, Up: true, Carrier: true, Addrs: []netip.Prefix{pfx("203.0.113.2/24")}},
		},
		Routes: []netview.Route{
			{Dst: pfx("0.0.0.0/0"), Gateway: addr("203.0.113.1"), Dev: "eth0", Type: "unicast"},
			{Dst: pfx("203.0.113.0/24"), Dev: "eth0", Type: "unicast"},
		},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.forwarding": "1", "net.ipv4.conf.all.rp_filter": "0"},
		Sockets: []observe.Socket{
			{Proto: "tcp", Addr: addr("0.0.0.0"), Port: 8080, PID: residentPID, Process: "nsnet"},
		},
	}
	for i, n := range nets {
		gw := netip.PrefixFrom(n.Gateway, n.Subnet.Bits())
		s.Host.Devices = append(s.Host.Devices, netview.Device{Index: 10 + i, Name: n.Bridge, Kind: "bridge", MTU: 1500, Up: true, Carrier: true, Addrs: []netip.Prefix{gw}})
		s.Host.Routes = append(s.Host.Routes, netview.Route{Dst: n.Subnet, Dev: n.Bridge, Type: "unicast"})
		s.Host.Sysctls["net.ipv4.conf."+n.Bridge+".forwarding"] = "1"
		s.Host.Sockets = append(s.Host.Sockets, observe.Socket{Proto: "udp", Addr: n.Gateway, Port: 53, PID: residentPID, Process: "nsnet"})
	}
	s.Host.Sysctls["net.ipv4.conf.eth0.forwarding"] = "1"
	add := func(name, network, ip, alias string) {
		n, _ := s.Network(network)
		a := netip.PrefixFrom(addr(ip), n.Subnet.Bits())
		ep := types.Endpoint{Network: network, IfName: "eth0", Address: a, MAC: "02:42:00:00:00:01", HostVeth: "veth-" + name}
		if !n.Internal {
			ep.Gateway = n.Gateway
		}
		if alias != "" {
			ep.Aliases = []string{alias}
		}
		sb := types.Sandbox{ID: name + "0123456789abcdef", Name: name, Mode: types.ModeBridge, NetNS: "/run/netns/" + name, Endpoints: []types.Endpoint{ep}}
		s.Sandboxes = append(s.Sandboxes, sb)
		idx := 100 + len(s.Sandboxes)
		s.Host.Devices = append(s.Host.Devices, netview.Device{Index: idx, Name: ep.HostVeth, Kind: "veth", MTU: 1500, Up: true, Carrier: true, Master: n.Bridge, PeerIndex: 2})
		ns := &observe.Namespace{Path: sb.NetNS,
			Devices: []netview.Device{
				{Index: 1, Name: "lo", Kind: "device", MTU: 65536, Up: true, Carrier: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8")}},
				{Index: 2, Name: "eth0", Kind: "veth", MAC: ep.MAC, MTU: 1500, Up: true, Carrier: true, PeerIndex: idx, Addrs: []netip.Prefix{a}},
			},
			Routes: []netview.Route{{Dst: n.Subnet, Dev: "eth0", Type: "unicast"}},
		}
		if ep.Gateway.IsValid() {
			ns.Routes = append(ns.Routes, netview.Route{Dst: pfx("0.0.0.0/0"), Gateway: ep.Gateway, Dev: "eth0", Type: "unicast"})
		}
		ns.Nameservers = []netip.Addr{n.Gateway}
		s.Spaces[name] = ns
		z := s.Resident.Zones[network]
		z.Network, z.Listen, z.Internal = network, n.Gateway, n.Internal
		z.Records = append(z.Records, resolver.Record{Addr: a.Addr(), Names: append([]string{name, sb.ID[:12]}, ep.Aliases...)})
		if !n.Internal {
			z.Upstream = []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:53")}
		}
		s.Resident.Zones[network] = z
	}
	add("ns01", "br01", "192.168.88.11", "")
	add("ns02", "br01", "192.168.88.12", "")
	add("web", "u1", "10.10.0.10", "")
	add("app", "u1", "10.10.0.11", "www")
	add("lone", "in", "10.20.0.10", "")
	s.Sandboxes[0].Ports = []types.Mapping{{Proto: "tcp", HostPort: 8080, CtrPort: 80}}
	s.Spaces["ns01"].Sockets = []observe.Socket{{Proto: "tcp", Addr: addr("0.0.0.0"), Port: 80, PID: 100, Process: "server"}}
	s.Spaces["app"].Sockets = []observe.Socket{{Proto: "tcp", Addr: addr("10.10.0.11"), Port: 80, PID: 101, Process: "server"}}
	var fnets []firewall.Network
	for _, n := range nets {
		fnets = append(fnets, firewall.Network{Name: n.Name, Bridge: n.Bridge, Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal})
	}
	s.Nsnet = observe.Table{View: firewall.View{Exists: true, Rules: firewall.Planned(fnets),
		Ports: []firewall.Port{{Proto: "tcp", HostPort: 8080, CtrIP: addr("192.168.88.11"), CtrPort: 80}}}}
	return s
}

// Helpers to break the world.

func dev(ns *observe.Namespace, name string) *netview.Device {
	for i := range ns.Devices {
		if ns.Devices[i].Name == name {
			return &ns.Devices[i]
		}
	}
	panic("no device " + name)
}

func dropRoute(ns *observe.Namespace, dst string) {
	var keep []netview.Route
	for _, r := range ns.Routes {
		if r.Dst != pfx(dst) {
			keep = append(keep, r)
		}
	}
	ns.Routes = keep
}

func dropRule(s *observe.Snapshot, comment string) {
	var keep []firewall.Rule
	for _, r := range s.Nsnet.Rules {
		if r.Comment != comment {
			keep = append(keep, r)
		}
	}
	s.Nsnet.Rules = keep
}
