package cli

import (
	"fmt"
	"io"
)

func runDemo(w io.Writer) error { return fmt.Errorf("demo: not written yet") }
