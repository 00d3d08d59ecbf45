package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// GeneratorConfig configures a Generator. The zero value of a field takes
// its default.
type GeneratorConfig struct {
	// Seed makes the traffic repeatable: two generators with one seed make
	// the same records, given the same times.
	Seed uint64
	// Rate is the average number of orders per second Run produces
	// (default 50). The rate swings slowly around it, and bursts of
	// several times it come now and then.
	Rate float64
	// Malformed is the fraction of orders written malformed: not JSON, or
	// missing a field (default 0.002). Negative writes none.
	Malformed float64
	// Products is the size of the catalog (default 300).
	Products int
	// Orders is how many orders Run produces before it returns; 0 runs
	// until its context ends.
	Orders int
	// InitialStock and LowStock are the app's (defaults
	// DefaultInitialStock and DefaultLowStock): the generator follows
	// stock as the app does, and restocks a product, most often before it
	// runs low and sometimes only after.
	InitialStock, LowStock int64
}

func (c *GeneratorConfig) defaults() {
	if c.Rate == 0 {
		c.Rate = 50
	}
	if c.Malformed == 0 {
		c.Malformed = 0.002
	}
	if c.Products == 0 {
		c.Products = 300
	}
	if c.InitialStock == 0 {
		c.InitialStock = DefaultInitialStock
	}
	if c.LowStock == 0 {
		c.LowStock = DefaultLowStock
	}
}

// Regions returns the shop's regions, the busiest first.
func Regions() []string {
	return []string{"north-america", "europe", "asia-pacific", "latin-america", "middle-east", "africa"}
}

// regionWeights are the shares of customers of each of Regions.
func regionWeights() []float64 { return []float64{0.31, 0.26, 0.19, 0.11, 0.08, 0.05} }

// Generator makes a shop's traffic: orders from new and returning
// customers in several regions, for products whose popularity is skewed
// (a Zipf law, drifting over time) and whose prices spread as real
// catalogs' do; restocks of products running low; now and then a malformed
// order. It is not safe for concurrent use.
type Generator struct {
	cfg        GeneratorConfig
	rng        *rand.Rand
	zipf       *rand.Zipf
	products   []product
	popularity []int // product index by rank of popularity
	stock      []int64
	customers  []customer
	nextID     int
	orders     int
	run        string // tells this run's order ids from another's
}

type product struct {
	id         string
	priceCents int64
}

type customer struct {
	id     string
	region string
}

// maxCustomers bounds how many customers a generator remembers.
const maxCustomers = 200_000

// NewGenerator returns a generator of traffic per cfg.
func NewGenerator(cfg GeneratorConfig) (*Generator, error) {
	cfg.defaults()
	switch {
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return nil, fmt.Errorf("generator: rate %v orders/s must be positive", cfg.Rate)
	case cfg.Malformed > 1:
		return nil, fmt.Errorf("generator: malformed fraction %v is over 1", cfg.Malformed)
	case cfg.Products < 2:
		return nil, fmt.Errorf("generator: %d products: at least 2 are needed", cfg.Products)
	case cfg.Orders < 0:
		return nil, fmt.Errorf("generator: %d orders is negative", cfg.Orders)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5a1e5))
	g := &Generator{
		cfg:   cfg,
		rng:   rng,
		zipf:  rand.NewZipf(rng, 1.15, 2, uint64(cfg.Products-1)),
		stock: make([]int64, cfg.Products),
		run:   fmt.Sprintf("%04x", cfg.Seed&0xffff),
	}
	for i := range cfg.Products {
		// Log-normal prices, as catalogs have: most between $5 and $80,
		// a few cheap ones and a few over $300, ending in .99.
		dollars := math.Exp(3.1 + 0.95*rng.NormFloat64())
		dollars = min(max(dollars, 1), 1499)
		g.products = append(g.products, product{id: fmt.Sprintf("P%04d", i+1), priceCents: int64(dollars)*100 + 99})
		g.stock[i] = cfg.InitialStock
	}
	g.popularity = rng.Perm(cfg.Products)
	return g, nil
}

