package table

import (
	"encoding/binary"
	"fmt"

	"github.com/riffle-streams/riffle/serde"
)

// changeSerde reads and writes a table's topic: a record sets its key, a
// tombstone (nil bytes) deletes it. It decodes to a Change with no old value
// (the table's store supplies it) and encodes only the new value, so a Go
// table of any value type keeps Kafka's tombstones.
type changeSerde[V any] struct{ values serde.Serde[V] }

func (s changeSerde[V]) String() string { return fmt.Sprintf("Change(%v)", s.values) }

func (s changeSerde[V]) Encode(c Change[V]) ([]byte, error) {
	if !c.HasNew {
		return nil, nil
	}
	return s.values.Encode(c.New)
}

func (s changeSerde[V]) Decode(data []byte) (Change[V], error) {
	if data == nil {
		return Change[V]{}, nil
	}
	v, err := s.values.Decode(data)
	if err != nil {
		return Change[V]{}, err
	}
	return Change[V]{New: v, HasNew: true}, nil
}

// groupSerde carries a re-grouped Change through a repartition topic: a
// byte of flags (1: a new value follows, 2: an old one), then each value
// present as a uvarint length and its bytes. The topic is internal, so the
// format is Riffle's own.
type groupSerde[V any] struct{ values serde.Serde[V] }

const (
	hasNewFlag = 1
	hasOldFlag = 2
)

func (s groupSerde[V]) String() string { return fmt.Sprintf("GroupChange(%v)", s.values) }

func (s groupSerde[V]) Encode(c Change[V]) ([]byte, error) {
	out := []byte{0}
	if c.HasNew {
		b, err := s.values.Encode(c.New)
		if err != nil {
			return nil, err
		}
		out[0] |= hasNewFlag
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	if c.HasOld {
		b, err := s.values.Encode(c.Old)
		if err != nil {
			return nil, err
		}
		out[0] |= hasOldFlag
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

func (s groupSerde[V]) Decode(data []byte) (Change[V], error) {
	var c Change[V]
	bad := func(err error) (Change[V], error) {
		return Change[V]{}, &serde.DecodeError{Serde: s.String(), Want: "a flags byte and length-prefixed values", Got: len(data), Err: err}
	}
	if data == nil {
		return bad(serde.ErrNull)
	}
	if len(data) == 0 || data[0]&^(hasNewFlag|hasOldFlag) != 0 {
		return bad(fmt.Errorf("bad flags"))
	}
	flags, rest := data[0], data[1:]
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, fmt.Errorf("bad length")
		}
		v := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return v, nil
	}
	if flags&hasNewFlag != 0 {
		b, err := next()
		if err != nil {
			return bad(err)
		}
		if c.New, err = s.values.Decode(b); err != nil {
			return bad(err)
		}
		c.HasNew = true
	}
	if flags&hasOldFlag != 0 {
		b, err := next()
		if err != nil {
			return bad(err)
		}
		if c.Old, err = s.values.Decode(b); err != nil {
			return bad(err)
		}
		c.HasOld = true
	}
	if len(rest) != 0 {
		return bad(fmt.Errorf("%d bytes left over", len(rest)))
	}
	return c, nil
}
