package engine

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsnet/nsnet/internal/journal"
	"github.com/nsnet/nsnet/internal/netns"
	"github.com/nsnet/nsnet/internal/owner"
	"github.com/nsnet/nsnet/internal/resolver"
	"github.com/nsnet/nsnet/internal/sysctl"
)

// TestRecoveryAtEveryStep kills each scenario at each of its kernel steps
// (the fake panics there, and nothing in the engine catches it, so its
// intents stay on disk as after a SIGKILL), then lets a new engine on the
// same root and kernel collect. The result is the state before the
// operation if its change was not committed, and the state of a run without
// a crash if it was; a removal that was not committed is finished instead.
// Then gc finds nothing more to do.
func TestRecoveryAtEveryStep(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			want, steps := runScenario(t, sc, 0)
			for crashAt := 1; crashAt <= steps; crashAt++ {
				if !runCrash(t, sc, crashPoint{step: crashAt}, want) {
					t.Errorf("crash at step %d: the operation did not reach it", crashAt)
				}
			}
		})
	}
}

// TestRecoveryAtEveryFaultPoint does the same at each of the engine's fault
// points (Options.FaultPoint) that a scenario reaches, where the process
// dies between two steps of its own: right after writing an intent, before
// the commit, and after the commit but before the intents are removed (they
// must then be found to have completed). Every fault point is reached by
// some scenario, so a new one cannot go untested.
func TestRecoveryAtEveryFaultPoint(t *testing.T) {
	reached := map[string]bool{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			want, _ := runScenario(t, sc, 0)
			for _, point := range FaultPoints {
				if runCrash(t, sc, crashPoint{point: point}, want) {
					reached[point] = true
				}
			}
		})
	}
	for _, point := range FaultPoints {
		if !reached[point] {
			t.Errorf("fault point %s is reached by no scenario: add one that reaches it", point)
		}
	}
}

// crashPoint says where an operation dies: at a kernel step, or at a fault point.
type crashPoint struct {
	step  int
	point string
}

func (c crashPoint) String() string {
	if c.point != "" {
		return "crash at fault point " + c.point
	}
	return fmt.Sprintf("crash at step %d", c.step)
}

// runCrash runs sc until it dies at c, recovers with a new engine and checks
// the outcome against the state before and want, the state of a run without
// a crash. It returns false if the operation never reached c.
func runCrash(t *testing.T, sc scenario, c crashPoint, want []string) bool {
	t.Helper()
	k := newFakeKernel(t)
	e := fakeEngine(t, k, true)
	if sc.setup != nil {
		sc.setup(t, k, e)
	}
	before := state(t, k, e)
	k.steps, k.log, k.crashAt = 0, nil, c.step
	e.fault, e.die = c.point, func() { panic(errCrash) }
	if !crashes(func() { sc.op(e) }) {
		return false
	}
	k.crashAt = 0
	where := c.String()
	if c.step > 0 {
		where += " (" + k.log[c.step-1] + ")"
	}
	checkReleased(t, e, where)

	r := reopen(t, k, e.opts) // a new process, on the same root and kernel
	r.newID = e.newID         // whose IDs do not repeat the dead one's
	left := state(t, k, r)
	committed := slices.Equal(storeLines(left), storeLines(want))
	if !committed && !slices.Equal(storeLines(left), storeLines(before)) {
		t.Fatalf("%s: the records are neither those before nor those after:\n%s", where, diffLines(storeLines(before), storeLines(left)))
	}
	expect, settled := before, "undid"
	switch {
	case committed:
		expect, settled = want, "had completed"
	case sc.removal:
		expect, settled = want, "finished"
	}
	plan, err := r.GC(true)
	if err != nil {
		t.Fatalf("%s: gc dry run: %v", where, err)
	}
	if now := state(t, k, r); !slices.Equal(now, left) {
		t.Errorf("%s: the dry run changed something:\n%s", where, diffLines(left, now))
	}
	actions, err := r.GC(false)
	if err != nil {
		t.Fatalf("%s: gc: %v", where, err)
	}
	if !sameLines(doneLines(plan), actions) {
		t.Errorf("%s: the dry run planned %q, gc did %q", where, plan, actions)
	}
	checkSettled(t, where, left, actions, settled)
	if after := state(t, k, r); !slices.Equal(after, expect) {
		t.Errorf("%s (committed: %v), then gc: ended elsewhere than expected:\n%s\ngc did: %q", where, committed, diffLines(expect, after), actions)
	}
	if plan, err := r.GC(true); err != nil || len(plan) > 0 {
		t.Errorf("%s, then gc: gc again would still do %q (error %v)", where, plan, err)
	}
	return true
}

