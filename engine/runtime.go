package engine

// Sandboxes of container runtimes. A runtime that uses nsnet through CNI
// (internal/cni) attaches a container's namespace to a network with Attach,
// takes it off with Detach, and checks it with CheckAttachment. Each is one
// operation under the store's lock, so runtimes may call them in parallel:
// none fails because another runs, and no address is handed out twice.
//
// A runtime's sandbox (Sandbox.Runtime) adopts the runtime's namespace, has
// one endpoint per network the runtime attached it to, each with the
// interface name the runtime chose, and its published host ports are bound
// and held by the runtime, not nsnet (runtimeHeld). nsnet sandbox rm refuses
// it without --force.

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/portspec"
	"github.com/nsnet/nsnet/internal/store"
)

// ErrOtherContainer is wrapped by Attach's error when a sandbox of the name
// asked for exists and belongs to another container (or to no runtime).
var ErrOtherContainer = errors.New("belongs to another container")

// AttachSpec is a container runtime's request to attach a container's
// namespace to a network (a CNI ADD).
type AttachSpec struct {
	// Sandbox is the sandbox to make: Runtime, NetNS (the runtime's
	// namespace) and exactly one network name in Networks are required. If
	// the same container has a sandbox of that name already, it is connected
	// to the network instead, with the spec's interface name, address, MAC,
	// aliases, and the ports it does not publish yet.
	Sandbox SandboxSpec
	// Network is made from this spec if no network of its name exists;
	// otherwise the fields it gives (subnet, gateway, MTU, internal) must be
	// the network's. Its Name is Sandbox.Networks[0].
	Network NetworkSpec
}

// Attach attaches a runtime's container to a network, as AttachSpec says,
// and returns the sandbox and the network. Attaching a container to a network
// it is on already, with the same interface name, changes nothing.
func (e *Engine) Attach(spec AttachSpec) (*Sandbox, *Network, error) {
	if err := checkAttachSpec(spec); err != nil {
		return nil, nil, err
	}
	p, err := e.parseSandboxSpec(spec.Sandbox)
	if err != nil {
		return nil, nil, err
	}
	defer p.adoptFile.Close()
	want, err := parseNetworkSpec(spec.Network)
	if err != nil {
		return nil, nil, err
	}
	p.sb.ID, p.sb.Created, p.bound = e.newID(), e.clock().UTC(), boundPorts{}
	defer p.bound.close()
	var out *Sandbox
	var made bool
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		n, isNew, err := e.attachNetwork(tx, u, want, spec.Network)
		if err != nil {
			return err
		}
		want, made = n, isNew
		out, err = e.attachSandbox(tx, u, p, n)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if made && !want.Internal { // as network create warns
		e.warnForwardDrops(want)
		e.warnLocalnet()
	}
	return out, want, nil
}

// checkAttachSpec refuses a spec that is not a runtime's attachment.
func checkAttachSpec(spec AttachSpec) error {
	s := spec.Sandbox
	switch {
	case s.Runtime == nil:
		return fmt.Errorf("sandbox %s: attaching needs the runtime's container (SandboxSpec.Runtime)", s.Name)
	case s.NetNS == "":
		return fmt.Errorf("sandbox %s: attaching needs the container's namespace (SandboxSpec.NetNS)", s.Name)
	case len(s.Networks) != 1 || s.Networks[0] != spec.Network.Name:
		return fmt.Errorf("sandbox %s: attaching takes one network, named in the network spec (%q), not %q", s.Name, spec.Network.Name, s.Networks)
	}
	return nil
}

// attachNetwork returns the network want names, made from want if missing
// (isNew), or checked against the fields spec gives if not.
func (e *Engine) attachNetwork(tx *store.Tx, u *undo, want *Network, spec NetworkSpec) (n *Network, isNew bool, err error) {
	n, err = tx.Network(want.Name)
	if errors.Is(err, store.ErrNotFound) {
		want.ID = e.newID()
		return want, true, e.createNetwork(tx, u, want, picksOf(spec))
	}
	if err != nil {
		return nil, false, err
	}
	return n, false, sameNetwork(n, want, spec)
}

