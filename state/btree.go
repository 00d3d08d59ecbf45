package state

import (
	"bytes"
	"slices"
	"sync/atomic"
)

// The in-memory store keeps its entries in a B-tree whose nodes are copied on
// write once a snapshot may see them.
//
// Every node carries the generation it was made in. Taking a snapshot bumps
// the tree's generation, which freezes every node that exists at that moment:
// while a snapshot is in use, the writer changes a node in place only if the
// node belongs to the current generation, and otherwise copies it first (and
// the path above it). A snapshot is therefore just a root pointer, taken in
// O(1), and the nodes under it never change. Once every snapshot has been
// released, nothing needs to stay frozen and writes work in place again.
//
// Items hold slices the tree owns: they are never written to after they are
// put, so they may be handed to callers.

const (
	maxItems = 31           // the most items in a node
	minItems = maxItems / 2 // the fewest items in a node other than the root
)

// item is one entry. Its value is never nil.
type item struct{ key, value []byte }

type node struct {
	gen      uint64
	items    []item
	children []*node // nil in a leaf; else len(items)+1 of them
}

func (n *node) leaf() bool { return n.children == nil }

// search returns the index of the first item whose key is not less than key,
// and whether that item's key equals key.
func (n *node) search(key []byte) (int, bool) {
	lo, hi := 0, len(n.items)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(n.items[m].key, key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(n.items) && bytes.Equal(n.items[lo].key, key)
}

// btree is an ordered map of byte keys. One goroutine writes (put, delete)
// while holding a lock that keeps out get and snapshot; get and snapshot may
// run concurrently with each other.
type btree struct {
	root  *node // nil when empty
	count int
	gen   atomic.Uint64 // nodes of an older generation may be frozen
	inUse atomic.Int64  // snapshots not yet released; if 0, none is frozen
}

// get returns the value of key, or nil.
func (t *btree) get(key []byte) []byte {
	n := t.root
	for n != nil {
		i, found := n.search(key)
		if found {
			return n.items[i].value
		}
		if n.leaf() {
			return nil
		}
		n = n.children[i]
	}
	return nil
}

// snapshot returns the current root and freezes every node under it until
// release is called. It must not run concurrently with put or delete.
func (t *btree) snapshot() *node {
	t.inUse.Add(1)
	t.gen.Add(1)
	return t.root
}

// release says a snapshot is no longer read. It may run at any time.
func (t *btree) release() { t.inUse.Add(-1) }

func (t *btree) newNode(leaf bool) *node {
	n := &node{gen: t.gen.Load(), items: make([]item, 0, maxItems)}
	if !leaf {
		n.children = make([]*node, 0, maxItems+1)
	}
	return n
}

// mutable returns n if the writer may change it, or else a copy of it.
func (t *btree) mutable(n *node) *node {
	if n.gen == t.gen.Load() || t.inUse.Load() == 0 {
		return n
	}
	c := t.newNode(n.leaf())
	c.items = append(c.items, n.items...)
	if !n.leaf() {
		c.children = append(c.children, n.children...)
	}
	return c
}

// mutableChild makes n's child i mutable and returns it. n must be mutable.
func (t *btree) mutableChild(n *node, i int) *node {
	c := t.mutable(n.children[i])
	n.children[i] = c
	return c
}

// put sets key to value, which the tree owns from now on, and returns the
// value it replaced, or nil.
func (t *btree) put(key, value []byte) []byte {
	if t.root == nil {
		t.root = t.newNode(true)
	}
	t.root = t.mutable(t.root)
	if len(t.root.items) == maxItems {
		left := t.root
		mid, right := t.split(left)
		t.root = t.newNode(false)
		t.root.items = append(t.root.items, mid)
		t.root.children = append(t.root.children, left, right)
	}
	old := t.insert(t.root, item{key, value})
	if old == nil {
		t.count++
	}
	return old
}

// split moves the upper half of the full, mutable node n to a new node and
// returns the middle item with the new node.
func (t *btree) split(n *node) (item, *node) {
	const m = maxItems / 2
	mid := n.items[m]
	right := t.newNode(n.leaf())
	right.items = append(right.items, n.items[m+1:]...)
	clear(n.items[m:])
	n.items = n.items[:m]
	if !n.leaf() {
		right.children = append(right.children, n.children[m+1:]...)
		clear(n.children[m+1:])
		n.children = n.children[:m+1]
	}
	return mid, right
}

// insert puts it in the subtree of the mutable, non-full node n, splitting
// full nodes on the way down, and returns the value replaced, or nil.
func (t *btree) insert(n *node, it item) []byte {
	for {
		i, found := n.search(it.key)
		if found {
			old := n.items[i].value
			n.items[i] = it
			return old
		}
		if n.leaf() {
			n.items = slices.Insert(n.items, i, it)
			return nil
		}
		c := t.mutableChild(n, i)
		if len(c.items) == maxItems {
			mid, right := t.split(c)
			n.items = slices.Insert(n.items, i, mid)
			n.children = slices.Insert(n.children, i+1, right)
			continue // it belongs left of mid, at mid, or right of it
		}
		n = c
	}
}

// delete removes key and returns its value, or nil.
func (t *btree) delete(key []byte) []byte {
	if t.get(key) == nil {
		return nil // leave a frozen tree alone
	}
	t.root = t.mutable(t.root)
	old := t.remove(t.root, key)
	if len(t.root.items) == 0 {
		if t.root.leaf() {
			t.root = nil
		} else {
			t.root = t.root.children[0]
		}
	}
	t.count--
	return old
}

// remove removes key from the subtree of the mutable node n, which is the
// root or has more than minItems items, and returns its value, or nil. Before
// it descends into a child it makes sure the child has an item to spare.
func (t *btree) remove(n *node, key []byte) []byte {
	for {
		i, found := n.search(key)
		if n.leaf() {
			if !found {
				return nil
			}
			old := n.items[i].value
			n.items = slices.Delete(n.items, i, i+1)
			return old
		}
		if len(n.children[i].items) <= minItems {
			t.grow(n, i)
			continue // items moved: search n again
		}
		c := t.mutableChild(n, i)
		if found {
			// Replace the item by its predecessor, the last item of the
			// subtree on its left.
			old := n.items[i].value
			n.items[i] = t.removeMax(c)
			return old
		}
		n = c
	}
}

// removeMax removes and returns the last item in the subtree of the mutable
// node n, which has more than minItems items.
func (t *btree) removeMax(n *node) item {
	for {
		if n.leaf() {
			last := len(n.items) - 1
			it := n.items[last]
			n.items = slices.Delete(n.items, last, last+1)
			return it
		}
		i := len(n.children) - 1
		if len(n.children[i].items) <= minItems {
			t.grow(n, i)
			continue
		}
		n = t.mutableChild(n, i)
	}
}

// grow gives child i of the mutable node n, which has minItems items, one
// more: it borrows one from a sibling through n, or else merges the child
// with a sibling and the item between them.
func (t *btree) grow(n *node, i int) {
	if i > 0 && len(n.children[i-1].items) > minItems {
		left, c := t.mutableChild(n, i-1), t.mutableChild(n, i)
		last := len(left.items) - 1
		c.items = slices.Insert(c.items, 0, n.items[i-1])
		n.items[i-1] = left.items[last]
		left.items = slices.Delete(left.items, last, last+1)
		if !c.leaf() {
			c.children = slices.Insert(c.children, 0, left.children[last+1])
			left.children = slices.Delete(left.children, last+1, last+2)
		}
		return
	}
	if i < len(n.children)-1 && len(n.children[i+1].items) > minItems {
		c, right := t.mutableChild(n, i), t.mutableChild(n, i+1)
		c.items = append(c.items, n.items[i])
		n.items[i] = right.items[0]
		right.items = slices.Delete(right.items, 0, 1)
		if !c.leaf() {
			c.children = append(c.children, right.children[0])
			right.children = slices.Delete(right.children, 0, 1)
		}
		return
	}
	if i == len(n.children)-1 {
		i-- // merge with the left sibling instead
	}
	left := t.mutableChild(n, i)
	right := n.children[i+1] // only read: it may be frozen
	left.items = append(left.items, n.items[i])
	left.items = append(left.items, right.items...)
	if !left.leaf() {
		left.children = append(left.children, right.children...)
	}
	n.items = slices.Delete(n.items, i, i+1)
	n.children = slices.Delete(n.children, i+1, i+2)
}
