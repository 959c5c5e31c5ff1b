package diagnose

import "fmt"

// What a probe found, as ProbeResult.Reached.
const (
	Answered    = "answered"    // an echo reply, a TCP connection, a UDP datagram back, a DNS answer
	Refused     = "refused"     // a TCP reset or an ICMP port unreachable: the way works, nothing listens
	Unreachable = "unreachable" // an ICMP error on the way, or no route in the sandbox
	Silent      = "silent"      // nothing came back in time
)

// ProbeResult is what real traffic sent from the sandbox found, and whether
// it agrees with the analysis.
type ProbeResult struct {
	Sent      string `json:"sent"`    // what was sent, from where, to where
	Proto     string `json:"proto"`   // icmp, tcp, udp, dns
	Reached   string `json:"reached"` // Answered, Refused, Unreachable, Silent
	Outcome   string `json:"outcome"` // in words, with the kernel's error
	Agrees    *bool  `json:"agrees"`  // nil: the probe cannot tell
	Agreement string `json:"agreement"`
}

// expectation is what the analysis predicts a probe meets.
func (r *Report) expectation() string {
	switch {
	case r.First == nil:
		return Answered
	case r.First.listener:
		return Refused
	}
	return Silent
}

// Agree compares a probe's result with the analysis and records both.
func (r *Report) Agree(p ProbeResult) {
	exp := r.expectation()
	yes, no := true, false
	switch {
	case p.Reached == exp, exp == Silent && p.Reached == Unreachable:
		p.Agrees = &yes
		p.Agreement = "the kernel agrees with the analysis: " + predicted(exp)
	case exp == Answered && p.Reached == Refused && r.remoteEnd():
		p.Agrees = &yes
		p.Agreement = "the kernel agrees with the analysis: the packet gets through; nothing listens at the far end, beyond the host, which the analysis cannot see"
	case p.Reached == Silent && p.Proto == "udp":
		p.Agreement = "cannot tell: a UDP server that does not reply looks like a lost datagram; the analysis predicts " + predicted(exp)
	default:
		p.Agrees = &no
		p.Agreement = fmt.Sprintf("the kernel DISAGREES with the analysis, which predicts %s, but the probe was %s: something this analysis does not model is in the way, or the state changed", predicted(exp), p.Reached)
	}
	r.Probe = &p
}

func predicted(exp string) string {
	switch exp {
	case Answered:
		return "the packet gets through and is answered"
	case Refused:
		return "the packet gets through and is refused, as nothing listens"
	}
	return "the packet does not get through"
}

// remoteEnd reports whether the path a probe follows ends beyond the host.
func (r *Report) remoteEnd() bool {
	return len(r.Paths) > 0 && r.Paths[len(r.Paths)-1].Remote
}
