package state

import "fmt"

// OpenWindow opens the window store spec declares (spec.Kind must be
// [KindWindow], or [KindSession] for the windows beneath a session store:
// see [SessionOf]), for task of the application appID. The store it returns
// implements [Restorable]; the records its Restore takes, like those
// [LoggedWindow] appends, are keyed by [WindowKey] (the key and the window
// start) and carry the value, nil for a deletion.
//
// Windows are grouped into segments by start time; the segment interval is
// Kafka Streams' default, max(retention/2, 1 minute). The store tracks the
// largest window start it has been given, by Put (a deletion too) or by
// Restore: its observed stream time, T. Windows that start before
// T - retention are expired (one that starts at T - retention is live).
// They are invisible to Fetch, FetchRange and FetchAll at once, a Put of
// one is ignored, and each segment is dropped whole once all its windows
// are expired, never one window at a time. A Restore skips the records
// that are expired by the end of its batch.
//
// FetchRange seeks once per segment in range, and so does FetchAll: each
// segment keeps its windows in two orders, by key then start and by start
// then key, so a Put writes two entries.
//
// An in-memory store is new and empty. It keeps each segment in two
// B-trees and behaves as the in-memory key-value store does (see
// [NewInMemoryKeyValue]): it copies what it is given, returns slices it
// never changes, and its iterators walk a snapshot taken, in O(1) per
// segment, when they are opened; an iterator opened before Close can still
// be walked. An expired segment is dropped by letting go of its trees.
//
// A persistent store lives in [Env.StoreDir], checked as [Env.OpenKeyValue]
// checks it: its metadata file names the kind "window", so a key-value
// store's directory is never opened as a window store, nor the reverse. It
// is a Pebble database with the differences, durability and crash
// guarantees of a persistent key-value store: Fetch returns copies, an
// iterator's Key and Value are valid until its next Next, an iterator sees
// a snapshot and is stopped by Close, and each Put, and each Restore with
// its offset, is one atomic batch, so after a crash the windows, the
// observed time and the applied offset are a consistent prefix of the
// writes. An expired segment is dropped by one Pebble range deletion, in
// the batch of the write that expired it; Pebble reclaims the space whole
// in its compactions. The observed time is kept in the store, and so is
// the segment interval, fixed when the store is created: a store reopened
// with another retention still finds its windows, drops at once what the
// new retention expires, and shows again the windows a longer one keeps
// that were expired but not yet dropped.
func (e *Env) OpenWindow(appID, task string, spec Spec) (WindowStore, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Kind != KindWindow && spec.Kind != KindSession {
		return nil, fmt.Errorf("state: store %q: is a %v store, not window", spec.Name, spec.Kind)
	}
	if spec.Backend == InMemoryBackend {
		return newMemWindowStore(spec.Name, spec.Retention), nil
	}
	kv, err := e.openPebbleOf(appID, task, spec)
	if err != nil {
		return nil, err
	}
	// Hold the store's lock while making the window store of it, so that
	// an Env closed meanwhile closes the store only after.
	kv.mu.Lock()
	var ws *pebbleWindowStore
	if kv.closed {
		err = fmt.Errorf("state: store %q: open: the environment is closed", spec.Name)
	} else {
		ws, err = openPebbleWindow(kv, spec.Retention)
	}
	kv.mu.Unlock()
	if err != nil {
		kv.Close()
		return nil, err
	}
	return ws, nil
}

// openPebbleOf opens, or creates, the Pebble database of the persistent
// store spec declares, in its directory checked as for any kind of store,
// and registers it with the Env. The metadata names the kind of spec, so a
// store of one kind is never opened as another. (It is what OpenKeyValue
// does for a persistent store, for any kind.)
// openPebbleOf opens the Pebble DB of a persistent store of any kind in its
// directory, after checking the ids, and registers it as open.
func (e *Env) openPebbleOf(appID, task string, spec Spec) (*pebbleStore, error) {
	if err := checkIDs(spec.Name, appID, task); err != nil {
		return nil, err
	}
	if e.dir == "" {
		return nil, fmt.Errorf("state: store %q: is persistent, but the state directory is not set", spec.Name)
	}
	path := e.StoreDir(appID, task, spec.Name)
	e.lockDir(path) // a store closing there on another goroutine finishes first
	if e.closed {
		e.mu.Unlock()
		return nil, fmt.Errorf("state: store %q: open: the environment is closed", spec.Name)
	}
	if s, ok := e.open[path]; ok {
		e.mu.Unlock()
		if s == nil {
			return nil, fmt.Errorf("state: store %q in %s: is being opened or wiped", spec.Name, path)
		}
		return nil, fmt.Errorf("state: store %q in %s: is already open", spec.Name, path)
	}
	// Hold the place while opening, so the store is not opened twice.
	e.open[path] = nil
	e.mu.Unlock()

	s, err := e.openPebble(path, storeMeta{
		Format:      FormatVersion,
		Application: appID,
		Task:        task,
		Store:       spec.Name,
		Kind:        spec.Kind.String(),
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil || e.closed {
		delete(e.open, path)
		if err == nil {
			s.closeDB()
			err = fmt.Errorf("state: store %q: open: the environment is closed", spec.Name)
		}
		return nil, err
	}
	e.open[path] = s
	return s, nil
}