// sameNetwork refuses an existing network n that differs from what spec
// gives (want is spec, parsed).
func sameNetwork(n, want *Network, spec NetworkSpec) error {
	var diffs []string
	if spec.Subnet != "" && n.Subnet != want.Subnet {
		diffs = append(diffs, fmt.Sprintf("subnet %s, not %s", n.Subnet, want.Subnet))
	}
	if spec.Gateway != "" && n.Gateway != want.Gateway {
		diffs = append(diffs, fmt.Sprintf("gateway %s, not %s", n.Gateway, want.Gateway))
	}
	if spec.MTU != 0 && n.MTU != want.MTU {
		diffs = append(diffs, fmt.Sprintf("MTU %d, not %d", n.MTU, want.MTU))
	}
	if spec.IPv6 && !n.IPv6() {
		diffs = append(diffs, "IPv4 only, not dual-stack")
	}
	if spec.Subnet6 != "" && n.Subnet6 != want.Subnet6 {
		diffs = append(diffs, fmt.Sprintf("IPv6 subnet %s, not %s", n.Subnet6, want.Subnet6))
	}
	if n.Internal != want.Internal {
		diffs = append(diffs, fmt.Sprintf("internal %v, not %v", n.Internal, want.Internal))
	}
	if n.NoAntiSpoof != want.NoAntiSpoof {
		diffs = append(diffs, fmt.Sprintf("antispoof %v, not %v", !n.NoAntiSpoof, !want.NoAntiSpoof))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("network %s exists with %s: make the config match it, or remove the network (nsnet network rm %s) to have it made anew", n.Name, strings.Join(diffs, ", "), n.Name)
}

// attachSandbox makes p's sandbox on n, or connects the container's
// existing sandbox to n.
func (e *Engine) attachSandbox(tx *store.Tx, u *undo, p *sandboxPlan, n *Network) (*Sandbox, error) {
	sb, err := tx.Sandbox(p.sb.Name)
	if errors.Is(err, store.ErrNotFound) {
		if n.Internal && len(p.ports) > 0 {
			e.opts.Warn(fmt.Sprintf("sandbox %s: internal network %s cannot publish ports: they are published once the container is on a network that is not internal", p.sb.Name, n.Name))
			p.ports = nil
		}
		return p.sb, e.createSandbox(tx, u, p)
	}
	if err != nil {
		return nil, err
	}
	if err := e.sameContainer(sb, p); err != nil {
		return nil, err
	}
	if ep := endpointOn(sb, n.Name); ep != nil {
		if p.ifName == "" || ep.IfName == p.ifName {
			return sb, nil // attached already
		}
		return nil, fmt.Errorf("sandbox %s is on network %s already, as %s, not %s: detach it first", sb.Name, n.Name, ep.IfName, p.ifName)
	}
	c := connectPlan{ip: p.ip, mac: p.mac, aliases: p.aliases, ifName: p.ifName}
	if err := e.connect(tx, u, sb, n, c); err != nil {
		return nil, err
	}
	return sb, e.publishMore(tx, u, sb, p)
}

// sameContainer refuses to connect sb, which exists under the name p asks
// for, unless it is the same container's, in the same namespace.
func (e *Engine) sameContainer(sb *Sandbox, p *sandboxPlan) error {
	r := p.sb.Runtime
	if sb.Runtime == nil || *sb.Runtime != *r {
		return fmt.Errorf("sandbox %s exists already and %w, not to container %s: remove it (nsnet sandbox rm %s), or attach the container under another name", sb.Name, ErrOtherContainer, r.ContainerID, sb.Name)
	}
	id, err := e.k.ns.IDOf(p.adoptFile)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", sb.Name, err)
	}
	if !id.Same(netnsID(sb)) {
		return fmt.Errorf("sandbox %s of container %s is in another namespace than %s: detach it from its networks first", sb.Name, r.ContainerID, p.adopt)
	}
	return nil
}

// publishMore publishes the ports of p that sb does not publish yet, if sb
// can publish (it is on a network that is not internal). A port without a
// host address is compared as allocatePorts publishes it: on its network's
// host_binding_ipv4, if it has one.
func (e *Engine) publishMore(tx *store.Tx, u *undo, sb *Sandbox, p *sandboxPlan) error {
	if _, ok := publishingEndpoint(sb); !ok || len(p.ports) == 0 {
		return nil
	}
	wanted, err := withHostBinding(tx, sb.Endpoints, p.ports)
	if err != nil {
		return err
	}
	var specs []portspec.Spec
	for _, sp := range wanted {
		if !slices.ContainsFunc(sb.Ports, func(m Mapping) bool { return m.HostIP == sp.HostIP && sp.Matches(m) }) {
			specs = append(specs, sp)
		}
	}
	if len(specs) == 0 {
		return nil
	}
	added, err := e.allocatePorts(tx, sb, sb.Endpoints, specs, p.bound)
	if err != nil {
		return err
	}
	sb.Ports = append(sb.Ports, added...)
	return e.publish(tx, u, firewallPorts(&Sandbox{Endpoints: sb.Endpoints, Ports: added}))
}

// DetachSpec names a runtime container's attachment to a network (a CNI
// DEL).
type DetachSpec struct {
	Sandbox     string // the sandbox's name
	ContainerID string // the container it must belong to
	Network     string // the network's name
	IfName      string // the interface's name (empty: whichever is on Network)
}

