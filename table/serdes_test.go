package table

import (
	"bytes"
	"errors"
	"testing"

	"github.com/riffle-streams/riffle/serde"
)

func TestGroupSerde(t *testing.T) {
	s := groupSerde[string]{serde.String()}
	cases := []struct {
		c    Change[string]
		want []byte
	}{
		{Change[string]{New: "ab", HasNew: true}, []byte{1, 2, 'a', 'b'}},
		{Change[string]{Old: "c", HasOld: true}, []byte{2, 1, 'c'}},
		{Change[string]{New: "", HasNew: true, Old: "xy", HasOld: true}, []byte{3, 0, 2, 'x', 'y'}},
		{Change[string]{}, []byte{0}},
	}
	for _, c := range cases {
		b, err := s.Encode(c.c)
		if err != nil || !bytes.Equal(b, c.want) {
			t.Errorf("Encode(%+v) = %v, %v; want %v", c.c, b, err, c.want)
		}
		back, err := s.Decode(b)
		if err != nil || back != c.c {
			t.Errorf("Decode(%v) = %+v, %v", b, back, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {4}, {1}, {1, 5, 'a'}, {1, 1, 'a', 'z'}, {3, 1, 'a'}} {
		var de *serde.DecodeError
		if _, err := s.Decode(bad); !errors.As(err, &de) {
			t.Errorf("Decode(%v): %v, want a *serde.DecodeError", bad, err)
		}
	}
}

func FuzzGroupSerde(f *testing.F) {
	s := groupSerde[string]{serde.String()}
	for _, seed := range [][]byte{{0}, {1, 2, 'a', 'b'}, {3, 0, 1, 'x'}, {2}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := s.Decode(data)
		if err != nil {
			return
		}
		b, err := s.Encode(c)
		if err != nil || !bytes.Equal(b, data) {
			t.Errorf("%v decodes to %+v, which encodes to %v, %v", data, c, b, err)
		}
	})
}

func TestChangeSerde(t *testing.T) {
	s := changeSerde[int64]{serde.Int64()}
	c, err := s.Decode(nil)
	if err != nil || c.HasNew {
		t.Errorf("a tombstone decodes to %+v, %v", c, err)
	}
	if b, err := s.Encode(Change[int64]{}); b != nil || err != nil {
		t.Errorf("a deletion encodes to %v, %v; want nil bytes", b, err)
	}
	b, _ := s.Encode(Change[int64]{New: 1, HasNew: true})
	if !bytes.Equal(b, []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("1 encodes to %v", b)
	}
	if _, err := s.Decode([]byte{1}); err == nil {
		t.Error("bad bytes decoded")
	}
}
