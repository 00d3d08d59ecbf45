package table

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/riffle-streams/riffle/internal/dsl"
	"github.com/riffle-streams/riffle/internal/null"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/state"
	"github.com/riffle-streams/riffle/topology"
)

// JoinForeign joins each entry of left with the entry of right whose key
// foreignKey names in left's value (an inner foreign-key join, as Kafka
// Streams' KTable foreign-key join). The result is keyed as left: it has a
// value for a key of left while the right table has a value for its
// foreign key, joiner's of the two. An update of the right entry updates
// the result of every left entry that names it; a left entry that changes
// its foreign key leaves its old match for the new one (and the result is
// deleted if the new one has no value); a deletion on either side deletes
// the results it was part of. A left value whose foreign key is null (for a
// KO that can be nil) has no result: it is skipped and counted, and its old
// result deleted.
//
// The two tables need not be co-partitioned. Left's updates travel to the
// right table's partitions through the internal topic
// "<name>-subscription-registration-repartition", keyed by foreign key,
// where the store "<name>-subscription-store" keeps, per foreign key, the
// left keys that name it. Answers come back through
// "<name>-subscription-response-repartition", keyed by left key. Each
// subscription carries a hash of the left value it came from, and an
// answer whose hash no longer matches the left entry's current value is
// dropped: it answers a value that has been replaced since, and the answer
// for the current value is on its way. So a left entry that changes its
// foreign key twice in quick succession never ends up joined with the
// first one.
//
// The result always keeps a store, named "<name>" or by [Materialized]: it
// supplies each update's old value and keeps deletions of results that
// never were from being emitted. [Named] names the join's nodes, stores and
// topics; a side that keeps no store is given one ("<name>-left-table",
// "<name>-right-table"). Updates with a null key are skipped and counted;
// a nil result (for a VR that can be nil) is no result.
func JoinForeign[K, V, KO, VO, VR any](left Table[K, V], right Table[KO, VO], foreignKey func(V) KO, joiner func(V, VO) VR, opts ...Option) Table[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "fk-join")
	dsl.CheckFn(left.b, "table", name, foreignKey == nil || joiner == nil)
	return joinForeign(left, right, name, o, foreignKey, false, func(v V, vo Maybe[VO]) (VR, bool) {
		if !vo.OK {
			var zero VR
			return zero, false
		}
		return joiner(v, vo.Value), true
	})
}

// LeftJoinForeign joins each entry of left with the entry of right whose
// key foreignKey names in left's value, if any (a left foreign-key join):
// the result has a value for every key of left, joiner's of left's value
// and the right value, absent when right has no value for the foreign key
// or the foreign key is null. Otherwise it is [JoinForeign].
func LeftJoinForeign[K, V, KO, VO, VR any](left Table[K, V], right Table[KO, VO], foreignKey func(V) KO, joiner func(V, Maybe[VO]) VR, opts ...Option) Table[K, VR] {
	o := collect(opts)
	name := o.nameFor(left.b, left.node, "left-fk-join")
	dsl.CheckFn(left.b, "table", name, foreignKey == nil || joiner == nil)
	return joinForeign(left, right, name, o, foreignKey, true, func(v V, vo Maybe[VO]) (VR, bool) {
		return joiner(v, vo), true
	})
}

