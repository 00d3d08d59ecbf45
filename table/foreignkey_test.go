package table

import (
	"bytes"
	"errors"
	"testing"

	"github.com/riffle-streams/riffle/internal/testutil"
	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/topology"
)

// These tests see inside the foreign-key join: the records between its two
// sides, the subscription store's keys, and what the left side does with
// an answer that is stale.

func TestSubscriptionSerde(t *testing.T) {
	s := subscriptionSerde[string]{serde.String()}
	for _, v := range []subscription[string]{
		{Key: "k", Hash: hashOf([]byte("v"))},
		{Key: "", Hash: hashOf(nil)},
		{Key: "key", Unsubscribe: true},
	} {
		b, err := s.Encode(v)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", v, err)
		}
		got, err := s.Decode(b)
		if err != nil || got != v {
			t.Errorf("Decode(Encode(%+v)) = %+v, %v", v, got, err)
		}
	}
	if _, err := (subscriptionSerde[[]byte]{serde.ByteArray()}).Encode(subscription[[]byte]{}); err == nil {
		t.Error("Encode of a null left key: no error")
	}
	bad := map[string][]byte{
		"null":            nil,
		"empty":           {},
		"short":           {0, 0, 1, 2},
		"unknown version": append([]byte{1, 0}, make([]byte, 16)...),
		"unknown flags":   append([]byte{0, 2}, make([]byte, 16)...),
	}
	for name, b := range bad {
		_, err := s.Decode(b)
		var de *serde.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: Decode(%x) = %v, want a *serde.DecodeError", name, b, err)
		}
	}
	if _, err := s.Decode(nil); !errors.Is(err, serde.ErrNull) {
		t.Errorf("Decode(nil) = %v, want ErrNull", err)
	}
}

func TestResponseSerde(t *testing.T) {
	s := responseSerde[string]{serde.String()}
	for _, v := range []response[string]{
		{Hash: hashOf([]byte("v")), Value: Some("right")},
		{Hash: hashOf([]byte("v")), Value: Some("")}, // an empty value is a value
		{Hash: hashOf([]byte("w"))},
	} {
		b, err := s.Encode(v)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", v, err)
		}
		got, err := s.Decode(b)
		if err != nil || got != v {
			t.Errorf("Decode(Encode(%+v)) = %+v, %v", v, got, err)
		}
	}
	bad := map[string][]byte{
		"null":                 nil,
		"short":                {0, 1},
		"unknown version":      append([]byte{7, 0}, make([]byte, 16)...),
		"unknown flags":        append([]byte{0, 3}, make([]byte, 16)...),
		"bytes after no value": append([]byte{0, 0}, make([]byte, 17)...),
	}
	for name, b := range bad {
		_, err := s.Decode(b)
		var de *serde.DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: Decode(%x) = %v, want a *serde.DecodeError", name, b, err)
		}
	}
	// The value's own serde's errors come through.
	i := responseSerde[int64]{serde.Int64()}
	if _, err := i.Decode(append([]byte{0, 1}, make([]byte, 16+3)...)); err == nil {
		t.Error("Decode of a 3-byte int64: no error")
	}
}

// FuzzSubscriptionSerde checks that the decoder never panics, and that what
// it accepts encodes back to the same bytes.
func FuzzSubscriptionSerde(f *testing.F) {
	s := subscriptionSerde[string]{serde.String()}
	for _, v := range []subscription[string]{{Key: "k", Hash: hashOf([]byte("v"))}, {Unsubscribe: true}} {
		b, _ := s.Encode(v)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Decode(data)
		if err != nil {
			return
		}
		b, err := s.Encode(v)
		if err != nil {
			t.Fatalf("Encode(Decode(%x)): %v", data, err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("Encode(Decode(%x)) = %x", data, b)
		}
	})
}

