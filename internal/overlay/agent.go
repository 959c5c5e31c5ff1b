package overlay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nsnet/nsnet/internal/clusterstore"
	"github.com/nsnet/nsnet/internal/ipam"
	"github.com/nsnet/nsnet/internal/link"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/internal/agentapi"
)

// Local is the state root's engine as the agent uses it.
type Local interface {
	Networks() ([]types.Network, error)
	Sandboxes() ([]types.Sandbox, error)
	// CreateOverlay makes this host's part of overlay network n.
	CreateOverlay(n clusterstore.Network, mtu int, o types.Overlay) error
	RemoveNetwork(name string) error
}

// VXLANOverhead is what VXLAN over IPv4 adds to a frame: the default MTU of
// an overlay network is its host's underlay MTU minus this.
const VXLANOverhead = 50

// DefaultTTL is the lease of a host's entries: they vanish this long after
// its agent stops renewing it.
const DefaultTTL = 10 * time.Second

// resyncEvery is how often the agent compares everything again, besides
// following the watch.
const resyncEvery = 5 * time.Second

// Agent is a host's overlay agent.
type Agent struct {
	Root      string
	Store     []string
	Advertise netip.Addr // zero: the address this host reaches the store from
	TTL       time.Duration
	Local     Local
	Log       func(string)

	host  string
	st    *clusterstore.Store
	links *link.Host
	owner owner.Owner
	nets  map[string]types.Network // the local overlay networks, by name

	mu    sync.Mutex       // guards lease, which the socket's handlers read
	lease clientv3.LeaseID // the current session's
}

// Run runs the agent until ctx ends: sessions with the store, each from a
// full resync, one after another while the store comes and goes.
func (a *Agent) Run(ctx context.Context) error {
	if a.TTL <= 0 {
		a.TTL = DefaultTTL
	}
	unlock, err := lockAgent(a.Root)
	if err != nil {
		return err
	}
	defer unlock()
	if a.host, err = hostID(a.Root); err != nil {
		return err
	}
	if !a.Advertise.IsValid() {
		if a.Advertise, err = sourceAddress(a.Store); err != nil {
			return err
		}
	}
	if a.st, err = clusterstore.Open(a.Store); err != nil {
		return err
	}
	defer a.st.Close()
	if a.links, err = link.OpenHost(); err != nil {
		return err
	}
	defer a.links.Close()
	a.owner = owner.Of(a.Root)
	ln, err := listen(a.Root)
	if err != nil {
		return err
	}
	defer ln.Close()
	go a.serve(ln)
	a.Log(fmt.Sprintf("overlay agent: host %s, advertise %s, store %s", a.host, a.Advertise, strings.Join(a.Store, ",")))
	for ctx.Err() == nil {
		err := a.session(ctx)
		if ctx.Err() != nil {
			break
		}
		a.Log(fmt.Sprintf("overlay agent: %v; resyncing in 1s", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// session takes a lease, resyncs everything, and follows the watch until
// an error (the store unreachable, the lease lost).
func (a *Agent) session(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, clusterstore.Timeout)
	lease, err := a.st.Grant(rctx, a.TTL)
	rcancel()
	if err != nil {
		return err
	}
	keep, err := a.st.C.KeepAlive(ctx, lease)
	if err != nil {
		return fmt.Errorf("keep lease alive: %w", err)
	}
	old := a.currentLease()
	if prev, err := readAgentState(a.Root); err == nil && old == 0 {
		old = prev.Lease // the agent before this one, restarted
	}
	a.mu.Lock()
	a.lease = lease
	a.mu.Unlock()
	rev, err := a.start(ctx, old)
	if err != nil {
		return err
	}
	watch := a.st.C.Watch(clientv3.WithRequireLeader(ctx), clusterstore.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-keep:
			if !ok {
				return errors.New("lost the lease (the store was unreachable for longer than its TTL)")
			}
		case wr, ok := <-watch:
			if !ok || wr.Err() != nil {
				return fmt.Errorf("watch ended: %v", wr.Err())
			}
			a.apply(ctx, wr.Events)
		case <-tick.C:
			if _, err := a.resync(ctx); err != nil {
				return err
			}
		}
	}
}

// start registers the host and its state under the new lease, resyncs, and
// revokes the lease of the session (or agent) before.
func (a *Agent) start(ctx context.Context, old clientv3.LeaseID) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, clusterstore.Timeout)
	defer cancel()
	if err := a.st.PutHost(rctx, clusterstore.Host{ID: a.host, Advertise: a.Advertise}, a.currentLease()); err != nil {
		return 0, err
	}
	err := writeAgentState(a.Root, agentState{PID: os.Getpid(), Host: a.host, Advertise: a.Advertise, Lease: a.currentLease(), Store: a.Store})
	if err != nil {
		return 0, fmt.Errorf("write the agent's state: %w", err)
	}
	rev, err := a.resync(ctx)
	if err != nil {
		return 0, err
	}
	if old != 0 && old != a.currentLease() {
		a.st.C.Revoke(rctx, old) // what it still held is ours again, or stale
	}
	return rev, nil
}

