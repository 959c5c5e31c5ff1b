package cni

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nsnet/nsnet/engine"
)

// check compares the container's attachment with nsnet's record and the
// kernel (CHECK): the prevResult's interface and address (if the runtime
// gives a prevResult, as it should) must be the record's; the namespace must be the sandbox's; the bridge, the veth pair
// (MTU, address, default route) and nsnet's nftables rules must be as the
// store says. An attachment nsnet has no record of fails with code 3
// (unknown container), anything that differs with ErrDrift, naming it.
func (p *plugin) check(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	var prev *types100.Result
	if c.PrevResult != nil {
		if prev, err = types100.NewResultFromResult(c.PrevResult); err != nil {
			return types.NewError(types.ErrDecodingFailure, "convert prevResult", err.Error())
		}
	}
	if !hasStore(c) {
		return unknown(args, c, fmt.Errorf("state root %s has no state store", c.Root))
	}
	return p.withEngine(c, true, func(e *engine.Engine) error { return checkIn(e, c, args, prev) })
}

func checkIn(e *engine.Engine, c *netConf, args *skel.CmdArgs, prev *types100.Result) error {
	var a *engine.RuntimeAttachment
	var diffs []string
	var err error
	for _, name := range SandboxNames(args.ContainerID) {
		spec := engine.DetachSpec{Sandbox: name, ContainerID: args.ContainerID, Network: c.Network, IfName: args.IfName}
		if a, diffs, err = e.CheckAttachment(spec, args.Netns); !errors.Is(err, engine.ErrNotFound) {
			break
		}
	}
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return unknown(args, c, err)
	case err != nil:
		return err
	}
	if prev != nil {
		diffs = append(prevDiffs(prev, args, a.Endpoint), diffs...)
	}
	if len(diffs) > 0 {
		return types.NewError(ErrDrift, fmt.Sprintf("container %s on network %s (sandbox %s, %s) is not as nsnet made it: run nsnet gc to repair it",
			args.ContainerID, c.Network, a.Sandbox.Name, args.IfName), strings.Join(diffs, "; "))
	}
	return nil
}

func unknown(args *skel.CmdArgs, c *netConf, err error) error {
	return types.NewError(types.ErrUnknownContainer, fmt.Sprintf("nsnet has no attachment of container %s to network %s as %s", args.ContainerID, c.Network, args.IfName), err.Error())
}

// prevDiffs compares the prevResult's container interface and its address
// with the stored endpoint.
func prevDiffs(prev *types100.Result, args *skel.CmdArgs, ep engine.Endpoint) []string {
	idx := -1
	for i, itf := range prev.Interfaces {
		if itf.Name == ep.IfName && itf.Sandbox != "" {
			idx = i
		}
	}
	if idx < 0 {
		return []string{fmt.Sprintf("prevResult has no interface %s in a sandbox", ep.IfName)}
	}
	var diffs []string
	if mac := prev.Interfaces[idx].Mac; !strings.EqualFold(mac, ep.MAC) {
		diffs = append(diffs, fmt.Sprintf("prevResult gives %s MAC %s, nsnet's record %s", ep.IfName, mac, ep.MAC))
	}
	want := ipNet(ep.Address)
	for _, ip := range prev.IPs {
		if ip.Interface != nil && *ip.Interface == idx && ip.Address.String() == want.String() {
			return diffs
		}
	}
	return append(diffs, fmt.Sprintf("prevResult does not give %s address %s", ep.IfName, (&net.IPNet{IP: want.IP, Mask: want.Mask}).String()))
}
