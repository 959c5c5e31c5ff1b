package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

func checkFormat(f string) error {
	if f != "" && f != "table" && f != "json" {
		return fmt.Errorf("unknown --format %q: use table or json", f)
	}
	return nil
}

// inspectAll prints a JSON array of what get returns for each name; unknown
// names are reported on stderr and make the command fail, as docker inspect.
func (a *app) inspectAll(names []string, get func(string) (any, error)) error {
	out := []any{}
	var failed bool
	for _, n := range names {
		v, err := get(n)
		if err != nil {
			fmt.Fprintf(a.stderr, "Error: %v\n", err)
			failed = true
			continue
		}
		out = append(out, v)
	}
	if err := writeJSON(a.stdout, out); err != nil {
		return err
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			if n == 0 {
				return fmt.Errorf("%q takes no arguments\nUsage: %s", cmd.CommandPath(), cmd.UseLine())
			}
			return fmt.Errorf("%q needs exactly %d argument (%s), got %d\nUsage: %s", cmd.CommandPath(), n, what, len(args), cmd.UseLine())
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%q needs at least %d argument (%s)\nUsage: %s", cmd.CommandPath(), n, what, cmd.UseLine())
		}
		return nil
	}
}
