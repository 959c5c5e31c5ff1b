package e2e

// Docker's CLI habits (issue 11): ls -q, --no-trunc, --format, --filter,
// inspect -f, labels, prune, completion and version.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/internal/testenv"
)

// lines splits output into its lines.
func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestListAndFilter lists networks, sandboxes and ports the ways Docker's
// ls does, and checks each against inspect and the kernel.
func TestListAndFilter(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	web, api, lone := w.Name("web"), w.Name("api"), w.Name("lone")
	labelFile := filepath.Join(t.TempDir(), "labels")
	if err := os.WriteFile(labelFile, []byte("# team labels\nteam=blue\n\ntier=front\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.MustNsnet(t, "network", "create", "--subnet", "10.70.0.0/24", "--label", "env=prod", "--label-file", labelFile, "front")
	w.MustNsnet(t, "network", "create", "--subnet", "10.71.0.0/24", "--label", "env=test", "frontend-test")
	w.MustNsnet(t, "network", "create", "--subnet", "10.72.0.0/24", "back")
	w.MustNsnet(t, "sandbox", "create", "--network", "front", "-p", "8080:80", "--label-file", labelFile, "--label", "tier=edge", web)
	w.MustNsnet(t, "sandbox", "create", "--network", "frontend-test", "--network", "back", "-p", "5353:53/udp", "-l", "app=api", api)
	w.MustNsnet(t, "run", "--name", lone, "--network", "none", "--label", "app=batch", "--", "true")
	front := inspectNetwork(t, w, "front")

	// Labels: from the file, then the flags, as inspect shows them.
	var n []struct{ Labels map[string]string }
	decode(t, w.MustNsnet(t, "network", "inspect", "front"), &n)
	if want := map[string]string{"env": "prod", "team": "blue", "tier": "front"}; !mapsEqual(n[0].Labels, want) {
		t.Errorf("network labels %v, want %v", n[0].Labels, want)
	}
	if got := w.MustNsnet(t, "sandbox", "inspect", "-f", `{{index .Labels "tier"}} {{index .Labels "team"}}`, web); got != "edge blue\n" {
		t.Errorf("sandbox labels: %q, want the flag's tier over the file's", got)
	}
	if got := w.MustNsnet(t, "sandbox", "inspect", "-f", `{{.Labels}}`, lone); got != "map[app:batch]\n" {
		t.Errorf("run --label: %q", got)
	}

	// -q and --no-trunc: IDs, one a line, as inspect has them.
	ids := lines(w.MustNsnet(t, "network", "ls", "-q"))
	full := lines(w.MustNsnet(t, "network", "ls", "-q", "--no-trunc"))
	if len(ids) != 3 || len(full) != 3 || !slices.Contains(full, front.ID) || !slices.Contains(ids, front.ID[:12]) {
		t.Errorf("network ls -q: %q; --no-trunc: %q; want 3 IDs, among them %s", ids, full, front.ID)
	}
	sbIDs := lines(w.MustNsnet(t, "sandbox", "ls", "-q", "--no-trunc"))
	if len(sbIDs) != 3 || !slices.Contains(sbIDs, inspectSandbox(t, w, web).ID) {
		t.Errorf("sandbox ls -q --no-trunc: %q", sbIDs)
	}

	// Templates.
	if got := w.MustNsnet(t, "network", "ls", "--format", "{{.Name}}"); got != "back\nfront\nfrontend-test\n" {
		t.Errorf("--format {{.Name}}: %q", got)
	}
	table := w.MustNsnet(t, "network", "ls", "--format", `table {{.Name}}\t{{.Subnet}}\t{{.Label "env"}}`)
	want := "NAME            SUBNET         ENV\n" +
		"back            10.72.0.0/24   \n" +
		"front           10.70.0.0/24   prod\n" +
		"frontend-test   10.71.0.0/24   test\n"
	if table != want {
		t.Errorf("table format:\n%s\nwant\n%s", table, want)
	}
	for _, l := range lines(w.MustNsnet(t, "network", "ls", "--no-trunc", "--format", "{{json .}}")) {
		var row struct{ ID, Name, Driver, Subnet string }
		decode(t, l, &row)
		if row.Name == "front" && (row.ID != front.ID || row.Driver != "bridge" || row.Subnet != "10.70.0.0/24") {
			t.Errorf("{{json .}} of front: %+v", row)
		}
	}
	if got := w.MustNsnet(t, "sandbox", "ls", "--format", "{{.Names}} {{.Ports}}", "--filter", "name="+web); got != web+" 0.0.0.0:8080->80/tcp\n" {
		t.Errorf("sandbox ls --format: %q", got)
	}
	if got := w.MustNsnet(t, "port", "ls", "--format", "{{.Sandbox}} {{.Proto}} {{.HostPort}}->{{.ContainerPort}}"); got != api+" udp 5353->53\n"+web+" tcp 8080->80\n" {
		t.Errorf("port ls --format: %q", got)
	}
	if got := w.MustNsnet(t, "network", "inspect", "-f", "{{.Name}} {{.Subnet}} {{len .Sandboxes}}", "front", "back"); got != "front 10.70.0.0/24 1\nback 10.72.0.0/24 1\n" {
		t.Errorf("network inspect -f: %q", got)
	}

	// Filters.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "ls", "--filter", "name=front"}, "front,frontend-test"},
		{[]string{"network", "ls", "--filter", "name=^front$"}, "front"},
		{[]string{"network", "ls", "-f", "name=back", "-f", "name=^front$"}, "back,front"},
		{[]string{"network", "ls", "--filter", "label=env"}, "front,frontend-test"},
		{[]string{"network", "ls", "--filter", "label=env=test"}, "frontend-test"},
		{[]string{"network", "ls", "--filter", "label=env", "--filter", "label=team=blue"}, "front"},
		{[]string{"network", "ls", "--filter", "name=front", "--filter", "label=env=prod"}, "front"},
		{[]string{"network", "ls", "--filter", "id=" + front.ID[:10]}, "front"},
		{[]string{"network", "ls", "--filter", "driver=bridge", "--filter", "dangling=false"}, "back,front,frontend-test"},
		{[]string{"sandbox", "ls", "--filter", "network=back"}, api},
		{[]string{"sandbox", "ls", "--filter", "network=" + front.ID}, web},
		{[]string{"sandbox", "ls", "--filter", "publish=53/udp"}, api},
		{[]string{"sandbox", "ls", "--filter", "label=app"}, api + "," + lone},
		{[]string{"sandbox", "ls", "--filter", "label=team=blue"}, web},
		{[]string{"port", "ls", "--filter", "publish=80"}, web},
		{[]string{"port", "ls", "--filter", "label=app=api", api}, api},
		{[]string{"port", "ls", "--filter", "label=app=api", web}, ""},
	} {
		field := "{{.Name}}"
		if c.args[0] == "port" {
			field = "{{.Sandbox}}"
		}
		got := lines(w.MustNsnet(t, append(c.args, "--format", field)...))
		if strings.Join(got, ",") != c.want {
			t.Errorf("nsnet %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
	w.MustNsnet(t, "network", "create", "--subnet", "10.73.0.0/24", "unused")
	if got := w.MustNsnet(t, "network", "ls", "--filter", "dangling=true", "--format", "{{.Name}}"); got != "unused\n" {
		t.Errorf("dangling=true: %q", got)
	}
	expectFail(t, w, 1, []string{`invalid filter "publish" for listing networks`, "the keys are dangling, driver, id, label, name"},
		"network", "ls", "--filter", "publish=80")

	w.MustNsnet(t, "sandbox", "rm", web, api, lone)
	w.MustNsnet(t, "network", "rm", "front", "frontend-test", "back", "unused")
	w.AssertClean(t)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// nsnetWithInput runs nsnet in the world's host namespace as World.Nsnet
// does, with stdin from input.
func nsnetWithInput(t *testing.T, w *testenv.World, input string, args ...string) testenv.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append([]string{"--net=" + w.HostPath(), "--", testenv.Binary(t), "--root", w.Root}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = append(os.Environ(), "NSNET_RESOLV_CONF="+w.ResolvConf)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(input), &stdout, &stderr
	cmd.Run()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return testenv.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// TestPruneNetworks: network prune asks first and removes nothing unless
// told yes; then it removes the networks no sandbox is on (their bridges
// and rules go), never one in use nor the default network, and only those
// its filters select.
func TestPruneNetworks(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.74.0.0/24", "--bridge", "br-used", "used")
	w.MustNsnet(t, "network", "create", "--subnet", "10.75.0.0/24", "--bridge", "br-idle", "idle")
	w.MustNsnet(t, "network", "create", "--subnet", "10.76.0.0/24", "--bridge", "br-keep", "--label", "keep=yes", "kept")
	w.MustNsnet(t, "sandbox", "create", "--network", "used", s)
	w.MustNsnet(t, "sandbox", "create", w.Name("d")) // makes the default network
	w.MustNsnet(t, "sandbox", "rm", w.Name("d"))
	const all = "bridge,idle,kept,used"
	names := func() string {
		return strings.Join(lines(w.MustNsnet(t, "network", "ls", "--format", "{{.Name}}")), ",")
	}

	for _, answer := range []string{"n\n", "", "yes please\n"} {
		r := nsnetWithInput(t, w, answer, "network", "prune")
		if r.Code != 0 || !strings.Contains(r.Stdout, "Are you sure you want to continue? [y/N]") || !strings.Contains(r.Stdout, "Nothing was removed") {
			t.Errorf("network prune answered %q: exit %d\n%s%s", answer, r.Code, r.Stdout, r.Stderr)
		}
		if got := names(); got != all {
			t.Errorf("after answering %q: networks %s, want %s", answer, got, all)
		}
	}
	r := nsnetWithInput(t, w, "y\n", "network", "prune", "--filter", "label!=keep")
	if r.Code != 0 || !strings.HasSuffix(r.Stdout, "Deleted Networks:\nidle\n") {
		t.Errorf("network prune, y: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := names(); got != "bridge,kept,used" {
		t.Errorf("after prune --filter label!=keep: %s", got)
	}
	if _, ok := testenv.FindLink(testenv.Links(t, w.Host), "br-idle"); ok {
		t.Errorf("the pruned network's bridge br-idle is still there")
	}
	if got := w.MustNsnet(t, "network", "prune", "-f"); got != "Deleted Networks:\nkept\n" {
		t.Errorf("network prune -f: %q", got)
	}
	if got := names(); got != "bridge,used" {
		t.Errorf("after prune -f: %s, want the default network and the one in use", got)
	}
	for _, br := range []string{"br-used", "nsnet0"} {
		mustLink(t, w.Host, br)
	}
	ping(t, s, "10.74.0.1", true, "the network in use still works")
	gcClean(t, w, "after prune")

	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "used", "bridge")
	w.AssertClean(t)
}

// TestPruneSandboxes: sandbox prune removes the sandboxes whose namespace
// no process is in (with those sharing it), and leaves a sandbox with a
// process in it and its sharer, a host-mode sandbox (and the host's
// namespace), and one adopted with --netns.
func TestPruneSandboxes(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	idle, sharer, busy, busySharer, host, adopted := w.Name("idle"), w.Name("sharer"), w.Name("busy"),
		w.Name("busysharer"), w.Name("hostmode"), w.Name("adopted")
	w.MustNsnet(t, "network", "create", "--subnet", "10.77.0.0/24", "n1")
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", idle)
	w.MustNsnet(t, "sandbox", "create", "--network", "container:"+idle, sharer)
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", busy)
	w.MustNsnet(t, "sandbox", "create", "--network", "container:"+busy, busySharer)
	w.MustNsnet(t, "sandbox", "create", "--network", "host", host)
	if out, err := exec.Command("ip", "netns", "add", w.Name("runtime")).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out) // a namespace a container runtime made
	}
	w.MustNsnet(t, "sandbox", "create", "--network", "n1", "--netns", testenv.NSPath(w.Name("runtime")), adopted)
	sleeper := exec.Command("nsenter", "--net="+testenv.NSPath(busy), "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	if err := eventually(func() error {
		out, err := exec.Command("ip", "netns", "pids", busy).Output()
		if err == nil && !slices.Contains(lines(string(out)), strconv.Itoa(sleeper.Process.Pid)) {
			err = os.ErrNotExist
		}
		return err
	}); err != nil {
		t.Fatal("the sleeper never showed in the busy sandbox")
	}

	r := nsnetWithInput(t, w, "\n", "sandbox", "prune")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Nothing was removed") {
		t.Errorf("sandbox prune, no answer: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = nsnetWithInput(t, w, "y\n", "sandbox", "prune")
	if r.Code != 0 || !strings.HasSuffix(r.Stdout, "Deleted Sandboxes:\n"+sharer+"\n"+idle+"\n") {
		t.Errorf("sandbox prune, y: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	left := strings.Join(lines(w.MustNsnet(t, "sandbox", "ls", "--format", "{{.Name}}")), ",")
	if want := strings.Join([]string{adopted, busy, busySharer, host}, ","); left != want {
		t.Errorf("left %s, want %s", left, want)
	}
	ns := testenv.NamespaceNames(t)
	for _, name := range []string{busy, busySharer, host, w.Name("runtime"), w.Host} {
		if !slices.Contains(ns, name) {
			t.Errorf("namespace %s is gone", name)
		}
	}
	for _, name := range []string{idle, sharer} {
		if slices.Contains(ns, name) {
			t.Errorf("the pruned sandbox's namespace %s is still there", name)
		}
	}
	ping(t, w.Host, testenv.RouterIP, true, "the host's namespace still works")
	gcClean(t, w, "after prune")

	sleeper.Process.Kill()
	sleeper.Wait()
	if got := w.MustNsnet(t, "sandbox", "prune", "-f"); got != "Deleted Sandboxes:\n"+busySharer+"\n"+busy+"\n" {
		t.Errorf("sandbox prune -f once the sleeper is gone: %q", got)
	}
	w.MustNsnet(t, "sandbox", "rm", host, adopted)
	w.MustNsnet(t, "network", "rm", "n1")
	if out, err := exec.Command("ip", "netns", "del", w.Name("runtime")).CombinedOutput(); err != nil {
		t.Errorf("ip netns del: %v\n%s", err, out)
	}
	w.AssertClean(t)
}

// TestCompletion: the scripts for bash, zsh and fish, and the names the
// completion offers, read from the store: nothing (and no error) while
// another command holds the store.
func TestCompletion(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.78.0.0/24", "alpha")
	w.MustNsnet(t, "network", "create", "--subnet", "10.79.0.0/24", "beta")
	w.MustNsnet(t, "sandbox", "create", "--network", "alpha", "-p", "8080:80", s)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := w.MustNsnet(t, "completion", sh); !strings.Contains(out, "__complete") || !strings.Contains(out, "nsnet") {
			t.Errorf("completion %s: no script:\n%.300s", sh, out)
		}
	}
	offered := func(args ...string) []string {
		r := w.Nsnet(append([]string{"__complete"}, args...)...)
		if r.Code != 0 || strings.Contains(r.Stdout, "Error") {
			t.Errorf("__complete %q: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
		}
		var out []string
		for _, l := range lines(r.Stdout) {
			if !strings.HasPrefix(l, ":") {
				out = append(out, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return out
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "rm", ""}, "alpha,beta"},
		{[]string{"network", "inspect", "alpha", "b"}, "beta"},
		{[]string{"network", "connect", "beta", ""}, s},
		{[]string{"sandbox", "rm", ""}, s},
		{[]string{"exec", ""}, s},
		{[]string{"port", "rm", s, ""}, "0.0.0.0:8080:80/tcp"},
		{[]string{"sandbox", "create", "--network", "a"}, "alpha"},
		{[]string{"run", "--network", "container:"}, "container:" + s},
		{[]string{"completion", ""}, "bash,zsh,fish"},
		{[]string{"network", "create", "--driver", ""}, "bridge,overlay"},
		{[]string{"agent", ""}, "--store"},
		{[]string{"agent", "--store", ""}, ""},
	} {
		if got := strings.Join(offered(c.args...), ","); got != c.want {
			t.Errorf("__complete %q offers %q, want %q", c.args, got, c.want)
		}
	}
	st, err := openStore(w.Root, store.Options{LockTimeout: time.Second}) // as a long command would
	if err != nil {
		t.Fatal(err)
	}
	if got := offered("sandbox", "rm", ""); len(got) != 0 {
		t.Errorf("with the store held: %q, want nothing", got)
	}
	st.Close()

	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "alpha", "beta")
	w.AssertClean(t)
}

// TestVersion: nsnet version and --version say what `go version -m` reads
// from the binary: its module version, its commit (or unknown, when it was
// built without one) and the Go version.
func TestVersion(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	out, err := exec.Command("go", "version", "-m", testenv.Binary(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	goVersion, commit, version := "", "unknown", ""
	for _, l := range lines(string(out)) {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && strings.HasSuffix(f[0], ":"):
			goVersion = f[1]
		case len(f) >= 3 && f[0] == "mod":
			version = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			commit = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	line := strings.TrimSpace(w.MustNsnet(t, "--version"))
	if !strings.HasPrefix(line, "nsnet version "+version+", commit "+commit) || !strings.HasSuffix(line, ", "+goVersion) {
		t.Errorf("--version: %q; go version -m says %s, %s, %s", line, version, commit, goVersion)
	}
	v := w.MustNsnet(t, "version")
	for _, want := range []string{"Version:     " + version, "Commit:      " + commit, "Go version:  " + goVersion} {
		if !strings.Contains(v, want) {
			t.Errorf("version lacks %q:\n%s", want, v)
		}
	}
}

// TestInspectGolden guards the JSON of network and sandbox inspect, the
// stable interface the README documents field by field: the fields, their
// names, their order and their form (testdata/inspect-*.golden; IDs, times,
// host veths and pids made the same in every run). Regenerate with
// -update, and only ever add fields.
func TestInspectGolden(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	s := w.Name("s")
	w.MustNsnet(t, "network", "create", "--subnet", "10.96.0.0/24", "--bridge", "br-golden", "--dns", "192.0.2.53",
		"--label", "env=prod", "-o", optICC+"=false", "-o", optHostBinding+"=203.0.113.2", "g1")
	w.MustNsnet(t, "sandbox", "create", "--network", "g1", "--ip", "10.96.0.10", "--alias", "web", "--dns", "192.0.2.54",
		"-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "--label", "app=web", s)
	sb := inspectSandbox(t, w, s)
	net := inspectNetwork(t, w, "g1")
	normal := strings.NewReplacer(net.ID, "NETWORK-ID", sb.ID, "SANDBOX-ID", sb.Networks["g1"].HostVeth, "vethHOST", w.Prefix, "PREFIX")
	created := regexp.MustCompile(`"created": "[^"]*"`)
	pid := regexp.MustCompile(`"pid": [0-9]+`)
	for kind, name := range map[string]string{"network": "g1", "sandbox": s} {
		out := w.MustNsnet(t, kind, "inspect", name)
		out = pid.ReplaceAllString(created.ReplaceAllString(normal.Replace(out), `"created": "CREATED"`), `"pid": 1`)
		compareGolden(t, "inspect-"+kind, out)
	}
	w.MustNsnet(t, "sandbox", "rm", s)
	w.MustNsnet(t, "network", "rm", "g1")
	w.AssertClean(t)
}

// compareGolden compares got with testdata/NAME.golden (rewritten with
// -update).
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (run with -update to create it): %v", path, err)
	}
	if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}