// crashes runs fn and reports whether it panicked with errCrash.
func crashes(fn func()) (died bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != errCrash {
				panic(r)
			}
			died = true
		}
	}()
	fn()
	return false
}

// checkReleased checks that an operation that died left neither the
// engine's lock taken nor its store open (and so locked: bbolt's lock is per
// open file, and the reopened engine would find it busy).
func checkReleased(t *testing.T, e *Engine, where string) {
	t.Helper()
	if !e.mu.TryLock() {
		t.Fatalf("%s: the engine's lock is still held", where)
	}
	e.mu.Unlock()
	if e.st != nil {
		t.Fatalf("%s: the store is still open", where)
	}
}

// checkSettled checks that gc settled each intent left in the state left as
// the outcome says: "undid", "finished" or "had completed".
func checkSettled(t *testing.T, where string, left, actions []string, outcome string) {
	t.Helper()
	intents := 0
	for _, l := range left {
		if strings.HasPrefix(l, "file intents/") {
			intents++
		}
	}
	settled := 0
	for _, a := range actions {
		if strings.Contains(a, "interrupted ") {
			settled++
			if !strings.Contains(a, outcome) {
				t.Errorf("%s: gc did %q, want it to say %q", where, a, outcome)
			}
		}
	}
	if settled != intents {
		t.Errorf("%s: %d intents were left, gc settled %d: %q", where, intents, settled, actions)
	}
}

