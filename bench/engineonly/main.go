// Command engineonly is bench/sandbox.sh's tool nsnet-engine: nsnet's engine
// alone, without its command line, to tell what the engine costs a
// short-lived process from what the command line and the packages only other
// commands need (cobra, CNI, templates, ...) add to it.
//
// It does the two commands the benchmark times, as nsnet does them but with
// nothing around engine.Open, CreateSandbox and RemoveSandbox:
//
//	engineonly --root ROOT sandbox create --network NET [--netns PATH] NAME
//	engineonly --root ROOT sandbox rm NAME
//
// and, as the tool nsnet-warm, the same creates and removes one after the
// other in this one process, which stays running (as a runtime daemon that
// embeds the engine would), timing each itself:
//
//	engineonly --root ROOT loop --network NET N PREFIX OUT
//
// makes the sandboxes PREFIX1 ... PREFIXN, removes them in the same order, and
// writes what the benchmark's driver writes for the other tools: OUT.create
// and OUT.remove (one duration per line, in microseconds) and OUT.total (the
// time of all creates and of all removes, in microseconds).
//
// Anything else (the benchmark's untimed network create and rm) it hands to
// the nsnet binary beside it, named nsnet, by exec; that binary is also the
// resident the engine starts. It is a benchmark tool, not a way to run nsnet:
// it checks no more of its arguments than the benchmark needs.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nsnet/nsnet/engine"
)

func main() {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	nsnet := filepath.Join(filepath.Dir(self), "nsnet")
	a := os.Args[1:]
	loop := len(a) == 8 && a[0] == "--root" && a[2] == "loop" && a[3] == "--network"
	if !loop && (len(a) < 4 || a[0] != "--root" || a[2] != "sandbox" || (a[3] != "create" && a[3] != "rm")) {
		fail(syscall.Exec(nsnet, append([]string{nsnet}, a...), os.Environ()))
	}
	if err := withEngine(a[1], nsnet, func(e *engine.Engine) error {
		if loop {
			return repeat(e, a[4], a[5], a[6], a[7])
		}
		name, err := run(e, a[3], a[4:])
		if err == nil {
			fmt.Println(name)
		}
		return err
	}); err != nil {
		fail(err)
	}
}

// withEngine opens the engine of root, with nsnet as its resident, runs fn
// and closes it.
func withEngine(root, nsnet string, fn func(*engine.Engine) error) error {
	e, err := engine.Open(engine.Options{Root: root, Resident: nsnet,
		Warn: func(msg string) { fmt.Fprintf(os.Stderr, "Warning: %s\n", msg) }})
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(e)
}

// run does sandbox create or rm with the arguments after it, and returns the
// sandbox's name.
func run(e *engine.Engine, cmd string, args []string) (string, error) {
	if cmd == "rm" {
		if len(args) != 1 {
			return "", errors.New("usage: sandbox rm NAME")
		}
		_, err := e.RemoveSandbox(args[0], false)
		return args[0], err
	}
	var spec engine.SandboxSpec
	for len(args) > 2 {
		switch args[0] {
		case "--network":
			spec.Networks = append(spec.Networks, args[1])
		case "--netns":
			spec.NetNS = args[1]
		default:
			return "", fmt.Errorf("unknown flag %s", args[0])
		}
		args = args[2:]
	}
	if len(args) != 1 {
		return "", errors.New("usage: sandbox create --network NET [--netns PATH] NAME")
	}
	spec.Name = args[0]
	sb, err := e.CreateSandbox(spec)
	if err != nil {
		return "", err
	}
	return sb.Name, nil
}

// repeat creates n sandboxes on network, named prefix1 ..., then removes them
// in the same order, and writes the durations to out.create, out.remove and
// out.total.
func repeat(e *engine.Engine, network, count, prefix, out string) error {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return fmt.Errorf("loop: count %q is not a positive number", count)
	}
	create, remove := make([]time.Duration, n), make([]time.Duration, n)
	c0 := time.Now()
	for i := range n {
		t := time.Now()
		if _, err := e.CreateSandbox(engine.SandboxSpec{Name: fmt.Sprint(prefix, i+1), Networks: []string{network}}); err != nil {
			return err
		}
		create[i] = time.Since(t)
	}
	r0 := time.Now()
	for i := range n {
		t := time.Now()
		if _, err := e.RemoveSandbox(fmt.Sprint(prefix, i+1), false); err != nil {
			return err
		}
		remove[i] = time.Since(t)
	}
	total := fmt.Sprintln(r0.Sub(c0).Microseconds(), time.Since(r0).Microseconds())
	return errors.Join(writeMicros(out+".create", create), writeMicros(out+".remove", remove),
		os.WriteFile(out+".total", []byte(total), 0o644))
}

// writeMicros writes one duration per line, in microseconds.
func writeMicros(path string, ds []time.Duration) error {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintln(&b, d.Microseconds())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "engineonly:", err)
	os.Exit(1)
}
