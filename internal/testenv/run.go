package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Result is the outcome of one nsnet run. Code is the exit code, or -1 when
// the binary could not be built or started or was killed (Stderr says why).
type Result struct {
	Stdout, Stderr string
	Code           int
}

var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// Binary builds github.com/nsnet/nsnet/cmd/nsnet and cmd/nsnet-overlay, with
// fault injection (-tags nsnet_faults), once per test process into
// a temporary directory and returns the binary's absolute path; a failed
// build calls t.Fatal with the build output. The directory is left behind
// unless TestMain calls RemoveBinary.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RemoveBinary deletes what Binary built; call it from TestMain after m.Run.
// Binary must not be called afterwards.
func RemoveBinary() {
	built.once.Do(func() { built.err = errors.New("testenv: RemoveBinary already called") })
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

func buildBinary() (string, error) {
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "nsnet-testenv-")
		if built.err != nil {
			return
		}
		// nsnet_faults: the crash tests make nsnet kill itself at a fault
		// point named in NSNET_FAULT (engine.FaultPoints). nsnet-overlay,
		// which nsnet executes for overlay commands, goes next to it.
		for _, cmd := range []string{"nsnet", "nsnet-overlay"} {
			out, err := exec.Command(goTool(), "build", "-tags", "nsnet_faults", "-o", filepath.Join(built.dir, cmd),
				"github.com/nsnet/nsnet/cmd/"+cmd).CombinedOutput()
			if err != nil {
				built.err = fmt.Errorf("testenv: go build ./cmd/%s: %v\n%s", cmd, err, out)
				return
			}
		}
		built.path = filepath.Join(built.dir, "nsnet")
	})
	return built.path, built.err
}

var builtSVG struct {
	once sync.Once
	err  error
}

// SVGRenderer builds github.com/nsnet/nsnet/cmd/nsnet-svg beside the binary
// Binary builds (where nsnet topology --format svg looks for it first), once
// per test process, and returns its path. Tests that do not call it run an
// nsnet without one, unless $PATH has one.
func SVGRenderer(t testing.TB) string {
	t.Helper()
	dir := filepath.Dir(Binary(t))
	builtSVG.once.Do(func() { _, builtSVG.err = buildSVGRenderer(dir) })
	if builtSVG.err != nil {
		t.Fatal(builtSVG.err)
	}
	return filepath.Join(dir, "nsnet-svg")
}

// BuildSVGRenderer builds cmd/nsnet-svg into dir and returns its path.
func BuildSVGRenderer(t testing.TB, dir string) string {
	t.Helper()
	p, err := buildSVGRenderer(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func buildSVGRenderer(dir string) (string, error) {
	p := filepath.Join(dir, "nsnet-svg")
	out, err := exec.Command(goTool(), "build", "-o", p, "github.com/nsnet/nsnet/cmd/nsnet-svg").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testenv: go build ./cmd/nsnet-svg: %v\n%s", err, out)
	}
	return p, nil
}

// ReleaseBinary builds cmd/nsnet as it is shipped, without the tests' fault
// injection, into a directory of the test's, and returns its path.
func ReleaseBinary(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nsnet")
	out, err := exec.Command(goTool(), "build", "-o", p, "github.com/nsnet/nsnet/cmd/nsnet").CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: go build ./cmd/nsnet: %v\n%s", err, out)
	}
	return p
}

// goTool finds the go command; "go test" puts $GOROOT/bin first in PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if r := os.Getenv("GOROOT"); r != "" {
		return filepath.Join(r, "bin", "go")
	}
	return "go"
}

// binary returns w.Bin, building the binary on first use.
func (w *World) binary() (string, error) {
	w.binMu.Lock()
	defer w.binMu.Unlock()
	if w.Bin == "" {
		p, err := buildBinary()
		if err != nil {
			return "", err
		}
		w.Bin = p
	}
	return w.Bin, nil
}

// Nsnet runs "nsenter --net=<HostPath> -- <Bin> --root <Root> args..." with
// NSNET_ROOT removed from the environment, NSNET_RESOLV_CONF set to
// ResolvConf, and a 60 s timeout. Only the
// network namespace is entered (never "ip netns exec", which would also
// give nsnet a private mount namespace). The first call builds the binary
// (see Binary); a build failure is returned as Code -1.
func (w *World) Nsnet(args ...string) Result {
	bin, err := w.binary()
	if err != nil {
		return Result{Stderr: err.Error(), Code: -1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	argv := append([]string{"--net=" + w.HostPath(), "--", bin, "--root", w.Root}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = append(envWithout(os.Environ(), "NSNET_ROOT"), "NSNET_RESOLV_CONF="+w.ResolvConf)
	cmd.WaitDelay = cmdTimeout / 10
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: -1}
	if cmd.ProcessState != nil {
		r.Code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.Stderr += fmt.Sprintf("\ntestenv: nsnet killed after %v", cmdTimeout)
	} else if err != nil && r.Code == -1 {
		r.Stderr += "\ntestenv: " + err.Error()
	}
	return r
}

// MustNsnet is Nsnet that calls t.Fatalf (with the arguments, exit code,
// stdout and stderr) unless the exit code is 0. It returns stdout.
func (w *World) MustNsnet(t testing.TB, args ...string) string {
	t.Helper()
	r := w.Nsnet(args...)
	if r.Code != 0 {
		t.Fatalf("nsnet %s: exit code %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

func envWithout(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// RunIn runs a command inside netns ns (a name under /run/netns, or an
// absolute path), entering only its network namespace (nsenter --net), with
// a 60 s timeout. It returns the combined output; the error names the
// command and includes the output.
func RunIn(ns string, name string, args ...string) (string, error) {
	argv := append([]string{"--net=" + nsPath(ns), "--", name}, args...)
	return run("nsenter", argv...)
}

// Ping sends one echo request ("ping -c 1 -W 2 addr") from inside ns.
func Ping(ns, addr string) error {
	_, err := RunIn(ns, "ping", "-c", "1", "-W", "2", addr)
	return err
}
