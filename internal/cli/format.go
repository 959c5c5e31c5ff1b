package cli

// --format, as Docker's: "table" (the default table), "json" (nsnet's JSON
// array, as inspect prints it), or a Go template executed for each object;
// "table TEMPLATE" prints a header line first and aligns the columns as
// Docker does.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
)

// formatKind is what --format asks for.
type formatKind int

const (
	formatTable    formatKind = iota // the command's own table
	formatJSON                       // nsnet's JSON
	formatTemplate                   // a Go template, one line per object
)

// outputFormat is a parsed --format.
type outputFormat struct {
	kind   formatKind
	header bool // a template with Docker's "table" prefix: a header, aligned columns
	tmpl   *template.Template
}

// parseFormat parses --format. Docker's escapes \t and \n in templates are
// tabs and new lines.
func parseFormat(format string) (*outputFormat, error) {
	switch strings.TrimSpace(format) {
	case "", "table":
		return &outputFormat{kind: formatTable}, nil
	case "json":
		return &outputFormat{kind: formatJSON}, nil
	}
	f := &outputFormat{kind: formatTemplate}
	text := format
	if rest, ok := strings.CutPrefix(strings.TrimLeft(format, " "), "table "); ok {
		f.header, text = true, rest
	}
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.Trim(text, " "))
	if !strings.Contains(text, "{{") {
		return nil, fmt.Errorf("unknown --format %q: use table or json, or a Go template such as '{{.Name}}' or 'table {{.Name}}\\t{{.ID}}'", format)
	}
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid --format template %q: %w", format, err)
	}
	f.tmpl = tmpl
	return f, nil
}

// templateFuncs are the functions Docker's templates have.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		err := enc.Encode(v)
		return strings.TrimSpace(b.String()), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		r := []rune(s)
		if len(r) > 0 {
			r[0] = unicode.ToTitle(r[0])
		}
		return string(r)
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"println": fmt.Sprintln,
}

// execute writes the template's result for each row, a line each; with the
// table prefix a header line comes first (the template executed on headers)
// and tab-separated columns are aligned. Nothing is written if the template
// fails on any row.
func (f *outputFormat) execute(w io.Writer, headers headerRow, rows []any) error {
	var b bytes.Buffer
	if f.header {
		if err := f.line(&b, headers); err != nil {
			return err
		}
	}
	for _, r := range rows {
		if err := f.line(&b, r); err != nil {
			return err
		}
	}
	if !f.header {
		_, err := w.Write(b.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0) // Docker's alignment
	if _, err := tw.Write(b.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

func (f *outputFormat) line(b *bytes.Buffer, data any) error {
	if err := f.tmpl.Execute(b, data); err != nil {
		return fmt.Errorf("--format template: %w", err)
	}
	b.WriteByte('\n')
	return nil
}

// headerRow is what a table template's header line is executed on: each
// field's column title, as Docker's. Label "KEY" is KEY's last dotted part.
type headerRow map[string]string

// Label is the header of a label's column.
func (h headerRow) Label(key string) string {
	parts := strings.Split(key, ".")
	return strings.ToUpper(parts[len(parts)-1])
}

// labelList formats labels as Docker's .Labels does: KEY=VALUE, comma
// separated, sorted.
func labelList(labels map[string]string) string {
	var out []string
	for k, v := range labels {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}
