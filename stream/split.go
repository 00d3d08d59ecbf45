package stream

import (
	"fmt"

	"github.com/riffle-streams/riffle/topology"
)

// Splitter divides a stream into named branches. Each record goes to the
// first branch, in the order the branches were added, whose predicate holds;
// failing all, to the default branch if there is one, else nowhere.
type Splitter[K, V any] struct {
	s     Stream[K, V]
	name  string
	preds []func(K, V) bool
	nodes []string
	def   string
}

// Split starts dividing s into branches; add them with Branch and Default.
// [Named] sets the split node's name, which prefixes its branches' names.
func (s Stream[K, V]) Split(opts ...Option) *Splitter[K, V] {
	o := collect(opts)
	name := o.nameFor(s.b, s.node, "split")
	sp := &Splitter[K, V]{s: s, name: name}
	topology.AddProcessor(s.b, name, func() topology.Processor[K, V, K, V] { return &splitProc[K, V]{sp: sp} }, s.node)
	return sp
}

// Branch adds a branch named name taking the records for which pred holds
// (and no earlier branch's did), and returns its stream. Its node is named
// "<split>-<name>".
func (sp *Splitter[K, V]) Branch(name string, pred func(K, V) bool) Stream[K, V] {
	b := sp.s.b
	if sp.def != "" {
		b.AddError(fmt.Errorf("stream: split %q: branch %q added after the default branch", sp.name, name))
		return sp.s
	}
	if pred == nil {
		b.AddError(fmt.Errorf("stream: split %q: branch %q has no predicate", sp.name, name))
		return sp.s
	}
	node := sp.branch(name)
	sp.preds = append(sp.preds, pred)
	sp.nodes = append(sp.nodes, node)
	return sp.stream(node)
}

// Default adds the branch, named name, that takes the records no other
// branch took, and returns its stream. It must be added last.
func (sp *Splitter[K, V]) Default(name string) Stream[K, V] {
	if sp.def != "" {
		sp.s.b.AddError(fmt.Errorf("stream: split %q: a second default branch %q", sp.name, name))
		return sp.s
	}
	sp.def = sp.branch(name)
	return sp.stream(sp.def)
}

func (sp *Splitter[K, V]) branch(name string) string {
	node := sp.name + "-" + name
	topology.AddProcessor(sp.s.b, node, func() topology.Processor[K, V, K, V] { return &passProc[K, V]{} }, sp.name)
	return node
}

func (sp *Splitter[K, V]) stream(node string) Stream[K, V] {
	out := sp.s
	out.node = node
	return out
}
