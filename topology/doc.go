// Package topology is the graph of a Riffle application and the Processor
// API that runs it.
//
// A [Builder] collects sources (topics read), processors (code run on each
// record) and sinks (topics written), and the stores processors use. [Build]
// validates the graph and returns an immutable [Topology]: its nodes grouped
// into sub-topologies (the parts connected without going through a Kafka
// topic), with names that stay put when unrelated operators are added, and a
// [Topology.Describe] of it as text or as a Mermaid diagram.
//
// Most programs build topologies with the typed DSL in the stream and table
// packages, which add nodes here. The Processor API is for what the DSL does
// not cover: a [Processor] is given a [Context] to forward records to its
// children (all, or one by name), to use the stores connected to it, and to
// schedule punctuations on stream time or wall-clock time.
//
// A [Task] runs one sub-topology for one partition. The runtime and the test
// driver both run processors through Task, so a topology tested in the driver
// runs the very same code on Kafka. Package topology never talks to Kafka
// itself: the runtime hands it records and takes the records it produces.
//
// Errors made while building (an unknown parent, a duplicate name, a store
// nobody declared, types that do not line up) are collected by the Builder
// and returned together by Build, each naming the node, topic or store.
package topology
