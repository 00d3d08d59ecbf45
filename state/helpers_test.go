package state_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

// The tests use serdes of their own so they do not depend on package serde's.

// stringSerde encodes strings as their bytes.
type stringSerde struct{}

func (stringSerde) Encode(s string) ([]byte, error) { return []byte(s), nil }
func (stringSerde) Decode(b []byte) (string, error) {
	if b == nil {
		return "", errors.New("null string")
	}
	return string(b), nil
}

// int64Serde encodes int64s as 8 bytes big-endian.
type int64Serde struct{}

func (int64Serde) Encode(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
}
func (int64Serde) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("int64: want 8 bytes, got %d", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// ptrSerde encodes a *string, nil as nil bytes (a tombstone).
type ptrSerde struct{}

func (ptrSerde) Encode(p *string) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	return []byte(*p), nil
}
func (ptrSerde) Decode(b []byte) (*string, error) {
	if b == nil {
		return nil, nil
	}
	s := string(b)
	return &s, nil
}

// entry is a key and value of a scan, as strings.
type entry struct{ k, v string }

// drain reads it to the end, closes it and returns what it saw.
func drain(t *testing.T, it state.Iterator) []entry {
	t.Helper()
	var got []entry
	for it.Next() {
		got = append(got, entry{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("close iterator: %v", err)
	}
	return got
}

// keysOf returns the keys of entries.
func keysOf(es []entry) []string {
	ks := make([]string, len(es))
	for i, e := range es {
		ks[i] = e.k
	}
	return ks
}

func mustPut(t *testing.T, kv state.KeyValueStore, k, v string) {
	t.Helper()
	if err := kv.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}
