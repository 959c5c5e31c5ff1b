package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/internal/store"
)

// residentEngine is an engine running a resident on a fake kernel, with a
// resolv.conf of its own, and the warnings it gave.
func residentEngine(t *testing.T, resolvConf string) (*fakeKernel, *Engine, *apiWarnings) {
	t.Helper()
	return apiEngine(t, func(o *Options) {
		o.ResolvConf = filepath.Join(t.TempDir(), "resolv.conf")
		mustDo(t, os.WriteFile(o.ResolvConf, []byte(resolvConf), 0o600))
	})
}

// zoneLines are the zones the fake resident serves, as zoneString shows them.
func (k *fakeKernel) zoneLines() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.res == nil {
		return nil
	}
	var out []string
	for n, z := range k.res.zones {
		out = append(out, n+": "+zoneString(z))
	}
	slices.Sort(out)
	return out
}

func checkZones(t *testing.T, k *fakeKernel, want ...string) {
	t.Helper()
	if got := k.zoneLines(); !slices.Equal(got, want) {
		t.Errorf("zones:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestZones checks the zones the resident is given: one per user network
// with sandboxes (not the default network, not an empty one), on its
// gateway, internal as the network; its upstream servers are the network's
// --dns or the host's resolv.conf nameservers (without zone IDs and without
// the resident's own addresses); a record per sandbox with its address,
// name, short ID and aliases on that network (names DNS cannot carry left
// out) and its own --dns.
func TestZones(t *testing.T) {
	k, e, _ := residentEngine(t, "# the host's\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nnameserver 10.1.0.1\n"+
		"options ndots:2\nnameserver 2001:db8::53\nsearch example.test\n")
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiNetSpec(NetworkSpec{Name: "in", Subnet: "10.3.0.0/24", Internal: true}),
		apiNetSpec(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24", DNS: []string{"198.51.100.53"}}),
		apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Aliases: []string{"web", "shared"}}),
		apiSb(SandboxSpec{Name: "s2", Networks: []string{"n1", "in"}, Aliases: []string{"shared"}, DNS: []string{"192.0.2.99", "10.3.0.1"}}),
		apiSb(SandboxSpec{Name: "x..y", Networks: []string{"n1"}}),
		apiSb(SandboxSpec{Name: "s4"}))
	id := func(name string) string { return mustSandbox(t, e, name).ID[:12] }
	host := "up=[192.0.2.53:53 [2001:db8::53]:53]"
	checkZones(t, k,
		"in: 10.3.0.1 internal=true "+host+" 10.3.0.2=[s2 "+id("s2")+" shared]/up=[192.0.2.99:53]",
		"n1: 10.1.0.1 internal=false "+host+" 10.1.0.2=[s1 "+id("s1")+" shared web] 10.1.0.3=[s2 "+id("s2")+" shared]/up=[192.0.2.99:53] 10.1.0.4=["+id("x..y")+"]",
	)
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s5", Networks: []string{"n2"}}))
	checkZones(t, k,
		"in: 10.3.0.1 internal=true "+host+" 10.3.0.2=[s2 "+id("s2")+" shared]/up=[192.0.2.99:53]",
		"n1: 10.1.0.1 internal=false "+host+" 10.1.0.2=[s1 "+id("s1")+" shared web] 10.1.0.3=[s2 "+id("s2")+" shared]/up=[192.0.2.99:53] 10.1.0.4=["+id("x..y")+"]",
		"n2: 10.2.0.1 internal=false up=[198.51.100.53:53] 10.2.0.2=[s5 "+id("s5")+"]",
	)
	for _, name := range []string{"s2", "x..y", "s5"} {
		_, err := e.RemoveSandbox(name, false)
		mustDo(t, err)
	}
	checkZones(t, k, "n1: 10.1.0.1 internal=false "+host+" 10.1.0.2=[s1 "+id("s1")+" shared web]")
	_, err := e.RemoveSandbox("s1", false)
	mustDo(t, err)
	if k.res != nil {
		t.Errorf("the resident still runs with nothing to hold or serve: %+v", k.res)
	}
}

// TestNoHostResolvConf: without a readable resolv.conf, a network without
// --dns has no upstream (its resolver answers SERVFAIL for other names).
func TestNoHostResolvConf(t *testing.T) {
	k, e, _ := apiEngine(t, func(o *Options) { o.ResolvConf = filepath.Join(t.TempDir(), "missing") })
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}}))
	checkZones(t, k, "n1: 10.1.0.1 internal=false up=[] 10.1.0.2=[s1 "+mustSandbox(t, e, "s1").ID[:12]+"]")
}

// connectWorld has networks n1 and n2 (both not internal), s1 on both,
// publishing 8080:80 and 5353:53/udp on its n1 address, and s2 on n2.
func connectWorld(t *testing.T) (*fakeKernel, *Engine) {
	t.Helper()
	k, e, _ := residentEngine(t, "nameserver 192.0.2.53\n")
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiNet("n2", "10.2.0.0/24"),
		apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1", "n2"}, Publish: []string{"8080:80", "5353:53/udp"}}),
		apiSb(SandboxSpec{Name: "s2", Networks: []string{"n2"}}))
	return k, e
}

