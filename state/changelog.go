package state

// ChangelogRecord is one write of a store as its changelog carries it: the
// key and the value it was set to, nil when it was deleted.
type ChangelogRecord struct {
	Key   []byte
	Value []byte
}

// Changelog receives the writes of a logged store, in order. The runtime
// implements it by producing to the store's changelog topic, on the task's
// partition; the test driver records them. A store never knows the topic.
type Changelog interface {
	// Append records that key was set to value (nil: deleted). The slices
	// are the caller's: an implementation that keeps them must copy.
	Append(key, value []byte) error
}

// Restorable is a store that knows how far into its changelog it is. Every
// store the runtime opens implements it.
//
// The offset and the data it covers are kept together: a persistent store
// writes the offset in the same atomic batch as the data, so after a crash
// they cannot disagree.
type Restorable interface {
	// AppliedOffset returns the offset of the last changelog record the
	// store has applied; ok is false for a store that has applied none.
	AppliedOffset() (offset int64, ok bool, err error)
	// Restore applies records, read from the changelog, and records
	// lastOffset as applied, all in one atomic batch. It does not append
	// to the changelog.
	Restore(records []ChangelogRecord, lastOffset int64) error
	// Checkpoint records that every write so far is in the changelog up to
	// offset, and makes the writes and the offset durable together.
	Checkpoint(offset int64) error
}
