package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/testenv"
)

// TestHoldersAreReaped runs a program that embeds the engine as a library
// (this test binary, entered into the world's host namespace) and publishes
// and removes ports, kills a holder and lets gc replace it: afterwards the
// program has no zombie children.
func TestHoldersAreReaped(t *testing.T) {
	t.Parallel()
	w := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+w.HostPath(), "--", os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=embed", "NSNET_E2E_ROOT="+w.Root,
		"NSNET_E2E_BIN="+testenv.Binary(t), "NSNET_E2E_PREFIX="+w.Prefix)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("embedding program: %v\n%s", err, out)
	}
	w.AssertClean(t)
}

// embedMain is the embedding program of TestHoldersAreReaped.
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
	e, err := engine.Open(engine.Options{Root: os.Getenv("NSNET_E2E_ROOT"), PortHolder: os.Getenv("NSNET_E2E_BIN")})
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
		func() error { return killHolder(e, b) }, // it dies: the engine is its parent
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

// killHolder kills the port holder that the engine just started for name
// (its pid as the store records it: the test knows it is the holder).
func killHolder(e *engine.Engine, name string) error {
	sb, err := e.InspectSandbox(name)
	if err != nil {
		return err
	}
	if sb.Holder <= 0 { // never kill(0) or kill(-1)
		return fmt.Errorf("sandbox %s has no port holder (recorded pid %d)", name, sb.Holder)
	}
	if err := syscall.Kill(sb.Holder, syscall.SIGKILL); err != nil {
		return err
	}
	for alive(sb.Holder) {
		time.Sleep(time.Millisecond)
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
