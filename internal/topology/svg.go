package topology

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// SVGRenderer is the program that draws the dot graph as SVG (cmd/nsnet-svg,
// which links Graphviz through goccy/go-graphviz). It is not linked into
// nsnet: that library compiles Graphviz when a process starts, about 28 ms
// that every nsnet command would pay.
const SVGRenderer = "nsnet-svg"

// FindSVGRenderer returns the path of nsnet-svg beside the executable self
// (nsnet), else in $PATH. The error says how to get one, or how to draw
// without it.
func FindSVGRenderer(self string) (string, error) {
	beside := filepath.Join(filepath.Dir(self), SVGRenderer)
	if fi, err := os.Stat(beside); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return beside, nil
	}
	if p, err := exec.LookPath(SVGRenderer); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s, which draws the SVG, is neither beside %s nor in $PATH: "+
		`build it beside nsnet (go build -o "$(dirname "$(command -v nsnet)")/nsnet-svg" ./cmd/nsnet-svg) `+
		"or draw the dot graph with Graphviz (nsnet topology --format dot | dot -Tsvg)", SVGRenderer, self)
}

// WriteSVG pipes the dot graph through the renderer (a path FindSVGRenderer
// returned) and writes the SVG it draws to w; nothing is written to w when
// the renderer fails.
func (g *Graph) WriteSVG(w io.Writer, renderer string) error {
	var dot, svg, stderr bytes.Buffer
	g.WriteDot(&dot)
	cmd := exec.Command(renderer)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = &dot, &svg, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("drawing the SVG with %s (nsnet topology --format dot shows the graph it was given): %w: %s",
			renderer, err, strings.TrimSpace(stderr.String()))
	}
	_, err := svg.WriteTo(w)
	return err
}
