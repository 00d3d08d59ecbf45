package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkTree checks the B-tree's invariants: keys ascend, every node but the
// root has between minItems and maxItems items, an inner node has one child
// more than items, all leaves are at the same depth, and count is right.
func checkTree(t *testing.T, tr *btree) {
	t.Helper()
	if tr.root == nil {
		if tr.count != 0 {
			t.Fatalf("empty tree has count %d", tr.count)
		}
		return
	}
	if len(tr.root.items) == 0 {
		t.Fatal("root has no items")
	}
	var last []byte
	n, leafDepth := 0, -1
	var walk func(nd *node, depth int, root bool)
	walk = func(nd *node, depth int, root bool) {
		if !root && (len(nd.items) < minItems || len(nd.items) > maxItems) {
			t.Fatalf("node at depth %d has %d items", depth, len(nd.items))
		}
		if nd.leaf() {
			if leafDepth == -1 {
				leafDepth = depth
			} else if depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
		} else if len(nd.children) != len(nd.items)+1 {
			t.Fatalf("node has %d items and %d children", len(nd.items), len(nd.children))
		}
		for i, it := range nd.items {
			if !nd.leaf() {
				walk(nd.children[i], depth+1, false)
			}
			if last != nil && bytes.Compare(last, it.key) >= 0 {
				t.Fatalf("key %q after %q", it.key, last)
			}
			if it.value == nil {
				t.Fatalf("key %q has a nil value", it.key)
			}
			last = it.key
			n++
		}
		if !nd.leaf() {
			walk(nd.children[len(nd.items)], depth+1, false)
		}
	}
	walk(tr.root, 0, true)
	if n != tr.count {
		t.Fatalf("tree holds %d items, count says %d", n, tr.count)
	}
}

// TestBTreeInvariants grows a tree to several levels and shrinks it to
// nothing, checking its shape all along, with and without snapshots.
func TestBTreeInvariants(t *testing.T) {
	for _, snapshots := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshots=%t", snapshots), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var tr btree
			const n = 20000
			perm := r.Perm(n)
			for i, p := range perm {
				k := fmt.Appendf(nil, "%06d", p)
				tr.put(k, k)
				if snapshots && i%7 == 0 {
					tr.snapshot()
				}
				if i%997 == 0 {
					checkTree(t, &tr)
				}
			}
			checkTree(t, &tr)
			r.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			for i, p := range perm {
				k := fmt.Appendf(nil, "%06d", p)
				if got := tr.delete(k); !bytes.Equal(got, k) {
					t.Fatalf("delete(%s) = %q", k, got)
				}
				if snapshots && i%7 == 0 {
					tr.snapshot()
				}
				if i%997 == 0 {
					checkTree(t, &tr)
				}
			}
			checkTree(t, &tr)
			if tr.root != nil {
				t.Fatal("tree not empty after deleting every key")
			}
		})
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ prefix, want []byte }{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte("a"), []byte("b")},
		{[]byte("a\xff"), []byte("b")},
		{[]byte("a\xfe\xff\xff"), []byte("a\xff")},
		{[]byte("\xff"), nil},
		{[]byte("\xff\xff"), nil},
		{[]byte("\x00"), []byte("\x01")},
	}
	for _, tt := range tests {
		got := prefixEnd(tt.prefix)
		if (got == nil) != (tt.want == nil) || !bytes.Equal(got, tt.want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}
