package e2e

// The nsnet binary as a CNI plugin, driven through libcni (the library every
// container runtime uses) in throwaway worlds, chained with Debian's
// reference plugins tuning and bandwidth (containernetworking-plugins 1.1.1,
// which speak CNI up to 1.0.0). libcni execs the plugins from the calling
// thread, so each call runs on a thread inside the world's host namespace
// (testenv.InNS), as a runtime on that host would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/cni"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// refPlugins is where Debian's containernetworking-plugins put the
// reference plugins.
const refPlugins = "/usr/lib/cni"

// runtime plays a container runtime on a world's host: libcni with its own
// result cache, finding nsnet and the reference plugins.
type runtime struct {
	w      *testenv.World
	cni    *libcni.CNIConfig
	mu     sync.Mutex
	netnss map[string]string // container ID -> the namespace the runtime made for it
}

func newRuntime(t *testing.T, w *testenv.World) *runtime {
	t.Helper()
	for _, p := range []string{"tuning", "bandwidth"} {
		if _, err := os.Stat(filepath.Join(refPlugins, p)); err != nil {
			t.Fatalf("the reference plugin %s is missing (%v): apt-get install containernetworking-plugins", p, err)
		}
	}
	bin := testenv.Binary(t)
	r := &runtime{w: w, netnss: map[string]string{},
		cni: libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(bin), refPlugins}, t.TempDir(), newExec())}
	t.Cleanup(func() { r.leftovers(t) })
	return r
}

// newExec is libcni's default way to run plugins, made at once: libcni
// makes it on first use, which is a data race when the first calls run in
// parallel.
func newExec() invoke.Exec {
	return &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
}

// containerID is a 64-hex-like ID, unique to the world, whose sandbox name
// (its first 12 characters) says which world and container it is.
func (r *runtime) containerID(name string) string {
	id := r.w.Prefix + strings.Repeat("-", 12)
	id = id[:12-len(name)] + name
	return id + strings.Repeat("0", 52)
}

// container makes a container's namespace, as a runtime does before ADD.
func (r *runtime) container(t *testing.T, name string) (id, netns string) {
	t.Helper()
	id, ns := r.containerID(name), r.w.Name(name)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	mustRun(t, ns, "ip", "link", "set", "lo", "up")
	r.mu.Lock()
	r.netnss[id] = testenv.NSPath(ns)
	r.mu.Unlock()
	return id, testenv.NSPath(ns)
}

// removeContainer removes a container's namespace, as the runtime does
// after DEL.
func (r *runtime) removeContainer(t *testing.T, name string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "del", r.w.Name(name)).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v: %s", r.w.Name(name), err, out)
	}
}

// leftovers fails the test for what nsnet left of its containers (their
// namespace names, markers and files), and removes it.
func (r *runtime) leftovers(t *testing.T) {
	for id := range r.netnss {
		for _, name := range cni.SandboxNames(id) {
			for _, p := range []string{"/run/netns/" + name, "/run/nsnet/netns/" + name, "/etc/netns/" + name} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("leftover %s", p)
					if strings.HasPrefix(p, "/run/netns/") {
						exec.Command("ip", "netns", "del", name).Run()
					}
					os.RemoveAll(p)
				}
			}
		}
	}
}

// conflist is a network list of the given version: nsnet on network net,
// then the plugins given (JSON objects).
func (r *runtime) conflist(t *testing.T, version, name string, nsnet map[string]any, more ...string) *libcni.NetworkConfigList {
	t.Helper()
	conf := map[string]any{"type": "nsnet", "root": r.w.Root,
		"capabilities": map[string]bool{"portMappings": true, "ips": true, "mac": true, "aliases": true}}
	for k, v := range nsnet {
		conf[k] = v
	}
	raw, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	plugins := append([]string{string(raw)}, more...)
	list, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{"cniVersion":%q,"name":%q,"plugins":[%s]}`, version, name, strings.Join(plugins, ","))))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// tuningAndBandwidth chain after nsnet: a sysctl in the container, and
// shaping on the host end of its veth (tbf) and of its egress (an ifb).
var tuningAndBandwidth = []string{
	`{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_notify":"1"}}`,
	`{"type":"bandwidth","ingressRate":100000000,"ingressBurst":1000000,"egressRate":100000000,"egressBurst":1000000}`,
}

// inHost runs fn on a thread in the world's host namespace: the plugins
// libcni starts from it run there.
func (r *runtime) inHost(fn func() error) error { return testenv.InNS(r.w.HostPath(), fn) }

func (r *runtime) rt(id, netns, ifName string, args [][2]string, caps map[string]any) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: ifName, Args: args, CapabilityArgs: caps}
}

