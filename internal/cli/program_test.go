package cli

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFindProgram(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write := func(dir, name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write(a, "both", 0o644)
	runnable := write(b, "both", 0o755)
	onlyPlain := write(a, "plain", 0o644)
	if err := os.Mkdir(filepath.Join(a, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", a+":"+b)
	for _, tt := range []struct {
		name, want string
		err        error
	}{
		{name: "both", want: runnable},               // an executable later in PATH wins
		{name: "plain", want: onlyPlain},             // found, so running it says permission denied
		{name: "dir", want: filepath.Join(a, "dir")}, // likewise
		{name: "missing", err: errNotInPath},
		{name: "./rel/x", want: "./rel/x"}, // a slash: used as given
		{name: plain, want: plain},
	} {
		got, err := findProgram(tt.name)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("findProgram(%q) = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestCannotRunCodes(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code int
	}{
		{errNotInPath, codeNotFound},
		{&os.PathError{Op: "fork/exec", Path: "/x", Err: syscall.ENOENT}, codeNotFound},
		{syscall.ENOTDIR, codeNotFound},
		{&os.PathError{Op: "fork/exec", Path: "/x", Err: syscall.EACCES}, codeCannotRun},
		{syscall.EISDIR, codeCannotRun},
		{syscall.ENOEXEC, codeCannotRun},
		{syscall.ETXTBSY, codeCannotRun},
	} {
		if got := cannotRun("x", "sb", tt.err); got.code != tt.code {
			t.Errorf("cannotRun(%v) = %d (%v), want %d", tt.err, got.code, got.err, tt.code)
		}
	}
}