// Orders returns how many orders Next has made.
func (g *Generator) Orders() int { return g.orders }

// Next returns the records of the next event at time at: an order
// (possibly malformed), followed by the restocks it prompts, if any.
func (g *Generator) Next(at time.Time) []*kgo.Record {
	at = at.UTC().Truncate(time.Millisecond) // Kafka keeps milliseconds
	g.orders++
	g.drift()
	o, touched := g.order(at)
	var recs []*kgo.Record
	if g.cfg.Malformed > 0 && g.rng.Float64() < g.cfg.Malformed {
		// The app rejects it: it takes no stock.
		for i, p := range touched {
			g.stock[p] += o.Items[i].Quantity
		}
		return append(recs, &kgo.Record{Topic: OrdersTopic, Key: []byte(o.OrderID), Value: g.malformed(o), Timestamp: at})
	}
	v, err := orderSerde{}.Encode(o)
	if err != nil {
		// An order of strings, numbers and a time always encodes; make it
		// a malformed one if it ever does not.
		v = []byte(err.Error())
	}
	recs = append(recs, &kgo.Record{Topic: OrdersTopic, Key: []byte(o.OrderID), Value: v, Timestamp: at})
	for _, p := range touched {
		if r := g.restockAfterOrder(p, at); r != nil {
			recs = append(recs, r)
		}
	}
	if g.rng.Float64() < 0.004 {
		// A delivery nobody waited for.
		p := g.rng.IntN(len(g.products))
		recs = append(recs, g.restock(p, at))
	}
	return recs
}

// drift changes which products are popular, slowly: every 300 orders a
// product of the top 20 swaps places with one further down.
func (g *Generator) drift() {
	if g.orders%300 != 0 {
		return
	}
	i, j := g.rng.IntN(20), 20+g.rng.IntN(len(g.popularity)-20)
	if j >= len(g.popularity) {
		return
	}
	g.popularity[i], g.popularity[j] = g.popularity[j], g.popularity[i]
}

