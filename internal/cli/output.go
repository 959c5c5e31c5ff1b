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

// parseInspectFormat parses inspect's --format: json (the default), or a Go
// template executed for each object, a line each, as docker inspect -f.
func parseInspectFormat(format string) (*outputFormat, error) {
	out, err := parseFormat(format)
	switch {
	case err != nil:
		return nil, err
	case out.kind == formatTable && format != "":
		return nil, fmt.Errorf("--format table is for ls: inspect prints json, or a Go template such as '{{.Name}}'")
	case out.header:
		return nil, fmt.Errorf("--format %q: inspect prints no table: leave out the table prefix", format)
	case out.kind == formatTable:
		out.kind = formatJSON
	}
	return out, nil
}

// inspectAll prints what get returns for each name, as a JSON array or
// with a template; unknown names are reported on stderr and make the
// command fail, as docker inspect.
func (a *app) inspectAll(format *outputFormat, names []string, get func(string) (any, error)) error {
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
	var err error
	if format.kind == formatTemplate {
		err = format.execute(a.stdout, nil, out)
	} else {
		err = writeJSON(a.stdout, out)
	}
	if err != nil {
		return err
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}

// group is a command that only holds subcommands: alone it prints its help,
// with an unknown subcommand it fails.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
		},
	}
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			if n == 0 {
				return fmt.Errorf("%q takes no arguments\nUsage: %s", cmd.CommandPath(), cmd.UseLine())
			}
			return fmt.Errorf("%q needs exactly %d %s (%s), got %d\nUsage: %s", cmd.CommandPath(), n, plural(n, "argument"), what, len(args), cmd.UseLine())
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

// shortID is the first 12 hex digits of an ID, as docker ls shows them; any
// unique prefix is accepted where a name is.
func shortID(id string) string { return id[:min(len(id), 12)] }

// plural is word, or words when n is not 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
