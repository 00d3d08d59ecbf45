package topology

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
)

type nodeKind uint8

const (
	sourceNode nodeKind = iota + 1
	processorNode
	sinkNode
)

func (k nodeKind) String() string {
	switch k {
	case sourceNode:
		return "source"
	case processorNode:
		return "processor"
	case sinkNode:
		return "sink"
	}
	return "node"
}

// Topic is a topic a topology reads or writes. An internal topic (a
// repartition or changelog topic) is named without the application id, which
// the runtime puts in front: see [Topic.Resolve].
type Topic struct {
	Name     string
	Internal bool
}

// Resolve returns the topic's name in Kafka: "<appID>-<name>" for an internal
// topic, the name itself otherwise.
func (t Topic) Resolve(appID string) string {
	if t.Internal {
		return appID + "-" + t.Name
	}
	return t.Name
}

// InternalTopicKind says what an internal topic is for.
type InternalTopicKind int

const (
	// RepartitionTopic carries records re-keyed upstream to the tasks that
	// own the new keys.
	RepartitionTopic InternalTopicKind = iota + 1
	// ChangelogTopic records the writes to a store.
	ChangelogTopic
)

// String returns the kind's name.
func (k InternalTopicKind) String() string {
	switch k {
	case RepartitionTopic:
		return "repartition"
	case ChangelogTopic:
		return "changelog"
	}
	return fmt.Sprintf("InternalTopicKind(%d)", int(k))
}

// InternalTopic is a topic the runtime creates for the topology.
type InternalTopic struct {
	Topic
	Kind InternalTopicKind
	// Partitions is the partition count asked for; 0 means as many as the
	// sub-topology that writes it reads.
	Partitions int
	// Store is the store a changelog belongs to.
	Store state.Spec
}

// node is a node of the graph as declared.
type node struct {
	name    string
	kind    nodeKind
	order   int
	parents []string
	// children are filled in by Build, in the order the children were added.
	children []*node
	// Source: the topics or the pattern it reads. The pattern is anchored
	// at both ends (see matchWhole); patternText is the user's.
	topics      []Topic
	pattern     *regexp.Regexp
	patternText string
	// Source: how event time is taken from a record (a
	// func(Record[K, V]) time.Time of the source's types), and what to do
	// when it is invalid.
	extract         any
	invalidTSPolicy InvalidTimestampPolicy
	// Sink: the topic it writes, or dynamic for a per-record chooser.
	sinkTopic Topic
	dynamic   bool
	stores    []string
	// The key and value types a node takes in and puts out; nil for none.
	keyIn, valIn, keyOut, valOut reflect.Type
	newInstance                  func() instance
	sub                          int
}

type storeDef struct {
	spec       state.Spec
	processors []string
	codec      StoreCodec // set by Queryable
}

// Builder collects the nodes and stores of a topology. Errors are collected
// as nodes are added and returned by Build, so calls can be chained without
// checking each one. A Builder is not safe for concurrent use.
type Builder struct {
	nodes    []*node
	byName   map[string]*node
	reserved map[string]bool
	stores   map[string]*storeDef
	order    []string // store names in declaration order
	// refused are the stores whose spec AddStore refused: the error says
	// why, and later uses of them add none of their own.
	refused  map[string]bool
	internal []InternalTopic
	globals  map[string]*GlobalStore
	gorder   []string
	errs     []error
}

// GlobalStore is a store that holds a full copy of a topic on every
// instance: each record of the topic sets its key to its value bytes, and a
// tombstone deletes the key. The topic is the store's changelog.
type GlobalStore struct {
	Spec  state.Spec
	Topic string
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{
		byName:   map[string]*node{},
		reserved: map[string]bool{},
		stores:   map[string]*storeDef{},
		refused:  map[string]bool{},
		globals:  map[string]*GlobalStore{},
	}
}

// AddGlobalStore declares a global store named by spec that copies topic.
// Processors of every sub-topology may read it through Context.Store; none
// may write it. It is not logged: the topic is its changelog.
func (b *Builder) AddGlobalStore(spec state.Spec, topic string) {
	spec.Logged = false
	if err := spec.Validate(); err != nil {
		b.AddError(fmt.Errorf("topology: global %w", err))
		return
	}
	if err := validTopic(topic); err != nil {
		b.AddError(fmt.Errorf("topology: global store %q: %w", spec.Name, err))
		return
	}
	if _, ok := b.stores[spec.Name]; ok {
		b.AddError(fmt.Errorf("topology: store %q is declared twice", spec.Name))
		return
	}
	if _, ok := b.globals[spec.Name]; ok {
		b.AddError(fmt.Errorf("topology: global store %q is declared twice", spec.Name))
		return
	}
	b.globals[spec.Name] = &GlobalStore{Spec: spec, Topic: topic}
	b.gorder = append(b.gorder, spec.Name)
}

