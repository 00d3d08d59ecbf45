package topology_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

type point struct{ X, Y int }

// region is a named string type: bare words are keys of it too.
type region string

var regionSerde = serde.Func(
	func(r region) ([]byte, error) { return []byte(r), nil },
	func(b []byte) (region, error) { return region(b), nil },
)

// queryTopology builds a topology with one processor "p" and the stores
// named (window stores if their names start with "w-", else key-value
// stores), lets query declare what it will, and builds it.
func queryTopology(t *testing.T, stores []string, query func(b *topology.Builder)) (*topology.Topology, error) {
	t.Helper()
	b := topology.NewBuilder()
	topology.AddSource(b, "in", serde.String(), serde.String(), "in")
	topology.AddProcessor(b, "p", passOf[string, string](), "in")
	for _, s := range stores {
		if strings.HasPrefix(s, "w-") {
			b.AddStore(state.Window(s, time.Hour, state.InMemory()), "p")
			continue
		}
		b.AddStore(state.KeyValue(s, state.InMemory()), "p")
	}
	query(b)
	return b.Build()
}

// codecOf returns the codec of store, declared by query.
func codecOf(t *testing.T, store string, query func(b *topology.Builder)) topology.StoreCodec {
	t.Helper()
	topo, err := queryTopology(t, []string{store}, query)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	c, ok := topo.StoreCodec(store)
	if !ok {
		t.Fatalf("StoreCodec(%q): not queryable", store)
	}
	return c
}

func int64Bytes(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func TestStoreCodecParseKey(t *testing.T) {
	strCodec := func(b *topology.Builder) { topology.Queryable(b, "s", serde.String(), serde.Int64()) }
	regionCodec := func(b *topology.Builder) { topology.Queryable(b, "s", regionSerde, serde.Int64()) }
	intCodec := func(b *topology.Builder) { topology.Queryable(b, "s", serde.Int64(), serde.Int64()) }
	pointCodec := func(b *topology.Builder) { topology.Queryable(b, "s", serde.JSON[point](), serde.Int64()) }
	cases := []struct {
		name    string
		query   func(b *topology.Builder)
		text    string
		want    []byte
		wantErr string
	}{
		{"string bare", strCodec, "east", []byte("east"), ""},
		{"string quoted", strCodec, `"east"`, []byte("east"), ""},
		{"string quoted with escape", strCodec, `"a\"b"`, []byte(`a"b`), ""},
		{"string quoted empty", strCodec, `""`, []byte(""), ""},
		{"string bare empty", strCodec, "", []byte(""), ""},
		{"string of a number", strCodec, "42", []byte("42"), ""},
		{"string null is the word", strCodec, "null", []byte("null"), ""},
		{"string unterminated quote", strCodec, `"east`, []byte(`"east`), ""},
		{"named string bare", regionCodec, "east", []byte("east"), ""},
		{"named string quoted", regionCodec, `"east"`, []byte("east"), ""},
		{"int", intCodec, "42", int64Bytes(42), ""},
		{"int negative, spaced", intCodec, " -7 ", int64Bytes(-7), ""},
		{"int from a word", intCodec, "east", nil, `key "east": not a JSON int64: `},
		{"int from a string", intCodec, `"42"`, nil, `key "\"42\"": not a JSON int64: `},
		{"int fraction", intCodec, "1.5", nil, `key "1.5": not a JSON int64: `},
		{"int null", intCodec, "null", nil, `key "null": not a JSON int64: a store holds no null key`},
		{"struct", pointCodec, `{"X":1,"Y":2}`, []byte(`{"X":1,"Y":2}`), ""},
		{"struct reordered", pointCodec, `{"Y":2, "X":1}`, []byte(`{"X":1,"Y":2}`), ""},
		{"struct from an array", pointCodec, `[1,2]`, nil, `key "[1,2]": not a JSON topology_test.point: `},
		{"struct bare word", pointCodec, `east`, nil, `key "east": not a JSON topology_test.point: `},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := codecOf(t, "s", tc.query)
			got, err := c.ParseKey(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseKey(%q) = %q, %v; want an error containing %q", tc.text, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) || got == nil {
				t.Fatalf("ParseKey(%q) = %q, %v; want %q", tc.text, got, err, tc.want)
			}
		})
	}
}

// failing is a serde that fails both ways.
var errFailing = errors.New("failing serde")

var failing = serde.Func(
	func(string) ([]byte, error) { return nil, errFailing },
	func([]byte) (string, error) { return "", errFailing },
)

func TestStoreCodecParseKeyEncodeError(t *testing.T) {
	c := codecOf(t, "s", func(b *topology.Builder) { topology.Queryable(b, "s", failing, serde.Int64()) })
	if _, err := c.ParseKey("east"); !errors.Is(err, errFailing) || !strings.Contains(err.Error(), `key "east"`) {
		t.Fatalf("ParseKey: %v; want the serde's error, naming the key", err)
	}
}

