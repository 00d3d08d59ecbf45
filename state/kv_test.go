package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

// orderKeys are in bytewise order.
var orderKeys = []string{"", "a", "a\x00", "ab", "a\xff", "a\xff\xff", "b", "b\x00", "\xff", "\xff\xff"}

// filled returns a store of backend b named "test" holding every key of
// orderKeys, put in a scrambled order, each with the value "v" + key.
func filled(t *testing.T, b backend) state.KeyValueStore {
	t.Helper()
	kv := b.open("test")
	for i := range orderKeys {
		k := orderKeys[(i*7)%len(orderKeys)] // 7 is prime to len
		mustPut(t, kv, k, "v"+k)
	}
	if n, _ := kv.ApproximateCount(); n != int64(len(orderKeys)) {
		t.Fatalf("ApproximateCount = %d, want %d", n, len(orderKeys))
	}
	return kv
}

// bound turns a string into a bound: "<nil>" is nil.
func bound(s string) []byte {
	if s == "<nil>" {
		return nil
	}
	return []byte(s)
}

func TestOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := filled(t, b)
		it, err := kv.Range(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := drain(t, it)
		if !slices.Equal(keysOf(got), orderKeys) {
			t.Errorf("Range(nil, nil) = %q, want %q", keysOf(got), orderKeys)
		}
		for _, e := range got {
			if e.v != "v"+e.k {
				t.Errorf("key %q has value %q", e.k, e.v)
			}
		}
		it, err = kv.ReverseRange(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(orderKeys)
		slices.Reverse(want)
		if got := keysOf(drain(t, it)); !slices.Equal(got, want) {
			t.Errorf("ReverseRange(nil, nil) = %q, want %q", got, want)
		}
	})
}

func TestRange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := filled(t, b)
		tests := []struct {
			from, to string
			want     []string // ascending
		}{
			{"<nil>", "<nil>", orderKeys},
			{"", "<nil>", orderKeys},
			{"<nil>", "", nil}, // an empty to is the least key, not open
			{"", "a", []string{""}},
			{"a", "b", []string{"a", "a\x00", "ab", "a\xff", "a\xff\xff"}},
			{"a\x00", "ab", []string{"a\x00"}},
			{"a\x00", "a\xff", []string{"a\x00", "ab"}},
			{"a\x01", "a\xff\xff", []string{"ab", "a\xff"}},
			{"aa", "b\x00", []string{"ab", "a\xff", "a\xff\xff", "b"}},
			{"b", "<nil>", []string{"b", "b\x00", "\xff", "\xff\xff"}},
			{"c", "<nil>", []string{"\xff", "\xff\xff"}},
			{"\xff", "\xff\xff", []string{"\xff"}},
			{"\xff\xff", "<nil>", []string{"\xff\xff"}},
			{"\xff\xff\x00", "<nil>", nil},
			{"<nil>", "a", []string{""}},
			{"a", "a", nil},
			{"b", "a", nil},
			{"zz", "zzz", nil},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%q-%q", tt.from, tt.to), func(t *testing.T) {
				it, err := kv.Range(bound(tt.from), bound(tt.to))
				if err != nil {
					t.Fatal(err)
				}
				if got := keysOf(drain(t, it)); !slices.Equal(got, tt.want) {
					t.Errorf("Range = %q, want %q", got, tt.want)
				}
				it, err = kv.ReverseRange(bound(tt.from), bound(tt.to))
				if err != nil {
					t.Fatal(err)
				}
				want := slices.Clone(tt.want)
				slices.Reverse(want)
				if got := keysOf(drain(t, it)); !slices.Equal(got, want) {
					t.Errorf("ReverseRange = %q, want %q", got, want)
				}
			})
		}
	})
}

func TestPrefixScan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := filled(t, b)
		tests := []struct {
			prefix string
			want   []string
		}{
			{"<nil>", orderKeys},
			{"", orderKeys},
			{"a", []string{"a", "a\x00", "ab", "a\xff", "a\xff\xff"}},
			{"a\x00", []string{"a\x00"}},
			{"a\xff", []string{"a\xff", "a\xff\xff"}},
			{"a\xff\xff", []string{"a\xff\xff"}},
			{"b", []string{"b", "b\x00"}},
			{"\xff", []string{"\xff", "\xff\xff"}},
			{"\xff\xff", []string{"\xff\xff"}},
			{"\xff\xff\xff", nil},
			{"c", nil},
			{"ab\x00", nil},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
				prefix := bound(tt.prefix)
				it, err := kv.PrefixScan(prefix)
				if err != nil {
					t.Fatal(err)
				}
				if got := keysOf(drain(t, it)); !slices.Equal(got, tt.want) {
					t.Errorf("PrefixScan = %q, want %q", got, tt.want)
				}
				if !bytes.Equal(prefix, bound(tt.prefix)) {
					t.Errorf("PrefixScan changed its argument to %q", prefix)
				}
			})
		}
	})
}

