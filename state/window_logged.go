package state

import "fmt"

// LoggedWindow returns ws with every Put also appended to log, in the order
// made: the changelogging layer of window stores. A Put of key's window at
// start appends [WindowKey](key, start) with the value, nil for a deletion;
// it is appended even when ws ignores it as expired, as Kafka Streams
// does, which is harmless: restoring it is ignored the same way. Restore
// writes to ws without logging: restored records come from the log.
//
// The returned store implements [Restorable], passing it through to ws; if
// ws does not implement it, its methods fail.
//
// The store is written first, then the log, as [Logged] does.
func LoggedWindow(ws WindowStore, log Changelog) WindowStore {
	return &loggedWindowStore{WindowStore: ws, log: log}
}

var (
	_ WindowStore = (*loggedWindowStore)(nil)
	_ Restorable  = (*loggedWindowStore)(nil)
)

type loggedWindowStore struct {
	WindowStore
	log Changelog
}

// Put implements WindowStore.
func (l *loggedWindowStore) Put(key []byte, start int64, value []byte) error {
	if err := l.WindowStore.Put(key, start, value); err != nil {
		return err
	}
	if err := l.log.Append(WindowKey(key, start), value); err != nil {
		return fmt.Errorf("state: store %q: put: append to changelog: %w", l.Name(), err)
	}
	return nil
}

// AppliedOffset implements Restorable for a store that does.
func (l *loggedWindowStore) AppliedOffset() (int64, bool, error) {
	r, err := l.restorable()
	if err != nil {
		return 0, false, err
	}
	return r.AppliedOffset()
}

// Restore implements Restorable for a store that does.
func (l *loggedWindowStore) Restore(records []ChangelogRecord, lastOffset int64) error {
	r, err := l.restorable()
	if err != nil {
		return err
	}
	return r.Restore(records, lastOffset)
}

// Checkpoint implements Restorable for a store that does.
func (l *loggedWindowStore) Checkpoint(offset int64) error {
	r, err := l.restorable()
	if err != nil {
		return err
	}
	return r.Checkpoint(offset)
}

// restorable returns the store under the layer as a Restorable.
func (l *loggedWindowStore) restorable() (Restorable, error) {
	r, ok := l.WindowStore.(Restorable)
	if !ok {
		return nil, fmt.Errorf("state: store %q (%T) cannot be restored", l.Name(), l.WindowStore)
	}
	return r, nil
}
