// Command nsnet-svg reads a Graphviz (dot) graph on standard input and
// writes it as SVG on standard output, laid out by Graphviz itself
// (github.com/goccy/go-graphviz: Graphviz compiled to WebAssembly, run in pure
// Go). nsnet topology --format svg pipes its dot graph through it.
//
// It is a program of its own so that nsnet does not link the library: the
// library compiles Graphviz when the process starts (about 28 ms, and a cache
// in /tmp), which every nsnet command would pay. Build it beside nsnet:
//
//	go build -o "$(dirname "$(command -v nsnet)")/nsnet-svg" ./cmd/nsnet-svg
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/goccy/go-graphviz"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: nsnet-svg < graph.dot > graph.svg (it takes no arguments)")
		os.Exit(2)
	}
	dot, err := io.ReadAll(os.Stdin)
	if err == nil {
		err = render(context.Background(), dot, os.Stdout)
	}
	if err != nil {
		// Graphviz ends its syntax errors with a newline of its own.
		fmt.Fprintln(os.Stderr, "nsnet-svg: "+strings.TrimSpace(err.Error()))
		os.Exit(1)
	}
}

// render lays out the dot graph and writes it to w as SVG. Nothing is
// written unless the whole drawing is.
func render(ctx context.Context, dot []byte, w io.Writer) error {
	if len(bytes.TrimSpace(dot)) == 0 {
		return errors.New("no dot graph on standard input: pipe one in (nsnet topology --format dot | nsnet-svg)")
	}
	gv, err := graphviz.New(ctx)
	if err != nil {
		return fmt.Errorf("start graphviz: %w", err)
	}
	defer gv.Close()
	graph, err := graphviz.ParseBytes(dot)
	if err != nil {
		return fmt.Errorf("read the dot graph on standard input: %w", err)
	}
	if graph == nil {
		return errors.New("read the dot graph on standard input: graphviz found no graph in it")
	}
	defer graph.Close()
	var svg bytes.Buffer
	if err := gv.Render(ctx, graph, graphviz.SVG, &svg); err != nil {
		return fmt.Errorf("render the graph as SVG: %w", err)
	}
	_, err = svg.WriteTo(w)
	return err
}
