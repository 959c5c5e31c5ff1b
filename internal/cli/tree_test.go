package cli

import (
	"io"
	"maps"
	"slices"
	"testing"
)

// TestTopLevelNames checks that topLevel names each top-level command by
// its own name, so that a command line naming one builds that one only.
func TestTopLevelNames(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard}
	root := a.rootCommand()
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
		only := a.rootCommandFor([]string{"--root", "/x", c.Name(), "--help"}).Commands()
		if len(only) != 1 || only[0].Name() != c.Name() {
			t.Errorf("the tree for %s has %d commands (the first %v), want %s alone", c.Name(), len(only), only, c.Name())
		}
	}
	if want := slices.Sorted(maps.Keys(a.topLevel(root))); !slices.Equal(names, want) {
		t.Errorf("the whole tree has %v, topLevel %v", names, want)
	}
	for _, args := range [][]string{nil, {"help", "sandbox"}, {"sandbx"}, {"--version"}, {"--", "sandbox"}} {
		if got := len(a.rootCommandFor(args).Commands()); got != len(names) {
			t.Errorf("the tree for %q has %d commands, want all %d", args, got, len(names))
		}
	}
}

func TestCommandName(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sandbox", "create", "x"}, "sandbox"},
		{[]string{"--root", "sandbox", "network", "ls"}, "network"},
		{[]string{"--root=/r", "--lock-timeout", "0", "--default-address-pool", "base=10.0.0.0/8,size=24", "gc"}, "gc"},
		{[]string{"-h"}, ""},
		{[]string{"--", "gc"}, ""},
		{nil, ""},
	} {
		if got := commandName(c.args); got != c.want {
			t.Errorf("commandName(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