func TestStoreCodecDecode(t *testing.T) {
	kv := func(b *topology.Builder) { topology.Queryable(b, "s", serde.JSON[point](), serde.Int64()) }
	sliding := func(b *topology.Builder) {
		topology.Queryable(b, "s", serde.String(), serde.Int64(), topology.QueryValuePrefix(8))
	}
	withTS := append(int64Bytes(1234), int64Bytes(5)...)
	cases := []struct {
		name    string
		query   func(b *topology.Builder)
		key     bool // decode with Key, not Value
		in      []byte
		want    any
		wantErr string
		is      error // the error wraps it
	}{
		{"struct key", kv, true, []byte(`{"X":1,"Y":2}`), point{1, 2}, "", nil},
		{"bad key", kv, true, []byte(`{`), nil, "decode key: ", nil},
		{"null key", kv, true, nil, nil, "decode key: ", nil},
		{"value", kv, false, int64Bytes(5), int64(5), "", nil},
		{"absent value", kv, false, nil, nil, "", nil},
		{"short value", kv, false, []byte{1, 2, 3}, nil, "decode value: ", nil},
		{"prefix stripped", sliding, false, withTS, int64(5), "", nil},
		{"prefix absent value", sliding, false, nil, nil, "", nil},
		{"prefix only: empty value", sliding, false, int64Bytes(1234), nil, "decode value: ", nil},
		{"shorter than prefix", sliding, false, []byte{1, 2, 3}, nil, "3 bytes, shorter than the 8-byte prefix", nil},
		{"string key with prefix", sliding, true, []byte("east"), "east", "", nil},
		{"value serde fails", func(b *topology.Builder) { topology.Queryable(b, "s", serde.String(), failing) }, false, []byte("x"), nil, "decode value: ", errFailing},
		{"key serde fails", func(b *topology.Builder) { topology.Queryable(b, "s", failing, serde.String()) }, true, []byte("x"), nil, "decode key: ", errFailing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := codecOf(t, "s", tc.query)
			decode := c.Value
			if tc.key {
				decode = c.Key
			}
			got, err := decode(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || (tc.is != nil && !errors.Is(err, tc.is)) {
					t.Fatalf("decode(%x) = %v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decode(%x) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestStoreCodecWindowSize(t *testing.T) {
	c := codecOf(t, "w-s", func(b *topology.Builder) {
		topology.Queryable(b, "w-s", serde.String(), serde.Int64(), topology.QueryWindowSize(time.Minute))
	})
	if got := c.WindowSize(); got != time.Minute {
		t.Errorf("WindowSize() = %v; want 1m", got)
	}
	c = codecOf(t, "s", func(b *topology.Builder) { topology.Queryable(b, "s", serde.String(), serde.Int64()) })
	if got := c.WindowSize(); got != 0 {
		t.Errorf("WindowSize() of a key-value store = %v; want 0", got)
	}
}

func TestQueryableErrors(t *testing.T) {
	str, i64 := serde.String(), serde.Int64()
	cases := []struct {
		name   string
		stores []string
		query  func(b *topology.Builder)
		want   string
	}{
		{"undeclared store", []string{"s"}, func(b *topology.Builder) {
			topology.Queryable(b, "nope", str, i64)
		}, `topology: store "nope" is made queryable but was never declared`},
		{"global store", []string{"s"}, func(b *topology.Builder) {
			b.AddGlobalStore(state.KeyValue("g", state.InMemory()), "g-topic")
			topology.Queryable(b, "g", str, i64)
		}, `topology: global store "g" cannot be made queryable`},
		{"twice", []string{"s"}, func(b *topology.Builder) {
			topology.Queryable(b, "s", str, i64)
			topology.Queryable(b, "s", str, str)
		}, `topology: store "s" is made queryable twice`},
		{"no key serde", []string{"s"}, func(b *topology.Builder) {
			topology.Queryable[string, int64](b, "s", nil, i64)
		}, `topology: queryable store "s": key and value serdes are required`},
		{"negative prefix", []string{"s"}, func(b *topology.Builder) {
			topology.Queryable(b, "s", str, i64, topology.QueryValuePrefix(-1))
		}, `topology: queryable store "s": value prefix -1 is negative`},
		{"window size of a key-value store", []string{"s"}, func(b *topology.Builder) {
			topology.Queryable(b, "s", str, i64, topology.QueryWindowSize(time.Second))
		}, `topology: queryable store "s": a window size is given for a key-value store`},
		{"negative window size", []string{"w-s"}, func(b *topology.Builder) {
			topology.Queryable(b, "w-s", str, i64, topology.QueryWindowSize(-time.Second))
		}, `topology: queryable store "w-s": window size -1s is negative`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := queryTopology(t, tc.stores, tc.query)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestQueryableStores(t *testing.T) {
	topo, err := queryTopology(t, []string{"zeta", "alpha", "hidden", "w-mid"}, func(b *topology.Builder) {
		topology.Queryable(b, "zeta", serde.String(), serde.Int64())
		topology.Queryable(b, "w-mid", serde.String(), serde.Int64(), topology.QueryWindowSize(time.Minute))
		topology.Queryable(b, "alpha", serde.String(), serde.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := topo.QueryableStores(), []string{"alpha", "w-mid", "zeta"}; !reflect.DeepEqual(got, want) {
		t.Errorf("QueryableStores() = %q; want %q", got, want)
	}
	for _, name := range []string{"hidden", "unknown"} {
		if c, ok := topo.StoreCodec(name); ok || c != nil {
			t.Errorf("StoreCodec(%q) = %v, %v; want none", name, c, ok)
		}
	}
	// A second topology of the same store names has codecs of its own.
	other, err := queryTopology(t, []string{"zeta"}, func(*topology.Builder) {})
	if err != nil {
		t.Fatal(err)
	}
	if got := other.QueryableStores(); len(got) != 0 {
		t.Errorf("QueryableStores() of a topology with none = %q", got)
	}
}
