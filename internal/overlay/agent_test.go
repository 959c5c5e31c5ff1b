package overlay

import (
	"strings"
	"testing"
)

func TestOneAgentPerRoot(t *testing.T) {
	root := t.TempDir()
	unlock, err := lockAgent(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockAgent(root); err == nil || !strings.Contains(err.Error(), "another nsnet agent runs") {
		t.Fatalf("a second agent for one root: %v, want a refusal", err)
	}
	unlock()
	again, err := lockAgent(root)
	if err != nil {
		t.Fatalf("after the first agent ended: %v", err)
	}
	again()
}

func TestHostIDIsKept(t *testing.T) {
	root := t.TempDir()
	a, err := hostID(root)
	if err != nil || len(a) != 32 {
		t.Fatalf("hostID: %q, %v", a, err)
	}
	if b, err := hostID(root); err != nil || b != a {
		t.Fatalf("hostID again: %q, %v; want %q", b, err, a)
	}
	if c, _ := hostID(t.TempDir()); c == a {
		t.Fatal("two roots got one host ID")
	}
}