// disconnectByHand takes s1 off n1 in the store, as network disconnect does
// (its default route and published ports move to n2), and tells the
// resident with syncResident; then fails with fail, if not nil.
func disconnectByHand(e *Engine, fail error) error {
	return e.mutate(func(tx *store.Tx, u *undo) error {
		sb, err := tx.Sandbox("s1")
		if err != nil {
			return err
		}
		ep := sb.Endpoints[0]
		sb.Endpoints = sb.Endpoints[1:]
		sb.Endpoints[0].Gateway = netip.MustParseAddr("10.2.0.1")
		if err := errors.Join(tx.DeleteLease("n1", ep.Address.Addr()), tx.DeleteMAC("n1", ep.MAC), tx.PutSandbox(sb)); err != nil {
			return err
		}
		if err := e.syncResident(tx, u, sb, "n1"); err != nil {
			return err
		}
		return fail
	})
}

// TestSyncResident checks the call that network connect and disconnect
// make: the names of the networks the sandbox is on and left are served as
// the store has them, its held ports go to its new publishing address; and
// if the operation fails, all of that is as before.
func TestSyncResident(t *testing.T) {
	t.Run("network disconnect", func(t *testing.T) {
		k, e := connectWorld(t)
		ref, refEngine := connectWorld(t)
		mustDo(t, disconnectByHand(refEngine, nil))
		if _, err := e.Disconnect("n1", "s1", false); err != nil {
			t.Fatal(err)
		}
		if got, want := k.zoneLines(), ref.zoneLines(); !slices.Equal(got, want) {
			t.Errorf("after network disconnect the resident serves %q, want %q", got, want)
		}
		if got, want := k.held("s1"), ref.held("s1"); !slices.Equal(got, want) {
			t.Errorf("after network disconnect the resident holds %q, want %q", got, want)
		}
	})
	t.Run("disconnected", func(t *testing.T) {
		k, e := connectWorld(t)
		mustDo(t, disconnectByHand(e, nil))
		id := mustSandbox(t, e, "s1").ID[:12]
		checkZones(t, k, "n2: 10.2.0.1 internal=false up=[192.0.2.53:53] 10.2.0.2=[s1 "+id+"] 10.2.0.3=[s2 "+mustSandbox(t, e, "s2").ID[:12]+"]")
		if got := k.held("s1"); !slices.Equal(got, []string{"tcp/0.0.0.0/08080 -> 10.2.0.2:80", "udp/0.0.0.0/05353 -> 10.2.0.2:53"}) {
			t.Errorf("held after the disconnect: %v", got)
		}
	})
	for _, c := range []struct {
		name   string
		failOn string
		fail   error
	}{
		{"the operation fails after it", "", errInjected},
		{"the names cannot be served", "serve ", nil},
		{"the ports cannot be pointed elsewhere", "retarget ", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, e := connectWorld(t)
			before := state(t, k, e)
			k.failOn = c.failOn
			if err := disconnectByHand(e, c.fail); !errors.Is(err, errInjected) {
				t.Fatalf("disconnect: %v, want the injected failure", err)
			}
			if after := state(t, k, e); !slices.Equal(before, after) {
				t.Errorf("not undone:\n%s", diffLines(before, after))
			}
		})
	}
	t.Run("the resident died", func(t *testing.T) {
		k, e := connectWorld(t)
		ref, refEngine := connectWorld(t)
		mustDo(t, disconnectByHand(refEngine, nil))
		k.res = nil
		mustDo(t, disconnectByHand(e, nil))
		if got, want := k.zoneLines(), ref.zoneLines(); !slices.Equal(got, want) {
			t.Errorf("a new resident serves %q, want %q", got, want)
		}
		if got := k.held("s1"); !slices.Equal(got, []string{"tcp/0.0.0.0/08080 -> 10.2.0.2:80", "udp/0.0.0.0/05353 -> 10.2.0.2:53"}) {
			t.Errorf("a new resident holds %v", got)
		}
	})
}

// TestStartWithPortsTaken: when the resident must be started again and a
// host process took a port of another sandbox meanwhile, the command goes
// on (that sandbox's ports stay unheld, with a warning), while gc reports
// it; its own sandbox's ports and every name are given.
func TestStartWithPortsTaken(t *testing.T) {
	k, e, warns := residentEngine(t, "nameserver 192.0.2.53\n")
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"),
		apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}, Publish: []string{"8080:80"}}),
		apiSb(SandboxSpec{Name: "s2", Networks: []string{"n1"}, Publish: []string{"9090:90"}}))
	k.res = nil
	k.taken["tcp/0.0.0.0/08080"] = true
	if _, err := e.AddPorts("s2", []string{"9091:91"}); err != nil {
		t.Fatal(err)
	}
	if got := k.held("s2"); len(got) != 2 || k.held("s1") != nil || len(k.zoneLines()) != 1 {
		t.Errorf("held %v and %v, zones %v: want s2's ports, none of s1's, and n1's names", got, k.held("s1"), k.zoneLines())
	}
	if !slices.ContainsFunc(warns.all(), func(w string) bool { return strings.Contains(w, "8080") && strings.Contains(w, "nsnet gc") }) {
		t.Errorf("warnings %q, want one about s1's port", warns.all())
	}
	k.res = nil
	did, err := e.GC(false)
	if err == nil || !strings.Contains(err.Error(), "8080") || !slices.ContainsFunc(did, func(a string) bool { return strings.HasPrefix(a, "start the resident process") }) {
		t.Errorf("gc did %q, error %v: want it started and the taken port reported", did, err)
	}
	delete(k.taken, "tcp/0.0.0.0/08080")
	did, err = e.GC(false)
	if err != nil || !slices.Equal(did, []string{fmt.Sprintf("make the resident process (pid %d) hold the 1 published host ports of sandbox s1", k.res.pid)}) {
		t.Errorf("gc once the port is free did %q (error %v)", did, err)
	}
}

