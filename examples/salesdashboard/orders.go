package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/riffle-streams/riffle/serde"
)

// The topics of the shop. The app reads orders and restocks, and writes
// stock changes and low-stock alerts; an order it cannot read goes to the
// dead-letter topic, which it reads back to count the rejected orders.
const (
	OrdersTopic           = "customer-orders"
	DeadLetterTopic       = "customer-orders-dlq"
	RestocksTopic         = "restocks"
	InventoryUpdatesTopic = "inventory-updates"
	InventoryAlertsTopic  = "inventory-alerts"
)

// Topics returns every topic the app uses that it does not create itself
// (Riffle creates only its internal topics).
func Topics() []string {
	return []string{OrdersTopic, DeadLetterTopic, RestocksTopic, InventoryUpdatesTopic, InventoryAlertsTopic}
}

// Order is an order event, the value of a record of OrdersTopic keyed by
// its OrderID. Prices and the total are in dollars on the wire, as the
// shop writes them; Cents converts them for exact sums.
type Order struct {
	OrderID    string    `json:"orderId"`
	CustomerID string    `json:"customerId"`
	Region     string    `json:"region"`
	Items      []Item    `json:"items"`
	Total      float64   `json:"total"`
	Timestamp  time.Time `json:"timestamp"`
}

// Item is a line of an order.
type Item struct {
	ProductID string  `json:"productId"`
	Quantity  int64   `json:"quantity"`
	Price     float64 `json:"price"`
}

// TotalCents is the order's total in cents, rounded.
func (o Order) TotalCents() int64 { return Cents(o.Total) }

// Cents converts dollars to cents, rounding to the nearest cent.
func Cents(dollars float64) int64 { return int64(math.Round(dollars * 100)) }

// Dollars converts cents to dollars, as the wire format writes money.
func Dollars(cents int64) float64 { return float64(cents) / 100 }

// Restock is a delivery of units of a product, the value of a record of
// RestocksTopic keyed by its ProductID.
type Restock struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// maxDollars bounds prices and totals, so that cents fit an int64 with room
// for sums.
const maxDollars = 1e9

// orderSerde reads and writes orders as JSON. Decode refuses an order
// that is not valid JSON or misses a field, with a reason that ends up in
// the dead-letter record's riffle.error header.
type orderSerde struct{}

// String names the serde in decode errors.
func (orderSerde) String() string { return "Order" }

// Encode writes o as JSON.
func (orderSerde) Encode(o Order) ([]byte, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode order %q: %w", o.OrderID, err)
	}
	return b, nil
}

// wireOrder is an order as read, with pointers to tell a missing field from
// a zero one.
type wireOrder struct {
	OrderID    *string    `json:"orderId"`
	CustomerID *string    `json:"customerId"`
	Region     *string    `json:"region"`
	Items      []wireItem `json:"items"`
	Total      *float64   `json:"total"`
	Timestamp  *time.Time `json:"timestamp"`
}

type wireItem struct {
	ProductID *string  `json:"productId"`
	Quantity  *int64   `json:"quantity"`
	Price     *float64 `json:"price"`
}

// Decode reads an order and checks it has every field.
func (s orderSerde) Decode(data []byte) (Order, error) {
	o, err := decodeOrder(data)
	if err != nil {
		got := len(data)
		if data == nil {
			got = -1
		}
		return Order{}, &serde.DecodeError{Serde: s.String(), Want: "an order as JSON", Got: got, Err: err}
	}
	return o, nil
}

// decodeOrder reads an order and says what is wrong with one that is not
// valid.
func decodeOrder(data []byte) (Order, error) {
	if data == nil {
		return Order{}, serde.ErrNull
	}
	var w wireOrder
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&w); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Order{}, fmt.Errorf("not valid JSON: %w", err)
		}
		return Order{}, fmt.Errorf("not an order: %w", err)
	}
	if d.More() {
		return Order{}, errors.New("not valid JSON: data after the order")
	}
	var o Order
	var err error
	if o.OrderID, err = text("orderId", w.OrderID); err != nil {
		return Order{}, err
	}
	if o.CustomerID, err = text("customerId", w.CustomerID); err != nil {
		return Order{}, err
	}
	if o.Region, err = text("region", w.Region); err != nil {
		return Order{}, err
	}
	if len(w.Items) == 0 {
		return Order{}, errors.New(`missing field "items": an order has at least one item`)
	}
	o.Items = make([]Item, len(w.Items))
	for i, it := range w.Items {
		field := fmt.Sprintf("items[%d].", i)
		if o.Items[i].ProductID, err = text(field+"productId", it.ProductID); err != nil {
			return Order{}, err
		}
		switch {
		case it.Quantity == nil:
			return Order{}, fmt.Errorf("missing field %q", field+"quantity")
		case *it.Quantity <= 0:
			return Order{}, fmt.Errorf("field %q is %d: it must be positive", field+"quantity", *it.Quantity)
		}
		o.Items[i].Quantity = *it.Quantity
		if o.Items[i].Price, err = money(field+"price", it.Price); err != nil {
			return Order{}, err
		}
	}
	if o.Total, err = money("total", w.Total); err != nil {
		return Order{}, err
	}
	switch {
	case w.Timestamp == nil:
		return Order{}, errors.New(`missing field "timestamp"`)
	case w.Timestamp.Before(time.UnixMilli(0)):
		return Order{}, fmt.Errorf("field \"timestamp\" is %s: before 1970", w.Timestamp.Format(time.RFC3339))
	}
	o.Timestamp = *w.Timestamp
	return o, nil
}

func text(field string, s *string) (string, error) {
	switch {
	case s == nil:
		return "", fmt.Errorf("missing field %q", field)
	case *s == "":
		return "", fmt.Errorf("field %q is empty", field)
	}
	return *s, nil
}

func money(field string, f *float64) (float64, error) {
	switch {
	case f == nil:
		return 0, fmt.Errorf("missing field %q", field)
	case *f < 0 || *f > maxDollars || math.IsNaN(*f):
		return 0, fmt.Errorf("field %q is %v: it must be between 0 and %.0f", field, *f, float64(maxDollars))
	}
	return *f, nil
}

// restockSerde reads and writes restocks as JSON, refusing one without a
// product or with a quantity that is not positive.
type restockSerde struct{}

// String names the serde in decode errors.
func (restockSerde) String() string { return "Restock" }

// Encode writes r as JSON.
func (restockSerde) Encode(r Restock) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode restock of %q: %w", r.ProductID, err)
	}
	return b, nil
}

// Decode reads a restock and checks it.
func (s restockSerde) Decode(data []byte) (Restock, error) {
	fail := func(err error) (Restock, error) {
		got := len(data)
		if data == nil {
			got = -1
		}
		return Restock{}, &serde.DecodeError{Serde: s.String(), Want: "a restock as JSON", Got: got, Err: err}
	}
	if data == nil {
		return fail(serde.ErrNull)
	}
	var w struct {
		ProductID *string `json:"productId"`
		Quantity  *int64  `json:"quantity"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return fail(fmt.Errorf("not valid JSON: %w", err))
	}
	id, err := text("productId", w.ProductID)
	if err != nil {
		return fail(err)
	}
	switch {
	case w.Quantity == nil:
		return fail(errors.New(`missing field "quantity"`))
	case *w.Quantity <= 0:
		return fail(fmt.Errorf("field \"quantity\" is %d: it must be positive", *w.Quantity))
	}
	return Restock{ProductID: id, Quantity: *w.Quantity}, nil
}
