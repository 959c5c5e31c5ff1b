package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestRender draws a small graph: well-formed SVG that shows its nodes.
func TestRender(t *testing.T) {
	var out bytes.Buffer
	if err := render(context.Background(), []byte(`digraph { "br01" -> "veth01" }`), &out); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&out)
	var text strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
		}
	}
	for _, n := range []string{"br01", "veth01"} {
		if !strings.Contains(text.String(), n) {
			t.Errorf("the SVG does not show %s", n)
		}
	}
}

// TestRenderBadInput: no graph, or a broken one, is an error that says what
// was wrong, and nothing is written.
func TestRenderBadInput(t *testing.T) {
	for in, want := range map[string]string{
		"":                "no dot graph on standard input",
		"digraph { a -> ": "syntax error",
		"not a graph":     "syntax error",
	} {
		var out bytes.Buffer
		err := render(context.Background(), []byte(in), &out)
		if err == nil || !strings.Contains(err.Error(), want) || out.Len() != 0 {
			t.Errorf("render(%q): %v, wrote %d bytes; want an error saying %q", in, err, out.Len(), want)
		}
	}
}
