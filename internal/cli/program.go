package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// errNotInPath says that no file of the program's name is in PATH.
var errNotInPath = errors.New("command not found in PATH")

// findProgram resolves name as execvp(3) does: a name with a slash is used as
// given, one without is looked up in PATH, where the first regular file with
// an execute bit wins. When PATH holds the name only as something that cannot
// be executed, the first such path is returned, so that running it fails as
// "permission denied" (126, as a shell says) and not as "not found" (127).
func findProgram(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	var denied string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		if denied == "" {
			denied = p
		}
	}
	if denied != "" {
		return denied, nil
	}
	return "", errNotInPath
}

// cannotRun turns the failure to start program in sandbox into docker's exit
// code: 127 when there is no such program, 126 when it exists but cannot be
// run (no execute permission, a directory, not a binary or a #! script).
func cannotRun(program, sandbox string, err error) *exitError {
	code, hint := codeCannotRun, "it exists but cannot be run"
	switch {
	case errors.Is(err, errNotInPath):
		return &exitError{code: codeNotFound, err: fmt.Errorf("%s: %w", program, err)}
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		code, hint = codeNotFound, "not found (for a script, check the interpreter on its #! line)"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EISDIR):
		hint = "it exists but is not an executable file (a directory, or a file without execute permission)"
	case errors.Is(err, syscall.ENOEXEC):
		hint = "it exists but is neither a binary for this machine nor a script starting with #!"
	}
	return &exitError{code: code, err: fmt.Errorf("cannot run %s in sandbox %s: %w: %s", program, sandbox, err, hint)}
}