// TestRecoverIntents settles hand-written intents of each kind, committed
// (their record exists, with the intent's object ID) or not. A dry run says
// what it would do and changes nothing; gc does it; a dry run after it has
// nothing left to do.
func TestRecoverIntents(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, w *intentWorld)
		plan  []string // the dry run's lines, in any order
		check func(t *testing.T, w *intentWorld)
	}{
		{
			name: "network-create not committed: its bridge (marked, or only with nsnet's group) is deleted",
			setup: func(t *testing.T, w *intentWorld) {
				w.link("br-new", owner.Of(w.e.opts.Root).NetworkMark("n9"), owner.Group)
				w.link("br-unmarked", "", owner.Group) // made by a command that died before marking it
				w.intent(t, journal.Intent{Op: journal.OpNetworkCreate, Name: "n9", ObjectID: "new", Links: []string{"br-new", "br-unmarked"}})
			},
			plan:  []string{"would undo interrupted network-create n9"},
			check: func(t *testing.T, w *intentWorld) { w.noLinks(t, "br-new", "br-unmarked") },
		},
		{
			name: "network-create not committed that turned IPv4 forwarding on, which a stored network needs: it stays on",
			setup: func(t *testing.T, w *intentWorld) {
				w.intent(t, journal.Intent{Op: journal.OpNetworkCreate, Name: "n9", ObjectID: "new", Forwarding: true})
			},
			plan: []string{"would undo interrupted network-create n9"},
			check: func(t *testing.T, w *intentWorld) {
				if v := w.k.sysctl[" "+sysctl.IPv4Forward]; v != "1" {
					t.Errorf("ip_forward is %q, want 1: network n1 needs it", v)
				}
			},
		},
		{
			name: "network-create committed",
			setup: func(t *testing.T, w *intentWorld) {
				w.intent(t, journal.Intent{Op: journal.OpNetworkCreate, Name: "n1", ObjectID: w.net.ID, Links: []string{w.net.Bridge}})
			},
			plan: []string{"interrupted network-create n1 had completed"},
		},
		{
			name: "network-create of a name stored under another ID is not committed; the stored network stays",
			setup: func(t *testing.T, w *intentWorld) {
				w.link("br-other", owner.Of(w.e.opts.Root).NetworkMark("n1"), owner.Group)
				w.intent(t, journal.Intent{Op: journal.OpNetworkCreate, Name: "n1", ObjectID: "other", Links: []string{"br-other"}})
			},
			plan: []string{"would undo interrupted network-create n1"},
			check: func(t *testing.T, w *intentWorld) {
				w.noLinks(t, "br-other")
				w.hasLinks(t, w.net.Bridge)
			},
		},
		{
			name: "network-rm not committed is finished",
			setup: func(t *testing.T, w *intentWorld) {
				n2, err := w.e.CreateNetwork(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24"})
				mustDo(t, err)
				w.intent(t, journal.Intent{Op: journal.OpNetworkRemove, Name: "n2", ObjectID: n2.ID, Links: []string{n2.Bridge}})
			},
			plan: []string{"would finish interrupted network-rm n2"},
			check: func(t *testing.T, w *intentWorld) {
				if nets, _ := w.e.Networks(); len(nets) != 1 || nets[0].Name != "n1" || len(w.k.fw.nets) != 1 {
					t.Errorf("network n2 is not gone: records %v, table %v", nets, w.k.fw)
				}
			},
		},
		{
			name: "network-rm committed",
			setup: func(t *testing.T, w *intentWorld) {
				w.intent(t, journal.Intent{Op: journal.OpNetworkRemove, Name: "n7", ObjectID: "gone", Links: []string{"br-gone"}})
			},
			plan: []string{"interrupted network-rm n7 had completed"},
		},
		{
			name: "sandbox-create not committed: its veth, held ports, names and namespace go",
			setup: func(t *testing.T, w *intentWorld) {
				w.link("vethnew", owner.Of(w.e.opts.Root).SandboxMark("s9", "n1"), owner.Group)
				w.k.res.ports["s9"] = map[string]string{"tcp/0.0.0.0/09999": "10.1.0.9:99"}
				z := w.k.res.zones["n1"]
				z.Records = append(slices.Clone(z.Records), resolver.Record{Addr: netip.MustParseAddr("10.1.0.9"), Names: []string{"s9"}})
				w.k.res.zones["n1"] = z
				w.mount(t, "s9", true, true)
				w.intent(t, journal.Intent{Op: journal.OpSandboxCreate, Name: "s9", ObjectID: "new",
					Links: []string{"vethnew"}, Mounts: []string{w.k.kernel().ns.Path("s9")}})
			},
			plan: []string{"would undo interrupted sandbox-create s9"},
			check: func(t *testing.T, w *intentWorld) {
				w.noLinks(t, "vethnew")
				w.noMount(t, "s9")
				if w.k.res.ports["s9"] != nil || len(w.k.res.zones["n1"].Records) != 1 {
					t.Errorf("the resident still holds %v for s9, or serves its name: %+v", w.k.res.ports["s9"], w.k.res.zones["n1"])
				}
			},
		},
		{
			name: "sandbox-create not committed, died before binding its namespace: the empty mount point goes",
			setup: func(t *testing.T, w *intentWorld) {
				w.mount(t, "s9", true, false)
				w.intent(t, journal.Intent{Op: journal.OpSandboxCreate, Name: "s9", ObjectID: "new", Mounts: []string{w.k.kernel().ns.Path("s9")}})
			},
			plan:  []string{"would undo interrupted sandbox-create s9"},
			check: func(t *testing.T, w *intentWorld) { w.noMount(t, "s9") },
		},
		{
			name: "sandbox-create committed",
			setup: func(t *testing.T, w *intentWorld) {
				w.intent(t, journal.Intent{Op: journal.OpSandboxCreate, Name: "s1", ObjectID: w.sb.ID, Links: []string{w.sb.Endpoints[0].HostVeth}})
			},
			plan: []string{"interrupted sandbox-create s1 had completed"},
		},
		{
			name: "sandbox-rm not committed is finished",
			setup: func(t *testing.T, w *intentWorld) {
				w.intent(t, journal.Intent{Op: journal.OpSandboxRemove, Name: "s1", ObjectID: w.sb.ID})
			},
			plan: []string{"would finish interrupted sandbox-rm s1"},
			check: func(t *testing.T, w *intentWorld) {
				w.noLinks(t, w.sb.Endpoints[0].HostVeth)
				w.noMount(t, "s1")
				if sbs, _ := w.e.Sandboxes(); len(sbs) != 0 {
					t.Errorf("sandbox s1 is still stored: %v", sbs)
				}
			},
		},
		{
			name: "sandbox-rm committed",
			setup: func(t *testing.T, w *intentWorld) {
				w.intent(t, journal.Intent{Op: journal.OpSandboxRemove, Name: "s7", ObjectID: "gone"})
			},
			plan: []string{"interrupted sandbox-rm s7 had completed"},
		},
		{
			name: "links and mounts an intent lists that are not this root's are left alone, with a warning",
			setup: func(t *testing.T, w *intentWorld) {
				w.link("vethother", "nsnet:0badc0de sandbox s9 network n1", owner.Group) // another root's
				w.link("vethuser", "", 0)                                                // a user's
				w.link("vethmarked", "their veth", owner.Group)                          // a user's, with nsnet's group
				w.mount(t, "s9", false, true)                                            // no marker: not nsnet's
				w.intent(t, journal.Intent{Op: journal.OpSandboxCreate, Name: "s9", ObjectID: "new",
					Links: []string{"vethother", "vethuser", "vethmarked", "vethgone"}, Mounts: []string{w.k.kernel().ns.Path("s9")}})
			},
			plan: []string{"would undo interrupted sandbox-create s9"},
			check: func(t *testing.T, w *intentWorld) {
				w.hasLinks(t, "vethother", "vethuser", "vethmarked")
				w.hasMount(t, "s9")
				w.warned(t, "left link vethother alone", "left link vethuser alone", "left link vethmarked alone")
			},
		},
		{
			name: "a marked mount that now names another namespace is left alone, with a warning",
			setup: func(t *testing.T, w *intentWorld) {
				w.mount(t, "s9", true, true)
				w.k.mounts[w.k.kernel().ns.Path("s9")] = w.k.newID() // removed and made again by someone else
				w.intent(t, journal.Intent{Op: journal.OpSandboxCreate, Name: "s9", ObjectID: "new", Mounts: []string{w.k.kernel().ns.Path("s9")}})
			},
			plan: []string{"would undo interrupted sandbox-create s9"},
			check: func(t *testing.T, w *intentWorld) {
				w.hasMount(t, "s9")
				w.warned(t, "it is another namespace than the one nsnet made")
			},
		},
		{
			name: "unreadable intent files are discarded",
			setup: func(t *testing.T, w *intentWorld) {
				w.file(t, "garbage.json", "{not json")
				w.file(t, ".0000.json.tmp", `{"op":`) // a write killed before its rename
				w.file(t, "notes.txt", "not an intent")
			},
			plan: []string{"discard unreadable intent .0000.json.tmp", "discard unreadable intent garbage.json"},
			check: func(t *testing.T, w *intentWorld) {
				entries, _ := os.ReadDir(filepath.Join(w.e.opts.Root, "intents"))
				if len(entries) != 1 || entries[0].Name() != "notes.txt" {
					t.Errorf("the intent directory holds %v, want only notes.txt", entries)
				}
			},
		},
		{
			name: "several intents",
			setup: func(t *testing.T, w *intentWorld) {
				w.intent(t, journal.Intent{Op: journal.OpSandboxRemove, Name: "s1", ObjectID: w.sb.ID})
				w.intent(t, journal.Intent{Op: journal.OpNetworkRemove, Name: "n1", ObjectID: w.net.ID, Links: []string{w.net.Bridge}})
			},
			plan: []string{"would finish interrupted sandbox-rm s1", "would finish interrupted network-rm n1"},
			check: func(t *testing.T, w *intentWorld) {
				w.noLinks(t, w.net.Bridge, w.sb.Endpoints[0].HostVeth)
				if w.k.fw != nil || w.k.res != nil {
					t.Errorf("left: table %v, resident %+v", w.k.fw, w.k.res)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newIntentWorld(t)
			c.setup(t, w)
			before, steps := state(t, w.k, w.e), w.k.steps
			plan, err := w.e.GC(true)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if !sameLines(plan, c.plan) {
				t.Errorf("dry run: %q, want %q", plan, c.plan)
			}
			if after := state(t, w.k, w.e); !slices.Equal(before, after) || w.k.steps != steps {
				t.Errorf("the dry run changed something:\n%s", diffLines(before, after))
			}
			done, err := w.e.GC(false)
			if err != nil {
				t.Fatalf("gc: %v (did %q)", err, done)
			}
			if want := doneLines(c.plan); !sameLines(done, want) {
				t.Errorf("gc did %q, want %q", done, want)
			}
			if c.check != nil {
				c.check(t, w)
			}
			if entries, _ := os.ReadDir(filepath.Join(w.e.opts.Root, "intents")); len(entries) > 0 && entries[0].Name() != "notes.txt" {
				t.Errorf("intents are left: %v", entries)
			}
			if plan, err := w.e.GC(true); err != nil || len(plan) > 0 {
				t.Errorf("after gc, a dry run would still do %q (error %v)", plan, err)
			}
		})
	}
}

// intentWorld is a root with network n1 and sandbox s1 (publishing a port),
// and the warnings its engine gave.
type intentWorld struct {
	k     *fakeKernel
	e     *Engine
	net   *Network
	sb    *Sandbox
	warns *[]string
}

func newIntentWorld(t *testing.T) *intentWorld {
	k := newFakeKernel(t)
	e := fakeEngine(t, k, true)
	warns := new([]string)
	e.opts.Warn = func(msg string) { *warns = append(*warns, msg) }
	withSandbox("8080:80")(t, k, e)
	net, err := e.InspectNetwork("n1")
	mustDo(t, err)
	sb, err := e.InspectSandbox("s1")
	mustDo(t, err)
	return &intentWorld{k: k, e: e, net: &net.Network, sb: sb, warns: warns}
}

// intent writes it as a command that died would have left it.
func (w *intentWorld) intent(t *testing.T, it journal.Intent) {
	t.Helper()
	it.ID = w.e.newID()
	mustDo(t, w.e.journal.Write(&it))
}

func (w *intentWorld) file(t *testing.T, name, content string) {
	mustDo(t, os.WriteFile(filepath.Join(w.e.opts.Root, "intents", name), []byte(content), 0o600))
}

// link adds a host link with the given alias and device group.
func (w *intentWorld) link(name, alias string, group uint32) {
	w.k.links[name] = &fakeLink{kind: "veth", alias: alias, group: group, up: true, mtu: 1500}
}

// mount makes a namespace name as a command of this root does (marked) or
// as someone else does (not); bound false leaves only the empty mount point
// that a command killed before binding leaves.
func (w *intentWorld) mount(t *testing.T, name string, marked, bound bool) {
	path := w.k.kernel().ns.Path(name)
	id := w.k.newID()
	if marked {
		mustDo(t, w.e.markers.Put(journal.Marker{Name: name, Root: w.e.opts.Root, Owns: true, NetNS: id}))
	}
	if bound {
		mustDo(t, fakeNamespaces{w.k}.mount(path, id))
	} else {
		mustDo(t, os.WriteFile(path, nil, 0o600))
	}
}

func (w *intentWorld) noLinks(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if w.k.links[n] != nil {
			t.Errorf("link %s is still there", n)
		}
	}
}

