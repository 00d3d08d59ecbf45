package serde_test

import (
	"errors"
	"fmt"

	"github.com/riffle-streams/riffle/serde"
)

func ExampleInt64() {
	s := serde.Int64()
	b, _ := s.Encode(1)
	fmt.Printf("% x\n", b)

	v, _ := s.Decode([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})
	fmt.Println(v)

	_, err := s.Decode([]byte{1, 2, 3})
	fmt.Println(err)
	// Output:
	// 00 00 00 00 00 00 00 01
	// -2
	// serde Int64: want 8 bytes, got 3 bytes
}

func ExampleJSON() {
	type Order struct {
		ID    string `json:"id"`
		Cents int64  `json:"cents"`
	}
	s := serde.JSON[Order]()
	b, _ := s.Encode(Order{ID: "o-1", Cents: 1250})
	fmt.Println(string(b))

	o, _ := s.Decode([]byte(`{"id":"o-2","cents":99}`))
	fmt.Printf("%+v\n", o)

	// A struct cannot hold a null; a pointer can.
	_, err := s.Decode(nil)
	fmt.Println(errors.Is(err, serde.ErrNull))
	p, err := serde.JSON[*Order]().Decode(nil)
	fmt.Println(p, err)
	// Output:
	// {"id":"o-1","cents":1250}
	// {ID:o-2 Cents:99}
	// true
	// <nil> <nil>
}

func ExampleNullable() {
	s := serde.Nullable(serde.String())
	fmt.Println(s)

	// A nil pointer is a null (nil bytes); an empty string is not.
	b, _ := s.Encode(nil)
	fmt.Println(b == nil)
	empty := ""
	b, _ = s.Encode(&empty)
	fmt.Println(b == nil, len(b))

	v, _ := s.Decode(nil)
	fmt.Println(v == nil)
	v, _ = s.Decode([]byte("hi"))
	fmt.Println(*v)
	// Output:
	// Nullable(String)
	// true
	// false 0
	// true
	// hi
}

func ExampleDefault() {
	s, _ := serde.Default[string]()
	fmt.Println(s)
	m, _ := serde.Default[map[string]int]()
	fmt.Println(m)

	_, err := serde.Default[int]()
	fmt.Println(err)
	// Output:
	// String
	// JSON[map[string]int]
	// serde: no default serde for type int: its width is ambiguous; pass one explicitly, such as serde.Int64()
}