// AddError records err, to be returned by Build. The DSL uses it to report
// misuse (a missing serde, an invalid option) at build time.
func (b *Builder) AddError(err error) {
	if err != nil {
		b.errs = append(b.errs, err)
	}
}

// maxGeneratedName bounds generated names, which become parts of topic names
// (at most 249 characters in Kafka).
const maxGeneratedName = 100

// NewName returns a name for a new node of the given kind whose first (or
// only) parent is base: "<base>-<kind>", or "<base>-<kind>-2" and so on if
// that is taken. Because a name derives only from the node's parent and
// kind, adding an operator elsewhere never renames existing ones; among
// unnamed siblings of one kind off one parent, the first declared gets the
// plain name. base may be "" for nodes without a parent. The name is
// reserved until a node takes it.
func (b *Builder) NewName(base, kind string) string {
	name := sanitizeName(kind)
	if base != "" {
		name = sanitizeName(base) + "-" + name
	}
	if len(name) > maxGeneratedName {
		h := fnv.New32a()
		h.Write([]byte(name))
		tail := "-" + sanitizeName(kind)
		keep := maxGeneratedName - len(tail) - 9
		name = name[:keep] + "~" + fmt.Sprintf("%08x", h.Sum32()) + tail
		name = strings.ReplaceAll(name, "~", "-")
	}
	cand := name
	for i := 2; b.taken(cand); i++ {
		cand = name + "-" + strconv.Itoa(i)
	}
	b.reserved[cand] = true
	return cand
}

func (b *Builder) taken(name string) bool {
	_, ok := b.byName[name]
	return ok || b.reserved[name]
}

// sanitizeName maps name onto the characters allowed in topic names.
func sanitizeName(name string) string {
	var sb strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			sb.WriteByte(c)
		default:
			sb.WriteByte('_')
		}
	}
	return sb.String()
}

// validName reports whether name may name a node or store: it becomes part of
// internal topic names, so it holds only what Kafka allows in them.
func validName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	if len(name) > 200 {
		return fmt.Errorf("name %q is longer than 200 characters", name)
	}
	if sanitizeName(name) != name {
		return fmt.Errorf("name %q may hold only ASCII letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

func (b *Builder) add(n *node) bool {
	if err := validName(n.name); err != nil {
		b.AddError(fmt.Errorf("topology: %s: %w", n.kind, err))
		return false
	}
	if old, ok := b.byName[n.name]; ok {
		b.AddError(fmt.Errorf("topology: %s %q: a %s of that name already exists", n.kind, n.name, old.kind))
		return false
	}
	for _, p := range n.parents {
		pn, ok := b.byName[p]
		switch {
		case p == n.name:
			b.AddError(fmt.Errorf("topology: %s %q: a node cannot be its own parent", n.kind, n.name))
			return false
		case !ok:
			b.AddError(fmt.Errorf("topology: %s %q: parent %q is not in the topology (add parents before their children)", n.kind, n.name, p))
			return false
		case pn.kind == sinkNode:
			b.AddError(fmt.Errorf("topology: %s %q: parent %q is a sink, which has no children", n.kind, n.name, p))
			return false
		}
	}
	if n.kind != sourceNode && len(n.parents) == 0 {
		b.AddError(fmt.Errorf("topology: %s %q has no parent", n.kind, n.name))
		return false
	}
	n.order = len(b.nodes)
	b.nodes = append(b.nodes, n)
	b.byName[n.name] = n
	delete(b.reserved, n.name)
	return true
}

// AddSource adds a source node named name that reads topics and decodes
// their records with keys and values.
func AddSource[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], topics ...string) {
	ts := make([]Topic, len(topics))
	for i, t := range topics {
		ts[i] = Topic{Name: t}
	}
	addSource(b, name, keys, values, ts, nil, "")
}

// AddPatternSource adds a source node named name that reads every topic
// whose name matches pattern (the whole name).
func AddPatternSource[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], pattern *regexp.Regexp) {
	if pattern == nil {
		b.AddError(fmt.Errorf("topology: source %q: pattern is nil", name))
		return
	}
	// A topic is read when the pattern matches its whole name: anchor it,
	// so that alternatives are tried for a whole match too.
	whole, err := regexp.Compile(`^(?:` + pattern.String() + `)$`)
	if err != nil {
		b.AddError(fmt.Errorf("topology: source %q: pattern %q: %w", name, pattern, err))
		return
	}
	addSource(b, name, keys, values, nil, whole, pattern.String())
}

