// Package dsl holds the rules the typed DSL packages (stream and table)
// share: how an operator finds its serdes and reports its mistakes.
package dsl

import (
	"fmt"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
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

// ForwardOnFlush makes the record cache in front of kv, if there is one,
// call forward for each key it writes through, decoded: the new value
// (hasNew false for a deletion) and the one it replaces (hasOld false for
// none). It reports whether kv is cached; a processor whose store is cached
// forwards from here, once per key per flush, and not as it processes.
func ForwardOnFlush[K, V any](kv state.KeyValueStore, keys serde.Serde[K], values serde.Serde[V],
	forward func(k K, newV V, hasNew bool, oldV V, hasOld bool) error) bool {
	c, ok := kv.(state.CachingStore)
	if !ok {
		return false
	}
	c.SetFlushListener(func(kb, nb, ob []byte) error {
		k, err := keys.Decode(kb)
		if err != nil {
			return fmt.Errorf("decode cached key: %w", err)
		}
		var nv, ov V
		if nb != nil {
			if nv, err = values.Decode(nb); err != nil {
				return fmt.Errorf("decode cached value: %w", err)
			}
		}
		if ob != nil {
			if ov, err = values.Decode(ob); err != nil {
				return fmt.Errorf("decode stored value: %w", err)
			}
		}
		return forward(k, nv, nb != nil, ov, ob != nil)
	})
	return true
}
