package stream

import "github.com/riffle-streams/riffle/topology"

// The DSL's operators are Processor API processors like any user's; they
// hold their Context and forward without allocating.

type passProc[K, V any] struct{ ctx topology.Context[K, V] }

func (p *passProc[K, V]) Init(ctx topology.Context[K, V]) error { p.ctx = ctx; return nil }
func (p *passProc[K, V]) Process(r topology.Record[K, V]) error { return p.ctx.Forward(r) }
func (p *passProc[K, V]) Close() error                          { return nil }

type filterProc[K, V any] struct {
	ctx  topology.Context[K, V]
	pred func(K, V) bool
	not  bool
}

func (p *filterProc[K, V]) Init(ctx topology.Context[K, V]) error { p.ctx = ctx; return nil }
func (p *filterProc[K, V]) Close() error                          { return nil }
func (p *filterProc[K, V]) Process(r topology.Record[K, V]) error {
	if p.pred(r.Key, r.Value) != p.not {
		return p.ctx.Forward(r)
	}
	return nil
}

type peekProc[K, V any] struct {
	ctx  topology.Context[K, V]
	fn   func(K, V)
	last bool // Foreach: nothing follows
}

func (p *peekProc[K, V]) Init(ctx topology.Context[K, V]) error { p.ctx = ctx; return nil }
func (p *peekProc[K, V]) Close() error                          { return nil }
func (p *peekProc[K, V]) Process(r topology.Record[K, V]) error {
	p.fn(r.Key, r.Value)
	if p.last {
		return nil
	}
	return p.ctx.Forward(r)
}

type mapProc[K, V, K2, V2 any] struct {
	ctx topology.Context[K2, V2]
	fn  func(K, V) (K2, V2)
}

func (p *mapProc[K, V, K2, V2]) Init(ctx topology.Context[K2, V2]) error { p.ctx = ctx; return nil }
func (p *mapProc[K, V, K2, V2]) Close() error                            { return nil }
func (p *mapProc[K, V, K2, V2]) Process(r topology.Record[K, V]) error {
	k, v := p.fn(r.Key, r.Value)
	return p.ctx.Forward(topology.Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers})
}

type mapValuesProc[K, V, V2 any] struct {
	ctx topology.Context[K, V2]
	fn  func(V) V2
}

func (p *mapValuesProc[K, V, V2]) Init(ctx topology.Context[K, V2]) error { p.ctx = ctx; return nil }
func (p *mapValuesProc[K, V, V2]) Close() error                           { return nil }
func (p *mapValuesProc[K, V, V2]) Process(r topology.Record[K, V]) error {
	return p.ctx.Forward(topology.Record[K, V2]{Key: r.Key, Value: p.fn(r.Value), Timestamp: r.Timestamp, Headers: r.Headers})
}

type selectKeyProc[K, V, K2 any] struct {
	ctx topology.Context[K2, V]
	fn  func(K, V) K2
}

func (p *selectKeyProc[K, V, K2]) Init(ctx topology.Context[K2, V]) error { p.ctx = ctx; return nil }
func (p *selectKeyProc[K, V, K2]) Close() error                           { return nil }
func (p *selectKeyProc[K, V, K2]) Process(r topology.Record[K, V]) error {
	return p.ctx.Forward(topology.Record[K2, V]{Key: p.fn(r.Key, r.Value), Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers})
}

type flatMapProc[K, V, K2, V2 any] struct {
	ctx topology.Context[K2, V2]
	fn  func(K, V) []topology.KeyValue[K2, V2]
}

func (p *flatMapProc[K, V, K2, V2]) Init(ctx topology.Context[K2, V2]) error { p.ctx = ctx; return nil }
func (p *flatMapProc[K, V, K2, V2]) Close() error                            { return nil }
func (p *flatMapProc[K, V, K2, V2]) Process(r topology.Record[K, V]) error {
	for _, kv := range p.fn(r.Key, r.Value) {
		if err := p.ctx.Forward(topology.Record[K2, V2]{Key: kv.Key, Value: kv.Value, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
			return err
		}
	}
	return nil
}

type flatMapValuesProc[K, V, V2 any] struct {
	ctx topology.Context[K, V2]
	fn  func(V) []V2
}

func (p *flatMapValuesProc[K, V, V2]) Init(ctx topology.Context[K, V2]) error {
	p.ctx = ctx
	return nil
}
func (p *flatMapValuesProc[K, V, V2]) Close() error { return nil }
func (p *flatMapValuesProc[K, V, V2]) Process(r topology.Record[K, V]) error {
	for _, v := range p.fn(r.Value) {
		if err := p.ctx.Forward(topology.Record[K, V2]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
			return err
		}
	}
	return nil
}

// splitProc sends each record to the first branch whose predicate holds, or
// to the default branch, or drops it.
type splitProc[K, V any] struct {
	ctx topology.Context[K, V]
	sp  *Splitter[K, V]
}

func (p *splitProc[K, V]) Init(ctx topology.Context[K, V]) error { p.ctx = ctx; return nil }
func (p *splitProc[K, V]) Close() error                          { return nil }
func (p *splitProc[K, V]) Process(r topology.Record[K, V]) error {
	for i := range p.sp.preds {
		if p.sp.preds[i](r.Key, r.Value) {
			return p.ctx.ForwardTo(p.sp.nodes[i], r)
		}
	}
	if p.sp.def != "" {
		return p.ctx.ForwardTo(p.sp.def, r)
	}
	return nil
}