func addSource[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], topics []Topic, pattern *regexp.Regexp, text string) {
	if keys == nil || values == nil {
		b.AddError(fmt.Errorf("topology: source %q: key and value serdes are required", name))
		return
	}
	if pattern == nil && len(topics) == 0 {
		b.AddError(fmt.Errorf("topology: source %q reads no topic", name))
		return
	}
	for _, t := range topics {
		if err := validTopic(t.Name); err != nil {
			b.AddError(fmt.Errorf("topology: source %q: %w", name, err))
			return
		}
	}
	n := &node{
		name: name, kind: sourceNode, topics: topics, pattern: pattern, patternText: text,
		keyOut: reflect.TypeFor[K](), valOut: reflect.TypeFor[V](),
	}
	n.newInstance = func() instance {
		s := &sourceInst[K, V]{keys: keys, values: values, policy: n.invalidTSPolicy, partitionTime: noStreamTime}
		if n.extract != nil {
			s.extract = n.extract.(func(Record[K, V]) time.Time)
		}
		return s
	}
	b.add(n)
}

// InvalidTimestampPolicy says what a source does with a record whose event
// time is invalid (before the Unix epoch: Kafka's "no timestamp" is -1).
type InvalidTimestampPolicy int

const (
	// FailOnInvalidTimestamp fails the record, as Kafka Streams' default
	// extractor does.
	FailOnInvalidTimestamp InvalidTimestampPolicy = iota
	// SkipInvalidTimestamp drops the record, counted and logged.
	SkipInvalidTimestamp
	// UsePartitionTime gives the record the largest valid timestamp seen
	// so far on its partition; a record before any valid one is skipped.
	UsePartitionTime
)

// SetTimestampExtractor makes the source named source take each record's
// event time from extract (by default, the record's Kafka timestamp) and
// apply policy to invalid ones. Stream time, windows and punctuations
// follow the extracted times. K and V must be the source's types.
func SetTimestampExtractor[K, V any](b *Builder, source string, extract func(Record[K, V]) time.Time, policy InvalidTimestampPolicy) {
	n, ok := b.byName[source]
	switch {
	case !ok || n.kind != sourceNode:
		b.AddError(fmt.Errorf("topology: timestamp extractor: %q is not a source of the topology", source))
		return
	case n.keyOut != reflect.TypeFor[K]() || n.valOut != reflect.TypeFor[V]():
		b.AddError(fmt.Errorf("topology: source %q: the timestamp extractor takes records of (%v, %v), but the source puts out (%v, %v)",
			source, reflect.TypeFor[K](), reflect.TypeFor[V](), n.keyOut, n.valOut))
		return
	case policy < FailOnInvalidTimestamp || policy > UsePartitionTime:
		b.AddError(fmt.Errorf("topology: source %q: unknown invalid-timestamp policy %d", source, policy))
		return
	}
	if extract != nil {
		n.extract = extract
	}
	n.invalidTSPolicy = policy
}

// AddProcessor adds a processor node named name, child of parents, whose
// processors are made by supplier, one per task. The parents must put out
// records of types KIn and VIn.
func AddProcessor[KIn, VIn, KOut, VOut any](b *Builder, name string, supplier func() Processor[KIn, VIn, KOut, VOut], parents ...string) {
	if supplier == nil {
		b.AddError(fmt.Errorf("topology: processor %q: supplier is nil", name))
		return
	}
	n := &node{
		name: name, kind: processorNode, parents: parents,
		keyIn: reflect.TypeFor[KIn](), valIn: reflect.TypeFor[VIn](),
		keyOut: reflect.TypeFor[KOut](), valOut: reflect.TypeFor[VOut](),
	}
	n.newInstance = func() instance {
		return &procInst[KIn, VIn, KOut, VOut]{proc: supplier()}
	}
	b.add(n)
}

// AddSink adds a sink node named name, child of parents, that encodes
// records with keys and values and writes them to topic.
func AddSink[K, V any](b *Builder, name, topic string, keys serde.Serde[K], values serde.Serde[V], parents ...string) {
	if err := validTopic(topic); err != nil {
		b.AddError(fmt.Errorf("topology: sink %q: %w", name, err))
		return
	}
	addSink(b, name, Topic{Name: topic}, nil, keys, values, parents)
}

