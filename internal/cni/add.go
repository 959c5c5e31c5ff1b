package cni

import (
	"errors"
	"io"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/validate"
	nstypes "github.com/nsnet/nsnet/types"
)

// add attaches the container to the config's network (ADD): the first
// attachment makes its sandbox, in the runtime's namespace; another one
// connects it, as nsnet network connect does. It prints the result: the
// host veth, the container's interface with its MAC, its address, the
// default route if this network carries it, and the nameservers: the
// network's resolver if the config has resolver, and the config's dns.
func (p *plugin) add(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	req, err := checkAdd(c, args)
	if err != nil {
		return err
	}
	var sb *engine.Sandbox
	var n *engine.Network
	err = p.withEngine(c, false, func(e *engine.Engine) error {
		for _, name := range SandboxNames(args.ContainerID) {
			sb, n, err = e.Attach(attachSpec(c, args, req, name))
			if !errors.Is(err, engine.ErrOtherContainer) {
				break
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	res, err := addResult(c, args, sb, n)
	if err != nil {
		return err
	}
	return printResult(p.stdout, res, c.CNIVersion)
}

// checkAdd refuses, with code 7, a config or a request that nsnet would
// refuse before changing anything.
func checkAdd(c *netConf, args *skel.CmdArgs) (request, error) {
	if err := engine.CheckNetworkSpec(c.networkSpec()); err != nil {
		return request{}, invalidConf("network %s: %v", c.Network, err)
	}
	req, err := parseRequest(c, args)
	if err != nil {
		return req, err
	}
	if req.mac != "" {
		if _, err := validate.MAC(req.mac); err != nil {
			return req, invalidConf("%v", err)
		}
	}
	for _, a := range req.aliases {
		if err := validate.Name("alias", a); err != nil {
			return req, invalidConf("%v", err)
		}
	}
	return req, nil
}

// attachSpec is the engine's request for one ADD, under sandbox name.
func attachSpec(c *netConf, args *skel.CmdArgs, req request, name string) engine.AttachSpec {
	return engine.AttachSpec{
		Sandbox: engine.SandboxSpec{
			Name: name, Networks: []string{c.Network}, NetNS: args.Netns, IfName: args.IfName,
			IP: req.ip, MAC: req.mac, Publish: req.publish, Aliases: req.aliases,
			Runtime: &nstypes.Runtime{Kind: RuntimeKind, ContainerID: args.ContainerID},
		},
		Network: c.networkSpec(),
	}
}

// addResult is the result of attaching sb to n, after the previous
// plugins' result if nsnet is not the first in the chain.
func addResult(c *netConf, args *skel.CmdArgs, sb *engine.Sandbox, n *engine.Network) (*types100.Result, error) {
	res := &types100.Result{CNIVersion: types100.ImplementedSpecVersion}
	if c.PrevResult != nil {
		prev, err := types100.NewResultFromResult(c.PrevResult)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "convert prevResult", err.Error())
		}
		res = prev
	}
	ep := endpointOn(sb, n.Name)
	if ep == nil {
		return nil, types.NewError(types.ErrInternal, "sandbox "+sb.Name+" is not on network "+n.Name+" after ADD", "")
	}
	ctr := len(res.Interfaces) + 1
	res.Interfaces = append(res.Interfaces, &types100.Interface{Name: ep.HostVeth},
		&types100.Interface{Name: ep.IfName, Mac: ep.MAC, Sandbox: args.Netns})
	res.IPs = append(res.IPs, &types100.IPConfig{Interface: &ctr, Address: ipNet(ep.Address), Gateway: net.IP(n.Gateway.AsSlice())})
	if ep.Address6.IsValid() {
		res.IPs = append(res.IPs, &types100.IPConfig{Interface: &ctr, Address: ipNet(ep.Address6), Gateway: net.IP(n.Gateway6.AsSlice())})
	}
	if ep.Gateway.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: net.IP(ep.Gateway.AsSlice())})
	}
	if ep.Gateway6.IsValid() {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, GW: net.IP(ep.Gateway6.AsSlice())})
	}
	if c.Resolver && n.Name != engine.DefaultNetwork {
		res.DNS.Nameservers = append(res.DNS.Nameservers, n.Gateway.String())
	}
	res.DNS.Nameservers = append(res.DNS.Nameservers, c.DNS.Nameservers...)
	res.DNS.Search = append(res.DNS.Search, c.DNS.Search...)
	res.DNS.Options = append(res.DNS.Options, c.DNS.Options...)
	if c.DNS.Domain != "" {
		res.DNS.Domain = c.DNS.Domain
	}
	return res, nil
}

// endpointOn is sb's endpoint on the network, or nil.
func endpointOn(sb *engine.Sandbox, network string) *engine.Endpoint {
	for i := range sb.Endpoints {
		if sb.Endpoints[i].Network == network {
			return &sb.Endpoints[i]
		}
	}
	return nil
}

func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// printResult writes res as the version the config has.
func printResult(w io.Writer, res *types100.Result, version string) error {
	r, err := res.GetAsVersion(version)
	if err != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion, "convert the result to version "+version, err.Error())
	}
	return r.PrintTo(w)
}