// Detach takes a runtime's container off a network: its interface there
// goes, as network disconnect --force does, or, if it was the sandbox's last
// network, the sandbox goes, as sandbox rm --force does (the namespace stays:
// it is the runtime's). An attachment that does not exist (no such sandbox,
// another container's, not on the network, another interface) is not an
// error: nothing is done, and detached is false.
func (e *Engine) Detach(spec DetachSpec) (detached bool, err error) {
	err = e.mutate(func(tx *store.Tx, u *undo) error {
		detached = false
		sb, n, ep, err := attachment(tx, spec)
		if err != nil || ep == nil {
			return err
		}
		detached = true
		if len(sb.Endpoints) > 1 {
			if err := e.intend(u, &journal.Intent{Op: journal.OpNetworkDisconnect, Name: sb.Name, ObjectID: sb.ID,
				Networks: []string{n.Name}, Links: []string{ep.HostVeth}}); err != nil {
				return err
			}
			return e.disconnect(tx, u, sb, n, true)
		}
		return removeTree(tx, sb, func(s *Sandbox) error {
			if err := e.intend(u, &journal.Intent{Op: journal.OpSandboxRemove, Name: s.Name, ObjectID: s.ID}); err != nil {
				return err
			}
			return e.forgetAndTeardown(tx, s, "sandbox-rm:after-teardown", false)
		})
	})
	return detached, err
}

// attachment looks up the attachment spec names; a nil endpoint (and no
// error) if there is none.
func attachment(tx *store.Tx, spec DetachSpec) (*Sandbox, *Network, *Endpoint, error) {
	sb, err := tx.Sandbox(spec.Sandbox)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if sb.Runtime == nil || sb.Runtime.ContainerID != spec.ContainerID {
		return nil, nil, nil, nil
	}
	ep := endpointOn(sb, spec.Network)
	if ep == nil || (spec.IfName != "" && ep.IfName != spec.IfName) {
		return nil, nil, nil, nil
	}
	n, err := tx.Network(spec.Network)
	if err != nil {
		return nil, nil, nil, err
	}
	return sb, n, ep, nil
}

// RuntimeAttachment is a runtime container's attachment to a network, as
// stored.
type RuntimeAttachment struct {
	Sandbox  *Sandbox
	Network  *Network
	Endpoint Endpoint
}

// CheckAttachment compares the attachment spec names with the kernel (a CNI
// CHECK): the namespace at netnsPath (if given) must be the sandbox's; the
// network's bridge, the interface pair with its MTU, address and route, and
// the state root's nftables rules must be as the store says. It returns the
// attachment and what differs (nothing: nil); an attachment that does not
// exist is an error that wraps ErrNotFound.
func (e *Engine) CheckAttachment(spec DetachSpec, netnsPath string) (*RuntimeAttachment, []string, error) {
	var a *RuntimeAttachment
	var diffs []string
	err := e.read(func(tx *store.Tx) error {
		sb, n, ep, err := attachment(tx, spec)
		if err != nil {
			return err
		}
		if ep == nil {
			return fmt.Errorf("container %s has no attachment to network %s as %s: %w", spec.ContainerID, spec.Network, spec.IfName, store.ErrNotFound)
		}
		a = &RuntimeAttachment{Sandbox: sb, Network: n, Endpoint: *ep}
		diffs, err = e.checkAttachment(tx, a, netnsPath)
		return err
	})
	return a, diffs, err
}

func (e *Engine) checkAttachment(tx *store.Tx, a *RuntimeAttachment, netnsPath string) ([]string, error) {
	var diffs []string
	if netnsPath != "" {
		if id, err := e.k.ns.Identify(netnsPath); err != nil || !id.Same(netnsID(a.Sandbox)) {
			diffs = append(diffs, fmt.Sprintf("the namespace %s is not the sandbox's (%v)", netnsPath, err))
		}
	}
	links, err := e.checkLinks(a)
	if err != nil {
		return nil, err
	}
	diffs = append(diffs, links...)
	s, err := firewallState(tx)
	if err != nil {
		return nil, err
	}
	rules, err := e.k.fw.Diff(s.nets, s.ports, s.guards)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		diffs = append(diffs, "nftables tables "+e.table+": "+r)
	}
	return diffs, nil
}

// checkLinks compares the bridge and the interface pair of a with the
// kernel.
func (e *Engine) checkLinks(a *RuntimeAttachment) ([]string, error) {
	host, err := e.hostLinks()
	if err != nil {
		return nil, err
	}
	n, ep := a.Network, a.Endpoint
	for _, l := range []struct{ name, what string }{{n.Bridge, "bridge"}, {ep.HostVeth, "host veth"}} {
		if ok, err := host.Exists(l.name); err != nil || !ok {
			return []string{fmt.Sprintf("%s %s is missing (%v)", l.what, l.name, err)}, nil
		}
	}
	ns, err := e.openOwnNamespace(a.Sandbox)
	if err != nil {
		return []string{err.Error()}, nil
	}
	defer ns.Close()
	diffs, err := host.CheckBridge(e.bridgeSpec(n))
	if err != nil {
		return nil, err
	}
	veth, err := host.CheckVeth(e.vethSpec(ns, a.Sandbox, n, ep, guardedAlready))
	if err != nil {
		return nil, err
	}
	for _, d := range veth {
		diffs = append(diffs, "veth "+ep.HostVeth+" "+d)
	}
	return diffs, nil
}
