package table_test

import (
	"fmt"
	"strings"

	"github.com/riffle-streams/riffle/riffletest"
	"github.com/riffle-streams/riffle/serde"
	"github.com/riffle-streams/riffle/table"
	"github.com/riffle-streams/riffle/topology"
)

// Two tables of the same key, joined: an update on either side emits the
// new result, and a deletion deletes the result where the join held.
func ExampleJoin() {
	b := topology.NewBuilder()
	names := table.From[string, string](b, "user-names")
	emails := table.From[string, string](b, "user-emails")
	table.Join(names, emails, func(_ string, name, email string) string {
		return name + " <" + email + ">"
	}, table.Named("contacts")).To("contacts")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := riffletest.New(topo)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	n := riffletest.Input(d, "user-names", serde.String(), serde.String())
	e := riffletest.Input(d, "user-emails", serde.String(), serde.String())
	_ = n.Pipe("u1", "Ann")                                        // no email yet: no result
	_ = e.Pipe("u1", "ann@example.com")                            // joined
	_ = n.Pipe("u1", "Ann Lee")                                    // either side updates the result
	_ = e.Pipe("u2", "bob@example.com")                            // no name: no result
	_ = d.PipeRaw("user-emails", []byte("u1"), nil, d.WallClock()) // deleted
	printTopic(d, "contacts", serde.String(), serde.String())
	// Output:
	// u1: Ann <ann@example.com>
	// u1: Ann Lee <ann@example.com>
	// u1: <deleted>
}

// A left join keeps every key of the left table; the right side is absent
// where it has no value.
func ExampleLeftJoin() {
	b := topology.NewBuilder()
	names := table.From[string, string](b, "user-names")
	emails := table.From[string, string](b, "user-emails")
	table.LeftJoin(names, emails, func(_ string, name string, email table.Maybe[string]) string {
		if !email.OK {
			return name + " (no email)"
		}
		return name + " <" + email.Value + ">"
	}).To("contacts")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := riffletest.New(topo)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	n := riffletest.Input(d, "user-names", serde.String(), serde.String())
	e := riffletest.Input(d, "user-emails", serde.String(), serde.String())
	_ = n.Pipe("u1", "Ann")
	_ = e.Pipe("u1", "ann@example.com")
	_ = d.PipeRaw("user-emails", []byte("u1"), nil, d.WallClock())
	printTopic(d, "contacts", serde.String(), serde.String())
	// Output:
	// u1: Ann (no email)
	// u1: Ann <ann@example.com>
	// u1: Ann (no email)
}

// A foreign-key join: each order names its product, and takes the
// product's name. A product's update reaches every order that names it; an
// order that moves to another product leaves the old one.
func ExampleJoinForeign() {
	b := topology.NewBuilder()
	orders := table.From[string, string](b, "orders") // id -> "product:quantity"
	products := table.From[string, string](b, "products")
	product := func(order string) string { p, _, _ := strings.Cut(order, ":"); return p }
	enriched := table.JoinForeign(orders, products, product, func(order, name string) string {
		_, qty, _ := strings.Cut(order, ":")
		return qty + " x " + name
	}, table.Named("enrich"))
	enriched.To("enriched-orders")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := riffletest.New(topo)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	o := riffletest.Input(d, "orders", serde.String(), serde.String())
	p := riffletest.Input(d, "products", serde.String(), serde.String())
	_ = p.Pipe("p1", "kettle")
	_ = o.Pipe("o1", "p1:2")
	_ = o.Pipe("o2", "p1:1")
	_ = p.Pipe("p1", "steel kettle") // both orders follow
	_ = o.Pipe("o2", "p2:5")         // p2 has no value: o2's result is deleted
	_ = p.Pipe("p2", "teapot")
	printTopic(d, "enriched-orders", serde.String(), serde.String())
	for _, it := range topo.InternalTopics() {
		if it.Kind == topology.RepartitionTopic {
			fmt.Println(it.Resolve("app"))
		}
	}
	// Output:
	// o1: 2 x kettle
	// o2: 1 x kettle
	// o1: 2 x steel kettle
	// o2: 1 x steel kettle
	// o2: <deleted>
	// o2: 5 x teapot
	// app-enrich-subscription-registration-repartition
	// app-enrich-subscription-response-repartition
}

// A left foreign-key join keeps every left entry; the right side is
// absent where the foreign key has no value, or is null.
func ExampleLeftJoinForeign() {
	b := topology.NewBuilder()
	employees := table.From[string, string](b, "employees") // name -> department
	departments := table.From[[]byte, string](b, "departments")
	dept := func(d string) []byte {
		if d == "" {
			return nil // no department: a null foreign key
		}
		return []byte(d)
	}
	table.LeftJoinForeign(employees, departments, dept, func(d string, head table.Maybe[string]) string {
		if !head.OK {
			return "no head"
		}
		return "reports to " + head.Value
	}).To("reports")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := riffletest.New(topo)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	e := riffletest.Input(d, "employees", serde.String(), serde.String())
	h := riffletest.Input(d, "departments", serde.ByteArray(), serde.String())
	_ = e.Pipe("ann", "sales")
	_ = h.Pipe([]byte("sales"), "Zoe")
	_ = e.Pipe("bob", "")
	_ = e.Pipe("ann", "")
	printTopic(d, "reports", serde.String(), serde.String())
	// Output:
	// ann: no head
	// ann: reports to Zoe
	// bob: no head
	// ann: no head
}
