package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chain is a chain of a table nsnet does not own, decoded for diagnose.
type Chain struct {
	Family   string      `json:"family"` // ip, inet, bridge, netdev
	Table    string      `json:"table"`
	Name     string      `json:"name"`
	Hook     string      `json:"hook,omitempty"` // prerouting, input, forward, output, postrouting, ingress; empty for a chain only jumped to
	Priority int         `json:"priority"`
	Type     string      `json:"type,omitempty"`   // filter, nat, route
	Policy   string      `json:"policy,omitempty"` // accept or drop, for a base chain
	Device   string      `json:"device,omitempty"` // a netdev chain's device
	Rules    []ChainRule `json:"rules,omitempty"`
}

// Ref names the chain as nft commands do: "ip filter FORWARD".
func (c Chain) Ref() ChainRef { return ChainRef{Family: c.Family, Table: c.Table, Chain: c.Name} }

// ChainRule is one rule: the conditions a packet must meet, all of them,
// and what happens to it then.
type ChainRule struct {
	Conds []Cond `json:"conds,omitempty"`
	// Verdict: accept, drop, reject, jump, goto, return, nat (the packet's
	// addresses are translated and it goes on), maybe (a verdict map or
	// queue: unknown), or empty (the rule only counts or logs: the packet
	// goes on).
	Verdict string `json:"verdict,omitempty"`
	Target  string `json:"target,omitempty"` // the chain of jump and goto
}

// Cond is one condition of a rule. Field is one of iifname, oifname, iif,
// oif, saddr, daddr, l4proto, nfproto, sport, dport, ct-state, ct-status;
// empty when nsnet cannot follow it (What then says what it is). Op is "=="
// (the packet's value is one of Values) or "!=" (none of them). Interface
// names may end in "*" (a prefix); addresses are prefixes ("10.0.0.0/8");
// ct-state values are new, established, related, invalid, untracked; the
// ct-status value dnat is a translated destination.
type Cond struct {
	Field  string   `json:"field,omitempty"`
	Op     string   `json:"op,omitempty"`
	Values []string `json:"values,omitempty"`
	What   string   `json:"what,omitempty"`
}

// String is the condition in nft's words, roughly.
func (c Cond) String() string {
	if c.Field == "" {
		return c.What
	}
	v := strings.Join(c.Values, ", ")
	if len(c.Values) > 1 {
		v = "{ " + v + " }"
	}
	op := ""
	if c.Op == "!=" {
		op = "!= "
	}
	return strings.ReplaceAll(c.Field, "-", " ") + " " + op + v
}

// String is the rule in nft's words, roughly.
func (r ChainRule) String() string {
	var parts []string
	for _, c := range r.Conds {
		parts = append(parts, c.String())
	}
	v := r.Verdict
	if r.Target != "" {
		v += " " + r.Target
	}
	return strings.TrimSpace(strings.Join(append(parts, v), " "))
}

// source is what a register holds: a meta key, a payload field, a
// conntrack key, possibly masked.
type source struct {
	field string // as Cond.Field; "" when not understood
	mask  []byte
	what  string
}

// decodeRule turns a rule's expressions into conditions and a verdict.
func decodeRule(exprs []expr.Any, sets *setCache) ChainRule {
	regs := map[uint32]source{}
	var r ChainRule
	for _, e := range exprs {
		switch x := e.(type) {
		case *expr.Meta:
			if !x.SourceRegister {
				regs[x.Register] = metaSource(x.Key)
			}
		case *expr.Payload:
			if x.OperationType == expr.PayloadLoad {
				regs[x.DestRegister] = payloadSource(x)
			}
		case *expr.Ct:
			if !x.SourceRegister {
				regs[x.Register] = ctSource(x.Key)
			}
		case *expr.Bitwise:
			s := regs[x.SourceRegister]
			s.mask = x.Mask
			regs[x.DestRegister] = s
		case *expr.Cmp:
			r.Conds = append(r.Conds, compare(regs[x.Register], x.Op, x.Data))
		case *expr.Lookup:
			if x.IsDestRegSet {
				r.Conds = append(r.Conds, Cond{What: "a lookup in map @" + x.SetName})
				if x.DestRegister == 0 {
					r.Verdict = "maybe"
				}
				continue
			}
			r.Conds = append(r.Conds, lookup(regs[x.SourceRegister], x, sets))
		case *expr.Verdict:
			r.Verdict, r.Target = verdictName(x.Kind), x.Chain
		case *expr.Reject:
			r.Verdict = "reject"
		case *expr.Target:
			r.Verdict = xtVerdict(x.Name, r.Verdict)
		case *expr.NAT, *expr.Masq, *expr.Redir:
			r.Verdict = "nat"
		case *expr.Queue:
			r.Verdict = "maybe"
		case *expr.Counter, *expr.Log, *expr.Immediate:
		case *expr.Match:
			r.Conds = append(r.Conds, Cond{What: "iptables match " + x.Name})
		case *expr.Range:
			r.Conds = append(r.Conds, Cond{What: "a range of " + nameOr(regs[x.Register])})
		default:
			r.Conds = append(r.Conds, Cond{What: fmt.Sprintf("an expression nsnet does not follow (%T)", e)})
		}
	}
	return r
}

