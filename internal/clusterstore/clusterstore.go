// Package clusterstore keeps the state of overlay networks that hosts share,
// in etcd (client v3): the networks, the address each sandbox holds on one,
// and the hosts running an overlay agent. It knows nothing of the kernel.
//
// Layout (every value JSON):
//
//	/nsnet/v1/networks/NAME        a network (Network), made once, cluster-wide
//	/nsnet/v1/endpoints/NAME/IP    a sandbox's address on NAME (Endpoint), under its host's lease
//	/nsnet/v1/hosts/HOST           a host running an agent (Host), under its lease
//
// Invariants: an address is written only in a transaction that requires its
// key to be absent and its network to be the one read, so no address is ever
// held twice, however many hosts allocate at once; endpoint and host keys are
// attached to their host's lease, so they vanish when a host stops renewing
// it (its agent is gone) for the lease's TTL; a network is deleted only in a
// transaction that requires it to have no endpoints.
package clusterstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/nsnet/nsnet/internal/ipam"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Key prefixes.
const (
	Prefix          = "/nsnet/v1/"
	networksPrefix  = Prefix + "networks/"
	endpointsPrefix = Prefix + "endpoints/"
	hostsPrefix     = Prefix + "hosts/"
)

// FirstVNI is the VNI of the first overlay network made without --vni; the
// next ones get the next free one above all in use.
const FirstVNI = 4096

// Timeout bounds every request of a command; an etcd that does not answer
// within it is unreachable.
const Timeout = 5 * time.Second

// ErrUnreachable is wrapped by errors of requests etcd did not answer.
var ErrUnreachable = errors.New("the cluster store (etcd) is unreachable")

