package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
	"github.com/nsnet/nsnet/internal/netns"
)

// Exit codes for run and exec, as docker uses them.
const (
	codeNsnetFailed = 125 // nsnet itself failed
	codeCannotRun   = 126 // the program exists but cannot be run
	codeNotFound    = 127 // the program was not found
)

func (a *app) execCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec NAME -- CMD [ARG...]",
		Short: "Run a command inside a sandbox's network namespace",
		Example: `  nsnet exec ns01 -- ip addr
  nsnet exec ns01 -- ping -c1 192.168.88.12`,
		Args: minArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv, err := splitCommand(cmd, args, 1)
			if err != nil {
				return &exitError{code: codeNsnetFailed, err: err}
			}
			var path, name string
			err = a.withEngine(true, func(e *engine.Engine) error {
				sb, err := e.InspectSandbox(args[0])
				if err == nil {
					path, name = sb.NetNS, sb.Name
				}
				return err
			})
			if err != nil {
				return &exitError{code: codeNsnetFailed, err: err}
			}
			bin, err := findProgram(argv[0])
			if err != nil {
				return cannotRun(argv[0], args[0], err)
			}
			err = netns.Exec(path, name, bin, argv, os.Environ())
			var pe *netns.ProgramError
			if errors.As(err, &pe) {
				return cannotRun(argv[0], args[0], pe.Err)
			}
			return &exitError{code: codeNsnetFailed, err: fmt.Errorf("run %s in sandbox %s: %w", argv[0], args[0], err)}
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func (a *app) runCommand() *cobra.Command {
	var spec engine.SandboxSpec
	var labels labelFlags
	var remove bool
	cmd := &cobra.Command{
		Use:   "run [--name NAME] [--network MODE] [--ip IP] [-p SPEC]... [--label KEY=VALUE]... [--rm] -- CMD [ARG...]",
		Short: "Create a sandbox and run a command in it",
		Example: `  nsnet run --rm -- ping -c1 192.0.2.1
  nsnet run --name web --network br01 -p 8080:80 --label app=web -- python3 -m http.server 80`,
		Args: minArgs(1, "CMD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec.Name == "" {
				spec.Name = "run-" + randomHex(4)
			}
			var err error
			if spec.Labels, err = labels.parse(); err != nil {
				return &exitError{code: codeNsnetFailed, err: err}
			}
			spec.AutoRemove = remove // if this process is killed, a later command removes it
			var path string
			err = a.withEngine(false, func(e *engine.Engine) error {
				sb, err := e.CreateSandbox(spec)
				if err == nil {
					path = sb.NetNS
				}
				return err
			})
			if err != nil {
				return &exitError{code: codeNsnetFailed, err: err}
			}
			code, runErr := runIn(path, spec.Name, args)
			if remove {
				err := a.withEngine(false, func(e *engine.Engine) error {
					_, err := e.RemoveSandbox(spec.Name, false)
					return err
				})
				if err != nil {
					fmt.Fprintf(a.stderr, "Error: %v\n", err)
				}
			}
			return &exitError{code: code, err: runErr}
		},
	}
	sandboxFlags(cmd, &spec, &labels)
	cmd.Flags().StringVar(&spec.Name, "name", "", "sandbox name (default run-<random>)")
	cmd.Flags().BoolVar(&remove, "rm", false, "remove the sandbox when the command exits")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// runIn runs argv in sandbox's namespace at path, forwarding signals, and
// returns its exit code.
func runIn(path, sandbox string, argv []string) (int, error) {
	bin, err := findProgram(argv[0])
	if err != nil {
		ee := cannotRun(argv[0], sandbox, err)
		return ee.code, ee.err
	}
	c := exec.Command(bin, argv[1:]...)
	c.Args[0] = argv[0]
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	var startErr error
	if err := netns.DoPrivate(path, sandbox, func() error { startErr = c.Start(); return nil }); err != nil {
		return codeNsnetFailed, fmt.Errorf("run %s in sandbox %s: %w", argv[0], sandbox, err)
	}
	if startErr != nil {
		ee := cannotRun(argv[0], sandbox, startErr)
		return ee.code, ee.err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case s := <-sigs:
			c.Process.Signal(s)
		case err := <-done:
			return exitCode(err)
		}
	}
}

func exitCode(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return codeNsnetFailed, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
