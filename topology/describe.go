package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// Describe returns the topology as readable text: each sub-topology with its
// nodes, the topics they read and write, the stores they use, and the edges
// between them.
//
//	Sub-topology 0
//	  Source:    from-lines (topics: lines)
//	    --> from-lines-filter
//	  Processor: from-lines-filter
//	    --> from-lines-filter-to-out
//	    <-- from-lines
//	  Sink:      from-lines-filter-to-out (topic: out)
//	    <-- from-lines-filter
func (t *Topology) Describe() string {
	var sb strings.Builder
	for _, g := range t.GlobalStores() {
		fmt.Fprintf(&sb, "Global store: %s (topic: %s)\n", g.Spec.Name, g.Topic)
	}
	for i, st := range t.subs {
		if i > 0 || len(t.gorder) > 0 {
			sb.WriteByte('\n')
		}
		fmt.Fprintf(&sb, "Sub-topology %d\n", st.ID)
		for _, n := range st.nodes {
			switch n.kind {
			case sourceNode:
				fmt.Fprintf(&sb, "  Source:    %s (%s)\n", n.name, describeSource(n))
			case processorNode:
				fmt.Fprintf(&sb, "  Processor: %s", n.name)
				if len(n.stores) > 0 {
					fmt.Fprintf(&sb, " (stores: %s)", strings.Join(n.stores, ", "))
				}
				sb.WriteByte('\n')
			case sinkNode:
				fmt.Fprintf(&sb, "  Sink:      %s (%s)\n", n.name, describeSink(n))
			}
			for _, c := range n.children {
				fmt.Fprintf(&sb, "    --> %s\n", c.name)
			}
			for _, p := range n.parents {
				fmt.Fprintf(&sb, "    <-- %s\n", p)
			}
		}
	}
	return sb.String()
}

func describeSource(n *node) string {
	if n.pattern != nil {
		return "pattern: " + n.patternText
	}
	names := make([]string, len(n.topics))
	for i, tp := range n.topics {
		names[i] = topicLabel(tp)
	}
	return "topics: " + strings.Join(names, ", ")
}

func describeSink(n *node) string {
	if n.dynamic {
		return "topic: chosen per record"
	}
	return "topic: " + topicLabel(n.sinkTopic)
}

func topicLabel(tp Topic) string {
	if tp.Internal {
		return "<app>-" + tp.Name
	}
	return tp.Name
}

// Mermaid returns the topology as a Mermaid flowchart: a box per
// sub-topology, its nodes inside, topics and stores as their own shapes.
func (t *Topology) Mermaid() string {
	var sb strings.Builder
	sb.WriteString("flowchart TD\n")
	ids := map[string]string{}
	id := func(kind, name string) string {
		key := kind + ":" + name
		if v, ok := ids[key]; ok {
			return v
		}
		v := kind + strconv.Itoa(len(ids))
		ids[key] = v
		return v
	}
	var edges []string
	for _, g := range t.GlobalStores() {
		edges = append(edges, fmt.Sprintf("  %s[/\"%s\"/] --> %s[(\"%s\")]", id("t", g.Topic), mermaidText(g.Topic), id("s", g.Spec.Name), mermaidText("global: "+g.Spec.Name)))
	}
	for _, st := range t.subs {
		fmt.Fprintf(&sb, "  subgraph sub%d[\"Sub-topology %d\"]\n", st.ID, st.ID)
		for _, n := range st.nodes {
			fmt.Fprintf(&sb, "    %s[\"%s\"]\n", id("n", n.name), mermaidText(n.name))
			for _, c := range n.children {
				edges = append(edges, fmt.Sprintf("  %s --> %s", id("n", n.name), id("n", c.name)))
			}
			for _, s := range n.stores {
				edges = append(edges, fmt.Sprintf("  %s --- %s[(\"%s\")]", id("n", n.name), id("s", s), mermaidText(s)))
			}
			switch n.kind {
			case sourceNode:
				for _, tp := range n.topics {
					edges = append(edges, fmt.Sprintf("  %s[/\"%s\"/] --> %s", id("t", tp.Name), mermaidText(topicLabel(tp)), id("n", n.name)))
				}
				if n.pattern != nil {
					edges = append(edges, fmt.Sprintf("  %s[/\"%s\"/] --> %s", id("p", n.patternText), mermaidText("pattern: "+n.patternText), id("n", n.name)))
				}
			case sinkNode:
				if n.dynamic {
					edges = append(edges, fmt.Sprintf("  %s --> %s[/\"%s\"/]", id("n", n.name), id("d", n.name), "topic chosen per record"))
				} else {
					edges = append(edges, fmt.Sprintf("  %s --> %s[/\"%s\"/]", id("n", n.name), id("t", n.sinkTopic.Name), mermaidText(topicLabel(n.sinkTopic))))
				}
			}
		}
		sb.WriteString("  end\n")
	}
	for _, e := range edges {
		sb.WriteString(e)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// mermaidText escapes text for a quoted Mermaid label.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;")
	return r.Replace(s)
}
