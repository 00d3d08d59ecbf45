package state

import "fmt"

// Logged returns kv with every write also appended to log, in the order
// made: the changelogging layer. Put and Delete log what they did; a
// PutIfAbsent that wrote nothing, or a Delete of an absent key, logs nothing.
// Restore writes to kv without logging: restored records come from the log.
//
// The store is written first, then the log, as in Kafka Streams: a crash in
// between loses the write from both, since the store is only checkpointed
// after the log has the write.
func Logged(kv KeyValueStore, log Changelog) KeyValueStore {
	return &loggedStore{KeyValueStore: kv, log: log}
}

type loggedStore struct {
	KeyValueStore
	log Changelog
}

func (l *loggedStore) append(op string, key, value []byte) error {
	if err := l.log.Append(key, value); err != nil {
		return fmt.Errorf("state: store %q: %s: append to changelog: %w", l.Name(), op, err)
	}
	return nil
}

// Put implements KeyValueStore.
func (l *loggedStore) Put(key, value []byte) error {
	if err := l.KeyValueStore.Put(key, value); err != nil {
		return err
	}
	return l.append("put", key, value)
}

// PutIfAbsent implements KeyValueStore.
func (l *loggedStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := l.KeyValueStore.PutIfAbsent(key, value)
	if err != nil || old != nil || value == nil {
		return old, err
	}
	return nil, l.append("put-if-absent", key, value)
}

// Delete implements KeyValueStore.
func (l *loggedStore) Delete(key []byte) ([]byte, error) {
	old, err := l.KeyValueStore.Delete(key)
	if err != nil || old == nil {
		return old, err
	}
	return old, l.append("delete", key, nil)
}

// AppliedOffset implements Restorable for a store that does.
func (l *loggedStore) AppliedOffset() (int64, bool, error) {
	r, err := l.restorable()
	if err != nil {
		return 0, false, err
	}
	return r.AppliedOffset()
}

// Restore implements Restorable for a store that does.
func (l *loggedStore) Restore(records []ChangelogRecord, lastOffset int64) error {
	r, err := l.restorable()
	if err != nil {
		return err
	}
	return r.Restore(records, lastOffset)
}

// Checkpoint implements Restorable for a store that does.
func (l *loggedStore) Checkpoint(offset int64) error {
	r, err := l.restorable()
	if err != nil {
		return err
	}
	return r.Checkpoint(offset)
}

func (l *loggedStore) restorable() (Restorable, error) { return restorable(l.KeyValueStore) }

// restorable returns kv as a Restorable, for the layers that pass restoring
// through to the store under them.
func restorable(kv KeyValueStore) (Restorable, error) {
	r, ok := kv.(Restorable)
	if !ok {
		return nil, fmt.Errorf("state: store %q (%T) cannot be restored", kv.Name(), kv)
	}
	return r, nil
}
