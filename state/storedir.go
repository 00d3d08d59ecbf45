package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// FormatVersion is the version of the layout of a persistent store's
// directory: its metadata file and how keys and the applied offset are kept
// in Pebble. A store written with another version is refused, not
// converted.
const FormatVersion = 1

// metaFile is the name of the metadata file in every persistent store's
// directory. Its presence is what makes a directory a Riffle store.
const metaFile = "RIFFLE-STORE"

// storeMeta is the content of metaFile.
type storeMeta struct {
	Format      int    `json:"format_version"`
	Application string `json:"application_id"`
	Task        string `json:"task"`
	Store       string `json:"store"`
	Kind        string `json:"kind"`
}

// readStoreMeta reads the metadata file of dir. It returns nil metadata if
// there is none, and whether dir is empty (its only entry, if any, is a
// metadata file left half-written). An error wraps os.ErrNotExist if dir
// does not exist.
func readStoreMeta(dir string) (meta *storeMeta, empty bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	others := 0
	for _, e := range entries {
		if e.Name() != metaFile+".tmp" {
			others++
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, others == 0, nil
	}
	if err != nil {
		return nil, false, err
	}
	meta = new(storeMeta)
	if err := json.Unmarshal(data, meta); err != nil {
		return nil, false, fmt.Errorf("%s: %w", metaFile, err)
	}
	return meta, false, nil
}

// checkStoreDir checks that dir, if it exists, is a store of want, or
// empty. It reports whether dir must be made (it does not exist or is
// empty). Nothing in dir is changed.
func checkStoreDir(dir string, want storeMeta) (create bool, err error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("state: store %q in %s: "+format, append([]any{want.Store, dir}, args...)...)
	}
	meta, empty, err := readStoreMeta(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fail("%w", err)
	case meta == nil && empty:
		return true, nil
	case meta == nil:
		return false, fail("the directory is not empty and has no %s file, so it is not a Riffle store; choose another state directory or delete it", metaFile)
	case meta.Format != want.Format:
		return false, fail("the directory has store format version %d, but this version of Riffle reads version %d; use a matching version of Riffle, or delete the directory to restore the store from its changelog", meta.Format, want.Format)
	case meta.Application != want.Application:
		return false, fail("the directory belongs to application %q, not %q; choose another state directory or delete it", meta.Application, want.Application)
	case meta.Task != want.Task || meta.Store != want.Store:
		return false, fail("the directory holds store %q of task %s, not store %q of task %s; choose another state directory or delete it", meta.Store, meta.Task, want.Store, want.Task)
	case meta.Kind != want.Kind:
		return false, fail("the directory holds a %s store, not a %s store; choose another state directory or delete it", meta.Kind, want.Kind)
	}
	return false, nil
}

// createStoreDir makes dir and writes its metadata file, durably: the file
// is written under a temporary name, synced and renamed into place, and
// the directory is synced.
func createStoreDir(dir string, meta storeMeta) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmp := filepath.Join(dir, metaFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaFile)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there; renames are durable
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
