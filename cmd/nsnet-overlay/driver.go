package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/cli"
	"github.com/nsnet/nsnet/internal/clusterstore"
	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/overlay"
	"github.com/nsnet/nsnet/internal/validate"
	"github.com/nsnet/nsnet/types"
)

// driver is the cli.Overlay that talks to etcd.
type driver struct{}

// open connects to the store given as etcd://HOST:PORT[,...].
func open(url string) (*clusterstore.Store, error) {
	eps, err := clusterstore.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return clusterstore.Open(eps)
}

// CreateNetwork stores an overlay network in the cluster store; every host's
// agent then makes its part.
func (driver) CreateNetwork(spec engine.NetworkSpec, store string, vni uint32) (string, error) {
	n, err := overlayNetwork(spec, vni)
	if err != nil {
		return "", err
	}
	st, err := open(store)
	if err != nil {
		return "", err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterstore.Timeout)
	defer cancel()
	return n.Name, st.CreateNetwork(ctx, n)
}

// overlayNetwork checks spec for an overlay network before anything is
// asked of the store.
func overlayNetwork(spec engine.NetworkSpec, vni uint32) (clusterstore.Network, error) {
	n := clusterstore.Network{Name: spec.Name, VNI: vni, MTU: spec.MTU, Created: time.Now().UTC()}
	if err := validate.Name("network", spec.Name); err != nil {
		return n, err
	}
	if spec.Subnet == "" {
		return n, fmt.Errorf("overlay network %s needs --subnet: every host uses the same one", spec.Name)
	}
	if spec.IPv6 || spec.Subnet6 != "" || spec.Gateway6 != "" {
		return n, fmt.Errorf("overlay network %s cannot be dual-stack: overlay networks are IPv4 only, leave out --ipv6 and IPv6 subnets", spec.Name)
	}
	if spec.Bridge != "" || spec.Internal || len(spec.DNS) > 0 {
		return n, fmt.Errorf("overlay network %s: --bridge, --internal and --dns are for bridge networks only", spec.Name)
	}
	var err error
	if n.MTU, err = engine.OverlayOptions(spec.Name, spec.MTU, spec.Options); err != nil {
		return n, err
	}
	if err := validate.Labels("network "+spec.Name, spec.Labels); err != nil {
		return n, err
	}
	n.Labels, n.Options, n.NoAntiSpoof = spec.Labels, spec.Options, spec.NoAntiSpoof
	if n.VNI > 1<<24-1 {
		return n, fmt.Errorf("invalid --vni %d: it must be between 1 and 16777215", n.VNI)
	}
	if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
		return n, fmt.Errorf("invalid MTU %d for network %s: it must be between 68 and 65535", n.MTU, spec.Name)
	}
	if n.Subnet, err = ipam.ParseSubnet(spec.Subnet); err != nil {
		return n, err
	}
	n.Gateway = ipam.DefaultGateway(n.Subnet)
	if spec.Gateway != "" {
		if n.Gateway, err = validate.IPv4(spec.Gateway); err != nil {
			return n, fmt.Errorf("invalid gateway: %w", err)
		}
		if err := ipam.CheckGateway(n.Subnet, n.Gateway); err != nil {
			return n, err
		}
	}
	b := make([]byte, 32)
	rand.Read(b)
	n.ID = hex.EncodeToString(b)
	return n, nil
}

// RemoveNetworks removes overlay networks from the cluster store.
func (driver) RemoveNetworks(store string, names []string) ([]string, error) {
	st, err := open(store)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var removed []string
	var errs []error
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), clusterstore.Timeout)
		err := st.RemoveNetwork(ctx, name)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// Agent runs the host's overlay agent until SIGINT or SIGTERM.
func (driver) Agent(a cli.AgentArgs) error {
	eps, err := clusterstore.ParseURL(a.Store)
	if err != nil {
		return err
	}
	var adv netip.Addr
	if a.Advertise != "" {
		if adv, err = validate.IPv4(a.Advertise); err != nil {
			return fmt.Errorf("invalid --advertise: %w", err)
		}
	}
	e, err := a.Open()
	if err != nil {
		return err
	}
	defer e.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	ag := &overlay.Agent{Root: a.Root, Store: eps, Advertise: adv, TTL: a.TTL, Local: local{e}, Log: a.Log}
	return ag.Run(ctx)
}

// local is the engine as the agent uses it.
type local struct{ e *engine.Engine }

func (l local) Networks() ([]types.Network, error)  { return l.e.Networks() }
func (l local) Sandboxes() ([]types.Sandbox, error) { return l.e.Sandboxes() }
func (l local) RemoveNetwork(name string) error     { return l.e.RemoveNetwork(name) }
func (l local) CreateOverlay(n clusterstore.Network, mtu int, o types.Overlay) error {
	_, err := l.e.CreateNetwork(engine.NetworkSpec{Name: n.Name, Subnet: n.Subnet.String(), Gateway: n.Gateway.String(), MTU: mtu,
		Labels: n.Labels, Options: n.Options, NoAntiSpoof: n.NoAntiSpoof, Overlay: &o})
	return err
}
