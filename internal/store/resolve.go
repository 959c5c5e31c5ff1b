package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrAmbiguous is wrapped by an *AmbiguousError.
var ErrAmbiguous = errors.New("ambiguous ID prefix")

// AmbiguousError says that an ID prefix matches several records.
type AmbiguousError struct {
	Prefix     string
	Candidates []Candidate // sorted by name
}

// Candidate is a record an ambiguous prefix matches.
type Candidate struct{ Name, ID string }

func (e *AmbiguousError) Error() string {
	var c []string
	for _, m := range e.Candidates {
		c = append(c, m.Name+" ("+m.ID[:min(len(m.ID), 12)]+"...)")
	}
	return fmt.Sprintf("ID prefix %s matches %s", e.Prefix, strings.Join(c, ", "))
}

func (e *AmbiguousError) Unwrap() error { return ErrAmbiguous }

// NetworkName returns the name of the network that ref names (see resolve).
func (t *Tx) NetworkName(ref string) (string, error) { return t.resolve(bucketNetworks, ref) }

// SandboxName returns the name of the sandbox that ref names (see resolve).
func (t *Tx) SandboxName(ref string) (string, error) { return t.resolve(bucketSandboxes, ref) }

// resolve finds a record as docker finds a container: the one named ref,
// else the one whose ID is ref, else the only one whose ID starts with ref.
// It returns ErrNotFound, or an *AmbiguousError when several IDs start with
// ref. Only a miss on the name reads the other records.
func (t *Tx) resolve(bucket []byte, ref string) (string, error) {
	b := t.tx.Bucket(bucket)
	if b == nil || ref == "" {
		return "", ErrNotFound
	}
	if b.Get([]byte(ref)) != nil {
		return ref, nil
	}
	if strings.Trim(strings.ToLower(ref), "0123456789abcdef") != "" {
		return "", ErrNotFound // IDs are hex: no need to look
	}
	ref = strings.ToLower(ref)
	var matches []Candidate
	err := b.ForEach(func(k, v []byte) error {
		var rec struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s record %q: %w", bucket, k, err)
		}
		if strings.HasPrefix(rec.ID, ref) {
			matches = append(matches, Candidate{Name: string(k), ID: rec.ID})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, m := range matches {
		if m.ID == ref {
			return m.Name, nil
		}
	}
	switch len(matches) {
	case 0:
		return "", ErrNotFound
	case 1:
		return matches[0].Name, nil
	}
	return "", &AmbiguousError{Prefix: ref, Candidates: matches}
}
