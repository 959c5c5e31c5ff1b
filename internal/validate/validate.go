// Package validate parses and checks user input: object names, interface names,
// IPv4 addresses, MAC addresses and labels.
//
// Invariants: every function is pure (no kernel or store access), and every error
// message names the offending value and says what a valid one looks like, so the
// CLI can print it as is.
package validate

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest network or sandbox name nsnet accepts.
const MaxNameLen = 64

// MaxIfNameLen is the kernel's limit on interface names (IFNAMSIZ-1).
const MaxIfNameLen = 15

// Name checks a network or sandbox name. kind ("network", "sandbox") is used
// in the message. Names are 1 to 64 characters of [a-zA-Z0-9_.-], starting
// with a letter or digit, as Docker's container names are.
func Name(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s name is empty: give a name of 1 to %d characters", kind, MaxNameLen)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%s name %q is %d characters long: the limit is %d", kind, s, len(s), MaxNameLen)
	case !isAlnum(s[0]):
		return fmt.Errorf("invalid %s name %q: it must start with a letter or digit", kind, s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !isNameChar(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("invalid %s name %q: character %q is not allowed (use letters, digits, '_', '.' and '-')", kind, s, r)
	}
	return nil
}

// IfName checks a Linux interface name: 1 to 15 printable ASCII characters,
// no '/', ':' or '%' (the kernel's name templates), not ".", "..", "all" or
// "default".
func IfName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("interface name is empty")
	case len(s) > MaxIfNameLen:
		return fmt.Errorf("interface name %q is %d characters long: the kernel allows at most %d", s, len(s), MaxIfNameLen)
	case s == "." || s == "..":
		return fmt.Errorf("invalid interface name %q", s)
	case s == "all" || s == "default":
		return fmt.Errorf("interface name %q is reserved by the kernel (net.ipv4.conf.%s): choose another name", s, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' || c == ':' || c == '%' {
			r, _ := utf8.DecodeRuneInString(s[i:])
			return fmt.Errorf("invalid interface name %q: character %q is not allowed (use printable ASCII without '/', ':', '%%' or spaces)", s, r)
		}
	}
	return nil
}

// IPv4 parses a plain IPv4 address (no prefix, no zone).
func IPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid IP address %q: expected dotted IPv4 like 192.168.88.11", s)
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("IP address %q is not IPv4: give an IPv6 address with --ip6, on a network made with --ipv6", s)
	}
	return a, nil
}

// IPv6 parses an IPv6 address that can be a gateway or a sandbox's: not
// IPv4 or IPv4-mapped, without a zone, and not unspecified, loopback,
// link-local or multicast.
func IPv6(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address %q: expected an address like fd00:1::2", s)
	}
	why := ""
	switch {
	case a.Is4():
		why = "is IPv4: give it with --ip, and an IPv6 address here"
	case a.Is4In6():
		why = "is an IPv4-mapped address: give the IPv4 address with --ip"
	case a.Zone() != "":
		why = "has a zone: give it without %" + a.Zone()
	case a.IsUnspecified():
		why = "is the unspecified address"
	case a.IsLoopback():
		why = "is the loopback address"
	case a.IsLinkLocalUnicast():
		why = "is link-local (fe80::/10): every interface has one already"
	case a.IsMulticast():
		why = "is multicast (ff00::/8)"
	}
	if why != "" {
		return netip.Addr{}, fmt.Errorf("IPv6 address %q %s", s, why)
	}
	return a, nil
}

// MAC parses a unicast Ethernet MAC address such as 02:42:c0:a8:58:0b.
func MAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fmt.Errorf("invalid MAC address %q: expected six hex bytes like 02:42:c0:a8:58:0b", s)
	}
	if m[0]&1 == 1 {
		return nil, fmt.Errorf("MAC address %q is multicast: the first byte must be even (e.g. 02:...)", s)
	}
	if isZero(m) {
		return nil, fmt.Errorf("MAC address %q is all zeros", s)
	}
	return m, nil
}

func isZero(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func isNameChar(r rune) bool {
	return r < 128 && (isAlnum(byte(r)) || r == '_' || r == '.' || r == '-')
}

// Limits on labels, which nsnet keeps in every record that has them.
const (
	MaxLabelKeyLen   = 255
	MaxLabelValueLen = 4096
	MaxLabels        = 64
)

// Labels checks labels (--label KEY=VALUE) of what ("network n1"): as
// Docker, a key is not empty and has no white space; a value may be empty or
// hold anything printable. Both are valid UTF-8 without control characters,
// and bounded in length, as is their number.
func Labels(what string, labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%s has %d labels: the limit is %d", what, len(labels), MaxLabels)
	}
	for k, v := range labels {
		if err := label(k, v); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func label(k, v string) error {
	switch {
	case k == "":
		return fmt.Errorf("invalid label %q: the key is empty: give KEY=VALUE", k+"="+v)
	case len(k) > MaxLabelKeyLen:
		return fmt.Errorf("label key %q is %d bytes long: the limit is %d", k, len(k), MaxLabelKeyLen)
	case len(v) > MaxLabelValueLen:
		return fmt.Errorf("the value of label %s is %d bytes long: the limit is %d", k, len(v), MaxLabelValueLen)
	case strings.IndexFunc(k, unicode.IsSpace) >= 0:
		return fmt.Errorf("invalid label key %q: it contains white space", k)
	case !printable(k):
		return fmt.Errorf("invalid label key %q: it must be printable UTF-8", k)
	case !printable(v):
		return fmt.Errorf("invalid value %q of label %s: it must be printable UTF-8 (no control characters)", v, k)
	}
	return nil
}

func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}