func TestGetPut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		tests := []struct {
			name    string
			puts    [][2][]byte // key, value; applied in order
			key     []byte
			want    []byte // nil: absent
			wantNil bool
		}{
			{name: "absent", key: []byte("k"), wantNil: true},
			{name: "put", puts: [][2][]byte{{[]byte("k"), []byte("v")}}, key: []byte("k"), want: []byte("v")},
			{name: "overwrite", puts: [][2][]byte{{[]byte("k"), []byte("v1")}, {[]byte("k"), []byte("v2")}}, key: []byte("k"), want: []byte("v2")},
			{name: "empty value", puts: [][2][]byte{{[]byte("k"), []byte{}}}, key: []byte("k"), want: []byte{}},
			{name: "nil value deletes", puts: [][2][]byte{{[]byte("k"), []byte("v")}, {[]byte("k"), nil}}, key: []byte("k"), wantNil: true},
			{name: "nil value on absent key", puts: [][2][]byte{{[]byte("k"), nil}}, key: []byte("k"), wantNil: true},
			{name: "empty key", puts: [][2][]byte{{[]byte{}, []byte("e")}}, key: []byte{}, want: []byte("e")},
			{name: "other key", puts: [][2][]byte{{[]byte("k"), []byte("v")}}, key: []byte("k\x00"), wantNil: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				kv := b.open("test")
				for _, p := range tt.puts {
					if err := kv.Put(p[0], p[1]); err != nil {
						t.Fatalf("Put: %v", err)
					}
				}
				got, err := kv.Get(tt.key)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if tt.wantNil {
					if got != nil {
						t.Errorf("Get = %q, want nil", got)
					}
					return
				}
				if got == nil || !bytes.Equal(got, tt.want) {
					t.Errorf("Get = %q (nil: %t), want %q", got, got == nil, tt.want)
				}
			})
		}
	})
}

func TestPutIfAbsent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		tests := []struct {
			name     string
			existing []byte // nil: absent
			value    []byte
			wantOld  []byte // nil: it put
			wantGet  []byte // nil: absent after
		}{
			{"absent", nil, []byte("new"), nil, []byte("new")},
			{"present", []byte("old"), []byte("new"), []byte("old"), []byte("old")},
			{"present empty", []byte{}, []byte("new"), []byte{}, []byte{}},
			{"absent empty", nil, []byte{}, nil, []byte{}},
			{"absent nil", nil, nil, nil, nil},
			{"present nil", []byte("old"), nil, []byte("old"), []byte("old")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				kv := b.open("test")
				k := []byte("k")
				if tt.existing != nil {
					if err := kv.Put(k, tt.existing); err != nil {
						t.Fatal(err)
					}
				}
				old, err := kv.PutIfAbsent(k, tt.value)
				if err != nil {
					t.Fatal(err)
				}
				if (old == nil) != (tt.wantOld == nil) || !bytes.Equal(old, tt.wantOld) {
					t.Errorf("PutIfAbsent = %q (nil: %t), want %q (nil: %t)", old, old == nil, tt.wantOld, tt.wantOld == nil)
				}
				got, _ := kv.Get(k)
				if (got == nil) != (tt.wantGet == nil) || !bytes.Equal(got, tt.wantGet) {
					t.Errorf("Get after = %q (nil: %t), want %q (nil: %t)", got, got == nil, tt.wantGet, tt.wantGet == nil)
				}
			})
		}
	})
}

func TestDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := filled(t, b)
		tests := []struct {
			key     string
			wantOld []byte // nil: was absent
		}{
			{"a", []byte("va")},
			{"a", nil},
			{"", []byte("v")},
			{"\xff\xff", []byte("v\xff\xff")},
			{"zzz", nil},
		}
		for _, tt := range tests {
			old, err := kv.Delete([]byte(tt.key))
			if err != nil {
				t.Fatal(err)
			}
			if (old == nil) != (tt.wantOld == nil) || !bytes.Equal(old, tt.wantOld) {
				t.Errorf("Delete(%q) = %q, want %q", tt.key, old, tt.wantOld)
			}
			if got, _ := kv.Get([]byte(tt.key)); got != nil {
				t.Errorf("Get(%q) after Delete = %q", tt.key, got)
			}
		}
		if n, _ := kv.ApproximateCount(); n != int64(len(orderKeys)-3) {
			t.Errorf("ApproximateCount = %d, want %d", n, len(orderKeys)-3)
		}
		// An empty value comes back from Delete as empty, not nil.
		mustPut(t, kv, "e", "")
		if old, _ := kv.Delete([]byte("e")); old == nil || len(old) != 0 {
			t.Errorf("Delete of empty value = %q (nil: %t), want empty", old, old == nil)
		}
	})
}

func TestNilKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := b.open("test")
		errs := map[string]error{}
		_, errs["Get"] = kv.Get(nil)
		errs["Put"] = kv.Put(nil, []byte("v"))
		errs["Put nil"] = kv.Put(nil, nil)
		_, errs["PutIfAbsent"] = kv.PutIfAbsent(nil, []byte("v"))
		_, errs["Delete"] = kv.Delete(nil)
		for op, err := range errs {
			if !errors.Is(err, state.ErrNilKey) {
				t.Errorf("%s(nil): err = %v, want ErrNilKey", op, err)
			}
		}
	})
}

func TestCopies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := b.open("test")
		key, value := []byte("key"), []byte("value")
		if err := kv.Put(key, value); err != nil {
			t.Fatal(err)
		}
		copy(key, "xxx")
		copy(value, "XXXXX")
		if got, _ := kv.Get([]byte("key")); string(got) != "value" {
			t.Errorf("Get = %q after the caller reused its buffers", got)
		}

		mustPut(t, kv, "b", "1")
		mustPut(t, kv, "c", "2")
		from, to := []byte("b"), []byte("c")
		it, err := kv.Range(from, to)
		if err != nil {
			t.Fatal(err)
		}
		copy(from, "a")
		copy(to, "z")
		if got := keysOf(drain(t, it)); !slices.Equal(got, []string{"b"}) {
			t.Errorf("Range = %q after the caller reused its bounds", got)
		}

		// Appending to a returned key must not reach its value.
		it, _ = kv.Range(nil, nil)
		for it.Next() {
			_ = append(it.Key(), '!')
		}
		it.Close()
		if got, _ := kv.Get([]byte("key")); string(got) != "value" {
			t.Errorf("Get = %q after appending to a returned key", got)
		}
	})
}

func TestClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := filled(t, b)
		before, err := kv.Range(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if kv.Name() != "test" {
			t.Errorf("Name = %q", kv.Name())
		}
		k := []byte("a")
		calls := map[string]func() error{
			"Get":              func() error { _, err := kv.Get(k); return err },
			"Put":              func() error { return kv.Put(k, k) },
			"Put nil":          func() error { return kv.Put(k, nil) },
			"PutIfAbsent":      func() error { _, err := kv.PutIfAbsent(k, k); return err },
			"Delete":           func() error { _, err := kv.Delete(k); return err },
			"Range":            func() error { _, err := kv.Range(nil, nil); return err },
			"ReverseRange":     func() error { _, err := kv.ReverseRange(nil, nil); return err },
			"PrefixScan":       func() error { _, err := kv.PrefixScan(k); return err },
			"ApproximateCount": func() error { _, err := kv.ApproximateCount(); return err },
			"Flush":            kv.Flush,
			"Close":            kv.Close,
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, state.ErrClosed) {
				t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
				continue
			}
			if !strings.HasPrefix(err.Error(), `state: store "test": `) {
				t.Errorf("%s after Close: err = %q does not name the store", name, err)
			}
		}
		if b.persistent {
			// Close closed the iterator: it stops and says why.
			if before.Next() {
				t.Error("iterator opened before Close: Next = true after Close")
			}
			if err := before.Err(); !errors.Is(err, state.ErrClosed) {
				t.Errorf("iterator opened before Close: Err = %v, want ErrClosed", err)
			}
			if err := before.Close(); err != nil {
				t.Errorf("closing an iterator the store closed: %v", err)
			}
			return
		}
		// An iterator opened before Close walks its snapshot to the end.
		if got := keysOf(drain(t, before)); !slices.Equal(got, orderKeys) {
			t.Errorf("iterator opened before Close = %q, want %q", got, orderKeys)
		}
	})
}

func TestErrorMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := b.open("counts")
		kv.Close()
		err := kv.Put([]byte("k"), []byte("v"))
		if want := `state: store "counts": put: store is closed`; err.Error() != want {
			t.Errorf("err = %q, want %q", err, want)
		}
	})
}

func TestIteratorClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := filled(t, b)
		it, err := kv.Range(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !it.Next() {
			t.Fatal("Next = false on a full store")
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if err := it.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if it.Next() {
			t.Error("Next = true after Close")
		}
		if !errors.Is(it.Err(), state.ErrClosed) {
			t.Errorf("Err after Next after Close = %v, want ErrClosed", it.Err())
		}
		if it.Key() != nil || it.Value() != nil {
			t.Errorf("Key, Value after Close = %q, %q", it.Key(), it.Value())
		}
	})
}