// joinForeign adds the nodes of a foreign-key join named name.
//
// On the left table's side (its sub-topology):
//   - "<name>-subscription-send" sends, for each left update, a
//     subscription to its new foreign key and an unsubscription from its
//     old one, if that changed, through the registration topic;
//   - "<name>-left-direct" answers the updates that need no right value: a
//     deletion, or a value whose foreign key is null;
//   - "<name>-response-join" joins each answer with the left entry's current
//     value, unless the answer is stale;
//   - "<name>" keeps the result.
//
// On the right table's side:
//   - "<name>-subscription-receive" keeps each subscription in the
//     subscription store and answers it with the right value;
//   - "<name>-foreign-table-join" answers every subscriber of a right key
//     when its value changes;
//   - "<name>-response" sends both kinds of answer through the response
//     topic.
func joinForeign[K, V, KO, VO, VR any](left Table[K, V], right Table[KO, VO], name string, o options, foreignKey func(V) KO, leftJoin bool, join func(V, Maybe[VO]) (VR, bool)) Table[K, VR] {
	b := left.b
	if right.b != b {
		b.AddError(fmt.Errorf("table: join %q: the right table %q belongs to another builder", name, right.node))
		return Table[K, VR]{b: b, node: name}
	}
	op := fmt.Sprintf("foreign-key join %q", name)
	vs := dsl.SerdeFor[VR](b, "table", o.valueSerde, nil, op, "value")
	l := left.Stored(Named(name + "-left-table"))
	r := right.Stored(Named(name + "-right-table"))
	lks := dsl.SerdeFor[K](b, "table", nil, l.keys, op, "left key")
	lvs := dsl.SerdeFor[V](b, "table", nil, l.values, op, "left value")
	rks := dsl.SerdeFor[KO](b, "table", nil, r.keys, op, "foreign key")
	rvs := dsl.SerdeFor[VO](b, "table", nil, r.values, op, "right value")
	if l.store == "" || r.store == "" || vs == nil || lks == nil || lvs == nil || rks == nil || rvs == nil {
		return Table[K, VR]{b: b, node: name}
	}
	subStore := state.KeyValue(name + "-subscription-store")

	// The left side: subscribe, and answer what needs no right value.
	send, direct := name+"-subscription-send", name+"-left-direct"
	topology.AddProcessor(b, send, func() topology.Processor[K, Change[V], KO, subscription[K]] {
		return &subscribeProc[K, V, KO]{store: l.store, keys: lks, fkeys: rks, foreignKey: foreignKey, leftJoin: leftJoin}
	}, l.node)
	b.ConnectStore(l.store, send)
	topology.AddProcessor(b, direct, func() topology.Processor[K, Change[V], K, Change[VR]] {
		return &directProc[K, V, KO, VO, VR]{foreignKey: foreignKey, join: join}
	}, l.node)
	subs := topology.AddRepartition(b, name+"-subscription-registration", rks, subscriptionSerde[K]{lks}, 0, send)

	// The right side: keep subscriptions and answer them.
	receive, fanout, respond := name+"-subscription-receive", name+"-foreign-table-join", name+"-response"
	topology.AddProcessor(b, receive, func() topology.Processor[KO, subscription[K], K, response[VO]] {
		return &receiveProc[K, KO, VO]{store: subStore.Name, keys: lks, fkeys: rks, right: func(c storeGetter) (*state.TypedReader[KO, VO], error) { return r.Reader(c) }}
	}, subs)
	topology.AddProcessor(b, fanout, func() topology.Processor[KO, Change[VO], K, response[VO]] {
		return &fanoutProc[K, KO, VO]{store: subStore.Name, keys: lks, fkeys: rks}
	}, r.node)
	b.AddStore(subStore, receive, fanout)
	b.ConnectStore(r.store, receive)
	topology.AddProcessor(b, respond, func() topology.Processor[K, response[VO], K, response[VO]] {
		return &passThrough[K, response[VO]]{}
	}, receive, fanout)
	responses := topology.AddRepartition(b, name+"-subscription-response", lks, responseSerde[VO]{rvs}, 0, respond)

	// Back on the left side: join the answers that are still current.
	respJoin := name + "-response-join"
	topology.AddProcessor(b, respJoin, func() topology.Processor[K, response[VO], K, Change[VR]] {
		return &responseJoinProc[K, V, VO, VR]{store: l.store, keys: lks, values: lvs, join: join}
	}, responses)
	b.ConnectStore(l.store, respJoin)
	return addResult[K, VR](b, name, o, lks, vs, true, respJoin, direct)
}

// ---- records between the two sides ----

// subscription is what the left side tells the right side's partition of
// a foreign key: the left key, and whether it now names the foreign key
// (with a hash of the value that does) or no longer does.
type subscription[K any] struct {
	Unsubscribe bool
	Hash        valueHash
	Key         K
}

// response answers a subscription, or tells a subscriber that the right
// value changed: the right value, if any, and the hash of the left value
// the subscription came from.
type response[VO any] struct {
	Hash  valueHash
	Value Maybe[VO]
}

// valueHash is a 128-bit hash of a left value's bytes (FNV-1a), which
// tells an answer to the current value from a stale one.
type valueHash [16]byte

