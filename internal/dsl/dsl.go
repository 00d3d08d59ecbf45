// Package dsl holds the rules the typed DSL packages (stream and table)
// share: how an operator finds its serdes and reports its mistakes.
package dsl

import (
	"fmt"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/topology"
)

// SerdeFor returns the serde for T: opt (an operator's option) if given,
// which must be a serde of T; else known if not nil; else serde.Default[T].
// It records an error naming op (prefixed by pkg) and returns nil if there
// is none.
func SerdeFor[T any](b *topology.Builder, pkg string, opt any, known serde.Serde[T], op, part string) serde.Serde[T] {
	if opt != nil {
		s, ok := opt.(serde.Serde[T])
		if !ok {
			var zero T
			b.AddError(fmt.Errorf("%s: %s: the %s serde %v does not encode %T", pkg, op, part, opt, zero))
			return nil
		}
		return s
	}
	if known != nil {
		return known
	}
	s, err := serde.Default[T]()
	if err != nil {
		b.AddError(fmt.Errorf("%s: %s: no %s serde: %w", pkg, op, part, err))
		return nil
	}
	return s
}

// OutSerde returns the serde of an operator's output type T: opt if given
// (checked as SerdeFor does), else upstream if T is the upstream type U,
// else nil, to be picked by type where a serde is needed.
func OutSerde[T, U any](b *topology.Builder, pkg string, opt any, upstream serde.Serde[U], name, part string) serde.Serde[T] {
	if opt != nil {
		return SerdeFor[T](b, pkg, opt, nil, fmt.Sprintf("operator %q", name), part)
	}
	s, _ := any(upstream).(serde.Serde[T])
	return s
}

// CheckFn records an error naming the operator if its function is nil, so
// the mistake shows at Build rather than as a panic on the first record.
func CheckFn(b *topology.Builder, pkg, name string, isNil bool) {
	if isNil {
		b.AddError(fmt.Errorf("%s: operator %q: its function is nil", pkg, name))
	}
}
