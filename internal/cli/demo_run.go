package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/nsnet/nsnet/internal/demo"
)

func runDemo(w io.Writer, svg string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find the nsnet binary: %w", err)
	}
	return demo.Run(w, self, svg)
}