func nameOr(s source) string {
	if s.field != "" {
		return s.field
	}
	return s.what
}

func verdictName(k expr.VerdictKind) string {
	switch k {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictJump:
		return "jump"
	case expr.VerdictGoto:
		return "goto"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return ""
	}
	return "maybe"
}

// xtVerdict is the verdict of an iptables target kept as such by
// iptables-nft.
func xtVerdict(name, prev string) string {
	switch name {
	case "REJECT", "DROP":
		return "reject"
	case "ACCEPT":
		return "accept"
	case "MASQUERADE", "SNAT", "DNAT", "REDIRECT":
		return "nat"
	case "LOG", "MARK", "CONNMARK", "CHECKSUM", "TCPMSS", "NOTRACK", "CT":
		return prev
	}
	return "maybe"
}

func metaSource(k expr.MetaKey) source {
	switch k {
	case expr.MetaKeyIIFNAME:
		return source{field: "iifname"}
	case expr.MetaKeyOIFNAME:
		return source{field: "oifname"}
	case expr.MetaKeyIIF:
		return source{field: "iif"}
	case expr.MetaKeyOIF:
		return source{field: "oif"}
	case expr.MetaKeyL4PROTO:
		return source{field: "l4proto"}
	case expr.MetaKeyNFPROTO:
		return source{field: "nfproto"}
	case expr.MetaKeyPROTOCOL:
		return source{field: "ethertype"}
	}
	return source{what: fmt.Sprintf("meta key %d", k)}
}

func payloadSource(p *expr.Payload) source {
	switch {
	case p.Base == expr.PayloadBaseNetworkHeader && p.Offset == 12 && p.Len >= 1 && p.Len <= 4:
		return source{field: "saddr"} // nft loads only the bytes a prefix covers
	case p.Base == expr.PayloadBaseNetworkHeader && p.Offset == 16 && p.Len >= 1 && p.Len <= 4:
		return source{field: "daddr"}
	case p.Base == expr.PayloadBaseNetworkHeader && p.Offset == 9 && p.Len == 1:
		return source{field: "l4proto"}
	case p.Base == expr.PayloadBaseTransportHeader && p.Offset == 0 && p.Len == 2:
		return source{field: "sport"}
	case p.Base == expr.PayloadBaseTransportHeader && p.Offset == 2 && p.Len == 2:
		return source{field: "dport"}
	}
	return source{what: fmt.Sprintf("%d bytes at offset %d of header %d", p.Len, p.Offset, p.Base)}
}

func ctSource(k expr.CtKey) source {
	switch k {
	case expr.CtKeySTATE:
		return source{field: "ct-state"}
	case expr.CtKeySTATUS:
		return source{field: "ct-status"}
	}
	return source{what: fmt.Sprintf("ct key %d", k)}
}

// compare decodes "register op data" for the register's source.
func compare(s source, op expr.CmpOp, data []byte) Cond {
	if s.field == "" || (op != expr.CmpOpEq && op != expr.CmpOpNeq) {
		return Cond{What: fmt.Sprintf("a comparison of %s", nameOr(s))}
	}
	c := Cond{Field: s.field, Op: "=="}
	if op == expr.CmpOpNeq {
		c.Op = "!="
	}
	switch s.field {
	case "ct-state", "ct-status":
		return ctCond(s, c, data)
	case "saddr", "daddr":
		v, ok := prefixValue(data, s.mask)
		if !ok {
			return Cond{What: "a comparison of " + s.field}
		}
		c.Values = []string{v}
		return c
	}
	if s.mask != nil {
		return Cond{What: "a masked comparison of " + s.field}
	}
	v, ok := value(s.field, data)
	if !ok {
		return Cond{What: "a comparison of " + s.field}
	}
	c.Values = []string{v}
	return c
}

