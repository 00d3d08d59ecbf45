package topology

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/riffle-streams/riffle/state"
)

// Topology is a built, validated and immutable graph. It is safe for
// concurrent use: every task instantiates its own processors from it.
type Topology struct {
	nodes    []*node
	byName   map[string]*node
	stores   map[string]*storeDef
	order    []string
	subs     []*SubTopology
	internal []InternalTopic
	globals  map[string]*GlobalStore
	gorder   []string
}

// SubTopology is a part of the graph connected without going through a
// Kafka topic. Each of its tasks runs it for one partition of its sources.
type SubTopology struct {
	// ID numbers the sub-topology, from 0, in the order their first nodes
	// were added.
	ID int
	// Nodes are the names of its nodes, in the order they were added.
	Nodes []string
	// SourceTopics are the topics its sources read, in order.
	SourceTopics []Topic
	// SourcePatterns are the patterns its pattern sources read, anchored to
	// match whole topic names.
	SourcePatterns []*regexp.Regexp
	// SinkTopics are the fixed topics its sinks write.
	SinkTopics []Topic
	// Stores are the stores its processors use.
	Stores []state.Spec

	nodes   []*node
	sources map[string]*node // by topic name (unresolved)
}

// Build validates the graph and returns the Topology. The error joins every
// problem found, each naming its node, topic or store.
func (b *Builder) Build() (*Topology, error) {
	errs := append([]error(nil), b.errs...)
	if len(b.nodes) == 0 && len(b.gorder) == 0 {
		errs = append(errs, errors.New("topology: no sources: a topology needs at least one source"))
	}
	t := &Topology{
		nodes:    b.nodes,
		byName:   b.byName,
		stores:   b.stores,
		order:    b.order,
		internal: b.internal,
		globals:  b.globals,
		gorder:   b.gorder,
	}
	// Link children and check that the types of each edge line up.
	for _, n := range b.nodes {
		n.children = nil
	}
	for _, n := range b.nodes {
		for _, p := range n.parents {
			pn := b.byName[p]
			pn.children = append(pn.children, n)
			if pn.keyOut != n.keyIn || pn.valOut != n.valIn {
				errs = append(errs, fmt.Errorf("topology: %s %q takes records of (%v, %v) but its parent %q puts out (%v, %v)",
					n.kind, n.name, n.keyIn, n.valIn, pn.name, pn.keyOut, pn.valOut))
			}
		}
	}
	// A topic is read by one source at most, and a global store's topic by
	// no source.
	readers := map[string]string{}
	for _, name := range b.gorder {
		readers[b.globals[name].Topic] = "global store " + strconv.Quote(name)
	}
	for _, n := range b.nodes {
		for _, tp := range n.topics {
			if other, ok := readers[tp.Name]; ok {
				errs = append(errs, fmt.Errorf("topology: topic %q is read by both %s and source %q", tp.Name, other, n.name))
				continue
			}
			readers[tp.Name] = "source " + strconv.Quote(n.name)
		}
	}
	for _, n := range b.nodes {
		if n.pattern == nil {
			continue
		}
		for tp, other := range readers {
			if matchWhole(n.pattern, tp) {
				errs = append(errs, fmt.Errorf("topology: topic %q is read by %s and matches the pattern of source %q", tp, other, n.name))
			}
		}
	}
	for _, name := range b.order {
		if len(b.stores[name].processors) == 0 {
			errs = append(errs, fmt.Errorf("topology: store %q is connected to no processor", name))
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	t.subs = group(b.nodes, b.byName, b.stores, b.order)
	return t, nil
}

func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

// matchWhole reports whether re, anchored at both ends when it was added,
// matches all of s.
func matchWhole(re *regexp.Regexp, s string) bool { return re.MatchString(s) }

// group splits the nodes into sub-topologies: nodes joined by an edge or by a
// store they share belong together.
func group(nodes []*node, byName map[string]*node, stores map[string]*storeDef, order []string) []*SubTopology {
	parent := make([]int, len(nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra < rb {
			parent[rb] = ra
		} else if rb < ra {
			parent[ra] = rb
		}
	}
	for _, n := range nodes {
		for _, c := range n.children {
			union(n.order, c.order)
		}
	}
	for _, name := range order {
		ps := stores[name].processors
		for i := 1; i < len(ps); i++ {
			union(byName[ps[0]].order, byName[ps[i]].order)
		}
	}
	var subs []*SubTopology
	byRoot := map[int]*SubTopology{}
	for _, n := range nodes {
		r := find(n.order)
		st, ok := byRoot[r]
		if !ok {
			st = &SubTopology{ID: len(subs), sources: map[string]*node{}}
			byRoot[r] = st
			subs = append(subs, st)
		}
		n.sub = st.ID
		st.nodes = append(st.nodes, n)
		st.Nodes = append(st.Nodes, n.name)
		switch n.kind {
		case sourceNode:
			for _, tp := range n.topics {
				st.SourceTopics = append(st.SourceTopics, tp)
				st.sources[tp.Name] = n
			}
			if n.pattern != nil {
				st.SourcePatterns = append(st.SourcePatterns, n.pattern)
			}
		case sinkNode:
			if !n.dynamic {
				st.SinkTopics = append(st.SinkTopics, n.sinkTopic)
			}
		}
	}
	for _, name := range order {
		sd := stores[name]
		st := subs[byName[sd.processors[0]].sub]
		st.Stores = append(st.Stores, sd.spec)
	}
	return subs
}

// SubTopologies returns the sub-topologies, ordered by ID.
func (t *Topology) SubTopologies() []*SubTopology { return t.subs }

// InternalTopics returns the topics the runtime must create: repartition
// topics, and a changelog per logged store.
func (t *Topology) InternalTopics() []InternalTopic {
	out := append([]InternalTopic(nil), t.internal...)
	for _, name := range t.order {
		if sd := t.stores[name]; sd.spec.Logged {
			out = append(out, InternalTopic{Topic: ChangelogFor(name), Kind: ChangelogTopic, Store: sd.spec})
		}
	}
	return out
}

// GlobalStores returns the global stores, in the order they were declared.
func (t *Topology) GlobalStores() []GlobalStore {
	out := make([]GlobalStore, 0, len(t.gorder))
	for _, name := range t.gorder {
		out = append(out, *t.globals[name])
	}
	return out
}

// GlobalStoreOf returns the global store that copies topic, if any.
func (t *Topology) GlobalStoreOf(topic string) (GlobalStore, bool) {
	for _, name := range t.gorder {
		if g := t.globals[name]; g.Topic == topic {
			return *g, true
		}
	}
	return GlobalStore{}, false
}

// ChangelogFor returns the changelog topic of the store named store:
// "<appID>-<store>-changelog" once resolved.
func ChangelogFor(store string) Topic {
	return Topic{Name: store + "-changelog", Internal: true}
}

// Store returns the spec of the store named name.
func (t *Topology) Store(name string) (state.Spec, bool) {
	sd, ok := t.stores[name]
	if !ok {
		return state.Spec{}, false
	}
	return sd.spec, true
}

// SubTopologyOf returns the sub-topology that reads topic (resolved with
// appID), or nil if none does. A source that names the topic wins over a
// pattern that matches it, so a pattern never takes the records of an
// internal topic meant for another sub-topology.
func (t *Topology) SubTopologyOf(appID, topic string) *SubTopology {
	if n := t.sourceFor(appID, topic); n != nil {
		return t.subs[n.sub]
	}
	return nil
}

// sourceFor returns the source node that reads topic: the one naming it, or
// else the first whose pattern matches it.
func (t *Topology) sourceFor(appID, topic string) *node {
	var byPattern *node
	for _, n := range t.nodes {
		if n.kind != sourceNode {
			continue
		}
		for _, tp := range n.topics {
			if tp.Resolve(appID) == topic {
				return n
			}
		}
		if byPattern == nil && n.pattern != nil && matchWhole(n.pattern, topic) {
			byPattern = n
		}
	}
	return byPattern
}
