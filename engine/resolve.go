package engine

import (
	"errors"
	"fmt"

	"github.com/nsnet/nsnet/internal/store"
)

// Every command that takes the name of a network or sandbox also takes its ID
// or a unique prefix of its ID, as docker does: an exact name wins, then an
// exact ID, then the only ID that starts with what was given. The lookups
// below are the only way the engine finds a record a user named.

// sandboxByRef returns the sandbox, with its ports, that ref names.
func sandboxByRef(tx *store.Tx, ref string) (*Sandbox, error) {
	name, err := tx.SandboxName(ref)
	if err != nil {
		return nil, refError("sandbox", ref, err)
	}
	return tx.Sandbox(name)
}

// sandboxRecordByRef returns the sandbox that ref names without its ports.
func sandboxRecordByRef(tx *store.Tx, ref string) (*Sandbox, error) {
	name, err := tx.SandboxName(ref)
	if err != nil {
		return nil, refError("sandbox", ref, err)
	}
	return tx.SandboxRecord(name)
}

// networkByRef returns the network that ref names.
func networkByRef(tx *store.Tx, ref string) (*Network, error) {
	name, err := tx.NetworkName(ref)
	if err != nil {
		return nil, refError("network", ref, err)
	}
	return tx.Network(name)
}

// refError explains a failed lookup of ref: not found, or ambiguous.
func refError(kind, ref string, err error) error {
	var amb *store.AmbiguousError
	switch {
	case errors.Is(err, store.ErrNotFound) && kind == "sandbox":
		return sandboxNotFound(ref, err)
	case errors.Is(err, store.ErrNotFound):
		return networkNotFound(ref, err)
	case errors.As(err, &amb):
		return fmt.Errorf("%s %s is ambiguous: %w: give more of the ID, or the name (see nsnet %s ls)", kind, ref, err, kind)
	}
	return err
}
