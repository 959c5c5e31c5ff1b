package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestOpenEmptyFile checks that an empty state file (left by a crash of the
// very first open, or touched) is initialised, by readers too.
func TestOpenEmptyFile(t *testing.T) {
	for _, readOnly := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{ReadOnly: readOnly, LockTimeout: time.Second})
		if err != nil {
			t.Fatalf("read-only %t: Open of an empty file: %v", readOnly, err)
		}
		mustView(t, s, func(tx *Tx) error {
			nets, err := tx.Networks()
			if err != nil || len(nets) != 0 {
				t.Errorf("read-only %t: networks of an initialised file: %v, %v", readOnly, nets, err)
			}
			return nil
		})
		s.Close()
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("read-only %t: the file is still empty after Open (%v)", readOnly, err)
		}
		r, err := Open(dir, Options{ReadOnly: true, LockTimeout: time.Second})
		if err != nil {
			t.Fatalf("read-only Open after initialising: %v", err)
		}
		r.Close()
	}
}

// TestOpenCorruptFile checks that a damaged state file gives an error that
// wraps ErrCorrupt and says what to do, instead of a crash.
func TestOpenCorruptFile(t *testing.T) {
	src := t.TempDir()
	s, err := Open(src, Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for i := 0; i < 50; i++ {
			if err := tx.PutNetwork(testNetwork(fmt.Sprintf("n%d", i), "10.0.0.0/24", "10.0.0.1")); err != nil {
				return err
			}
		}
		return nil
	})
	var used int64 // up to the last page in use
	if err := s.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	good, err := os.ReadFile(filepath.Join(src, FileName))
	if err != nil || len(good) <= 16384 {
		t.Fatalf("a good file of %d bytes (%v), want more than 4 pages", len(good), err)
	}
	flipped := append([]byte(nil), good...)
	for i := 0; i < 64; i++ {
		flipped[i] ^= 0xff // meta page 0
		flipped[4096+i] ^= 0xff
	}
	for name, data := range map[string][]byte{
		"text":           []byte("not a database\n"),
		"zeros":          make([]byte, 8192),
		"cut to a page":  good[:4096],
		"cut to 2 pages": good[:8192],
		"cut short":      good[:used-4096],
		"headers broken": flipped,
	} {
		for _, readOnly := range []bool{true, false} {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{ReadOnly: readOnly, LockTimeout: time.Second})
			if err == nil {
				s.Close()
				t.Errorf("%s (read-only %t): Open succeeded", name, readOnly)
				continue
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s (read-only %t): error %v does not wrap ErrCorrupt", name, readOnly, err)
			}
			for _, want := range []string{path, "mv " + path + " " + path + ".corrupt", "nsnet gc"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %q lacks %q", name, err, want)
				}
			}
		}
	}
}

// TestNoWait checks that a zero lock timeout fails at once instead of
// waiting (bbolt's zero waits forever).
func TestNoWait(t *testing.T) {
	_, dir := openTest(t)
	for _, readOnly := range []bool{false, true} {
		done := make(chan error, 1)
		go func() {
			s, err := Open(dir, Options{ReadOnly: readOnly, LockTimeout: 0})
			if err == nil {
				s.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "does not wait") {
				t.Errorf("read-only %t: Open with no wait: %v, want busy", readOnly, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("read-only %t: Open with a zero lock timeout is still waiting for the lock", readOnly)
		}
	}
}
