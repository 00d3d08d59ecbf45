package topology

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
)

// StoreCodec converts between a store's bytes and the values a query shows.
// The runtime, which knows no serdes, reads a queryable store through it:
// it turns the key a query names into the bytes to look up, and the bytes
// it finds into values that encoding/json can write. The DSL declares one
// for every store a user may query (see [Queryable]). A StoreCodec is safe
// for concurrent use.
type StoreCodec interface {
	// ParseKey turns a key as written in a query into the store's key bytes:
	// JSON for the key type (decoded with encoding/json into K, then serialized with the key serde);
	// for keys of a string type, text that is not a JSON string is taken as the string itself
	// (so ?key=east works as well as ?key="east").
	ParseKey(text string) ([]byte, error)
	// Key decodes stored key bytes (the record key, without window start) into a value.
	Key(b []byte) (any, error)
	// Value decodes a stored value: of a key-value store the value; of a window store the window's
	// value (after any prefix the operator keeps, see QueryValuePrefix); of a session store the session's value.
	// Nil bytes, an absent value, decode to nil.
	Value(b []byte) (any, error)
	// WindowSize is the length of the windows of a window store whose windows have one fixed length; 0 otherwise.
	WindowSize() time.Duration
}

// QueryOption configures the codec [Queryable] declares.
type QueryOption func(*queryOptions)

type queryOptions struct {
	prefix     int
	windowSize time.Duration
}

// QueryValuePrefix says that the operator keeps n bytes of its own before
// each stored value, which [StoreCodec.Value] skips: sliding windows keep
// the 8-byte timestamp of the window's latest record there.
func QueryValuePrefix(n int) QueryOption { return func(o *queryOptions) { o.prefix = n } }

// QueryWindowSize gives the length of the windows of a window store whose
// windows all have one length (time windows, sliding windows), so that a
// query can show each window's end.
func QueryWindowSize(d time.Duration) QueryOption { return func(o *queryOptions) { o.windowSize = d } }

func codecOf(sd *storeDef) (StoreCodec, bool) {
	if sd == nil || sd.codec == nil {
		return nil, false
	}
	return sd.codec, true
}

// Queryable declares how a query reads the store named store (already
// declared with AddStore): its keys and values are written with keys and
// values, and opts say what else the store keeps (a value prefix, a window
// size). The key serde is the record key's: a window or session store's
// window is not part of it. A store that is not declared (or is a global
// store), or that is made queryable twice, is an error that Build returns.
func Queryable[K, V any](b *Builder, store string, keys serde.Serde[K], values serde.Serde[V], opts ...QueryOption) {
	sd, ok := b.stores[store]
	_, global := b.globals[store]
	switch {
	case global:
		b.AddError(fmt.Errorf("topology: global store %q cannot be made queryable", store))
		return
	case !ok && b.refused[store]:
		return // AddStore said why
	case !ok:
		b.AddError(fmt.Errorf("topology: store %q is made queryable but was never declared", store))
		return
	case keys == nil || values == nil:
		b.AddError(fmt.Errorf("topology: queryable store %q: key and value serdes are required", store))
		return
	}
	var o queryOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	switch {
	case o.prefix < 0:
		b.AddError(fmt.Errorf("topology: queryable store %q: value prefix %d is negative", store, o.prefix))
		return
	case o.windowSize < 0:
		b.AddError(fmt.Errorf("topology: queryable store %q: window size %v is negative", store, o.windowSize))
		return
	case o.windowSize > 0 && sd.spec.Kind != state.KindWindow:
		b.AddError(fmt.Errorf("topology: queryable store %q: a window size is given for a %v store", store, sd.spec.Kind))
		return
	}
	c := &storeCodec[K, V]{keys: keys, values: values, opts: o, keyType: reflect.TypeFor[K]()}
	if sd.codec != nil {
		b.AddError(fmt.Errorf("topology: store %q is made queryable twice", store))
		return
	}
	sd.codec = c
}

// StoreCodec returns the codec of a queryable store.
func (t *Topology) StoreCodec(store string) (StoreCodec, bool) {
	sd, ok := t.stores[store]
	if !ok {
		return nil, false
	}
	return codecOf(sd)
}

// QueryableStores returns the names of the queryable stores, sorted.
func (t *Topology) QueryableStores() []string {
	var out []string
	for _, name := range t.order {
		if _, ok := codecOf(t.stores[name]); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// storeCodec is the StoreCodec of a store of keys K and values V.
type storeCodec[K, V any] struct {
	keys    serde.Serde[K]
	values  serde.Serde[V]
	opts    queryOptions
	keyType reflect.Type
}

func (c *storeCodec[K, V]) ParseKey(text string) ([]byte, error) {
	var k K
	if c.keyType.Kind() == reflect.String && !isJSONString(text) {
		// A bare word: the string itself.
		reflect.ValueOf(&k).Elem().SetString(text)
	} else {
		if strings.TrimSpace(text) == "null" {
			return nil, fmt.Errorf("key %q: not a JSON %v: a store holds no null key", text, c.keyType)
		}
		if err := json.Unmarshal([]byte(text), &k); err != nil {
			return nil, fmt.Errorf("key %q: not a JSON %v: %w", text, c.keyType, err)
		}
	}
	b, err := c.keys.Encode(k)
	if err != nil {
		return nil, fmt.Errorf("key %q: encode: %w", text, err)
	}
	if b == nil {
		return nil, fmt.Errorf("key %q: encodes to a null key, which a store never holds", text)
	}
	return b, nil
}

// isJSONString reports whether text is one JSON string, maybe with
// whitespace around it.
func isJSONString(text string) bool {
	var s string
	t := strings.TrimSpace(text)
	return strings.HasPrefix(t, `"`) && json.Unmarshal([]byte(t), &s) == nil
}

func (c *storeCodec[K, V]) Key(b []byte) (any, error) {
	if b == nil {
		return nil, errors.New("decode key: a store key is never null")
	}
	k, err := c.keys.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	return k, nil
}

func (c *storeCodec[K, V]) Value(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if len(b) < c.opts.prefix {
		return nil, fmt.Errorf("decode value: %d bytes, shorter than the %d-byte prefix the store keeps before it", len(b), c.opts.prefix)
	}
	v, err := c.values.Decode(b[c.opts.prefix:])
	if err != nil {
		return nil, fmt.Errorf("decode value: %w", err)
	}
	return v, nil
}

func (c *storeCodec[K, V]) WindowSize() time.Duration { return c.opts.windowSize }