func TestIteratorSnapshot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// Enough keys for a tree several levels deep.
		const n = 5000
		key := func(i int) []byte { return fmt.Appendf(nil, "k%05d", i) }
		kv := b.open("test")
		for i := 0; i < n; i += 2 {
			if err := kv.Put(key(i), []byte("old")); err != nil {
				t.Fatal(err)
			}
		}
		fwd, _ := kv.Range(nil, nil)
		rev, _ := kv.ReverseRange(nil, nil)
		pre, _ := kv.PrefixScan([]byte("k01"))

		// Change everything: overwrite, add and delete.
		for i := range n {
			if i%3 == 0 {
				kv.Delete(key(i))
			} else {
				kv.Put(key(i), []byte("new"))
			}
		}

		check := func(name string, it state.Iterator, want []int) {
			t.Helper()
			got := drain(t, it)
			if len(got) != len(want) {
				t.Fatalf("%s saw %d entries, want %d", name, len(got), len(want))
			}
			for j, e := range got {
				if e.k != string(key(want[j])) || e.v != "old" {
					t.Fatalf("%s entry %d = %q=%q, want %q=old", name, j, e.k, e.v, key(want[j]))
				}
			}
		}
		var even, evenRev, evenPre []int
		for i := 0; i < n; i += 2 {
			even = append(even, i)
			if i >= 1000 && i < 2000 {
				evenPre = append(evenPre, i)
			}
		}
		evenRev = slices.Clone(even)
		slices.Reverse(evenRev)
		check("Range", fwd, even)
		check("ReverseRange", rev, evenRev)
		check("PrefixScan", pre, evenPre)

		// A new iterator sees the writes.
		it, _ := kv.Range(nil, nil)
		got := drain(t, it)
		var want []string
		for i := range n {
			if i%3 != 0 {
				want = append(want, string(key(i)))
			}
		}
		if !slices.Equal(keysOf(got), want) {
			t.Errorf("Range after the writes saw %d keys, want %d", len(got), len(want))
		}
	})
}

// TestConcurrentReaders runs readers alongside a writer. The writer makes
// rounds over a fixed set of keys, setting each, in ascending order, to the
// round's number. Any snapshot must therefore hold every key, with values
// that never rise along the keys and fall by at most one.
func TestConcurrentReaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const keys, rounds, readers = 300, 40, 4
		kv := b.open("test")
		key := func(i int) []byte { return fmt.Appendf(nil, "k%04d", i) }
		for i := range keys {
			if err := kv.Put(key(i), []byte{0}); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, readers)
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reverse := r%2 == 1
				for pass := 0; ; pass++ {
					select {
					case <-done:
						if pass > 0 {
							return
						}
					default:
					}
					if err := checkSnapshot(kv, keys, reverse); err != nil {
						errs <- err
						return
					}
					v, err := kv.Get(key(pass % keys))
					if err != nil || len(v) != 1 {
						errs <- fmt.Errorf("Get = %v, %v", v, err)
						return
					}
				}
			}()
		}
		for round := 1; round <= rounds; round++ {
			for i := range keys {
				if err := kv.Put(key(i), []byte{byte(round)}); err != nil {
					t.Fatal(err)
				}
				if i%50 == 0 { // delete and restore: readers must not see the gap
					kv.Delete([]byte("x"))
					kv.Put([]byte("x"), []byte("x"))
				}
			}
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func checkSnapshot(kv state.KeyValueStore, keys int, reverse bool) error {
	var it state.Iterator
	var err error
	if reverse {
		it, err = kv.ReverseRange(nil, []byte("x"))
	} else {
		it, err = kv.Range(nil, []byte("x"))
	}
	if err != nil {
		return err
	}
	defer it.Close()
	var vals []int
	var last []byte
	for it.Next() {
		if last != nil && (bytes.Compare(last, it.Key()) >= 0) != reverse {
			return fmt.Errorf("keys out of order: %q then %q", last, it.Key())
		}
		last = append(last[:0:0], it.Key()...) // a key is valid until Next
		vals = append(vals, int(it.Value()[0]))
	}
	if len(vals) != keys {
		return fmt.Errorf("snapshot has %d keys, want %d", len(vals), keys)
	}
	if reverse {
		slices.Reverse(vals)
	}
	for i := 1; i < len(vals); i++ {
		if vals[i] > vals[i-1] || vals[i] < vals[0]-1 {
			return fmt.Errorf("torn snapshot: values %v", vals)
		}
	}
	return it.Err()
}

func TestIteratorClosedMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		kv := filled(t, b)
		it, _ := kv.Range(nil, nil)
		it.Close()
		it.Next()
		if want := `state: store "test": next: iterator is closed`; it.Err() == nil || it.Err().Error() != want {
			t.Errorf("Err = %v, want %q", it.Err(), want)
		}
	})
}
