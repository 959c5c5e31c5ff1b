package topology

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/goccy/go-graphviz"
)

// WriteSVG renders the dot graph to SVG with Graphviz's own layout engine
// (goccy/go-graphviz runs Graphviz compiled to WebAssembly, in pure Go: no
// cgo and no graphviz package on the host).
func (g *Graph) WriteSVG(w io.Writer) error {
	var dot bytes.Buffer
	g.WriteDot(&dot)
	ctx := context.Background()
	gv, err := graphviz.New(ctx)
	if err != nil {
		return fmt.Errorf("starting graphviz to draw the SVG: %w", err)
	}
	defer gv.Close()
	graph, err := graphviz.ParseBytes(dot.Bytes())
	if err != nil {
		return fmt.Errorf("graphviz cannot read the topology's dot graph (a bug: nsnet topology --format dot shows it): %w", err)
	}
	defer graph.Close()
	if err := gv.Render(ctx, graph, graphviz.SVG, w); err != nil {
		return fmt.Errorf("rendering the topology to SVG: %w", err)
	}
	return nil
}
