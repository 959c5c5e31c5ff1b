package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

type testRow struct {
	Name, Subnet string
	labels       map[string]string
}

func (r testRow) Label(k string) string { return r.labels[k] }

var testHeaders = headerRow{"Name": "NAME", "Subnet": "SUBNET"}

func TestFormats(t *testing.T) {
	rows := []any{testRow{Name: "a", Subnet: "10.0.0.0/24", labels: map[string]string{"env": "prod", "com.example.env": "prod"}}, testRow{Name: "longer-name", Subnet: "10.1.0.0/16"}}
	for _, c := range []struct{ format, want string }{
		{`{{.Name}}`, "a\nlonger-name\n"},
		{`{{.Name}} {{.Label "env"}}`, "a prod\nlonger-name \n"},
		{`{{json .}}`, `{"Name":"a","Subnet":"10.0.0.0/24"}` + "\n" + `{"Name":"longer-name","Subnet":"10.1.0.0/16"}` + "\n"},
		{`{{.Name}}\t{{.Subnet}}`, "a\t10.0.0.0/24\nlonger-name\t10.1.0.0/16\n"}, // no table: tabs as they are
		// Docker's table: a header, columns aligned with at least 3 spaces, and at least 10 wide.
		{`table {{.Name}}\t{{.Subnet}}`, "NAME          SUBNET\na             10.0.0.0/24\nlonger-name   10.1.0.0/16\n"},
		{`table {{.Name}}\t{{.Label "com.example.env"}}`, "NAME          ENV\na             prod\nlonger-name   \n"},
		{`{{upper .Name}} {{truncate .Subnet 4}} {{join (split .Subnet "/") " "}}`, "A 10.0 10.0.0.0 24\nLONGER-NAME 10.1 10.1.0.0 16\n"},
	} {
		f, err := parseFormat(c.format)
		if err != nil {
			t.Errorf("parseFormat(%q): %v", c.format, err)
			continue
		}
		var b bytes.Buffer
		if err := f.execute(&b, testHeaders, rows); err != nil {
			t.Errorf("%q: %v", c.format, err)
			continue
		}
		if b.String() != c.want {
			t.Errorf("%q printed\n%q, want\n%q", c.format, b.String(), c.want)
		}
	}
	for _, c := range []struct{ format string }{{""}, {"table"}, {" table "}} {
		if f, err := parseFormat(c.format); err != nil || f.kind != formatTable {
			t.Errorf("parseFormat(%q) = %+v, %v; want the default table", c.format, f, err)
		}
	}
	if f, err := parseFormat("json"); err != nil || f.kind != formatJSON {
		t.Errorf("parseFormat(json) = %+v, %v", f, err)
	}
}

func TestFormatsRefused(t *testing.T) {
	for _, c := range []struct{ format, want string }{
		{"xml", `unknown --format "xml": use table or json, or a Go template`},
		{"{{.Name", `invalid --format template "{{.Name"`},
		{"{{nosuchfunc .}}", `function "nosuchfunc" not defined`},
	} {
		if _, err := parseFormat(c.format); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseFormat(%q): %v, want an error saying %q", c.format, err, c.want)
		}
	}
	f, _ := parseFormat("{{.Nope}}")
	var b bytes.Buffer
	err := f.execute(&b, testHeaders, []any{testRow{Name: "a"}, testRow{Name: "b"}})
	if err == nil || !strings.Contains(err.Error(), "can't evaluate field Nope") || b.Len() != 0 {
		t.Errorf("unknown field: %v, printed %q; want an error and nothing printed", err, b.String())
	}
	for _, format := range []string{"table", "table {{.Name}}"} {
		if _, err := parseInspectFormat(format); err == nil {
			t.Errorf("inspect took --format %q", format)
		}
	}
}

func TestParseFilters(t *testing.T) {
	f, err := parseFilters([]string{"name=web", " Label = env=prod", "name=db", "label!=x", "id="})
	want := map[string][]string{"name": {"web", "db"}, "label": {"env=prod"}, "label!": {"x"}, "id": {""}}
	if err != nil || !reflect.DeepEqual(map[string][]string(f), want) {
		t.Errorf("parseFilters = %v, %v; want %v", f, err, want)
	}
	for _, bad := range []string{"name", "=web", ""} {
		if _, err := parseFilters([]string{bad}); err == nil || !strings.Contains(err.Error(), "expected KEY=VALUE") {
			t.Errorf("parseFilters(%q): %v", bad, err)
		}
	}
}

func TestLabelFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "labels")
	text := "# a comment\n\n  env=test\nteam=a=b\nflag\nempty=\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	lf := labelFlags{files: []string{file}, labels: []string{"env=prod", "x="}}
	got, err := lf.parse()
	want := map[string]string{"env": "prod", "team": "a=b", "flag": "", "empty": "", "x": ""}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("labels %v, %v; want %v (the flags after the file)", got, err, want)
	}
	if got, err := (&labelFlags{}).parse(); got != nil || err != nil {
		t.Errorf("no labels: %v, %v", got, err)
	}
	if _, err := (&labelFlags{files: []string{filepath.Join(dir, "missing")}}).parse(); err == nil || !strings.Contains(err.Error(), "read --label-file") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("ok=1\nk=\xff\n"), 0o644)
	if _, err := (&labelFlags{files: []string{bad}}).parse(); err == nil || !strings.Contains(err.Error(), "line 2 is not valid UTF-8") {
		t.Errorf("file with bad bytes: %v", err)
	}
}

func TestParseOptions(t *testing.T) {
	got, err := parseOptions([]string{"a=1", "b=x=y", "a=1"})
	if err != nil || !reflect.DeepEqual(got, map[string]string{"a": "1", "b": "x=y"}) {
		t.Errorf("parseOptions = %v, %v", got, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{{[]string{"a"}, "expected KEY=VALUE"}, {[]string{"=1"}, "expected KEY=VALUE"}, {[]string{"a=1", "a=2"}, "-o a is given twice"}} {
		if _, err := parseOptions(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseOptions(%q): %v, want %q", c.args, err, c.want)
		}
	}
}

// TestEveryCommandHasAnExample walks the command tree: --help of every
// command a user can run shows an example.
func TestEveryCommandHasAnExample(t *testing.T) {
	a := &app{}
	root := a.rootCommand()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		var b bytes.Buffer
		c.SetOut(&b)
		c.Help()
		if !strings.Contains(b.String(), "Examples:") {
			t.Errorf("%s --help shows no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestVersionLine(t *testing.T) {
	b := buildInfo{Version: "v1.2.3", Commit: "abc", Go: "go1.26.8", Modified: true}
	if got := b.line(); got != "nsnet version v1.2.3, commit abc (modified), go1.26.8" {
		t.Errorf("line() = %q", got)
	}
	if got := readBuildInfo(); got.Go == "" || got.Version == "" || got.Commit == "" {
		t.Errorf("readBuildInfo() = %+v: every field is known or unknown", got)
	}
}
