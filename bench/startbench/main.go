// Command startbench times how long programs take to start and exit: it runs
// each command line given, one after the other, round after round (so that a
// machine getting busier slows them all alike), and prints each one's median
// and quartiles of the time from fork to exit. bench/startup.sh gives it the
// programs to compare.
//
// Usage: startbench [-n ROUNDS] NAME=COMMAND [ARG...] -- NAME=COMMAND ...
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

type program struct {
	name string
	argv []string
	took []time.Duration
}

func main() {
	rounds := flag.Int("n", 500, "rounds: runs of each program")
	flag.Parse()
	progs, err := parse(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "startbench:", err)
		os.Exit(2)
	}
	for range *rounds {
		for _, p := range progs {
			if err := p.run(); err != nil {
				fmt.Fprintf(os.Stderr, "startbench: %s: %v\n", p.name, err)
				os.Exit(1)
			}
		}
	}
	fmt.Printf("%-22s %8s %8s %8s  (ms from fork to exit, %d runs each, interleaved)\n", "program", "p25", "p50", "p75", *rounds)
	for _, p := range progs {
		slices.Sort(p.took)
		fmt.Printf("%-22s %8.3f %8.3f %8.3f\n", p.name, ms(p.took[len(p.took)/4]), ms(p.took[len(p.took)/2]), ms(p.took[len(p.took)*3/4]))
	}
}

// parse splits NAME=COMMAND [ARG...] groups separated by "--".
func parse(args []string) ([]*program, error) {
	var progs []*program
	for len(args) > 0 {
		end := slices.Index(args, "--")
		if end < 0 {
			end = len(args)
		}
		name, cmd, ok := strings.Cut(args[0], "=")
		if !ok || name == "" || cmd == "" {
			return nil, fmt.Errorf("%q: want NAME=COMMAND", args[0])
		}
		progs = append(progs, &program{name: name, argv: append([]string{cmd}, args[1:end]...)})
		args = args[min(end+1, len(args)):]
	}
	if len(progs) == 0 {
		return nil, errors.New("no program given")
	}
	return progs, nil
}

// run runs p once, with no output, and records how long it took. An exit
// status other than 0 is fine (floor without arguments exits with 2).
func (p *program) run() error {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	start := time.Now()
	err := cmd.Run()
	p.took = append(p.took, time.Since(start))
	if _, exited := err.(*exec.ExitError); exited {
		return nil
	}
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