// AddDynamicSink adds a sink node named name, child of parents, that writes
// each record to the topic choose returns for it.
func AddDynamicSink[K, V any](b *Builder, name string, choose func(Record[K, V]) string, keys serde.Serde[K], values serde.Serde[V], parents ...string) {
	if choose == nil {
		b.AddError(fmt.Errorf("topology: sink %q: topic chooser is nil", name))
		return
	}
	addSink(b, name, Topic{}, choose, keys, values, parents)
}

func addSink[K, V any](b *Builder, name string, topic Topic, choose func(Record[K, V]) string, keys serde.Serde[K], values serde.Serde[V], parents []string) {
	if keys == nil || values == nil {
		b.AddError(fmt.Errorf("topology: sink %q: key and value serdes are required", name))
		return
	}
	n := &node{
		name: name, kind: sinkNode, parents: parents, sinkTopic: topic, dynamic: choose != nil,
		keyIn: reflect.TypeFor[K](), valIn: reflect.TypeFor[V](),
	}
	n.newInstance = func() instance {
		return &sinkInst[K, V]{keys: keys, values: values, choose: choose}
	}
	b.add(n)
}

// AddRepartition routes the records put out by parent through an internal
// repartition topic, "<appID>-<name>-repartition" (or "<appID>-<name>" if name
// already ends in "-repartition"), so that each record reaches the task of
// its key's partition. It adds a sink named after the topic with "-sink" and
// a source named after it with "-source", and returns the source's name, from
// which the new sub-topology continues.
// partitions is the topic's partition count; 0 means as many as the
// sub-topology that writes it reads.
func AddRepartition[K, V any](b *Builder, name string, keys serde.Serde[K], values serde.Serde[V], partitions int, parent string) string {
	if err := validName(name); err != nil {
		b.AddError(fmt.Errorf("topology: repartition: %w", err))
		return ""
	}
	if partitions < 0 {
		b.AddError(fmt.Errorf("topology: repartition %q: partition count %d is negative", name, partitions))
		return ""
	}
	base := name
	if !strings.HasSuffix(base, "-repartition") {
		base += "-repartition"
	}
	topic := Topic{Name: base, Internal: true}
	sink, source := base+"-sink", base+"-source"
	addSink(b, sink, topic, nil, keys, values, []string{parent})
	addSource(b, source, keys, values, []Topic{topic}, nil, "")
	b.internal = append(b.internal, InternalTopic{Topic: topic, Kind: RepartitionTopic, Partitions: partitions})
	return source
}

// AddStore declares a store and connects it to the named processors, which
// may then reach it through their Context. Connect more processors later
// with ConnectStore.
func (b *Builder) AddStore(spec state.Spec, processors ...string) {
	if err := spec.Validate(); err != nil {
		if len(processors) > 0 {
			err = fmt.Errorf("%w (the store of %s)", err, strings.Join(quoteAll(processors), ", "))
		}
		b.AddError(fmt.Errorf("topology: %w", err))
		b.refused[spec.Name] = true
		return
	}
	if _, ok := b.stores[spec.Name]; ok {
		b.AddError(fmt.Errorf("topology: store %q is declared twice", spec.Name))
		return
	}
	if _, ok := b.globals[spec.Name]; ok {
		b.AddError(fmt.Errorf("topology: store %q is declared twice (once as a global store)", spec.Name))
		return
	}
	b.stores[spec.Name] = &storeDef{spec: spec}
	b.order = append(b.order, spec.Name)
	b.ConnectStore(spec.Name, processors...)
}

// ConnectStore connects the declared store named store to the named
// processors.
func (b *Builder) ConnectStore(store string, processors ...string) {
	sd, ok := b.stores[store]
	if !ok {
		if b.refused[store] {
			return
		}
		b.AddError(fmt.Errorf("topology: store %q is connected to %s but was never declared", store, strings.Join(quoteAll(processors), ", ")))
		return
	}
	for _, p := range processors {
		n, ok := b.byName[p]
		if !ok || n.kind != processorNode {
			b.AddError(fmt.Errorf("topology: store %q: %q is not a processor of the topology", store, p))
			continue
		}
		if !contains(n.stores, store) {
			n.stores = append(n.stores, store)
			sd.processors = append(sd.processors, p)
		}
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// validTopic checks a topic name as Kafka does.
func validTopic(t string) error {
	switch {
	case t == "":
		return errors.New("topic name is empty")
	case t == "." || t == "..":
		return fmt.Errorf("topic name %q is not allowed", t)
	case len(t) > 249:
		return fmt.Errorf("topic name %q is longer than 249 characters", t)
	case sanitizeName(t) != t:
		return fmt.Errorf("topic name %q may hold only ASCII letters, digits, '.', '_' and '-'", t)
	}
	return nil
}
