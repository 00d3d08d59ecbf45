package state_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/riffle-streams/riffle/state"
)

func TestNewEnvOptions(t *testing.T) {
	for _, budget := range []int64{0, -1, 1000, state.MinMemoryBudget - 1} {
		if _, err := state.NewEnv(t.TempDir(), state.WithMemoryBudget(budget)); err == nil {
			t.Errorf("WithMemoryBudget(%d): no error", budget)
		} else if !strings.Contains(err.Error(), "memory budget") {
			t.Errorf("WithMemoryBudget(%d): err = %q does not say what is wrong", budget, err)
		}
	}
	env, err := state.NewEnv("", state.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if env.MemoryBudget() != state.DefaultMemoryBudget || env.Dir() != "" {
		t.Errorf("default Env: budget %d, dir %q", env.MemoryBudget(), env.Dir())
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	env, err = state.NewEnv(dir, state.WithMemoryBudget(state.MinMemoryBudget))
	if err != nil {
		t.Fatal(err)
	}
	if env.MemoryBudget() != state.MinMemoryBudget || env.Dir() != dir {
		t.Errorf("Env: budget %d, dir %q", env.MemoryBudget(), env.Dir())
	}
	env.Close()

	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := state.NewEnv(file); err == nil {
		t.Error("NewEnv on a file: no error")
	}
}

func TestEnvInMemory(t *testing.T) {
	env, err := state.NewEnv("", state.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	kv, err := env.OpenKeyValue("app", "0_0", state.KeyValue("mem", state.InMemory()))
	if err != nil {
		t.Fatalf("in-memory store in an Env without a directory: %v", err)
	}
	asRestorable(t, kv)
	mustPut(t, kv, "k", "v")
	kv.Close()

	_, err = env.OpenKeyValue("app", "0_0", state.KeyValue("disk"))
	if err == nil || !strings.Contains(err.Error(), `store "disk"`) || !strings.Contains(err.Error(), "directory is not set") {
		t.Errorf("persistent store without a directory: err = %v", err)
	}
}

func TestEnvOpenErrors(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		app, task string
		spec      state.Spec
		want      string
	}{
		{"", "0_0", state.KeyValue("s"), "application id is empty"},
		{"app", "", state.KeyValue("s"), "task is empty"},
		{"a/b", "0_0", state.KeyValue("s"), `application id "a/b"`},
		{"..", "0_0", state.KeyValue("s"), `application id ".."`},
		{"app", "../0", state.KeyValue("s"), `task "../0"`},
		{"app", "0_0", state.KeyValue("a/b"), "name may hold only"},
		{"app", "0_0", state.Spec{Name: "s", Backend: state.PersistentBackend}, "unknown kind"},
	}
	for _, tt := range tests {
		_, err := env.OpenKeyValue(tt.app, tt.task, tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenKeyValue(%q, %q, %q): err = %v, want %q", tt.app, tt.task, tt.spec.Name, err, tt.want)
		}
	}

	openStore(t, env, "twice")
	if _, err := env.OpenKeyValue("app", "0_0", state.KeyValue("twice")); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Errorf("opening a store twice: err = %v", err)
	}
}

func TestEnvLayout(t *testing.T) {
	env := newTestEnv(t)
	kv, err := env.OpenKeyValue("mine", "0_3", state.KeyValue("counts"))
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	dir := filepath.Join(env.Dir(), "mine", "0_3", "counts")
	if got := env.StoreDir("mine", "0_3", "counts"); got != dir {
		t.Errorf("StoreDir = %q, want %q", got, dir)
	}
	data, err := os.ReadFile(filepath.Join(dir, "RIFFLE-STORE"))
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatalf("RIFFLE-STORE: %v\n%s", err, data)
	}
	want := map[string]any{
		"format_version": float64(state.FormatVersion),
		"application_id": "mine",
		"task":           "0_3",
		"store":          "counts",
		"kind":           "key-value",
	}
	for k, v := range want {
		if meta[k] != v {
			t.Errorf("RIFFLE-STORE %s = %v, want %v\n%s", k, meta[k], v, data)
		}
	}
}