// hashOf returns the hash of a left value's bytes.
func hashOf(b []byte) valueHash {
	h := fnv.New128a()
	h.Write(b)
	var out valueHash
	h.Sum(out[:0])
	return out
}

// The format version of the records and stored subscriptions, first byte
// of each, so that a later format can be told apart.
const fkFormatV0 = 0

// subscriptionSerde carries a subscription through the registration topic:
// the version byte, a byte of flags (1: unsubscribe), the 16 bytes of the
// hash, then the left key's bytes. The topic is internal, so the format is
// Riffle's own.
type subscriptionSerde[K any] struct{ keys serde.Serde[K] }

const unsubscribeFlag = 1

func (s subscriptionSerde[K]) String() string { return fmt.Sprintf("Subscription(%v)", s.keys) }

func (s subscriptionSerde[K]) Encode(v subscription[K]) ([]byte, error) {
	kb, err := s.keys.Encode(v.Key)
	if err != nil {
		return nil, err
	}
	if kb == nil {
		return nil, errors.New("a subscription's left key is null")
	}
	var flags byte
	if v.Unsubscribe {
		flags = unsubscribeFlag
	}
	return appendFKRecord(flags, v.Hash, kb), nil
}

// appendFKRecord returns the bytes of a subscription or response: the
// version, the flags, the hash, then body.
func appendFKRecord(flags byte, h valueHash, body []byte) []byte {
	out := make([]byte, 0, 2+len(h)+len(body))
	out = append(out, fkFormatV0, flags)
	out = append(out, h[:]...)
	return append(out, body...)
}

// splitFKRecord undoes appendFKRecord, refusing flags outside allowed.
func splitFKRecord(data []byte, allowed byte) (flags byte, h valueHash, body []byte, err error) {
	const head = 2 + len(valueHash{})
	switch {
	case data == nil:
		return 0, h, nil, serde.ErrNull
	case len(data) < head:
		return 0, h, nil, errors.New("too short")
	case data[0] != fkFormatV0:
		return 0, h, nil, fmt.Errorf("unknown version %d", data[0])
	case data[1]&^allowed != 0:
		return 0, h, nil, fmt.Errorf("bad flags %#x", data[1])
	}
	copy(h[:], data[2:head])
	return data[1], h, data[head:], nil
}

// fkDecodeError is the error of a subscription or response that cannot be
// decoded.
func fkDecodeError(name, want string, data []byte, err error) error {
	got := len(data)
	if data == nil {
		got = -1
	}
	return &serde.DecodeError{Serde: name, Want: want, Got: got, Err: err}
}

func (s subscriptionSerde[K]) Decode(data []byte) (subscription[K], error) {
	const want = "a version, flags, a 16-byte hash and a key"
	flags, h, body, err := splitFKRecord(data, unsubscribeFlag)
	if err != nil {
		return subscription[K]{}, fkDecodeError(s.String(), want, data, err)
	}
	k, err := s.keys.Decode(body)
	if err != nil {
		return subscription[K]{}, fkDecodeError(s.String(), want, data, err)
	}
	return subscription[K]{Key: k, Hash: h, Unsubscribe: flags&unsubscribeFlag != 0}, nil
}

// responseSerde carries a response through the response topic: the
// version byte, a byte of flags (1: a right value follows), the 16 bytes
// of the hash, then the right value's bytes, if any.
type responseSerde[VO any] struct{ values serde.Serde[VO] }

const hasValueFlag = 1

func (s responseSerde[VO]) String() string { return fmt.Sprintf("Response(%v)", s.values) }

func (s responseSerde[VO]) Encode(v response[VO]) ([]byte, error) {
	var vb []byte
	var flags byte
	if v.Value.OK {
		var err error
		if vb, err = s.values.Encode(v.Value.Value); err != nil {
			return nil, err
		}
		if vb == nil {
			return nil, errors.New("a response's right value is null")
		}
		flags = hasValueFlag
	}
	return appendFKRecord(flags, v.Hash, vb), nil
}

