package topology

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the graph as indented JSON.
func (g *Graph) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(g)
}

// WriteText writes the graph as a tree for a terminal.
func (g *Graph) WriteText(w io.Writer) {
	h := g.Host
	fmt.Fprintln(w, "host")
	items := []string{}
	for _, u := range h.Uplinks {
		items = append(items, "uplink "+describe(u))
	}
	items = append(items, "route "+or(h.DefaultRoute, "no default route"),
		fmt.Sprintf("ip_forward %s; NAT: %s", onOff(h.Forwarding), nat(h)))
	for i, it := range items {
		last := i == len(items)-1 && len(g.Networks) == 0
		fmt.Fprintln(w, branch(last)+it)
	}
	for i, n := range g.Networks {
		last := i == len(g.Networks)-1
		fmt.Fprintln(w, branch(last)+networkLine(n))
		indent := "│   "
		if last {
			indent = "    "
		}
		for j, a := range n.Sandboxes {
			lastSb := j == len(n.Sandboxes)-1
			fmt.Fprintln(w, indent+branch(lastSb)+"sandbox "+a.Sandbox)
			sub := indent + "│   "
			if lastSb {
				sub = indent + "    "
			}
			lines := []string{
				describe(a.Inside),
				"veth peer " + describe(a.HostVeth),
			}
			for _, p := range a.Ports {
				lines = append(lines, "published "+p)
			}
			for k, l := range lines {
				fmt.Fprintln(w, sub+branch(k == len(lines)-1)+l)
			}
		}
	}
}

func branch(last bool) string {
	if last {
		return "└── "
	}
	return "├── "
}

func networkLine(n Network) string {
	s := fmt.Sprintf("network %s %s, bridge %s, gateway %s", n.Name, n.Subnet, n.Bridge.Name, n.Gateway)
	var marks []string
	if n.Bridge.State != "up" {
		marks = append(marks, "bridge "+n.Bridge.State)
	}
	switch {
	case n.Internal:
		marks = append(marks, "internal: no way beyond the host")
	case n.Masquerade:
		marks = append(marks, "masquerade")
	default:
		marks = append(marks, "NO masquerade rule")
	}
	return s + " (" + strings.Join(marks, ", ") + ")"
}

// describe is a link's addresses, MAC, MTU and state on one line.
func describe(l Link) string {
	var parts []string
	if l.Name != "" {
		parts = append(parts, l.Name)
	}
	parts = append(parts, l.Addrs...)
	if l.MAC != "" {
		parts = append(parts, "mac "+l.MAC)
	}
	if l.MTU != 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", l.MTU))
	}
	if l.Master != "" {
		parts = append(parts, "port of "+l.Master)
	}
	if l.Hairpin {
		parts = append(parts, "hairpin")
	}
	return strings.Join(append(parts, l.State), ", ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "OFF"
}

func nat(h Host) string {
	if h.TableExists {
		return "table " + h.Table
	}
	return "table " + h.Table + " MISSING (nft flush ruleset?)"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// WriteDot writes the graph in Graphviz's dot language: the uplink and
// the host on top, a cluster per network with its bridge and its sandboxes'
// host veths, each sandbox's interface below it, and each sandbox once
// (one on two networks has an interface in each).
func (g *Graph) WriteDot(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("graph nsnet {")
	p("  rankdir=TB;")
	p(`  node [shape=box, fontname="monospace", fontsize=10];`)
	p(`  edge [fontname="monospace", fontsize=9];`)
	h := g.Host
	p("  beyond [shape=ellipse, label=%s];", q("beyond the host\n"+or(h.DefaultRoute, "no default route")))
	p("  host [shape=box3d, label=%s];", q(fmt.Sprintf("host\nip_forward %s\nNAT: %s", onOff(h.Forwarding), nat(h))))
	for _, u := range h.Uplinks {
		p("  %s [label=%s];", q("link:"+u.Name), q(strings.Join(append([]string{u.Name}, lines(u)...), "\n")))
		p("  beyond -- %s;", q("link:"+u.Name))
		p("  %s -- host;", q("link:"+u.Name))
	}
	if len(h.Uplinks) == 0 {
		p("  beyond -- host;")
	}
	sandboxes := map[string]bool{}
	for _, n := range g.Networks {
		p("  subgraph %s {", q("cluster_"+n.Name))
		label := fmt.Sprintf("network %s %s", n.Name, n.Subnet)
		if n.Internal {
			label += " (internal)"
		}
		p("    label=%s;", q(label))
		if n.Internal {
			p("    style=dashed;")
		}
		br := "bridge:" + n.Bridge.Name
		p("    %s [shape=box, style=rounded, label=%s];", q(br), q(strings.Join(append([]string{"bridge " + n.Bridge.Name, "gateway " + n.Gateway}, lines(n.Bridge)...), "\n")))
		for _, a := range n.Sandboxes {
			v := "veth:" + a.HostVeth.Name
			p("    %s [label=%s];", q(v), q(strings.Join(append([]string{a.HostVeth.Name}, lines(a.HostVeth)...), "\n")))
			p("    %s -- %s;", q(br), q(v))
		}
		p("  }")
		edge := "  host -- %s;"
		if n.Internal {
			edge = `  host -- %s [style=dashed, label="gateway only, not forwarded"];`
		} else if n.Masquerade {
			edge = `  host -- %s [label="masquerade"];`
		}
		p(edge, q(br))
		for _, a := range n.Sandboxes {
			in := "if:" + a.Sandbox + ":" + a.Inside.Name
			p("  %s [label=%s];", q(in), q(strings.Join(append([]string{a.Inside.Name}, lines(a.Inside)...), "\n")))
			p("  %s -- %s [label=\"veth pair\"];", q("veth:"+a.HostVeth.Name), q(in))
			if !sandboxes[a.Sandbox] {
				sandboxes[a.Sandbox] = true
				p("  %s [shape=component, label=%s];", q("sandbox:"+a.Sandbox), q("sandbox "+a.Sandbox))
			}
			p("  %s -- %s;", q(in), q("sandbox:"+a.Sandbox))
			for _, port := range a.Ports {
				p("  host -- %s [style=dotted, label=%s];", q("sandbox:"+a.Sandbox), q("published "+port))
			}
		}
	}
	p("}")
}

// lines are a link's addresses, MAC and state, one a line.
func lines(l Link) []string {
	out := append([]string(nil), l.Addrs...)
	if l.MAC != "" {
		out = append(out, l.MAC)
	}
	return append(out, l.State)
}

// q quotes s as a dot string: backslashes and quotes escaped, newlines as
// Graphviz's \n.
func q(s string) string {
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
	return `"` + s + `"`
}
