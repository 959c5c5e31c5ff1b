package cni

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/nsnet/nsnet/engine"
)

// gc takes every container attachment on the config's network that is not
// in cni.dev/valid-attachments off it (GC), as DEL does; sandboxes of nsnet's
// own, and those of other runtimes' kinds, are left alone. It keeps going
// past an attachment it cannot take off and reports them all.
func (p *plugin) gc(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil || !hasStore(c) {
		return err
	}
	valid := map[types.GCAttachment]bool{}
	for _, a := range c.ValidAttachments {
		valid[a] = true
	}
	return p.withEngine(c, false, func(e *engine.Engine) error {
		sbs, err := e.Sandboxes()
		if err != nil {
			return err
		}
		var errs []error
		for _, sb := range sbs {
			if err := collect(e, c, &sb, valid); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// collect takes sb off the network if it is a container's attachment there
// that is not valid.
func collect(e *engine.Engine, c *netConf, sb *engine.Sandbox, valid map[types.GCAttachment]bool) error {
	r := sb.Runtime
	ep := endpointOn(sb, c.Network)
	if r == nil || r.Kind != RuntimeKind || ep == nil || valid[types.GCAttachment{ContainerID: r.ContainerID, IfName: ep.IfName}] {
		return nil
	}
	_, err := e.Detach(engine.DetachSpec{Sandbox: sb.Name, ContainerID: r.ContainerID, Network: c.Network, IfName: ep.IfName})
	if err != nil {
		return fmt.Errorf("take container %s (sandbox %s) off network %s: %w", r.ContainerID, sb.Name, c.Network, err)
	}
	return nil
}