// Network is an overlay network as all hosts see it.
type Network struct {
	Name    string       `json:"name"`
	ID      string       `json:"id"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	VNI     uint32       `json:"vni"`
	MTU     int          `json:"mtu,omitempty"` // 0: each host's underlay MTU minus 50
	Created time.Time    `json:"created"`
	// Labels, Options (-o: only the MTU) and NoAntiSpoof are as network
	// create gave them; every host's part of the network has them.
	Labels      map[string]string `json:"labels,omitempty"`
	Options     map[string]string `json:"options,omitempty"`
	NoAntiSpoof bool              `json:"no_antispoof,omitempty"`
}

// Endpoint is a sandbox's address on an overlay network.
type Endpoint struct {
	Network string     `json:"network"`
	IP      netip.Addr `json:"ip"`
	MAC     string     `json:"mac"`
	Sandbox string     `json:"sandbox"`
	Host    string     `json:"host"` // the host's ID
	VTEP    netip.Addr `json:"vtep"` // the host's underlay address
}

// Host is a host whose overlay agent runs.
type Host struct {
	ID        string     `json:"id"`
	Advertise netip.Addr `json:"advertise"`
}

// Store is a connection to the cluster's etcd.
type Store struct {
	C         *clientv3.Client
	Endpoints []string
}

// ParseURL turns etcd://HOST:PORT[,HOST:PORT...] into client endpoints.
func ParseURL(url string) ([]string, error) {
	rest, ok := strings.CutPrefix(url, "etcd://")
	if !ok || rest == "" {
		return nil, fmt.Errorf("invalid --store %q: give etcd://HOST:PORT[,HOST:PORT...]", url)
	}
	var out []string
	for _, hp := range strings.Split(rest, ",") {
		if _, err := netip.ParseAddrPort(hp); err != nil && !strings.Contains(hp, ":") {
			return nil, fmt.Errorf("invalid --store %q: %q has no port: give etcd://HOST:PORT", url, hp)
		}
		out = append(out, "http://"+hp)
	}
	return out, nil
}

// Open connects to endpoints; it does not wait for etcd to answer.
func Open(endpoints []string) (*Store, error) {
	// Reconnect at least every second: gRPC's default backoff grows to two
	// minutes, and an agent must resync soon after etcd is back.
	retry := grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: time.Second,
		Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}})
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: Timeout, DialKeepAliveTime: 2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second, Logger: quietLogger(), DialOptions: []grpc.DialOption{retry}})
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster store %v: %w", endpoints, err)
	}
	return &Store{C: c, Endpoints: endpoints}, nil
}

// Close closes the connection.
func (s *Store) Close() error { return s.C.Close() }

// unreachable wraps err of what when etcd did not answer.
func (s *Store) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "Unavailable") {
		return fmt.Errorf("%s: %w at %s: check that etcd runs and this host reaches it (%v)", what, ErrUnreachable, strings.Join(s.Endpoints, ","), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func networkKey(name string) string                    { return networksPrefix + name }
func endpointsKey(network string) string               { return endpointsPrefix + network + "/" }
func endpointKey(network string, ip netip.Addr) string { return endpointsKey(network) + ip.String() }
func hostKey(id string) string                         { return hostsPrefix + id }

// IsNetworkKey, IsEndpointKey tell watch events apart.
func IsNetworkKey(k string) bool  { return strings.HasPrefix(k, networksPrefix) }
func IsEndpointKey(k string) bool { return strings.HasPrefix(k, endpointsPrefix) }

// CreateNetwork stores n, refusing a name that exists, a subnet that
// overlaps another overlay network's and a VNI another has, in one
// transaction that fails if any network changed since they were read.
func (s *Store) CreateNetwork(ctx context.Context, n Network) error {
	resp, err := s.C.Get(ctx, networksPrefix, clientv3.WithPrefix())
	if err != nil {
		return s.wrap("read the overlay networks", err)
	}
	pick := n.VNI == 0
	if pick {
		n.VNI = FirstVNI
	}
	for _, kv := range resp.Kvs {
		var o Network
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			return fmt.Errorf("overlay network record %s is damaged: %w", kv.Key, err)
		}
		if pick && o.VNI >= n.VNI {
			n.VNI = o.VNI + 1
		}
	}
	for _, kv := range resp.Kvs {
		var o Network
		json.Unmarshal(kv.Value, &o)
		switch {
		case o.Name == n.Name:
			return fmt.Errorf("overlay network %s already exists in the cluster store: choose another name", n.Name)
		case o.Subnet.Overlaps(n.Subnet):
			return fmt.Errorf("subnet %s overlaps subnet %s of overlay network %s: choose another --subnet", n.Subnet, o.Subnet, o.Name)
		case o.VNI == n.VNI:
			return fmt.Errorf("VNI %d is used by overlay network %s: choose another --vni", n.VNI, o.Name)
		}
	}
	val, _ := json.Marshal(n)
	tx, err := s.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(networksPrefix).WithPrefix(), "<", resp.Header.Revision+1),
		clientv3.Compare(clientv3.CreateRevision(networkKey(n.Name)), "=", 0)).
		Then(clientv3.OpPut(networkKey(n.Name), string(val))).Commit()
	if err != nil {
		return s.wrap("create overlay network "+n.Name, err)
	}
	if !tx.Succeeded {
		return fmt.Errorf("create overlay network %s: another host changed the overlay networks at the same time: retry", n.Name)
	}
	return nil
}

// RemoveNetwork deletes network name, refused while any host has a sandbox
// on it.
func (s *Store) RemoveNetwork(ctx context.Context, name string) error {
	tx, err := s.C.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(networkKey(name)), ">", 0),
		clientv3.Compare(clientv3.CreateRevision(endpointsKey(name)).WithPrefix(), "=", 0)).
		Then(clientv3.OpDelete(networkKey(name))).
		Else(clientv3.OpGet(networkKey(name)), clientv3.OpGet(endpointsKey(name), clientv3.WithPrefix(), clientv3.WithLimit(5))).Commit()
	if err != nil {
		return s.wrap("remove overlay network "+name, err)
	}
	if tx.Succeeded {
		return nil
	}
	if len(tx.Responses[0].GetResponseRange().Kvs) == 0 {
		return fmt.Errorf("overlay network %s not found in the cluster store", name)
	}
	var held []string
	for _, kv := range tx.Responses[1].GetResponseRange().Kvs {
		var ep Endpoint
		json.Unmarshal(kv.Value, &ep)
		held = append(held, fmt.Sprintf("%s (%s, host %s)", ep.Sandbox, ep.IP, ep.VTEP))
	}
	return fmt.Errorf("overlay network %s has sandboxes %s: remove them first, on their hosts", name, strings.Join(held, ", "))
}

// State is everything of the overlay networks at one revision.
type State struct {
	Revision  int64
	Networks  map[string]Network
	Endpoints map[string]Endpoint // by key
}

// Load reads every network and endpoint at one revision.
func (s *Store) Load(ctx context.Context) (*State, error) {
	resp, err := s.C.Get(ctx, Prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, s.wrap("read the overlay networks", err)
	}
	st := &State{Revision: resp.Header.Revision, Networks: map[string]Network{}, Endpoints: map[string]Endpoint{}}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		switch {
		case IsNetworkKey(k):
			var n Network
			if err := json.Unmarshal(kv.Value, &n); err == nil {
				st.Networks[n.Name] = n
			}
		case IsEndpointKey(k):
			var ep Endpoint
			if err := json.Unmarshal(kv.Value, &ep); err == nil {
				st.Endpoints[k] = ep
			}
		}
	}
	return st, nil
}

// Network reads one network.
func (s *Store) Network(ctx context.Context, name string) (*Network, int64, error) {
	resp, err := s.C.Get(ctx, networkKey(name))
	if err != nil {
		return nil, 0, s.wrap("read overlay network "+name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("overlay network %s not found in the cluster store", name)
	}
	var n Network
	if err := json.Unmarshal(resp.Kvs[0].Value, &n); err != nil {
		return nil, 0, fmt.Errorf("overlay network record %s is damaged: %w", name, err)
	}
	return &n, resp.Kvs[0].CreateRevision, nil
}

// Reserve writes ep under lease: at ep.IP if valid, else at the lowest
// address of the network's subnet that no endpoint holds, all or nothing.
// It returns the address taken.
func (s *Store) Reserve(ctx context.Context, ep Endpoint, lease clientv3.LeaseID) (netip.Addr, error) {
	n, created, err := s.Network(ctx, ep.Network)
	if err != nil {
		return netip.Addr{}, err
	}
	resp, err := s.C.Get(ctx, endpointsKey(ep.Network), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return netip.Addr{}, s.wrap("read the addresses of overlay network "+ep.Network, err)
	}
	taken := map[netip.Addr]bool{}
	for _, kv := range resp.Kvs {
		if a, err := netip.ParseAddr(strings.TrimPrefix(string(kv.Key), endpointsKey(ep.Network))); err == nil {
			taken[a] = true
		}
	}
	static := ep.IP.IsValid()
	if static {
		if err := ipam.CheckStatic(n.Subnet, n.Gateway, ep.IP, func(a netip.Addr) bool { return taken[a] }); err != nil {
			return netip.Addr{}, fmt.Errorf("--ip %s on overlay network %s%s: %w", ep.IP, ep.Network, s.holder(ctx, ep.Network, ep.IP), err)
		}
	}
	for range 512 {
		if !static {
			if ep.IP, err = ipam.Allocate(n.Subnet, n.Gateway, func(a netip.Addr) bool { return taken[a] }); err != nil {
				return netip.Addr{}, fmt.Errorf("overlay network %s: %w; remove unused sandboxes", ep.Network, err)
			}
		}
		ok, err := s.put(ctx, ep, created, lease)
		if err != nil || ok {
			return ep.IP, err
		}
		if static {
			return netip.Addr{}, fmt.Errorf("--ip %s on overlay network %s: another host took it at the same time: choose another", ep.IP, ep.Network)
		}
		taken[ep.IP] = true // another host was faster: try the next
	}
	return netip.Addr{}, fmt.Errorf("overlay network %s: no address could be reserved after 512 tries: too many hosts allocate at once, retry", ep.Network)
}

// holder says who holds ip on network, for an error message.
func (s *Store) holder(ctx context.Context, network string, ip netip.Addr) string {
	resp, err := s.C.Get(ctx, endpointKey(network, ip))
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	ep, err := DecodeEndpoint(resp.Kvs[0].Value)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(": held by sandbox %s on host %s", ep.Sandbox, ep.VTEP)
}

// put writes ep if its key is absent and the network is the one read.
func (s *Store) put(ctx context.Context, ep Endpoint, netCreated int64, lease clientv3.LeaseID) (bool, error) {
	ep.MAC = ipam.MACFromIP(ep.IP).String()
	val, _ := json.Marshal(ep)
	k := endpointKey(ep.Network, ep.IP)
	tx, err := s.C.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(networkKey(ep.Network)), "=", netCreated)).
		Then(clientv3.OpPut(k, string(val), clientv3.WithLease(lease))).Commit()
	if err != nil {
		if strings.Contains(err.Error(), "lease not found") {
			return false, fmt.Errorf("reserve %s on overlay network %s: this host's agent lease has expired: check that nsnet agent runs and reaches the cluster store", ep.IP, ep.Network)
		}
		return false, s.wrap(fmt.Sprintf("reserve %s on overlay network %s", ep.IP, ep.Network), err)
	}
	return tx.Succeeded, nil
}

// Renew puts ep again under lease, if its key is absent or already ep's
// (its host's, for the same sandbox): an agent re-registers its sandboxes
// with its new lease this way. It reports false if another holds the key.
func (s *Store) Renew(ctx context.Context, ep Endpoint, lease clientv3.LeaseID) (bool, error) {
	k := endpointKey(ep.Network, ep.IP)
	resp, err := s.C.Get(ctx, k)
	if err != nil {
		return false, s.wrap("read "+k, err)
	}
	ep.MAC = ipam.MACFromIP(ep.IP).String()
	val, _ := json.Marshal(ep)
	cmp := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	if len(resp.Kvs) > 0 {
		var old Endpoint
		if json.Unmarshal(resp.Kvs[0].Value, &old) != nil || old.Host != ep.Host || old.Sandbox != ep.Sandbox {
			return false, nil
		}
		if old == ep && clientv3.LeaseID(resp.Kvs[0].Lease) == lease {
			return true, nil
		}
		cmp = clientv3.Compare(clientv3.ModRevision(k), "=", resp.Kvs[0].ModRevision)
	}
	tx, err := s.C.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, string(val), clientv3.WithLease(lease))).Commit()
	if err != nil {
		return false, s.wrap("renew "+k, err)
	}
	return tx.Succeeded, nil
}

// Release deletes the endpoint at ip on network if host holds it for
// sandbox; one that is gone is no error.
func (s *Store) Release(ctx context.Context, network string, ip netip.Addr, host, sandbox string) error {
	k := endpointKey(network, ip)
	resp, err := s.C.Get(ctx, k)
	if err != nil {
		return s.wrap("read "+k, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var ep Endpoint
	if json.Unmarshal(resp.Kvs[0].Value, &ep) == nil && (ep.Host != host || ep.Sandbox != sandbox) {
		return nil // someone else's now
	}
	_, err = s.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", resp.Kvs[0].ModRevision)).Then(clientv3.OpDelete(k)).Commit()
	return s.wrap("release "+k, err)
}

// Grant makes a lease of ttl.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	resp, err := s.C.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return 0, s.wrap("grant a lease", err)
	}
	return resp.ID, nil
}

// PutHost registers h under lease.
func (s *Store) PutHost(ctx context.Context, h Host, lease clientv3.LeaseID) error {
	val, _ := json.Marshal(h)
	_, err := s.C.Put(ctx, hostKey(h.ID), string(val), clientv3.WithLease(lease))
	return s.wrap("register host "+h.ID, err)
}

// DecodeEndpoint decodes an endpoint's value.
func DecodeEndpoint(v []byte) (Endpoint, error) {
	var ep Endpoint
	err := json.Unmarshal(v, &ep)
	return ep, err
}

// quietLogger keeps the client's retries and reconnects off stderr: what
// fails is returned as an error.
func quietLogger() *zap.Logger { return zap.NewNop() }