func (s responseSerde[VO]) Decode(data []byte) (response[VO], error) {
	const want = "a version, flags, a 16-byte hash and a value"
	flags, h, body, err := splitFKRecord(data, hasValueFlag)
	if err == nil && flags&hasValueFlag == 0 && len(body) != 0 {
		err = fmt.Errorf("%d bytes after a response with no value", len(body))
	}
	if err != nil {
		return response[VO]{}, fkDecodeError(s.String(), want, data, err)
	}
	v := response[VO]{Hash: h}
	if flags&hasValueFlag != 0 {
		vo, err := s.values.Decode(body)
		if err != nil {
			return response[VO]{}, fkDecodeError(s.String(), want, data, err)
		}
		v.Value = Some(vo)
	}
	return v, nil
}

// ---- the subscription store ----

// The subscription store's key is the foreign key's bytes, prefixed by
// their length as a uvarint, then the left key's bytes: all subscribers of
// a foreign key are one prefix scan, and no foreign key's prefix is
// another's. Its value is the version byte and the subscription's hash.

// subscriptionPrefix returns the prefix of the keys of fk's subscribers.
func subscriptionPrefix(fk []byte) []byte {
	out := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(fk)), uint64(len(fk)))
	return append(out, fk...)
}

// subscriptionKey returns the store key of left key k's subscription to fk.
func subscriptionKey(fk, k []byte) []byte {
	return append(subscriptionPrefix(fk), k...)
}

// splitSubscriptionKey returns the left key's bytes of a store key.
func splitSubscriptionKey(key []byte) ([]byte, error) {
	n, w := binary.Uvarint(key)
	if w <= 0 || n > uint64(len(key)-w) {
		return nil, fmt.Errorf("bad subscription store key %x", key)
	}
	return key[w+int(n):], nil
}

func encodeStoredHash(h valueHash) []byte { return append([]byte{fkFormatV0}, h[:]...) }

func decodeStoredHash(b []byte) (valueHash, error) {
	var h valueHash
	if len(b) != 1+len(h) || b[0] != fkFormatV0 {
		return h, fmt.Errorf("bad stored subscription of %d bytes", len(b))
	}
	copy(h[:], b[1:])
	return h, nil
}

// ---- the processors ----

// subscribeProc turns each left update into subscriptions: an
// unsubscription from the old foreign key if it changed, and a
// subscription to the new one, which is always answered (with no right
// value if there is none, which deletes an inner join's old result).
type subscribeProc[K, V, KO any] struct {
	ctx        topology.Context[KO, subscription[K]]
	store      string
	keys       serde.Serde[K]
	fkeys      serde.Serde[KO]
	foreignKey func(V) KO
	leftJoin   bool
	left       state.KeyValueStore
	nilKey     null.Checker[K]
	nilFK      null.Checker[KO]
}

func (p *subscribeProc[K, V, KO]) Init(ctx topology.Context[KO, subscription[K]]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, p.store)
	if err != nil {
		return err
	}
	p.left = kv
	p.nilKey, p.nilFK = null.For[K](), null.For[KO]()
	return nil
}

func (p *subscribeProc[K, V, KO]) Close() error { return nil }

func (p *subscribeProc[K, V, KO]) Process(r topology.Record[K, Change[V]]) error {
	if p.nilKey.IsNil(r.Key) {
		p.ctx.SkipRecord("null key")
		return nil
	}
	c := r.Value
	var oldFK, newFK KO
	hasOld, hasNew := false, false
	if c.HasOld {
		oldFK = p.foreignKey(c.Old)
		hasOld = !p.nilFK.IsNil(oldFK)
	}
	if c.HasNew {
		newFK = p.foreignKey(c.New)
		hasNew = !p.nilFK.IsNil(newFK)
		if !hasNew && !p.leftJoin {
			p.ctx.SkipRecord("null foreign key")
		}
	}
	out := topology.Record[KO, subscription[K]]{Timestamp: r.Timestamp, Headers: r.Headers}
	if hasOld {
		changed := !hasNew
		if hasNew {
			ob, err := p.fkeys.Encode(oldFK)
			if err != nil {
				return fmt.Errorf("encode foreign key: %w", err)
			}
			nb, err := p.fkeys.Encode(newFK)
			if err != nil {
				return fmt.Errorf("encode foreign key: %w", err)
			}
			changed = !bytes.Equal(ob, nb)
		}
		if changed {
			out.Key, out.Value = oldFK, subscription[K]{Unsubscribe: true, Key: r.Key}
			if err := p.ctx.Forward(out); err != nil {
				return err
			}
		}
	}
	if !hasNew {
		return nil
	}
	// The hash is of the bytes the left store holds, which the answer is
	// checked against: they are the same bytes even for a serde that does
	// not always encode a value alike.
	kb, err := p.keys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	vb, err := p.left.Get(kb)
	if err != nil {
		return fmt.Errorf("read the left table: %w", err)
	}
	if vb == nil {
		// The left store does not hold the value, so no answer could be
		// matched to it: none is asked for.
		return nil
	}
	out.Key, out.Value = newFK, subscription[K]{Hash: hashOf(vb), Key: r.Key}
	return p.ctx.Forward(out)
}

