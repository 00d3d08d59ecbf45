package state_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

func TestTyped(t *testing.T) {
	kv := state.Typed(state.NewInMemoryKeyValue("typed"), stringSerde{}, int64Serde{})
	if kv.Store().Name() != "typed" {
		t.Fatalf("Store().Name() = %q", kv.Store().Name())
	}

	type op struct {
		name    string
		do      func() (int64, bool, error)
		want    int64
		wantOK  bool
		wantErr bool
	}
	get := func(k string) func() (int64, bool, error) { return func() (int64, bool, error) { return kv.Get(k) } }
	put := func(k string, v int64) func() (int64, bool, error) {
		return func() (int64, bool, error) { return 0, false, kv.Put(k, v) }
	}
	putIfAbsent := func(k string, v int64) func() (int64, bool, error) {
		return func() (int64, bool, error) { return kv.PutIfAbsent(k, v) }
	}
	del := func(k string) func() (int64, bool, error) {
		return func() (int64, bool, error) { return 0, false, kv.Delete(k) }
	}
	ops := []op{
		{name: "get absent", do: get("a")},
		{name: "put", do: put("a", 1)},
		{name: "get", do: get("a"), want: 1, wantOK: true},
		{name: "put negative", do: put("b", -5)},
		{name: "get negative", do: get("b"), want: -5, wantOK: true},
		{name: "put if absent, present", do: putIfAbsent("a", 9), want: 1, wantOK: true},
		{name: "unchanged", do: get("a"), want: 1, wantOK: true},
		{name: "put if absent, absent", do: putIfAbsent("c", 3)},
		{name: "put by put if absent", do: get("c"), want: 3, wantOK: true},
		{name: "put zero", do: put("", 0)},
		{name: "get zero", do: get(""), want: 0, wantOK: true},
		{name: "delete", do: del("a")},
		{name: "get deleted", do: get("a")},
		{name: "delete absent", do: del("a")},
	}
	for _, o := range ops {
		got, ok, err := o.do()
		if (err != nil) != o.wantErr || got != o.want || ok != o.wantOK {
			t.Errorf("%s = %d, %t, %v; want %d, %t, error %t", o.name, got, ok, err, o.want, o.wantOK, o.wantErr)
		}
	}
}

func TestTypedIterators(t *testing.T) {
	kv := state.Typed(state.NewInMemoryKeyValue("typed"), stringSerde{}, int64Serde{})
	for i, k := range []string{"d", "b", "a", "c", "e"} {
		if err := kv.Put(k, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(it *state.TypedIterator[string, int64], err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var got []string
		for it.Next() {
			got = append(got, it.Key()+"="+string(rune('0'+it.Value())))
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"All", collect(kv.All()), []string{"a=2", "b=1", "c=3", "d=0", "e=4"}},
		{"Range b-d", collect(kv.Range("b", "d")), []string{"b=1", "c=3"}},
		{"Range empty from", collect(kv.Range("", "c")), []string{"a=2", "b=1"}},
		{"Range reversed bounds", collect(kv.Range("d", "b")), nil},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestTypedTombstone(t *testing.T) {
	kv := state.Typed(state.NewInMemoryKeyValue("typed"), stringSerde{}, ptrSerde{})
	v := "v"
	empty := ""
	if err := kv.Put("k", &v); err != nil {
		t.Fatal(err)
	}
	if err := kv.Put("k", nil); err != nil { // a tombstone deletes
		t.Fatal(err)
	}
	if got, ok, err := kv.Get("k"); err != nil || ok || got != nil {
		t.Errorf("Get after tombstone = %v, %t, %v; want nil, false, nil", got, ok, err)
	}
	if n, _ := kv.Store().ApproximateCount(); n != 0 {
		t.Errorf("count after tombstone = %d", n)
	}
	// An empty value is a value, not a tombstone.
	if err := kv.Put("k", &empty); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := kv.Get("k"); err != nil || !ok || got == nil || *got != "" {
		t.Errorf("Get of empty value = %v, %t, %v; want \"\", true, nil", got, ok, err)
	}
	// Putting a tombstone if absent puts nothing.
	if _, ok, err := kv.PutIfAbsent("other", nil); err != nil || ok {
		t.Errorf("PutIfAbsent(tombstone) = %t, %v", ok, err)
	}
	if _, ok, _ := kv.Get("other"); ok {
		t.Error("PutIfAbsent(tombstone) put something")
	}
}

// badSerde fails to encode and decode.
type badSerde struct{}

var errBad = errors.New("bad serde")

func (badSerde) Encode(string) ([]byte, error) { return nil, errBad }
func (badSerde) Decode([]byte) (string, error) { return "", errBad }

func TestTypedErrors(t *testing.T) {
	store := state.NewInMemoryKeyValue("typed")
	bad := state.Typed(store, badSerde{}, badSerde{})
	checks := map[string]error{}
	_, _, checks["Get"] = bad.Get("k")
	checks["Put"] = bad.Put("k", "v")
	_, _, checks["PutIfAbsent"] = bad.PutIfAbsent("k", "v")
	checks["Delete"] = bad.Delete("k")
	_, checks["Range"] = bad.Range("a", "b")
	for op, err := range checks {
		if !errors.Is(err, errBad) || !strings.HasPrefix(err.Error(), `state: store "typed": `) {
			t.Errorf("%s: err = %v, want one that wraps errBad and names the store", op, err)
		}
	}

	// Bad bytes in the store: decoding ends iteration and Err says why.
	for _, k := range []string{"a", "b", "c"} {
		store.Put([]byte(k), []byte("short"))
	}
	ints := state.Typed(store, stringSerde{}, int64Serde{})
	if _, _, err := ints.Get("a"); err == nil || !strings.Contains(err.Error(), "decode value") {
		t.Errorf("Get of bad bytes: err = %v", err)
	}
	if _, ok, err := ints.PutIfAbsent("a", 1); err == nil || !ok {
		t.Errorf("PutIfAbsent over bad bytes = %t, %v; want true and an error", ok, err)
	}
	it, err := ints.All()
	if err != nil {
		t.Fatal(err)
	}
	if it.Next() {
		t.Error("Next = true over bad bytes")
	}
	if it.Next() {
		t.Error("Next = true after a decode error")
	}
	if err := it.Err(); err == nil || !strings.Contains(err.Error(), `decode value of key "a"`) {
		t.Errorf("Err = %v", err)
	}
	if err := it.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	// Errors of the store pass through.
	store.Close()
	if err := ints.Put("a", 1); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Put on closed store: err = %v", err)
	}
	if _, err := ints.All(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("All on closed store: err = %v", err)
	}
}
