package engine

import "github.com/nsnet/nsnet/internal/store"

// FirewallDiff lists how the state root's nftables table differs from what
// the store calls for, as gc would report it (empty when they agree). It
// only reads: `nsnet diagnose` shows it.
func (e *Engine) FirewallDiff() ([]string, error) {
	var diffs []string
	err := e.read(func(tx *store.Tx) error {
		s, err := firewallState(tx)
		if err != nil {
			return err
		}
		diffs, err = e.k.fw.Diff(s.nets, s.ports, s.guards)
		return err
	})
	return diffs, err
}
