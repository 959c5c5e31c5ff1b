package resolver

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// forward asks upstream, in order, the question of req, and returns the
// first answer that is neither SERVFAIL nor REFUSED, with req's ID; or
// SERVFAIL when none gives one. The query sent keeps req's question and
// OPT record but has an ID of its own, from a fresh socket (a random source
// port), so that an answer is hard to forge.
func (s *Server) forward(ctx context.Context, req *dns.Msg, upstream []netip.AddrPort, tcp bool) *dns.Msg {
	q := req.Copy()
	q.Id = dns.Id()
	for _, server := range upstream {
		r, err := s.exchange(ctx, q, server, tcp)
		if err != nil || !answers(r, q) || r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			continue
		}
		r.Id = req.Id
		return r
	}
	return failure(req, dns.RcodeServerFailure)
}

// exchange sends q to server over UDP, or TCP if tcp, within
// forwardTimeout, or until ctx ends.
func (s *Server) exchange(ctx context.Context, q *dns.Msg, server netip.AddrPort, tcp bool) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	var c net.Conn
	err := s.inNamespace(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, server.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // a shutdown ends the wait at once
	defer stop()
	client := &dns.Client{Net: network, Timeout: forwardTimeout}
	r, _, err := client.ExchangeWithConnContext(ctx, q, &dns.Conn{Conn: c})
	return r, err
}

// answers reports whether r is a reply to q's question.
func answers(r, q *dns.Msg) bool {
	if !r.Response || len(r.Question) != 1 {
		return false
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