// directProc gives the result of the left updates that need no right
// value: a deletion deletes the result, and a value whose foreign key is
// null has no match (a left join's result with an absent right side; no
// result for an inner join). Stale answers to the left entry's earlier
// values are dropped by their hash.
type directProc[K, V, KO, VO, VR any] struct {
	ctx        topology.Context[K, Change[VR]]
	foreignKey func(V) KO
	join       func(V, Maybe[VO]) (VR, bool)
	nilKey     null.Checker[K]
	nilFK      null.Checker[KO]
	nilVR      null.Checker[VR]
}

func (p *directProc[K, V, KO, VO, VR]) Init(ctx topology.Context[K, Change[VR]]) error {
	p.ctx = ctx
	p.nilKey, p.nilFK, p.nilVR = null.For[K](), null.For[KO](), null.For[VR]()
	return nil
}

func (p *directProc[K, V, KO, VO, VR]) Close() error { return nil }

func (p *directProc[K, V, KO, VO, VR]) Process(r topology.Record[K, Change[V]]) error {
	if p.nilKey.IsNil(r.Key) {
		return nil // counted by the subscription sender
	}
	var out Change[VR]
	if c := r.Value; c.HasNew {
		if !p.nilFK.IsNil(p.foreignKey(c.New)) {
			return nil // answered by the right side
		}
		out.New, out.HasNew = p.join(c.New, Maybe[VO]{})
		out.HasNew = out.HasNew && !p.nilVR.IsNil(out.New)
	}
	return p.ctx.Forward(topology.Record[K, Change[VR]]{Key: r.Key, Value: out, Timestamp: r.Timestamp, Headers: r.Headers})
}

// receiveProc keeps each subscription in the subscription store, or
// deletes it, and answers a subscription with the right value of its
// foreign key.
type receiveProc[K, KO, VO any] struct {
	ctx    topology.Context[K, response[VO]]
	store  string
	keys   serde.Serde[K]
	fkeys  serde.Serde[KO]
	right  func(storeGetter) (*state.TypedReader[KO, VO], error)
	subs   state.KeyValueStore
	table  *state.TypedReader[KO, VO]
	nilFK  null.Checker[KO]
	nilKey null.Checker[K]
}

func (p *receiveProc[K, KO, VO]) Init(ctx topology.Context[K, response[VO]]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, p.store)
	if err != nil {
		return err
	}
	p.subs = kv
	if p.table, err = p.right(ctx); err != nil {
		return err
	}
	p.nilFK, p.nilKey = null.For[KO](), null.For[K]()
	return nil
}

func (p *receiveProc[K, KO, VO]) Close() error { return nil }

func (p *receiveProc[K, KO, VO]) Process(r topology.Record[KO, subscription[K]]) error {
	if p.nilFK.IsNil(r.Key) {
		p.ctx.SkipRecord("null foreign key")
		return nil
	}
	if p.nilKey.IsNil(r.Value.Key) {
		p.ctx.SkipRecord("null key")
		return nil
	}
	fb, err := p.fkeys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode foreign key: %w", err)
	}
	kb, err := p.keys.Encode(r.Value.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	key := subscriptionKey(fb, kb)
	if r.Value.Unsubscribe {
		_, err := p.subs.Delete(key)
		return err
	}
	if err := p.subs.Put(key, encodeStoredHash(r.Value.Hash)); err != nil {
		return err
	}
	vo, ok, err := p.table.Get(r.Key)
	if err != nil {
		return fmt.Errorf("look up the right table: %w", err)
	}
	return p.ctx.Forward(topology.Record[K, response[VO]]{
		Key:       r.Value.Key,
		Value:     response[VO]{Hash: r.Value.Hash, Value: Maybe[VO]{Value: vo, OK: ok}},
		Timestamp: r.Timestamp, Headers: r.Headers,
	})
}