func (w *intentWorld) hasLinks(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if w.k.links[n] == nil {
			t.Errorf("link %s is gone", n)
		}
	}
}

func (w *intentWorld) noMount(t *testing.T, name string) {
	t.Helper()
	path := w.k.kernel().ns.Path(name)
	if _, err := os.Lstat(path); err == nil || w.k.mounts[path] != (netns.ID{}) {
		t.Errorf("namespace %s is still there", name)
	}
	if _, err := os.Lstat(filepath.Join(w.e.opts.RunDir, "netns", name)); err == nil {
		t.Errorf("the marker of namespace %s is still there", name)
	}
}

func (w *intentWorld) hasMount(t *testing.T, name string) {
	t.Helper()
	if _, ok := w.k.mounts[w.k.kernel().ns.Path(name)]; !ok {
		t.Errorf("namespace %s is gone", name)
	}
}

func (w *intentWorld) warned(t *testing.T, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !slices.ContainsFunc(*w.warns, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no warning says %q; warnings: %q", want, *w.warns)
		}
	}
}

// TestRecoveryBeforeNextCommand checks that any mutating command settles
// what a dead one left before doing its own work, as gc does.
func TestRecoveryBeforeNextCommand(t *testing.T) {
	w := newIntentWorld(t)
	w.link("br-new", owner.Of(w.e.opts.Root).NetworkMark("n9"), owner.Group)
	w.intent(t, journal.Intent{Op: journal.OpNetworkCreate, Name: "n9", ObjectID: "new", Links: []string{"br-new"}})
	w.file(t, "garbage.json", "{")
	if _, err := w.e.CreateNetwork(NetworkSpec{Name: "n2", Subnet: "10.2.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	w.noLinks(t, "br-new")
	if entries, _ := os.ReadDir(filepath.Join(w.e.opts.Root, "intents")); len(entries) > 0 {
		t.Errorf("intents are left: %v", entries)
	}
}

// TestIntentOnDisk checks the intent a command leaves when it dies right
// after writing it: what recovery relies on.
func TestIntentOnDisk(t *testing.T) {
	k := newFakeKernel(t)
	e := fakeEngine(t, k, true)
	withNetwork(t, k, e)
	e.fault, e.die = "sandbox-create:after-intent", func() { panic(errCrash) }
	if !crashes(func() { e.CreateSandbox(SandboxSpec{Name: "s2", Networks: []string{"n1"}}) }) {
		t.Fatal("the command did not reach the fault point")
	}
	entries, err := os.ReadDir(filepath.Join(e.opts.Root, "intents"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("intents: %v, %v", entries, err)
	}
	raw, err := os.ReadFile(filepath.Join(e.opts.Root, "intents", entries[0].Name()))
	mustDo(t, err)
	var it journal.Intent
	mustDo(t, json.Unmarshal(raw, &it))
	if it.Op != journal.OpSandboxCreate || it.Name != "s2" || len(it.Links) != 1 || !slices.Equal(it.Mounts, []string{k.kernel().ns.Path("s2")}) || it.PID != os.Getpid() {
		t.Errorf("intent %+v", it)
	}
}

// sameLines reports whether a and b hold the same lines, in any order.
func sameLines(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// doneLines are the lines of a dry run's plan as gc says them once done.
func doneLines(plan []string) []string {
	var out []string
	for _, l := range plan {
		l = strings.TrimPrefix(l, "would ")
		for _, r := range [][2]string{{"undo ", "undid "}, {"finish ", "finished "}} {
			if strings.HasPrefix(l, r[0]) {
				l = r[1] + strings.TrimPrefix(l, r[0])
			}
		}
		out = append(out, l)
	}
	return out
}
