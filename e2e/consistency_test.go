package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// nsnetEnv runs nsnet in the world's host namespace with extra environment.
func nsnetEnv(t *testing.T, w *testenv.World, env []string, args ...string) testenv.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := nsnetCmd(ctx, t, w, args...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return testenv.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// nsnetCmd is the command that runs nsnet in the world's host namespace,
// with the world's resolv.conf as the host's.
func nsnetCmd(ctx context.Context, t *testing.T, w *testenv.World, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + w.HostPath(), "--", testenv.Binary(t), "--root", w.Root}, args...)...)
	cmd.Env = append(os.Environ(), "NSNET_RESOLV_CONF="+w.ResolvConf)
	return cmd
}

// storeState reads networks, sandboxes and leases straight from the state
// file (read-only).
type storeState struct {
	networks  []store.Network
	sandboxes []store.Sandbox
	leases    map[string]string // network/ip -> sandbox
}

func readStore(t *testing.T, w *testenv.World) storeState {
	t.Helper()
	st, err := openStore(w.Root, store.Options{ReadOnly: true, LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	s := storeState{leases: map[string]string{}}
	err = st.View(func(tx *store.Tx) error {
		var err error
		if s.networks, err = tx.Networks(); err != nil {
			return err
		}
		if s.sandboxes, err = tx.Sandboxes(); err != nil {
			return err
		}
		for _, n := range s.networks {
			ls, err := tx.Leases(n.Name)
			if err != nil {
				return err
			}
			for _, l := range ls {
				s.leases[n.Name+"/"+l.IP.String()] = l.Sandbox
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read store: %v", err)
	}
	return s
}

// assertConsistent checks, with ip, nft and the state file, that the store
// and the kernel agree: every stored object exists, nothing unstored of nsnet
// exists, leases are exactly the endpoints' addresses, no address is held
// twice, no intent is pending, and gc has nothing to do.
func assertConsistent(t *testing.T, w *testenv.World, when string) {
	t.Helper()
	w.WaitReleased(t)
	s := readStore(t, w)
	wantLinks := map[string]string{} // name -> master ("" for bridges)
	bridgeOf := map[string]string{}
	for _, n := range s.networks {
		wantLinks[n.Bridge] = ""
		bridgeOf[n.Name] = n.Bridge
	}
	wantLeases := map[string]string{}
	wantNS := []string{}
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			wantLinks[ep.HostVeth] = bridgeOf[ep.Network]
			key := ep.Network + "/" + ep.Address.Addr().String()
			if other, dup := wantLeases[key]; dup {
				t.Errorf("%s: address %s held by %s and %s", when, key, other, sb.Name)
			}
			wantLeases[key] = sb.Name
		}
		if sb.Mounted {
			wantNS = append(wantNS, filepath.Base(sb.NetNS))
		}
	}
	gotLinks := map[string]string{}
	for _, l := range testenv.Links(t, w.Host) {
		if l.IfName != "lo" && l.IfName != "eth0" {
			gotLinks[l.IfName] = l.Master
		}
	}
	if !equalMaps(wantLinks, gotLinks) {
		t.Errorf("%s: host links (name->master) %v, store says %v", when, gotLinks, wantLinks)
	}
	if !equalMaps(wantLeases, s.leases) {
		t.Errorf("%s: leases %v, endpoints %v", when, s.leases, wantLeases)
	}
	var gotNS []string
	for _, n := range testenv.NamespaceNames(t) {
		if strings.HasPrefix(n, w.Prefix+"-") && n != w.Host && n != w.Inet {
			gotNS = append(gotNS, n)
		}
	}
	sort.Strings(gotNS)
	sort.Strings(wantNS)
	if strings.Join(gotNS, " ") != strings.Join(wantNS, " ") {
		t.Errorf("%s: namespaces %v, store says %v", when, gotNS, wantNS)
	}
	tables := testenv.NftTables(t, w.Host)
	if hasTable := len(tables) > 0; hasTable != (len(s.networks) > 0) {
		t.Errorf("%s: nft tables %v with %d networks", when, tables, len(s.networks))
	}
	if entries, _ := os.ReadDir(filepath.Join(w.Root, "intents")); len(entries) > 0 {
		t.Errorf("%s: %d intents pending after gc", when, len(entries))
	}
	if r := w.MustNsnet(t, "gc", "--dry-run"); !strings.Contains(r, "nothing to do") {
		t.Errorf("%s: gc --dry-run still finds work:\n%s", when, r)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