// listFiles returns the names of the files under dir, recursively, with
// their sizes.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			files = append(files, fmt.Sprintf("%s:%d", rel, fi.Size()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// TestDirectorySafety opens stores over directories that are not theirs
// and checks each is refused, clearly, with nothing in it changed.
func TestDirectorySafety(t *testing.T) {
	writeMeta := func(t *testing.T, dir string, meta map[string]any) {
		t.Helper()
		data, _ := json.Marshal(meta)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "RIFFLE-STORE"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	meta := func(changes map[string]any) map[string]any {
		m := map[string]any{"format_version": state.FormatVersion, "application_id": "mine", "task": "0_3", "store": "counts", "kind": "key-value"}
		for k, v := range changes {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string // the error after `state: store "counts" in <dir>: `
	}{
		{
			name: "other application",
			setup: func(t *testing.T, dir string) {
				writeMeta(t, dir, meta(map[string]any{"application_id": "other"}))
				os.WriteFile(filepath.Join(dir, "000001.sst"), []byte("data"), 0o644)
			},
			want: `the directory belongs to application "other", not "mine"; choose another state directory or delete it`,
		},
		{
			name:  "newer format",
			setup: func(t *testing.T, dir string) { writeMeta(t, dir, meta(map[string]any{"format_version": 2})) },
			want:  "the directory has store format version 2, but this version of Riffle reads version 1",
		},
		{
			name:  "other store",
			setup: func(t *testing.T, dir string) { writeMeta(t, dir, meta(map[string]any{"store": "sums"})) },
			want:  `the directory holds store "sums" of task 0_3, not store "counts" of task 0_3`,
		},
		{
			name: "bad metadata",
			setup: func(t *testing.T, dir string) {
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, "RIFFLE-STORE"), []byte("{"), 0o644)
			},
			want: "RIFFLE-STORE: unexpected end of JSON input",
		},
		{
			name: "foreign files",
			setup: func(t *testing.T, dir string) {
				os.MkdirAll(filepath.Join(dir, "photos"), 0o755)
				os.WriteFile(filepath.Join(dir, "thesis.tex"), []byte("\\documentclass{article}"), 0o644)
				os.WriteFile(filepath.Join(dir, "photos", "cat.jpg"), []byte{0xff, 0xd8}, 0o644)
			},
			want: "the directory is not empty and has no RIFFLE-STORE file, so it is not a Riffle store; choose another state directory or delete it",
		},
		{
			name: "foreign pebble database",
			setup: func(t *testing.T, dir string) {
				// A store made by Riffle, its metadata file then removed.
				env := newTestEnv(t)
				kv, err := env.OpenKeyValue("mine", "0_3", state.KeyValue("counts"))
				if err != nil {
					t.Fatal(err)
				}
				mustPut(t, kv, "k", "v")
				kv.Close()
				os.MkdirAll(filepath.Dir(dir), 0o755)
				if err := os.Rename(env.StoreDir("mine", "0_3", "counts"), dir); err != nil {
					t.Fatal(err)
				}
				os.Remove(filepath.Join(dir, "RIFFLE-STORE"))
			},
			want: "the directory is not empty and has no RIFFLE-STORE file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			dir := env.StoreDir("mine", "0_3", "counts")
			tt.setup(t, dir)
			before := listFiles(t, env.Dir())

			_, err := env.OpenKeyValue("mine", "0_3", state.KeyValue("counts"))
			prefix := fmt.Sprintf("state: store %q in %s: ", "counts", dir)
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant %s%s", err, prefix, tt.want)
			}
			// Wipe refuses what is not this application's store.
			if tt.name != "newer format" && tt.name != "other store" {
				if err := env.Wipe("mine", "0_3", "counts"); err == nil {
					t.Error("Wipe: no error")
				}
			}
			if after := listFiles(t, env.Dir()); !slices.Equal(after, before) {
				t.Errorf("files changed\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestEnvEmptyDir checks that an empty directory, or one holding only a
// half-written metadata file, becomes a store.
func TestEnvEmptyDir(t *testing.T) {
	env := newTestEnv(t)
	os.MkdirAll(env.StoreDir("app", "0_0", "empty"), 0o755)
	os.MkdirAll(env.StoreDir("app", "0_0", "half"), 0o755)
	os.WriteFile(filepath.Join(env.StoreDir("app", "0_0", "half"), "RIFFLE-STORE.tmp"), []byte(`{"form`), 0o644)
	for _, name := range []string{"empty", "half"} {
		kv := openStore(t, env, name)
		mustPut(t, kv, "k", "v")
		kv.Close()
		kv = openStore(t, env, name)
		if v, _ := kv.Get([]byte("k")); string(v) != "v" {
			t.Errorf("%s: Get after reopen = %q", name, v)
		}
	}
}

func TestWipe(t *testing.T) {
	env := newTestEnv(t)
	kv := openStore(t, env, "w")
	mustPut(t, kv, "k", "v")
	if err := env.Wipe("app", "0_0", "w"); err == nil || !strings.Contains(err.Error(), "is open") {
		t.Errorf("Wipe of an open store: err = %v", err)
	}
	kv.Close()
	other := openStore(t, env, "other") // a neighbour, left alone
	mustPut(t, other, "k", "v")
	if err := env.Wipe("app", "0_0", "w"); err != nil {
		t.Fatalf("Wipe: %v", err)
	}
	if _, err := os.Stat(env.StoreDir("app", "0_0", "w")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("store directory after Wipe: %v", err)
	}
	if err := env.Wipe("app", "0_0", "w"); err != nil {
		t.Errorf("Wipe of a store that does not exist: %v", err)
	}
	kv = openStore(t, env, "w")
	if v, _ := kv.Get([]byte("k")); v != nil {
		t.Errorf("Get after Wipe = %q", v)
	}
	wantApplied(t, asRestorable(t, kv), 0, false)
	if v, _ := other.Get([]byte("k")); string(v) != "v" {
		t.Errorf("neighbour after Wipe: Get = %q", v)
	}
	if err := env.Wipe("app", "0_0", "a/b"); err == nil {
		t.Error("Wipe of an invalid name: no error")
	}
}

func TestEnvClose(t *testing.T) {
	env, err := state.NewEnv(t.TempDir(), state.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	a, err := env.OpenKeyValue("app", "0_0", state.KeyValue("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.OpenKeyValue("app", "0_1", state.KeyValue("b"))
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, a, "k", "v")
	b.Close()
	err = env.Close()
	if err == nil || !strings.Contains(err.Error(), "1 stores still open") || !strings.Contains(err.Error(), filepath.Join("app", "0_0", "a")) {
		t.Errorf("Close with a store open: err = %v", err)
	}
	if err := a.Put([]byte("k"), []byte("v")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Put to a store the Env closed: err = %v, want ErrClosed", err)
	}
	if _, err := env.OpenKeyValue("app", "0_0", state.KeyValue("a")); err == nil {
		t.Error("OpenKeyValue after Close: no error")
	}
	if err := env.Close(); err == nil {
		t.Error("second Close: no error")
	}

	// The store the Env closed was flushed: its write is there.
	env3, err := state.NewEnv(env.Dir(), state.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer env3.Close()
	a, err = env3.OpenKeyValue("app", "0_0", state.KeyValue("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if v, _ := a.Get([]byte("k")); string(v) != "v" {
		t.Errorf("Get after reopen = %q", v)
	}
}

// TestPebbleApproximateCount checks the estimate is right after flushes.
func TestPebbleApproximateCount(t *testing.T) {
	env := newTestEnv(t)
	kv := openStore(t, env, "count")
	count := func(want int64) {
		t.Helper()
		n, err := kv.ApproximateCount()
		if err != nil {
			t.Fatal(err)
		}
		if n < want*95/100 || n > want*105/100 {
			t.Errorf("ApproximateCount = %d, want about %d", n, want)
		}
	}
	count(0)
	const n = 10000
	for i := range n {
		mustPut(t, kv, fmt.Sprintf("k%05d", i), "v")
	}
	count(n)
	if err := kv.Flush(); err != nil {
		t.Fatal(err)
	}
	count(n)
	if err := asRestorable(t, kv).Checkpoint(1); err != nil {
		t.Fatal(err)
	}
	count(n)
	for i := range n / 10 {
		if _, err := kv.Delete(fmt.Appendf(nil, "k%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	count(n - n/10)
	if err := kv.Flush(); err != nil {
		t.Fatal(err)
	}
	count(n - n/10)
	kv.Close()
	kv = openStore(t, env, "count")
	count(n - n/10)
}