// order makes a valid order at time at, and returns the catalog index of
// each item's product.
func (g *Generator) order(at time.Time) (Order, []int) {
	c := g.customer()
	n := 1
	for n < 8 && g.rng.Float64() < 0.45 {
		n++
	}
	o := Order{OrderID: fmt.Sprintf("O-%s-%08d", g.run, g.orders), CustomerID: c.id, Region: c.region, Timestamp: at}
	seen := map[int]bool{}
	var touched []int
	var total int64
	for range n {
		p := g.pick()
		for tries := 0; seen[p] && tries < 5; tries++ {
			p = g.pick()
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		touched = append(touched, p)
		q := int64(1)
		switch r := g.rng.Float64(); {
		case r < 0.08:
			q = 3 + g.rng.Int64N(3)
		case r < 0.25:
			q = 2
		}
		pr := g.products[p]
		o.Items = append(o.Items, Item{ProductID: pr.id, Quantity: q, Price: Dollars(pr.priceCents)})
		total += q * pr.priceCents
		g.stock[p] -= q
	}
	o.Total = Dollars(total)
	return o, touched
}

// pick returns a product, the popular ones most often.
func (g *Generator) pick() int { return g.popularity[g.zipf.Uint64()] }

// customer returns a returning customer (loyal ones most often) or a new
// one.
func (g *Generator) customer() customer {
	if len(g.customers) > 0 && g.rng.Float64() < 0.6 {
		u := g.rng.Float64()
		return g.customers[int(u*u*float64(len(g.customers)))]
	}
	g.nextID++
	c := customer{id: fmt.Sprintf("C-%s-%06d", g.run, g.nextID), region: Regions()[g.weighted(regionWeights())]}
	if len(g.customers) < maxCustomers {
		g.customers = append(g.customers, c)
	} else {
		g.customers[g.rng.IntN(maxCustomers)] = c
	}
	return c
}

// weighted returns an index of w, each with its weight's chance.
func (g *Generator) weighted(w []float64) int {
	u := g.rng.Float64()
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

// restockAfterOrder returns a restock of product p if its stock is low
// enough for the shop to order more: usually before it is low, sometimes
// after.
func (g *Generator) restockAfterOrder(p int, at time.Time) *kgo.Record {
	chance := 0.0
	switch {
	case g.stock[p] <= g.cfg.LowStock:
		chance = 0.25 // low: the shop hurries
	case g.stock[p] <= 2*g.cfg.LowStock:
		chance = 0.04 // getting low: the shop may be in time
	}
	if g.rng.Float64() >= chance {
		return nil
	}
	return g.restock(p, at)
}

// restock returns a restock of product p, of 200 to 600 units.
func (g *Generator) restock(p int, at time.Time) *kgo.Record {
	q := 200 + 50*g.rng.Int64N(9)
	g.stock[p] += q
	id := g.products[p].id
	v, err := restockSerde{}.Encode(Restock{ProductID: id, Quantity: q})
	if err != nil {
		return nil
	}
	return &kgo.Record{Topic: RestocksTopic, Key: []byte(id), Value: v, Timestamp: at}
}

// malformed writes o broken in one of the ways real producers break
// orders.
func (g *Generator) malformed(o Order) []byte {
	v, _ := orderSerde{}.Encode(o)
	switch g.rng.IntN(5) {
	case 0: // cut short
		return v[:len(v)/2]
	case 1:
		o.Region = ""
	case 2:
		o.Items = nil
	case 3:
		o.Items[0].Quantity = 0
	default:
		return []byte("order " + o.OrderID + " for " + o.CustomerID)
	}
	v, _ = orderSerde{}.Encode(o)
	return v
}

// Run produces the traffic with cl, at the configured rate, until ctx
// ends or the configured number of orders is made; then it waits for what
// it produced to be written. It stops at the first record that cannot be
// written, with its error.
func (g *Generator) Run(ctx context.Context, cl *kgo.Client) error {
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var (
		mu       sync.Mutex
		firstErr error
	)
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	produced := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("generator: produce to %s: %w", r.Topic, err)
			}
			mu.Unlock()
		}
	}
	pace := newPacer(g.cfg.Rate, g.cfg.Seed)
	start := time.Now()
	done := false
	for !done {
		select {
		case <-ctx.Done():
			done = true
		case now := <-t.C:
			for range pace.due(now.Sub(start), tick) {
				for _, r := range g.Next(now) {
					cl.Produce(ctx, r, produced)
				}
				if g.cfg.Orders > 0 && g.orders >= g.cfg.Orders {
					done = true
					break
				}
			}
		}
		if err := failed(); err != nil && ctx.Err() == nil {
			return err
		}
	}
	// Records in flight when ctx ended fail with its error: only the
	// others are worth waiting for.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		return fmt.Errorf("generator: flush: %w", err)
	}
	if err := failed(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// pacer says how many orders are due in each tick: the average rate,
// swinging by a third over four minutes, with bursts of 2.5 to 5 times it
// for 5 to 20 seconds, a few times an hour.
type pacer struct {
	rate       float64
	rng        *rand.Rand
	owed       float64
	burstUntil time.Duration
	burst      float64
}

func newPacer(rate float64, seed uint64) *pacer {
	return &pacer{rate: rate, rng: rand.New(rand.NewPCG(seed, 0xb0057))}
}

// due returns how many orders are due in the tick that ends elapsed into
// the run.
func (p *pacer) due(elapsed, tick time.Duration) int {
	if elapsed >= p.burstUntil {
		p.burst = 1
		if p.rng.Float64() < tick.Seconds()/600 { // once in ten minutes, on average
			p.burst = 2.5 + 2.5*p.rng.Float64()
			p.burstUntil = elapsed + 5*time.Second + time.Duration(p.rng.Int64N(int64(15*time.Second)))
		}
	}
	swing := 1 + math.Sin(2*math.Pi*elapsed.Seconds()/240)/3
	p.owed += p.rate * swing * p.burst * tick.Seconds()
	n := int(p.owed)
	p.owed -= float64(n)
	return n
}
