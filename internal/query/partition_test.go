package query

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoPartition is the partition franz-go's default (Kafka-compatible)
// partitioner gives a record with a non-nil key among n partitions.
func kgoPartition(key []byte, n int32) int32 {
	if key == nil {
		key = []byte{} // a nil key is partitioned at random, not hashed
	}
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: key}, int(n)))
}

// Kafka's UtilsTest.testMurmur2 vectors: the hash as Java's int.
var murmur2Vectors = []struct {
	in   string
	want int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

func TestMurmur2KafkaVectors(t *testing.T) {
	for _, c := range murmur2Vectors {
		if got := int32(murmur2([]byte(c.in))); got != c.want {
			t.Errorf("murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestPartitionKafkaVectors(t *testing.T) {
	// Kafka: Utils.toPositive(Utils.murmur2(key)) % numPartitions.
	for _, c := range murmur2Vectors {
		for _, n := range []int32{1, 2, 3, 7, 12, 100, 1000, math.MaxInt32} {
			want := int32(uint32(c.want)&0x7fffffff) % n
			if got := Partition([]byte(c.in), n); got != want {
				t.Errorf("Partition(%q, %d) = %d, want %d", c.in, n, got, want)
			}
		}
	}
	// A few fixed placements, worked out by hand from the vectors above.
	fixed := []struct {
		key  string
		n    int32
		want int32
	}{
		{"foobar", 3, (2147483648 - 790332482) % 3}, // toPositive(-790332482) = 1357151166
		{"abc", 10, 479470107 % 10},                 // 7
		{"21", 6, (2147483648 - 973932308) % 6},     // toPositive(-973932308) = 1173551340
		{"a-little-bit-long-string", 1, 0},          // one partition
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 1 << 30, (2147483648 - 58897971) % (1 << 30)},
	}
	for _, c := range fixed {
		if got := Partition([]byte(c.key), c.n); got != c.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

func TestPartitionMatchesKgo(t *testing.T) {
	rng := rand.New(rand.NewPCG(0x5eed, 42))
	counts := []int32{1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 31, 32, 64, 100, 128, 255, 256, 1000, 4096, 65535, 1 << 20, math.MaxInt32 - 1, math.MaxInt32}
	for i := 0; i < 50000; i++ {
		// Every length 0..67 (so every tail length of the 4-byte blocks),
		// and every byte value including the high ones.
		key := make([]byte, i%68)
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		var n int32
		if i%2 == 0 {
			n = counts[rng.IntN(len(counts))]
		} else {
			n = 1 + rng.Int32N(math.MaxInt32)
		}
		want := kgoPartition(key, n)
		got := Partition(key, n)
		if got != want {
			t.Fatalf("Partition(%x, %d) = %d, kgo says %d", key, n, got, want)
		}
		if got < 0 || got >= n {
			t.Fatalf("Partition(%x, %d) = %d: out of [0, %d)", key, n, got, n)
		}
	}
	// Text keys, as most keys are.
	for i := 0; i < 5000; i++ {
		key := []byte("key-" + string(rune('a'+i%26)) + "-" + strconv.Itoa(i))
		for _, n := range []int32{1, 3, 6, 10, 50} {
			if got, want := Partition(key, n), kgoPartition(key, n); got != want {
				t.Fatalf("Partition(%q, %d) = %d, kgo says %d", key, n, got, want)
			}
		}
	}
}

func TestPartitionEmptyAndNilKey(t *testing.T) {
	for _, n := range []int32{1, 2, 3, 10, 997} {
		// A nil key hashes as the empty key would (kgo spreads nil keys
		// at random instead, but a store key is never nil).
		if got, want := Partition(nil, n), Partition([]byte{}, n); got != want {
			t.Errorf("Partition(nil, %d) = %d, Partition(empty, %d) = %d", n, got, n, want)
		}
		if got, want := Partition([]byte{}, n), kgoPartition([]byte{}, n); got != want {
			t.Errorf("Partition(empty, %d) = %d, kgo says %d", n, got, want)
		}
	}
}

func TestPartitionNoPartitions(t *testing.T) {
	for _, n := range []int32{0, -1, -7, math.MinInt32} {
		if got := Partition([]byte("foobar"), n); got != 0 {
			t.Errorf("Partition(foobar, %d) = %d, want 0", n, got)
		}
	}
}

func TestPartitionSpreads(t *testing.T) {
	// Not a property of Kafka's partitioner as such, but a broken hash
	// (a constant, or one that ignores the tail) would show here.
	const n = 8
	var hits [n]int
	for i := 0; i < 8000; i++ {
		hits[Partition([]byte(strconv.Itoa(i)), n)]++
	}
	for p, h := range hits {
		if h < 700 || h > 1300 {
			t.Errorf("partition %d got %d of 8000 keys: %v", p, h, hits)
		}
	}
}

func FuzzPartition(f *testing.F) {
	for _, c := range murmur2Vectors {
		f.Add([]byte(c.in), int32(3))
	}
	f.Add([]byte{}, int32(1))
	f.Add([]byte{0xff, 0xff, 0xff}, int32(math.MaxInt32))
	f.Add([]byte{0x80, 0, 0, 0, 1}, int32(0))
	f.Add([]byte("x"), int32(-5))
	f.Fuzz(func(t *testing.T, key []byte, n int32) {
		got := Partition(key, n)
		if n <= 0 {
			if got != 0 {
				t.Fatalf("Partition(%x, %d) = %d, want 0", key, n, got)
			}
			return
		}
		if got < 0 || got >= n {
			t.Fatalf("Partition(%x, %d) = %d: out of [0, %d)", key, n, got, n)
		}
		if want := kgoPartition(key, n); got != want {
			t.Fatalf("Partition(%x, %d) = %d, kgo says %d", key, n, got, want)
		}
	})
}