// TestStartFailsForItsOwnSandbox: a command whose own sandbox's ports cannot
// be held by the resident it starts fails and changes nothing.
func TestStartFailsForItsOwnSandbox(t *testing.T) {
	k, e, _ := residentEngine(t, "")
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Publish: []string{"8080:80"}}))
	k.res = nil
	before := state(t, k, e)
	k.failOn = "hold "
	if _, err := e.AddPorts("s1", []string{"8081:81"}); !errors.Is(err, errInjected) {
		t.Fatalf("AddPorts: %v, want the injected failure", err)
	}
	if after := state(t, k, e); !slices.Equal(before, after) {
		t.Errorf("not undone:\n%s", diffLines(before, after))
	}
}

// TestOlderRecordsNamespace: a sandbox stored before namespace IDs were
// (no device) has its ports held in the namespace its path names, unless
// that is another one than its inode says.
func TestOlderRecordsNamespace(t *testing.T) {
	k, e, _ := residentEngine(t, "")
	apiRun(t, k, e, apiSb(SandboxSpec{Name: "s1", Publish: []string{"8080:80"}}))
	w := &driftWorld{k: k, e: e}
	w.update(t, func(tx *store.Tx) error {
		sb, err := tx.Sandbox("s1")
		if err != nil {
			return err
		}
		sb.NetNSDev = 0
		return tx.PutSandbox(sb)
	})
	k.res = nil
	if _, err := e.GC(false); err != nil {
		t.Fatal(err)
	}
	if got := k.held("s1"); len(got) != 1 {
		t.Errorf("held %v", got)
	}
	w.update(t, func(tx *store.Tx) error {
		sb, err := tx.Sandbox("s1")
		if err != nil {
			return err
		}
		sb.NetNSIno++
		return tx.PutSandbox(sb)
	})
	k.res = nil
	if _, err := e.AddPorts("s1", []string{"8081:81"}); err == nil || !strings.Contains(err.Error(), "no longer its namespace") {
		t.Errorf("AddPorts to a sandbox whose old record names another namespace: %v", err)
	}
}

// TestSettleResidentWarns: recovery that cannot serve the names again warns
// and goes on; gc then finds the stale names and serves them.
func TestSettleResidentWarns(t *testing.T) {
	w := newIntentWorld(t)
	z := w.k.res.zones["n1"]
	z.Records = append(slices.Clone(z.Records), resolver.Record{Addr: netip.MustParseAddr("10.1.0.9"), Names: []string{"s9"}})
	w.k.res.zones["n1"] = z
	w.intent(t, journal.Intent{Op: journal.OpSandboxCreate, Name: "s9", ObjectID: "new"})
	w.k.failOn = "serve "
	_, err := w.e.CreateSandbox(SandboxSpec{Name: "s3"})
	mustDo(t, err)
	if !slices.ContainsFunc(*w.warns, func(m string) bool { return strings.Contains(m, "after settling interrupted commands") }) {
		t.Errorf("warnings %q", *w.warns)
	}
	did, err := w.e.GC(false)
	if err != nil || len(did) != 1 || !strings.Contains(did[0], "(stale: n1)") {
		t.Errorf("gc did %q (error %v), want the stale names served", did, err)
	}
}

// TestStopFailureWarns: a resident that cannot be stopped after the last
// sandbox went is a warning; gc stops it.
func TestStopFailureWarns(t *testing.T) {
	k, e, warns := residentEngine(t, "")
	apiRun(t, k, e, apiNet("n1", "10.1.0.0/24"), apiSb(SandboxSpec{Name: "s1", Networks: []string{"n1"}}))
	k.failOn = "stop resident"
	_, err := e.RemoveSandbox("s1", false)
	mustDo(t, err)
	if !slices.ContainsFunc(warns.all(), func(m string) bool { return strings.HasPrefix(m, "stop the resident process") }) {
		t.Errorf("warnings %q", warns.all())
	}
	did, err := e.GC(false)
	if err != nil || len(did) != 1 || !strings.HasPrefix(did[0], "stop the resident process") {
		t.Errorf("gc did %q (error %v)", did, err)
	}
}
