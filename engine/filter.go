package engine

// Docker's --filter, for listing and pruning networks and sandboxes.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nsnet/nsnet/internal/portspec"
	"github.com/nsnet/nsnet/internal/store"
	"github.com/nsnet/nsnet/types"
)

// Filters select networks or sandboxes as Docker's --filter does.
type Filters = types.Filters

// The filter keys each call accepts. name and id match as Docker's do: a
// value matches a name (or ID) equal to it, or that the value, as a regular
// expression, matches anywhere (so a plain value matches every name that
// contains it). label=KEY or label=KEY=VALUE: the object has the label (with
// that value); label!= the same, for pruning, excludes what has the labels.
// until=TIME (a duration back from now, RFC 3339, a date, or Unix seconds)
// prunes only what was made before.
var (
	NetworkFilterKeys      = []string{"dangling", "driver", "id", "label", "name"}
	SandboxFilterKeys      = []string{"id", "label", "name", "network", "publish"}
	NetworkPruneFilterKeys = []string{"driver", "id", "label", "label!", "name", "until"}
	SandboxPruneFilterKeys = []string{"id", "label", "label!", "name", "network", "publish", "until"}
)

// CheckFilters checks f as the call that takes keys does (what: "pruning
// networks"), e.g. before the user is asked to confirm it.
func CheckFilters(what string, f Filters, keys []string) error {
	_, err := compileFilters(what, f, keys, time.Now())
	return err
}

// selector is a checked Filters: what an object must be to be selected.
type selector struct {
	f        Filters
	dangling *bool
	until    time.Time
	publish  []portspec.Spec
	networks map[string]bool // network= of sandboxes, as network names
}

// compileFilters checks f against the keys of a call (what: "listing
// networks") and parses its values.
func compileFilters(what string, f Filters, keys []string, now time.Time) (*selector, error) {
	s := &selector{f: f}
	for k, vals := range f {
		if !slices.Contains(keys, k) {
			return nil, fmt.Errorf("invalid filter %q for %s: the keys are %s", k, what, strings.Join(keys, ", "))
		}
		for _, v := range vals {
			if err := s.parse(k, v, now); err != nil {
				return nil, fmt.Errorf("invalid filter %s=%s for %s: %w", k, v, what, err)
			}
		}
	}
	return s, nil
}

func (s *selector) parse(key, val string, now time.Time) error {
	switch key {
	case "dangling":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("give true or false")
		}
		if s.dangling != nil && *s.dangling != b {
			return fmt.Errorf("dangling is given both true and false")
		}
		s.dangling = &b
	case "label", "label!":
		if k, _, _ := strings.Cut(val, "="); k == "" {
			return fmt.Errorf("give KEY or KEY=VALUE")
		}
	case "publish":
		sp, err := parsePublishFilter(val)
		if err != nil {
			return err
		}
		s.publish = append(s.publish, sp)
	case "until":
		t, err := parseUntil(val, now)
		if err != nil {
			return err
		}
		if s.until.IsZero() || t.Before(s.until) {
			s.until = t
		}
	case "name", "id", "driver", "network":
		if val == "" {
			return fmt.Errorf("the value is empty")
		}
	}
	return nil
}

// parsePublishFilter parses publish=PORT[-END][/PROTO]: a container port.
func parsePublishFilter(val string) (portspec.Spec, error) {
	sp, err := portspec.Parse(val)
	if err != nil || sp.HostPort != (portspec.Range{}) || sp.HostIP.IsValid() {
		return portspec.Spec{}, fmt.Errorf("give a container port, a range of them, and a protocol if not tcp: 80, 8000-8010/udp")
	}
	return sp, nil
}

// parseUntil parses until=: a duration back from now (24h), an RFC 3339
// time, a date (2006-01-02) or Unix seconds.
func parseUntil(val string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(val); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, val); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(val, 64); err == nil {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("give a duration back from now (24h), an RFC 3339 time, a date (2006-01-02) or Unix seconds")
}

// resolveNetworks turns network= values into network names: a network's
// name, ID or unique ID prefix; one that names no network selects nothing.
func (s *selector) resolveNetworks(tx *store.Tx) {
	if len(s.f["network"]) == 0 {
		return
	}
	s.networks = map[string]bool{}
	for _, ref := range s.f["network"] {
		if n, err := networkByRef(tx, ref); err == nil {
			s.networks[n.Name] = true
		}
	}
}

// common checks the keys every kind of object has.
func (s *selector) common(name, id string, labels map[string]string, created time.Time) bool {
	return anyMatches(s.f["name"], name) && anyMatches(s.f["id"], id) && hasLabels(s.f["label"], labels) &&
		(len(s.f["label!"]) == 0 || !hasLabels(s.f["label!"], labels)) &&
		(s.until.IsZero() || created.Before(s.until))
}

// network reports whether n, with attached sandboxes, is selected.
func (s *selector) network(n *Network, attached int) bool {
	if !s.common(n.Name, n.ID, n.Labels, n.Created) {
		return false
	}
	if vals := s.f["driver"]; len(vals) > 0 && !slices.Contains(vals, n.Driver()) {
		return false
	}
	return s.dangling == nil || *s.dangling == (attached == 0 && n.Name != DefaultNetwork)
}

// sandbox reports whether sb (with its ports) is selected.
func (s *selector) sandbox(sb *Sandbox) bool {
	if !s.common(sb.Name, sb.ID, sb.Labels, sb.Created) {
		return false
	}
	if s.networks != nil && !slices.ContainsFunc(sb.Endpoints, func(ep Endpoint) bool { return s.networks[ep.Network] }) {
		return false
	}
	return len(s.publish) == 0 || slices.ContainsFunc(sb.Ports, func(m Mapping) bool {
		return slices.ContainsFunc(s.publish, func(sp portspec.Spec) bool { return sp.Matches(m) })
	})
}

// anyMatches reports whether s matches one of vals (or vals is empty), as
// Docker matches names and IDs: equal, or matched by the value as a regular
// expression (a value that is not one matches only when equal).
func anyMatches(vals []string, s string) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if v == s {
			return true
		}
		if re, err := regexp.Compile(v); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

// hasLabels reports whether labels has every one of vals (KEY, or
// KEY=VALUE), as Docker's label filters must all match.
func hasLabels(vals []string, labels map[string]string) bool {
	for _, v := range vals {
		k, want, withValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (withValue && got != want) {
			return false
		}
	}
	return true
}
