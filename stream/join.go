package stream

import (
	"github.com/riffle-streams/riffle/table"
)

// Maybe is a value that may be absent: the side of a left or outer join
// that has no match is a Maybe with OK false. It is [table.Maybe].
type Maybe[V any] = table.Maybe[V]

// keyedFor returns s as a join named name must read it: repartitioned
// first, through the topic "<name>-repartition", if its key was changed
// upstream, so that each key is joined in the task that owns it on both
// sides. The topic takes the partition count of the join's other inputs.
func (s Stream[K, V]) keyedFor(name string) Stream[K, V] {
	if !s.rekeyed {
		return s
	}
	return s.Repartition(Named(name))
}
