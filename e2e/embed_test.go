package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/testenv"
)

// TestResidentsAreReaped runs a program that embeds the engine as a library
// (this test binary, entered into the world's host namespace) and publishes
// and removes ports, which starts and stops the resident process, kills the
// resident and lets gc replace it: afterwards the program has no zombie
// children.
func TestResidentsAreReaped(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+w.HostPath(), "--", os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=embed", "NSNET_E2E_ROOT="+w.Root,
		"NSNET_E2E_BIN="+testenv.Binary(t), "NSNET_E2E_PREFIX="+w.Prefix, "NSNET_E2E_RESOLV_CONF="+w.ResolvConf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("embedding program: %v\n%s", err, out)
	}
	w.AssertClean(t)
}

// embedMain is the embedding program of TestResidentsAreReaped.
func embedMain() int {
	if err := embedScenario(); err != nil {
		fmt.Println(err)
		return 1
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		z := zombieChildren()
		if len(z) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Printf("zombie children left: %v\n", z)
			return 1
		}
	}
}

func embedScenario() error {
	e, err := engine.Open(engine.Options{Root: os.Getenv("NSNET_E2E_ROOT"), Resident: os.Getenv("NSNET_E2E_BIN"),
		ResolvConf: os.Getenv("NSNET_E2E_RESOLV_CONF")})
	if err != nil {
		return err
	}
	defer e.Close()
	a, b := os.Getenv("NSNET_E2E_PREFIX")+"-a", os.Getenv("NSNET_E2E_PREFIX")+"-b"
	steps := []func() error{
		func() error {
			_, err := e.CreateNetwork(engine.NetworkSpec{Name: "n1", Subnet: "10.75.0.0/24"})
			return err
		},
		func() error {
			_, err := e.CreateSandbox(engine.SandboxSpec{Name: a, Networks: []string{"n1"}, Publish: []string{"8080:80"}})
			return err
		},
		func() error { _, err := e.AddPorts(a, []string{"8081:81"}); return err },
		func() error { _, err := e.RemovePorts(a, []string{"8081:81"}); return err },
		func() error { _, err := e.RemoveSandbox(a, false); return err },
		func() error {
			_, err := e.CreateSandbox(engine.SandboxSpec{Name: b, Networks: []string{"n1"}, Publish: []string{"8082:82"}})
			return err
		},
		func() error { return killResident(e, b) }, // it dies: the engine is its parent
		func() error { _, err := e.GC(false); return err },
		func() error { _, err := e.RemoveSandbox(b, false); return err },
		func() error { return e.RemoveNetwork("n1") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
	}
	return nil
}

// killResident kills the resident process that the engine just started
// (the pid its control socket answers with, as inspect shows it), and
// returns once all its threads have exited, and so its sockets are closed
// (its main thread is a zombie before that).
func killResident(e *engine.Engine, name string) error {
	sb, err := e.InspectSandbox(name)
	if err != nil {
		return err
	}
	st := e.ResidentStatus(sb)
	if !st.Alive || st.Pid <= 0 { // never kill(0) or kill(-1)
		return fmt.Errorf("sandbox %s: no resident process answers (%+v)", name, st)
	}
	fd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return err
	}
	if !pidfdExited(fd, 10*time.Second) {
		return fmt.Errorf("the resident process (pid %d) did not exit within 10 s of SIGKILL", st.Pid)
	}
	return nil
}

// zombieChildren lists this process's children that have exited but were
// not waited for.
func zombieChildren() []int {
	var out []int
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:]) // state, ppid, ...
		if len(fields) > 1 && fields[0] == "Z" && fields[1] == strconv.Itoa(self) {
			pid, _ := strconv.Atoi(strings.Split(f, "/")[2])
			out = append(out, pid)
		}
	}
	return out
}

// TestEmbeddedEngineAndCLISideBySide keeps an engine open in one process (a
// program embedding it, as a runtime daemon would) while the CLI creates and
// removes sandboxes in another: neither waits for the other, and each sees
// what the other did.
func TestEmbeddedEngineAndCLISideBySide(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	w.MustNsnet(t, "network", "create", "--subnet", "10.74.0.0/24", "n1")
	cmd := exec.Command("nsenter", "--net="+w.HostPath(), "--", os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=daemon", "NSNET_E2E_ROOT="+w.Root, "NSNET_E2E_PREFIX="+w.Prefix)
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	step := func(say string) string { // tell the program to go on, return its answer
		if say != "" {
			fmt.Fprintln(stdin, say)
		}
		if !lines.Scan() {
			t.Fatalf("embedding program stopped: %s", out.String())
		}
		return lines.Text()
	}
	if got := step(""); got != "ready" {
		t.Fatalf("embedding program: %q", got)
	}
	cliSb := w.Name("cli")
	// The daemon holds its engine open; the CLI must not wait for it.
	w.MustNsnet(t, "--lock-timeout", "0", "sandbox", "create", "--network", "n1", cliSb)
	if got := step("list"); !strings.Contains(got, cliSb) || !strings.Contains(got, w.Name("daemon")) {
		t.Errorf("the embedded engine sees sandboxes %q, want %s and its own", got, cliSb)
	}
	w.MustNsnet(t, "--lock-timeout", "0", "sandbox", "rm", cliSb, w.Name("daemon"))
	if got := step("list"); got != "" {
		t.Errorf("after the CLI removed them, the embedded engine sees %q", got)
	}
	if got := step("quit"); got != "bye" {
		t.Errorf("embedding program: %q", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("embedding program: %v\n%s", err, out.String())
	}
	w.MustNsnet(t, "network", "rm", "n1")
	w.AssertClean(t)
}

// daemonMain is the program of TestEmbeddedEngineAndCLISideBySide: it opens
// an engine, makes a sandbox, and keeps the engine open, answering "list"
// with the sandboxes it sees, until "quit".
func daemonMain() int {
	e, err := engine.Open(engine.Options{Root: os.Getenv("NSNET_E2E_ROOT"), LockTimeout: engine.NoWait})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Close()
	if _, err := e.CreateSandbox(engine.SandboxSpec{Name: os.Getenv("NSNET_E2E_PREFIX") + "-daemon", Networks: []string{"n1"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "list":
			sbs, err := e.Sandboxes()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			var names []string
			for _, s := range sbs {
				names = append(names, s.Name)
			}
			fmt.Println(strings.Join(names, " "))
		case "quit":
			fmt.Println("bye")
			return 0
		}
	}
	return 1
}

// TestEmbedExample builds examples/embed, a program in a module of its own
// that uses the engine as an importer outside nsnet's module must, and runs
// it in a throwaway world: the public API is enough to make a network and a
// sandbox with a published port, and to remove them.
func TestEmbedExample(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	bin := filepath.Join(t.TempDir(), "embed")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../examples/embed"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/embed: %v\n%s", err, out)
	}
	name := w.Name("ex")
	out, err := exec.Command("nsenter", "--net="+w.HostPath(), "--", bin, "-root", w.Root, "-subnet", "10.73.0.0/24", "-name", name).CombinedOutput()
	if err != nil {
		t.Fatalf("examples/embed: %v\n%s", err, out)
	}
	for _, want := range []string{"network " + name + ": bridge br-", "sandbox " + name + "-1 (bridge mode): eth0 10.73.0.2/24", "published 80/tcp -> 0.0.0.0:8080", "removed network " + name} {
		if !strings.Contains(string(out), want) {
			t.Errorf("examples/embed output lacks %q:\n%s", want, out)
		}
	}
	w.AssertClean(t)
}