// ctCond decodes "ct state/status & mask != 0" (the packet has one of the
// mask's bits) and "ct state == value".
func ctCond(s source, c Cond, data []byte) Cond {
	bits := nativeUint32(data)
	switch {
	case s.mask != nil && bits == 0 && c.Op == "!=":
		c.Op, bits = "==", nativeUint32(s.mask)
	case s.mask != nil && bits == 0:
		c.Op, bits = "!=", nativeUint32(s.mask)
	case s.mask != nil:
		return Cond{What: "a masked comparison of " + s.field}
	}
	names := ctStateNames
	if s.field == "ct-status" {
		names = ctStatusNames
	}
	for _, n := range names {
		if bits&n.bit != 0 {
			c.Values = append(c.Values, n.name)
			bits &^= n.bit
		}
	}
	if bits != 0 || len(c.Values) == 0 {
		return Cond{What: fmt.Sprintf("%s bits %#x", s.field, nativeUint32(data))}
	}
	return c
}

type bitName struct {
	bit  uint32
	name string
}

var ctStateNames = []bitName{
	{expr.CtStateBitINVALID, "invalid"}, {expr.CtStateBitESTABLISHED, "established"},
	{expr.CtStateBitRELATED, "related"}, {expr.CtStateBitNEW, "new"}, {expr.CtStateBitUNTRACKED, "untracked"},
}

var ctStatusNames = []bitName{{1 << 4, "snat"}, {1 << 5, "dnat"}}

func nativeUint32(b []byte) uint32 {
	if len(b) < 4 {
		var p [4]byte
		copy(p[:], b)
		b = p[:]
	}
	return binary.NativeEndian.Uint32(b)
}

// lookup decodes "register [!]@set" when the set's elements can be read.
func lookup(s source, l *expr.Lookup, sets *setCache) Cond {
	vals, ok := sets.values(l.SetName)
	if s.field == "" || s.mask != nil || !ok {
		return Cond{What: fmt.Sprintf("%s in set @%s", nameOr(s), l.SetName)}
	}
	c := Cond{Field: s.field, Op: "==", Values: vals}
	if l.Invert {
		c.Op = "!="
	}
	if s.field == "saddr" || s.field == "daddr" {
		for i, v := range c.Values {
			c.Values[i] = v + "/32"
		}
	}
	return c
}

// prefixValue decodes the leading bytes of an address, compared under a
// prefix mask or none, as a prefix.
func prefixValue(data, mask []byte) (string, bool) {
	if len(data) < 1 || len(data) > 4 {
		return "", false
	}
	bits := 8 * len(data)
	if mask != nil {
		if len(mask) != len(data) {
			return "", false
		}
		var m [4]byte
		copy(m[:], mask)
		v := binary.BigEndian.Uint32(m[:])
		bits = 0
		for v&(1<<31) != 0 {
			bits, v = bits+1, v<<1
		}
		if v != 0 {
			return "", false
		}
	}
	var a [4]byte
	copy(a[:], data)
	return netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked().String(), true
}

// value decodes what a field is compared with.
func value(field string, data []byte) (string, bool) {
	switch field {
	case "iifname", "oifname":
		return ifnameValue(data), true
	case "iif", "oif":
		if len(data) != 4 {
			return "", false
		}
		return strconv.Itoa(int(binary.NativeEndian.Uint32(data))), true
	case "l4proto":
		if len(data) != 1 {
			return "", false
		}
		return protoName(data[0]), true
	case "nfproto":
		if len(data) != 1 {
			return "", false
		}
		return nfprotoName(data[0]), true
	case "sport", "dport":
		if len(data) != 2 {
			return "", false
		}
		return strconv.Itoa(int(binary.BigEndian.Uint16(data))), true
	}
	return "", false
}

// decodeSetKey decodes an element of a set of one of the types rules look up.
func decodeSetKey(typ string, key []byte) (string, bool) {
	switch typ {
	case "ifname":
		return ifnameValue(key), true
	case "ipv4_addr":
		if len(key) != 4 {
			return "", false
		}
		return netip.AddrFrom4([4]byte(key)).String(), true
	case "inet_service":
		if len(key) < 2 {
			return "", false
		}
		return strconv.Itoa(int(binary.BigEndian.Uint16(key))), true
	case "inet_proto":
		if len(key) < 1 {
			return "", false
		}
		return protoName(key[0]), true
	}
	return "", false
}

// ifnameValue is an interface name compared: padded with NULs when exact,
// or a prefix ("veth*") when shorter than IFNAMSIZ without a NUL.
func ifnameValue(data []byte) string {
	name := strings.TrimRight(string(data), "\x00")
	if len(data) < unix.IFNAMSIZ && (len(data) == 0 || data[len(data)-1] != 0) {
		return name + "*"
	}
	return name
}

func protoName(p byte) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	}
	return strconv.Itoa(int(p))
}

func nfprotoName(p byte) string {
	switch p {
	case unix.NFPROTO_IPV4:
		return "ipv4"
	case unix.NFPROTO_IPV6:
		return "ipv6"
	}
	return strconv.Itoa(int(p))
}