// resync compares everything: the local parts of the overlay networks,
// this host's sandboxes in the store, and the other hosts' sandboxes in
// the kernel. It returns the store's revision it compared with.
func (a *Agent) resync(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, clusterstore.Timeout)
	defer cancel()
	st, err := a.st.Load(rctx)
	if err != nil {
		return 0, err
	}
	if err := a.syncNetworks(st); err != nil {
		a.Log("overlay agent: " + err.Error())
	}
	if err := a.syncOwn(rctx, st); err != nil {
		return 0, err
	}
	a.syncPeers(st)
	return st.Revision, nil
}

// syncNetworks makes the local part of each overlay network, with its VXLAN
// device, and removes those of networks gone from the store.
func (a *Agent) syncNetworks(st *clusterstore.State) error {
	local, err := a.Local.Networks()
	if err != nil {
		return err
	}
	have := map[string]types.Network{}
	var errs []error
	for _, n := range local {
		if n.Overlay == nil {
			if _, ok := st.Networks[n.Name]; ok {
				errs = append(errs, fmt.Errorf("overlay network %s: a local network of this host has that name: remove it to join the overlay", n.Name))
			}
			continue
		}
		c, ok := st.Networks[n.Name]
		if !ok || c.Subnet != n.Subnet || c.VNI != n.Overlay.VNI {
			if err := a.Local.RemoveNetwork(n.Name); err != nil {
				errs = append(errs, fmt.Errorf("remove the local part of overlay network %s, gone from the store: %w", n.Name, err))
				have[n.Name] = n
			}
			continue
		}
		have[n.Name] = n
	}
	for name, c := range st.Networks {
		if _, ok := have[name]; ok || hasLocal(local, name) {
			continue
		}
		if err := a.createLocal(c); err != nil {
			errs = append(errs, err)
		}
	}
	if local, err = a.Local.Networks(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	a.nets = map[string]types.Network{}
	for _, n := range local {
		if n.Overlay != nil {
			if err := a.ensureDevice(n); err != nil {
				errs = append(errs, err)
			}
			a.nets[n.Name] = n
		}
	}
	return errors.Join(errs...)
}

func hasLocal(local []types.Network, name string) bool {
	for _, n := range local {
		if n.Name == name && n.Overlay == nil {
			return true
		}
	}
	return false
}

func (a *Agent) createLocal(c clusterstore.Network) error {
	mtu := c.MTU
	if mtu == 0 {
		under, err := a.links.UnderlayMTU(a.Advertise)
		if err != nil {
			return fmt.Errorf("overlay network %s: %w", c.Name, err)
		}
		mtu = under - VXLANOverhead
	}
	err := a.Local.CreateOverlay(c, mtu, types.Overlay{VNI: c.VNI, Store: a.Store})
	if err != nil {
		return fmt.Errorf("make the local part of overlay network %s: %w", c.Name, err)
	}
	a.Log(fmt.Sprintf("overlay agent: joined overlay network %s (%s, VNI %d, MTU %d)", c.Name, c.Subnet, c.VNI, mtu))
	return nil
}

// ensureDevice makes n's VXLAN device, on its bridge, if it is missing or
// differs.
func (a *Agent) ensureDevice(n types.Network) error {
	_, err := a.links.EnsureVXLAN(link.VXLAN{Name: n.Overlay.Device, VNI: n.Overlay.VNI, Local: a.Advertise, MTU: n.MTU,
		Bridge: n.Bridge, Alias: a.owner.NetworkMark(n.Name), Group: owner.Group})
	return err
}

// syncOwn registers this host's sandboxes on overlay networks under the
// current lease, and releases addresses this host holds for sandboxes that
// are gone (removed while the store was unreachable).
func (a *Agent) syncOwn(ctx context.Context, st *clusterstore.State) error {
	sbs, err := a.Local.Sandboxes()
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, sb := range sbs {
		for _, ep := range sb.Endpoints {
			if _, ok := a.nets[ep.Network]; !ok {
				continue
			}
			e := clusterstore.Endpoint{Network: ep.Network, IP: ep.Address.Addr(), Sandbox: sb.Name, Host: a.host, VTEP: a.Advertise}
			mine[ep.Network+"/"+e.IP.String()] = true
			ok, err := a.st.Renew(ctx, e, a.currentLease())
			if err != nil {
				return err
			}
			if !ok {
				a.Log(fmt.Sprintf("overlay agent: address %s of sandbox %s on overlay network %s is held by another host: remove the sandbox", e.IP, sb.Name, ep.Network))
			}
		}
	}
	for _, e := range st.Endpoints {
		if e.Host == a.host && !mine[e.Network+"/"+e.IP.String()] {
			if err := a.st.Release(ctx, e.Network, e.IP, a.host, e.Sandbox); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncPeers makes each local VXLAN device's entries exactly the other
// hosts' sandboxes on its network.
func (a *Agent) syncPeers(st *clusterstore.State) {
	want := map[string]map[string]link.Peer{} // by network, by IP
	for _, e := range st.Endpoints {
		if e.Host == a.host {
			continue
		}
		if want[e.Network] == nil {
			want[e.Network] = map[string]link.Peer{}
		}
		want[e.Network][e.IP.String()] = peerOf(e)
	}
	for name, n := range a.nets {
		have, err := a.links.Peers(n.Overlay.Device)
		if err != nil {
			a.Log("overlay agent: " + err.Error())
			continue
		}
		for _, p := range have {
			w, ok := want[name][p.IP.String()]
			if !ok || w.MAC.String() != p.MAC.String() || w.VTEP != p.VTEP {
				a.logErr(a.links.DeletePeer(n.Overlay.Device, p))
			}
		}
		for _, p := range want[name] {
			if !hasPeer(have, p) {
				a.logErr(a.links.AddPeer(n.Overlay.Device, p))
			}
		}
	}
}

func hasPeer(have []link.Peer, p link.Peer) bool {
	for _, h := range have {
		if h.IP == p.IP && h.MAC.String() == p.MAC.String() && h.VTEP == p.VTEP {
			return true
		}
	}
	return false
}

func peerOf(e clusterstore.Endpoint) link.Peer {
	return link.Peer{IP: e.IP, MAC: ipam.MACFromIP(e.IP), VTEP: e.VTEP}
}

// apply follows the watch: another host's sandbox added or gone becomes its
// entries added or removed at once; a network changed calls for a resync.
func (a *Agent) apply(ctx context.Context, evs []*clientv3.Event) {
	for _, ev := range evs {
		k := string(ev.Kv.Key)
		switch {
		case clusterstore.IsNetworkKey(k):
			if _, err := a.resync(ctx); err != nil {
				a.Log("overlay agent: " + err.Error())
			}
		case clusterstore.IsEndpointKey(k) && ev.Type == clientv3.EventTypePut:
			e, err := clusterstore.DecodeEndpoint(ev.Kv.Value)
			if n, ok := a.nets[e.Network]; ok && err == nil && e.Host != a.host {
				a.logErr(a.links.AddPeer(n.Overlay.Device, peerOf(e)))
			}
		case clusterstore.IsEndpointKey(k) && ev.PrevKv != nil:
			e, err := clusterstore.DecodeEndpoint(ev.PrevKv.Value)
			if n, ok := a.nets[e.Network]; ok && err == nil && e.Host != a.host {
				a.logErr(a.links.DeletePeer(n.Overlay.Device, peerOf(e)))
			}
		}
	}
}

func (a *Agent) logErr(err error) {
	if err != nil {
		a.Log("overlay agent: " + err.Error())
	}
}

// hostID is this host's ID in the cluster, made on first use and kept in
// the state root.
func hostID(root string) (string, error) {
	p := filepath.Join(stateDir(root), "host-id")
	if raw, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(raw))) == 32 {
		return strings.TrimSpace(string(raw)), nil
	}
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	if err := os.MkdirAll(stateDir(root), 0o700); err != nil {
		return "", fmt.Errorf("make the overlay state directory: %w", err)
	}
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the host ID: %w", err)
	}
	return id, nil
}

// sourceAddress is the address this host reaches the first store endpoint
// from: its underlay address, unless --advertise says otherwise.
func sourceAddress(store []string) (netip.Addr, error) {
	hp := strings.TrimPrefix(store[0], "http://")
	c, err := net.Dial("udp", hp)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find the address this host reaches %s from: %w; give --advertise", hp, err)
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

// lockAgent makes sure one agent runs per state root: it holds an exclusive
// lock on ROOT/overlay/agent.lock while it runs.
func lockAgent(root string) (func(), error) {
	if err := os.MkdirAll(stateDir(root), 0o700); err != nil {
		return nil, fmt.Errorf("make the overlay state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir(root), "agent.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the agent's lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another nsnet agent runs for state root %s: one per state root", root)
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func (a *Agent) currentLease() clientv3.LeaseID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lease
}

// listen opens the agent's socket (agentapi.Socket), root's only: the lock
// held makes any socket file there a dead agent's.
func listen(root string) (net.Listener, error) {
	p := agentapi.Socket(root)
	os.Remove(p)
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("listen on the agent's socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict the agent's socket: %w", err)
	}
	return ln, nil
}

// serve answers the commands of the root's, one connection each, until ln
// is closed.
func (a *Agent) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go a.handle(c)
	}
}

func (a *Agent) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(agentapi.Timeout))
	var req agentapi.Request
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		return
	}
	var resp agentapi.Response
	if err := a.answer(&req, &resp); err != nil {
		resp.Error = err.Error()
	}
	json.NewEncoder(c).Encode(resp)
}

// answer reserves or releases an address under the current lease.
func (a *Agent) answer(req *agentapi.Request, resp *agentapi.Response) error {
	lease := a.currentLease()
	if lease == 0 {
		return fmt.Errorf("the overlay agent has not reached the cluster store yet (%s): check that etcd runs", agentapi.StoreURL(a.Store))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterstore.Timeout)
	defer cancel()
	switch req.Op {
	case agentapi.OpReserve:
		ep := clusterstore.Endpoint{Network: req.Network, IP: req.IP, Sandbox: req.Sandbox, Host: a.host, VTEP: a.Advertise}
		ip, err := a.st.Reserve(ctx, ep, lease)
		resp.IP = ip
		return err
	case agentapi.OpRelease:
		return a.st.Release(ctx, req.Network, req.IP, a.host, req.Sandbox)
	}
	return fmt.Errorf("unknown request %q", req.Op)
}
