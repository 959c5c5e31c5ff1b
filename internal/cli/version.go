package cli

// nsnet version and nsnet --version: the module version, the commit it was
// built from and the Go version, as the binary records them.

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"
)

// buildInfo is what the binary knows of how it was built.
type buildInfo struct {
	Version, Commit, Time, Go string
	Modified                  bool
}

// readBuildInfo reads the binary's build information
// (runtime/debug.ReadBuildInfo); what it lacks is "unknown".
var readBuildInfo = sync.OnceValue(func() buildInfo {
	b := buildInfo{Version: "unknown", Commit: "unknown", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v // "(devel)" for a build from a work tree
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
})

// versionLineFunc is the template function that prints the line of nsnet
// --version: the build information is read only then, not by every command.
const versionLineFunc = "nsnetVersionLine"

func init() {
	cobra.AddTemplateFunc(versionLineFunc, func() string { return readBuildInfo().line() })
}

// line is the one line of nsnet --version.
func (b buildInfo) line() string {
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("nsnet version %s, commit %s, %s", b.Version, commit, b.Go)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print the version, the commit nsnet was built from and the Go version",
		Example:     "  nsnet version\n  nsnet --version",
		Args:        exactArgs(0, ""),
		Annotations: noRoot,
		RunE: func(*cobra.Command, []string) error {
			b := readBuildInfo()
			commit := b.Commit
			if b.Modified {
				commit += " (with changes not committed)"
			}
			fmt.Fprintf(a.stdout, "Version:     %s\nCommit:      %s\n", b.Version, commit)
			if b.Time != "" {
				fmt.Fprintf(a.stdout, "Commit time: %s\n", b.Time)
			}
			fmt.Fprintf(a.stdout, "Go version:  %s\nOS/Arch:     %s/%s\n", b.Go, runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