func (r *runtime) add(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (*types100.Result, error) {
	var res types.Result
	err := r.inHost(func() (err error) {
		res, err = r.cni.AddNetworkList(context.Background(), list, rt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(res)
}

func (r *runtime) mustAdd(t *testing.T, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *types100.Result {
	t.Helper()
	res, err := r.add(list, rt)
	if err != nil {
		t.Fatalf("ADD %s %s to %s: %v", rt.ContainerID, rt.IfName, list.Name, err)
	}
	return res
}

func (r *runtime) check(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return r.inHost(func() error { return r.cni.CheckNetworkList(context.Background(), list, rt) })
}

func (r *runtime) del(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return r.inHost(func() error { return r.cni.DelNetworkList(context.Background(), list, rt) })
}

func (r *runtime) mustDel(t *testing.T, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) {
	t.Helper()
	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL %s %s from %s: %v", rt.ContainerID, rt.IfName, list.Name, err)
	}
}

func (r *runtime) gc(list *libcni.NetworkConfigList, valid ...types.GCAttachment) error {
	return r.inHost(func() error {
		return r.cni.GCNetworkList(context.Background(), list, &libcni.GCArgs{ValidAttachments: valid})
	})
}

func (r *runtime) status(list *libcni.NetworkConfigList) error {
	return r.inHost(func() error { return r.cni.GetStatusNetworkList(context.Background(), list) })
}

// cniCode is the CNI error code of err (0: not a plugin's error).
func cniCode(err error) uint {
	var te *types.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// ctrEnd is the container's interface and address in a result.
func ctrEnd(t *testing.T, res *types100.Result) (ifName, mac, addr, gw string) {
	t.Helper()
	for _, ip := range res.IPs {
		if ip.Interface != nil && *ip.Interface < len(res.Interfaces) && res.Interfaces[*ip.Interface].Sandbox != "" {
			itf := res.Interfaces[*ip.Interface]
			return itf.Name, itf.Mac, ip.Address.String(), ip.Gateway.String()
		}
	}
	t.Fatalf("result without a container interface and address: %+v", res)
	return
}

// hostVeth is the host end's name in a result.
func hostVeth(res *types100.Result) string {
	for _, itf := range res.Interfaces {
		if itf.Sandbox == "" && strings.HasPrefix(itf.Name, "veth") {
			return itf.Name
		}
	}
	return ""
}

// TestCNIChain attaches two containers through libcni over a conflist that
// chains nsnet, tuning and bandwidth: each gets the address, MAC and route
// of its result (one the static IP and MAC Podman passes in CNI_ARGS), the
// reference plugins do their part on top, the containers reach each other
// and the world's internet, and a published port answers from outside
// while a host process (the runtime's conmon) holds it. CHECK passes, fails
// with nsnet's code once a route is gone, and passes again after nsnet gc.
// DEL is idempotent, also once the runtime removed the namespace, and
// leaves nothing.
func TestCNIChain(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	r := newRuntime(t, w)
	list := r.conflist(t, "1.0.0", "podnet", map[string]any{"network": "cnet", "subnet": "10.71.0.0/24"}, tuningAndBandwidth...)
	idA, nsA := r.container(t, "a")
	idB, nsB := r.container(t, "b")

	// The runtime holds the published host port (Podman's conmon binds it).
	testenv.StartTCPEcho(t, w.Host, "0.0.0.0:8080")
	ports := map[string]any{"portMappings": []map[string]any{{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}}}
	rtA := r.rt(idA, nsA, "eth0", [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "a"}}, ports)
	resA := r.mustAdd(t, list, rtA)
	rtB := r.rt(idB, nsB, "eth0", [][2]string{{"IgnoreUnknown", "1"}, {"IP", "10.71.0.50"}, {"MAC", "02:00:0a:47:00:32"}}, nil)
	resB := r.mustAdd(t, list, rtB)

	ifA, macA, addrA, gwA := ctrEnd(t, resA)
	if ifA != "eth0" || addrA != "10.71.0.2/24" || gwA != "10.71.0.1" || len(resA.Routes) != 1 || resA.Routes[0].GW.String() != "10.71.0.1" {
		t.Errorf("result of a: %s %s gateway %s routes %v", ifA, addrA, gwA, resA.Routes)
	}
	if _, macB, addrB, _ := ctrEnd(t, resB); addrB != "10.71.0.50/24" || macB != "02:00:0a:47:00:32" {
		t.Errorf("result of b: %s %s, want CNI_ARGS' IP and MAC", addrB, macB)
	}
	l := mustLink(t, nsA, "eth0")
	if !slices.Contains(l.IPs("inet"), addrA) || l.Address != macA || !l.IsUp() {
		t.Errorf("a's eth0 in the kernel: %+v, want %s %s", l, addrA, macA)
	}
	if gw := defaultGateway(t, nsA); gw != "10.71.0.1" {
		t.Errorf("a's default route via %q", gw)
	}
	if got := testenv.Sysctl(t, nsA, "net.ipv4.conf.eth0.arp_notify"); got != "1" {
		t.Errorf("tuning's sysctl in a: %q, want 1", got)
	}
	if out, err := testenv.RunIn(w.Host, "tc", "qdisc", "show", "dev", hostVeth(resA)); err != nil || !strings.Contains(out, "tbf") {
		t.Errorf("bandwidth's qdisc on a's host veth %s: %v %s", hostVeth(resA), err, out)
	}

	testenv.StartTCPEcho(t, nsA, "0.0.0.0:80")
	testenv.StartTCPEcho(t, nsB, "0.0.0.0:81")
	testenv.StartTCPEcho(t, w.Inet, testenv.PublicIP+":7")
	reach(t, nsA, "10.71.0.50:81", true, "a reaches b")
	reach(t, nsB, "10.71.0.2:80", true, "b reaches a")
	if got, err := testenv.TCPHello(nsA, testenv.PublicIP+":7", dialTimeout); err != nil || got != "from "+testenv.UplinkIP {
		t.Errorf("a to the internet: %q %v, want it masqueraded to %s", got, err, testenv.UplinkIP)
	}
	if got, err := testenv.TCPHello(w.Inet, testenv.UplinkIP+":8080", dialTimeout); err != nil || got != "from "+testenv.RouterIP {
		t.Errorf("the published port 8080 from the internet: %q %v, want a's server", got, err)
	}

	// The CLI sees both, by the names derived from the container IDs, and
	// leaves them to the runtime.
	ls := w.MustNsnet(t, "sandbox", "ls")
	for _, id := range []string{idA, idB} {
		if !strings.Contains(ls, cni.SandboxName(id)) {
			t.Errorf("sandbox ls lacks %s:\n%s", cni.SandboxName(id), ls)
		}
	}
	if rt := inspectSandbox(t, w, cni.SandboxName(idA)).Runtime; rt == nil || rt.ContainerID != idA || rt.Kind != "cni" {
		t.Errorf("inspect: runtime %+v", rt)
	}
	expectFail(t, w, 1, []string{"belongs to container " + idA, "--force"}, "sandbox", "rm", cni.SandboxName(idA))

	// CHECK: fine; a route gone is drift, which gc repairs.
	rtA.Args = nil
	if err := r.check(list, rtA); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
	mustRun(t, nsA, "ip", "route", "del", "default")
	if err := r.check(list, rtA); cniCode(err) != cni.ErrDrift || !strings.Contains(err.Error(), "default route") {
		t.Errorf("CHECK without the default route: %v (code %d), want code %d about the route", err, cniCode(err), cni.ErrDrift)
	}
	w.MustNsnet(t, "gc")
	if err := r.check(list, rtA); err != nil {
		t.Errorf("CHECK after nsnet gc: %v", err)
	}

	// DEL, twice; b's after the runtime removed its namespace.
	r.mustDel(t, list, rtA)
	r.mustDel(t, list, rtA)
	if err := r.check(list, rtA); cniCode(err) != types.ErrUnknownContainer {
		t.Errorf("CHECK after DEL: %v (code %d), want 3", err, cniCode(err))
	}
	r.removeContainer(t, "b")
	r.mustDel(t, list, rtB)
	r.mustDel(t, list, rtB)
	if out := w.MustNsnet(t, "sandbox", "ls", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("sandboxes left: %s", out)
	}
	if l, ok := testenv.FindLink(testenv.Links(t, nsA), "eth0"); ok {
		t.Errorf("a's eth0 is still there: %+v", l)
	}
	r.removeContainer(t, "a")
	w.MustNsnet(t, "network", "rm", "cnet")
	w.AssertClean(t)
}

// TestCNIParallel starts and removes 32 containers at once, as runtimes
// call plugins, on a network with its resolver (the first ADDs race to start
// the resident): no ADD or DEL fails, no address is given twice, each
// container has its result's address in the kernel, and its name resolves.
func TestCNIParallel(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	r := newRuntime(t, w)
	list := r.conflist(t, "1.0.0", "podnet", map[string]any{"network": "pnet", "subnet": "10.72.0.0/24", "resolver": true, "resolvConf": w.ResolvConf},
		tuningAndBandwidth...)
	const n = 32
	rts := make([]*libcni.RuntimeConf, n)
	for i := range n {
		id, ns := r.container(t, fmt.Sprintf("p%02d", i))
		rts[i] = r.rt(id, ns, "eth0", nil, nil)
	}
	addrs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := r.add(list, rts[i])
			if errs[i] = err; err == nil {
				_, _, addrs[i], _ = ctrEnd(t, res)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("ADD %d: %v", i, errs[i])
			continue
		}
		if j, dup := seen[addrs[i]]; dup {
			t.Errorf("containers %d and %d both got %s", j, i, addrs[i])
		}
		seen[addrs[i]] = i
		if l := mustLink(t, rts[i].NetNS, "eth0"); !slices.Contains(l.IPs("inet"), addrs[i]) {
			t.Errorf("container %d: eth0 has %v, its result %s", i, l.IPs("inet"), addrs[i])
		}
		name := cni.SandboxName(rts[i].ContainerID)
		expectAnswer(t, name, dig(t, w.Name("p00"), "10.72.0.1", name, "A"), "NOERROR", strings.TrimSuffix(addrs[i], "/24"))
	}
	for i := range n {
		wg.Go(func() { errs[i] = r.del(list, rts[i]) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("DEL %d: %v", i, errs[i])
		}
	}
	if out := w.MustNsnet(t, "sandbox", "ls", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("sandboxes left: %s", out)
	}
	for i := range n {
		r.removeContainer(t, fmt.Sprintf("p%02d", i))
	}
	w.MustNsnet(t, "network", "rm", "pnet")
	w.AssertClean(t)
}

// TestCNITwoNetworks attaches one container to two networks (two conflists,
// eth1 first, as Podman may): one sandbox with both interfaces, the default
// route via the first attached; DEL of one leaves the other. The network
// whose config has resolver gives its gateway as the nameserver, which
// answers the container's aliases until the DEL.
func TestCNITwoNetworks(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	r := newRuntime(t, w)
	front := r.conflist(t, "1.0.0", "front", map[string]any{"subnet": "10.73.0.0/24"})
	back := r.conflist(t, "1.0.0", "back", map[string]any{"subnet": "10.73.1.0/24", "resolver": true, "resolvConf": w.ResolvConf})
	id, ns := r.container(t, "c")
	aliases := map[string]any{"aliases": map[string][]string{"back": {"webalias"}, "front": {"frontalias"}}}
	rtBack, rtFront := r.rt(id, ns, "eth1", nil, aliases), r.rt(id, ns, "eth0", nil, aliases)
	resBack := r.mustAdd(t, back, rtBack)
	resFront := r.mustAdd(t, front, rtFront)
	if len(resBack.Routes) != 1 || len(resFront.Routes) != 0 || !slices.Equal(resBack.DNS.Nameservers, []string{"10.73.1.1"}) || len(resFront.DNS.Nameservers) != 0 {
		t.Errorf("routes %v and %v, nameservers %v and %v: want the route and the resolver on back only",
			resBack.Routes, resFront.Routes, resBack.DNS.Nameservers, resFront.DNS.Nameservers)
	}
	sb := inspectSandbox(t, w, cni.SandboxName(id))
	if len(sb.Networks) != 2 || sb.Networks["back"].Interface != "eth1" || sb.Networks["front"].Interface != "eth0" {
		t.Errorf("sandbox networks %+v", sb.Networks)
	}
	for ifName, addr := range map[string]string{"eth0": "10.73.0.2/24", "eth1": "10.73.1.2/24"} {
		if l := mustLink(t, ns, ifName); !slices.Contains(l.IPs("inet"), addr) {
			t.Errorf("%s: %v, want %s", ifName, l.IPs("inet"), addr)
		}
	}
	if gw := defaultGateway(t, ns); gw != "10.73.1.1" {
		t.Errorf("default route via %q, want back's", gw)
	}
	expectAnswer(t, "the alias on back", dig(t, w.Name("c"), "10.73.1.1", "webalias", "A"), "NOERROR", "10.73.1.2")
	r.mustDel(t, back, rtBack)
	if a := dig(t, w.Name("c"), "10.73.0.1", "webalias", "A"); slices.Contains(a.answers, "10.73.1.2") {
		t.Errorf("the alias after DEL: %v", a)
	}
	if gw := defaultGateway(t, ns); gw != "10.73.0.1" {
		t.Errorf("after DEL of back, the default route via %q, want front's", gw)
	}
	if _, ok := testenv.FindLink(testenv.Links(t, ns), "eth1"); ok {
		t.Error("eth1 is still there")
	}
	r.mustDel(t, front, rtFront)
	r.removeContainer(t, "c")
	w.MustNsnet(t, "network", "rm", "front", "back")
	w.AssertClean(t)
}

// TestCNIGCAndStatus: GC (CNI 1.1, a conflist of nsnet alone: the reference
// plugins speak 1.0.0 at most) takes off the network every container
// attachment that is not valid, and nothing else: not a valid one, not a
// sandbox of nsnet's own on the same network. STATUS says whether an ADD
// can succeed: yes with no state yet; no (code 50) with the network's
// addresses used up, yes again after a DEL; try again later (code 11) while
// another program holds the store, as ADD then does; no (code 50) with a
// state file that cannot be read.
func TestCNIGCAndStatus(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	r := newRuntime(t, w)
	list := r.conflist(t, "1.1.0", "small", map[string]any{"network": "small", "subnet": "10.74.0.0/29"})
	if err := r.status(list); err != nil {
		t.Errorf("STATUS before anything: %v", err)
	}
	var rts []*libcni.RuntimeConf
	for _, name := range []string{"g1", "g2", "g3", "g4"} {
		id, ns := r.container(t, name)
		rts = append(rts, r.rt(id, ns, "eth0", nil, nil))
		r.mustAdd(t, list, rts[len(rts)-1])
	}
	mine := w.Name("mine")
	w.MustNsnet(t, "sandbox", "create", "--network", "small", mine) // the fifth and last address
	if err := r.status(list); cniCode(err) != 50 || !strings.Contains(err.Error(), "no address left") {
		t.Errorf("STATUS with the network full: %v (code %d), want 50", err, cniCode(err))
	}
	id5, ns5 := r.container(t, "g5")
	if _, err := r.add(list, r.rt(id5, ns5, "eth0", nil, nil)); err == nil {
		t.Error("ADD into the full network succeeded")
	}

	valid := []types.GCAttachment{{ContainerID: rts[0].ContainerID, IfName: "eth0"}, {ContainerID: rts[3].ContainerID, IfName: "eth0"}}
	if err := r.gc(list, valid...); err != nil {
		t.Fatalf("GC: %v", err)
	}
	for i, rt := range rts {
		_, kept := testenv.FindLink(testenv.Links(t, rt.NetNS), "eth0")
		if wantKept := i == 0 || i == 3; kept != wantKept {
			t.Errorf("container %d after GC: eth0 there %v, want %v", i, kept, wantKept)
		}
	}
	if _, ok := testenv.FindLink(testenv.Links(t, mine), "eth0"); !ok {
		t.Errorf("GC took nsnet's own sandbox %s off the network", mine)
	}
	if err := r.status(list); err != nil {
		t.Errorf("STATUS after GC freed two addresses: %v", err)
	}

	// A store another program holds: code 11, for STATUS and ADD alike.
	st, err := openStore(w.Root, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	busy := r.conflist(t, "1.1.0", "small", map[string]any{"network": "small", "subnet": "10.74.0.0/29", "lockTimeout": "0s"})
	if err := r.status(busy); cniCode(err) != types.ErrTryAgainLater {
		t.Errorf("STATUS while the store is held: %v (code %d), want 11", err, cniCode(err))
	}
	if _, err := r.add(busy, r.rt(id5, ns5, "eth0", nil, nil)); cniCode(err) != types.ErrTryAgainLater {
		t.Errorf("ADD while the store is held: %v (code %d), want 11", err, cniCode(err))
	}
	st.Close()
	r.mustAdd(t, busy, r.rt(id5, ns5, "eth0", nil, nil))

	// A state file that cannot be read: code 50.
	broken := filepath.Join(t.TempDir(), "broken")
	if err := os.Mkdir(broken, 0o700); err != nil {
		t.Fatal(err)
	}
	state := engine.StateDir("", broken)
	t.Cleanup(func() { os.RemoveAll(state) })
	for path, data := range map[string]string{
		filepath.Join(state, store.FileName):  "not a state file, but long enough to be read as one",
		filepath.Join(broken, store.KeptFile): `{"networks": []}`, // the root's, so not one made anew
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.status(r.conflist(t, "1.1.0", "small", map[string]any{"network": "small", "root": broken})); cniCode(err) != 50 || !strings.Contains(err.Error(), "cannot read its state") {
		t.Errorf("STATUS with a state file that cannot be read: %v (code %d), want 50", err, cniCode(err))
	}

	if err := r.gc(list); err != nil { // none valid: all of the runtime's go
		t.Fatalf("GC: %v", err)
	}
	if out := w.MustNsnet(t, "sandbox", "ls", "--format", "json"); strings.Count(out, `"name"`) != 1 {
		t.Errorf("after GC with no valid attachment, want only %s left: %s", mine, out)
	}
	w.MustNsnet(t, "sandbox", "rm", mine)
	for _, name := range []string{"g1", "g2", "g3", "g4", "g5"} {
		r.removeContainer(t, name)
	}
	w.MustNsnet(t, "network", "rm", "small")
	w.AssertClean(t)
}

// TestCNISimilarContainerIDs attaches five containers whose IDs share all
// but their last character: each gets a sandbox of its own (the first the
// short name, the next the longer ones of cni.SandboxNames, the last ones
// names with a hash of the whole ID), and DEL takes off only its own.
func TestCNISimilarContainerIDs(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	r := newRuntime(t, w)
	list := r.conflist(t, "1.0.0", "sim", map[string]any{"subnet": "10.75.0.0/24"})
	var rts []*libcni.RuntimeConf
	similar := []string{"s1", "s2", "s3", "s4", "s5"}
	for i, name := range similar {
		_, ns := r.container(t, name)
		id := r.containerID("s")[:63] + fmt.Sprint(i) // the same for all but the last character
		r.mu.Lock()
		r.netnss[id] = ns
		r.mu.Unlock()
		rts = append(rts, r.rt(id, ns, "eth0", nil, nil))
		if _, _, addr, _ := ctrEnd(t, r.mustAdd(t, list, rts[i])); addr != fmt.Sprintf("10.75.0.%d/24", i+2) {
			t.Errorf("container %d: address %s", i, addr)
		}
	}
	names := map[string]bool{}
	for _, rt := range rts {
		for _, n := range cni.SandboxNames(rt.ContainerID) {
			if s := w.Nsnet("sandbox", "inspect", n); s.Code == 0 && strings.Contains(s.Stdout, rt.ContainerID) {
				names[n] = true
			}
		}
	}
	if len(names) != len(similar) {
		t.Errorf("sandboxes of the %d containers: %v", len(similar), names)
	}
	r.mustDel(t, list, rts[1])
	for i, rt := range rts {
		_, ok := testenv.FindLink(testenv.Links(t, rt.NetNS), "eth0")
		if ok != (i != 1) {
			t.Errorf("after DEL of container 1, container %d has eth0: %v", i, ok)
		}
	}
	for i, rt := range rts {
		if i != 1 {
			r.mustDel(t, list, rt)
		}
	}
	for _, name := range similar {
		r.removeContainer(t, name)
	}
	w.MustNsnet(t, "network", "rm", "sim")
	w.AssertClean(t)
}
