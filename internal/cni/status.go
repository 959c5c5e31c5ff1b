package cni

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/nsnet/nsnet/engine"
)

// Codes of STATUS (CNI 1.1): the plugin cannot serve ADD.
const errUnavailable uint = 50

// status reports whether an ADD can succeed (STATUS): the config is valid,
// the state store can be read, and the network, if it exists already, has
// an address left. The error says which is not so.
func (p *plugin) status(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if err := engine.CheckNetworkSpec(c.networkSpec()); err != nil {
		return invalidConf("network %s: %v", c.Network, err)
	}
	if !hasStore(c) {
		return nil // the first ADD makes it
	}
	e, err := p.open(c, true)
	if err != nil {
		return types.NewError(errUnavailable, "nsnet cannot read its state", err.Error())
	}
	defer e.Close()
	d, err := e.InspectNetwork(c.Network)
	switch {
	case errorsIsNotFound(err):
		return nil // the first ADD makes it
	case err != nil:
		if ce := coded(err).(*types.Error); ce.Code == types.ErrTryAgainLater {
			return ce
		}
		return types.NewError(errUnavailable, "nsnet cannot read its state", err.Error())
	}
	if free := freeAddresses(d); free <= 0 {
		return types.NewError(errUnavailable, fmt.Sprintf("network %s (%s) has no address left for another container", d.Name, d.Subnet), "")
	}
	return nil
}

func errorsIsNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }

// freeAddresses is how many addresses of d's subnet no sandbox has: all but
// the network's own, its broadcast and its gateway address.
func freeAddresses(d *engine.NetworkDetail) int {
	hosts := 1<<(32-d.Subnet.Bits()) - 3
	return hosts - len(d.Attached)
}