// FuzzResponseSerde is FuzzSubscriptionSerde for responses.
func FuzzResponseSerde(f *testing.F) {
	s := responseSerde[string]{serde.String()}
	for _, v := range []response[string]{{Hash: hashOf([]byte("v")), Value: Some("x")}, {}} {
		b, _ := s.Encode(v)
		f.Add(b)
	}
	f.Add([]byte{0})
	f.Add(append([]byte{0, 0}, make([]byte, 17)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Decode(data)
		if err != nil {
			return
		}
		b, err := s.Encode(v)
		if err != nil {
			t.Fatalf("Encode(Decode(%x)): %v", data, err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("Encode(Decode(%x)) = %x", data, b)
		}
	})
}

// A foreign key's prefix scan finds its subscribers only, even when another
// foreign key starts with it.
func TestSubscriptionKeys(t *testing.T) {
	k := subscriptionKey([]byte("ab"), []byte("cd"))
	if !bytes.HasPrefix(k, subscriptionPrefix([]byte("ab"))) {
		t.Errorf("key %x lacks its prefix", k)
	}
	for _, other := range [][]byte{[]byte("a"), []byte("abc"), []byte("")} {
		if bytes.HasPrefix(k, subscriptionPrefix(other)) {
			t.Errorf("key of (ab, cd) %x has the prefix of %q", k, other)
		}
	}
	if bytes.HasPrefix(subscriptionKey([]byte("abc"), nil), subscriptionPrefix([]byte("ab"))) {
		t.Error("a subscriber of abc is found by a scan of ab")
	}
	got, err := splitSubscriptionKey(k)
	if err != nil || string(got) != "cd" {
		t.Errorf("splitSubscriptionKey(%x) = %q, %v", k, got, err)
	}
	long := bytes.Repeat([]byte("x"), 300) // a length of two uvarint bytes
	if got, err := splitSubscriptionKey(subscriptionKey(long, []byte("k"))); err != nil || string(got) != "k" {
		t.Errorf("long foreign key: %q, %v", got, err)
	}
	for _, bad := range [][]byte{{}, {5, 'a'}, {0x80}} {
		if _, err := splitSubscriptionKey(bad); err == nil {
			t.Errorf("splitSubscriptionKey(%x): no error", bad)
		}
	}
	if _, err := decodeStoredHash([]byte{0, 1}); err == nil {
		t.Error("decodeStoredHash of 2 bytes: no error")
	}
	h := hashOf([]byte("v"))
	if got, err := decodeStoredHash(encodeStoredHash(h)); err != nil || got != h {
		t.Errorf("stored hash round trip: %x, %v", got, err)
	}
}

// outChanges reads the records of topic "out" as "key=value", or
// "key=<tombstone>".
func outChanges(t *testing.T, d *riffletest.Driver) []string {
	t.Helper()
	var out []string
	for {
		raw, ok := d.ReadRaw("out")
		if !ok {
			return out
		}
		v := string(raw.Value)
		if raw.Value == nil {
			v = "<tombstone>"
		}
		out = append(out, string(raw.Key)+"="+v)
	}
}

// The left side joins an answer only if its hash is that of the left
// entry's current value. The answers are fed in directly, as the response
// topic could deliver them: one for the current value, one for a value
// replaced since, one for a key deleted since.
func TestResponseJoinDropsStaleAnswers(t *testing.T) {
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "inner", true: "left"}[left], func(t *testing.T) {
			b := topology.NewBuilder()
			orders := From[string, string](b, "orders")
			products := From[string, string](b, "products")
			fk := func(o string) string { return o[:1] }
			var j Table[string, string]
			if left {
				j = LeftJoinForeign(orders, products, fk, func(o string, p Maybe[string]) string {
					if !p.OK {
						return o + "/-"
					}
					return o + "/" + p.Value
				}, Named("fk"))
			} else {
				j = JoinForeign(orders, products, fk, func(o, p string) string { return o + "/" + p }, Named("fk"))
			}
			j.To("out")
			d := testutil.NewDriver(t, b)
			oi := riffletest.Input(d, "orders", serde.String(), serde.String())
			pi := riffletest.Input(d, "products", serde.String(), serde.String())
			if err := pi.Pipe("a", "Apple"); err != nil {
				t.Fatal(err)
			}
			if err := oi.Pipe("o1", "a1"); err != nil {
				t.Fatal(err)
			}
			testutil.WantStrings(t, "joined", outChanges(t, d), []string{"o1=a1/Apple"})

			topic := "riffletest-fk-subscription-response-repartition"
			respond := func(key, leftValue string, right Maybe[string]) {
				t.Helper()
				b, err := responseSerde[string]{serde.String()}.Encode(response[string]{Hash: hashOf([]byte(leftValue)), Value: right})
				if err != nil {
					t.Fatal(err)
				}
				if err := d.PipeRaw(topic, []byte(key), b, d.WallClock()); err != nil {
					t.Fatalf("PipeRaw(%s): %v", topic, err)
				}
			}
			respond("o1", "a0", Some("Stale"))        // a value o1 no longer has
			respond("o1", "b1", Maybe[string]{})      // nor this one
			respond("o2", "a1", Some("Never there"))  // a key that has no value
			respond("o1", "a1", Some("Apple, again")) // current
			respond("o1", "a1", Maybe[string]{})      // current: the right side is gone
			wantGone := map[bool]string{false: "o1=<tombstone>", true: "o1=a1/-"}[left]
			testutil.WantStrings(t, "answers", outChanges(t, d), []string{"o1=a1/Apple, again", wantGone})
			testutil.WantSkips(t, d, map[topology.SkipKey]int64{})
		})
	}
}

// An answer that cannot be decoded is a decode error at the response
// topic's source, which the driver's handler decides on.
func TestResponseTopicDecodeError(t *testing.T) {
	b := topology.NewBuilder()
	JoinForeign(From[string, string](b, "orders"), From[string, string](b, "products"),
		func(o string) string { return o }, func(o, p string) string { return o + p }, Named("fk")).To("out")
	var got *topology.DecodeError
	d := testutil.NewDriver(t, b, riffletest.WithDecodeErrorHandler(func(e *topology.DecodeError) error { got = e; return nil }))
	if err := d.PipeRaw("riffletest-fk-subscription-response-repartition", []byte("o1"), []byte{9}, d.WallClock()); err != nil {
		t.Fatalf("PipeRaw: %v", err)
	}
	if got == nil || got.Node != "fk-subscription-response-repartition-source" || got.Part != "value" {
		t.Errorf("decode error = %v", got)
	}
}