// fanoutProc answers every subscriber of a right key when its value
// changes, with the new value (none for a deletion).
type fanoutProc[K, KO, VO any] struct {
	ctx   topology.Context[K, response[VO]]
	store string
	keys  serde.Serde[K]
	fkeys serde.Serde[KO]
	subs  state.KeyValueStore
	nilFK null.Checker[KO]
}

func (p *fanoutProc[K, KO, VO]) Init(ctx topology.Context[K, response[VO]]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, p.store)
	if err != nil {
		return err
	}
	p.subs = kv
	p.nilFK = null.For[KO]()
	return nil
}

func (p *fanoutProc[K, KO, VO]) Close() error { return nil }

func (p *fanoutProc[K, KO, VO]) Process(r topology.Record[KO, Change[VO]]) (err error) {
	if p.nilFK.IsNil(r.Key) {
		p.ctx.SkipRecord("null key")
		return nil
	}
	fb, err := p.fkeys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode foreign key: %w", err)
	}
	it, err := p.subs.PrefixScan(subscriptionPrefix(fb))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	value := Maybe[VO]{Value: r.Value.New, OK: r.Value.HasNew}
	for it.Next() {
		kb, err := splitSubscriptionKey(it.Key())
		if err != nil {
			return err
		}
		k, err := p.keys.Decode(kb)
		if err != nil {
			return fmt.Errorf("decode a subscriber's key: %w", err)
		}
		h, err := decodeStoredHash(it.Value())
		if err != nil {
			return err
		}
		err = p.ctx.Forward(topology.Record[K, response[VO]]{
			Key: k, Value: response[VO]{Hash: h, Value: value}, Timestamp: r.Timestamp, Headers: r.Headers,
		})
		if err != nil {
			return err
		}
	}
	return it.Err()
}

// responseJoinProc joins each answer with the left entry's current value,
// if the answer's hash is that of the current value; otherwise the answer
// is stale (the entry changed or was deleted since it subscribed) and is
// dropped.
type responseJoinProc[K, V, VO, VR any] struct {
	ctx    topology.Context[K, Change[VR]]
	store  string
	keys   serde.Serde[K]
	values serde.Serde[V]
	join   func(V, Maybe[VO]) (VR, bool)
	left   state.KeyValueStore
	nilVR  null.Checker[VR]
}

func (p *responseJoinProc[K, V, VO, VR]) Init(ctx topology.Context[K, Change[VR]]) error {
	p.ctx = ctx
	kv, err := topology.KeyValueStore(ctx, p.store)
	if err != nil {
		return err
	}
	p.left = kv
	p.nilVR = null.For[VR]()
	return nil
}

func (p *responseJoinProc[K, V, VO, VR]) Close() error { return nil }

func (p *responseJoinProc[K, V, VO, VR]) Process(r topology.Record[K, response[VO]]) error {
	kb, err := p.keys.Encode(r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	vb, err := p.left.Get(kb)
	if err != nil {
		return fmt.Errorf("read the left table: %w", err)
	}
	if vb == nil || hashOf(vb) != r.Value.Hash {
		p.ctx.Logger().Debug("dropped a stale foreign-key join response", "left_deleted", vb == nil)
		return nil
	}
	v, err := p.values.Decode(vb)
	if err != nil {
		return fmt.Errorf("decode the left value: %w", err)
	}
	var out Change[VR]
	out.New, out.HasNew = p.join(v, r.Value.Value)
	out.HasNew = out.HasNew && !p.nilVR.IsNil(out.New)
	return p.ctx.Forward(topology.Record[K, Change[VR]]{Key: r.Key, Value: out, Timestamp: r.Timestamp, Headers: r.Headers})
}

// passThrough forwards every record as it is.
type passThrough[K, V any] struct{ ctx topology.Context[K, V] }

func (p *passThrough[K, V]) Init(ctx topology.Context[K, V]) error { p.ctx = ctx; return nil }
func (p *passThrough[K, V]) Close() error                          { return nil }
func (p *passThrough[K, V]) Process(r topology.Record[K, V]) error { return p.ctx.Forward(r) }
