package cli

// Flags that several commands share, as Docker spells them: --filter,
// --label and --label-file, -o/--opt.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/nsnet/nsnet/engine"
)

// parseFilters turns --filter KEY=VALUE arguments into filters (keys in
// lower case, both sides trimmed, as Docker reads them); which keys a
// command takes is the engine's to check.
func parseFilters(args []string) (engine.Filters, error) {
	f := engine.Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("bad --filter %q: expected KEY=VALUE, e.g. name=web or label=env=prod", a)
		}
		f[k] = append(f[k], strings.TrimSpace(v))
	}
	return f, nil
}

// labelFlags are --label KEY=VALUE (repeatable) and --label-file FILE
// (repeatable), as Docker's: the files are read first, in order, then the
// flags; a later value of a key replaces an earlier one.
type labelFlags struct {
	labels, files []string
}

func (lf *labelFlags) add(cmd *cobra.Command, short string) {
	cmd.Flags().StringArrayVarP(&lf.labels, "label", short, nil, "set a label, KEY=VALUE or KEY (repeatable)")
	cmd.Flags().StringArrayVar(&lf.files, "label-file", nil, "read labels from a file, one KEY=VALUE a line; # starts a comment (repeatable)")
}

// parse returns the labels (nil if none); the engine checks them.
func (lf *labelFlags) parse() (map[string]string, error) {
	var kvs []string
	for _, f := range lf.files {
		lines, err := readLabelFile(f)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, lines...)
	}
	kvs = append(kvs, lf.labels...)
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		out[strings.TrimLeftFunc(k, unicode.IsSpace)] = v
	}
	return out, nil
}

// readLabelFile reads a --label-file as Docker does: lines without leading
// white space, blank lines and lines starting with # left out.
func readLabelFile(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --label-file: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("--label-file %s: line %d is not valid UTF-8", path, n)
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--label-file %s: %w", path, err)
	}
	return out, nil
}

// parseOptions turns -o KEY=VALUE arguments into driver options.
func parseOptions(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad -o %q: expected KEY=VALUE, e.g. %s=false", a, engine.OptICC)
		}
		if old, dup := out[k]; dup && old != v {
			return nil, fmt.Errorf("-o %s is given twice, as %s and %s", k, old, v)
		}
		out[k] = v
	}
	return out, nil
}
