package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/clusterstore"
	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/overlay"
	"github.com/nsnet/nsnet/internal/validate"
	"github.com/nsnet/nsnet/types"
)

// overlayFlags are network create's flags for overlay networks.
type overlayFlags struct {
	driver, store string
	vni           uint32
}

func (o *overlayFlags) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.driver, "driver", "bridge", "bridge (this host only) or overlay (across hosts, state in --store)")
	f.StringVar(&o.store, "store", "", "the cluster store of an overlay network: etcd://HOST:PORT[,HOST:PORT...]")
	f.Uint32Var(&o.vni, "vni", 0, "VXLAN network identifier of an overlay network (default: the next free one from 4096)")
}

// check reports whether the flags ask for an overlay network, and refuses
// overlay flags on a bridge network.
func (o *overlayFlags) check() (bool, error) {
	switch o.driver {
	case "overlay":
		if o.store == "" {
			return true, errors.New("--driver overlay needs --store etcd://HOST:PORT: the cluster store every host's agent watches")
		}
		return true, nil
	case "bridge", "":
		if o.store != "" || o.vni != 0 {
			return false, errors.New("--store and --vni are for --driver overlay")
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown --driver %q: give bridge or overlay", o.driver)
}

// createOverlay stores an overlay network in the cluster store; every
// host's agent then makes its part.
func (a *app) createOverlay(spec engine.NetworkSpec, o overlayFlags) error {
	n, err := overlayNetwork(spec, o)
	if err != nil {
		return err
	}
	eps, err := clusterstore.ParseURL(o.store)
	if err != nil {
		return err
	}
	st, err := clusterstore.Open(eps)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterstore.Timeout)
	defer cancel()
	if err := st.CreateNetwork(ctx, n); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, n.Name)
	return nil
}

// overlayNetwork checks spec for an overlay network before anything is
// asked of the store.
func overlayNetwork(spec engine.NetworkSpec, o overlayFlags) (clusterstore.Network, error) {
	n := clusterstore.Network{Name: spec.Name, VNI: o.vni, MTU: spec.MTU, Created: time.Now().UTC()}
	if err := validate.Name("network", spec.Name); err != nil {
		return n, err
	}
	if spec.Subnet == "" {
		return n, fmt.Errorf("overlay network %s needs --subnet: every host uses the same one", spec.Name)
	}
	if spec.Bridge != "" || spec.Internal || len(spec.DNS) > 0 {
		return n, fmt.Errorf("overlay network %s: --bridge, --internal and --dns are for bridge networks only", spec.Name)
	}
	if n.VNI > 1<<24-1 {
		return n, fmt.Errorf("invalid --vni %d: it must be between 1 and 16777215", n.VNI)
	}
	if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
		return n, fmt.Errorf("invalid MTU %d for network %s: it must be between 68 and 65535", n.MTU, spec.Name)
	}
	var err error
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

// removeOverlays removes overlay networks from the cluster store.
func (a *app) removeOverlays(url string, names []string) error {
	eps, err := clusterstore.ParseURL(url)
	if err != nil {
		return err
	}
	st, err := clusterstore.Open(eps)
	if err != nil {
		return err
	}
	defer st.Close()
	return a.forEach(names, func(name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), clusterstore.Timeout)
		defer cancel()
		return st.RemoveNetwork(ctx, name)
	})
}

func (a *app) agentCommand() *cobra.Command {
	var store, advertise string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "agent --store etcd://HOST:PORT[,...] [--advertise IP] [--ttl D]",
		Short: "Run this host's overlay agent (resident): joins the overlay networks of the store and forwards to the other hosts' sandboxes",
		Args:  exactArgs(0, ""),
		RunE: func(*cobra.Command, []string) error {
			eps, err := clusterstore.ParseURL(store)
			if err != nil {
				return err
			}
			var adv netip.Addr
			if advertise != "" {
				if adv, err = validate.IPv4(advertise); err != nil {
					return fmt.Errorf("invalid --advertise: %w", err)
				}
			}
			if ttl < time.Second {
				return fmt.Errorf("--ttl %s is too short: give at least 1s", ttl)
			}
			e, err := a.open(false)
			if err != nil {
				return err
			}
			defer e.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
			defer stop()
			ag := &overlay.Agent{Root: a.root, Store: eps, Advertise: adv, TTL: ttl, Local: agentLocal{e},
				Log: func(s string) { fmt.Fprintln(a.stderr, strings.TrimSpace(s)) }}
			return ag.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&store, "store", "", "the cluster store: etcd://HOST:PORT[,HOST:PORT...]")
	f.StringVar(&advertise, "advertise", "", "this host's underlay address, the VXLAN tunnels' end (default: the address it reaches the store from)")
	f.DurationVar(&ttl, "ttl", overlay.DefaultTTL, "how long this host's sandboxes stay known to the others after the agent stops")
	cmd.MarkFlagRequired("store")
	return cmd
}

// agentLocal is the engine as the agent uses it.
type agentLocal struct{ e *engine.Engine }

func (l agentLocal) Networks() ([]types.Network, error)  { return l.e.Networks() }
func (l agentLocal) Sandboxes() ([]types.Sandbox, error) { return l.e.Sandboxes() }
func (l agentLocal) RemoveNetwork(name string) error     { return l.e.RemoveNetwork(name) }
func (l agentLocal) CreateOverlay(n clusterstore.Network, mtu int, o types.Overlay) error {
	_, err := l.e.CreateNetwork(engine.NetworkSpec{Name: n.Name, Subnet: n.Subnet.String(), Gateway: n.Gateway.String(), MTU: mtu, Overlay: &o})
	return err
}
