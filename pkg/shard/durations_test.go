package shard

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	k := Key("./tests/link", "e2e")
	if !strings.HasPrefix(k, "tests-link.e2e.") || len(k) != len("tests-link.e2e.")+8 {
		t.Errorf("Key = %q", k)
	}
	if Key("./tests/link", "soak, e2e") != Key("./tests/link", "e2e,soak") {
		t.Error("the order of the tags changes the key")
	}
	for _, other := range []string{Key("./tests/link", ""), Key("./tests/link", "e2e,soak"), Key("./tests-link", "e2e"), Key("./tests/other", "e2e")} {
		if other == k {
			t.Errorf("%q shares the key of ./tests/link e2e", other)
		}
	}
	if k := Key("example.com/a b/../c", "x"); strings.ContainsAny(k, "/ ") || strings.Contains(k, "..") {
		t.Errorf("Key %q is not a safe file name", k)
	}
}

func TestRecordDurations(t *testing.T) {
	dir := t.TempDir()
	key := Key("./tests/link", "e2e")
	// Nothing recorded: no durations, no error.
	if d, err := LoadDurations(dir, key); err != nil || len(d) != 0 {
		t.Fatalf("LoadDurations = %v, %v", d, err)
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := record(dir, key, map[string]time.Duration{"TestA": 10 * s, "TestB": 2 * s, "TestOld": s}, now); err != nil {
		t.Fatal(err)
	}
	// The next run: TestA took 20s (the record moves halfway), TestC is
	// new, TestB was not run (kept).
	now = now.Add(24 * time.Hour)
	if err := record(dir, key, map[string]time.Duration{"TestA": 20 * s, "TestC": 1500 * time.Millisecond}, now); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDurations(dir, key)
	want := map[string]time.Duration{"TestA": 15 * s, "TestB": 2 * s, "TestC": 1500 * time.Millisecond, "TestOld": s}
	if err != nil || !reflect.DeepEqual(d, want) {
		t.Fatalf("LoadDurations = %v, %v; want %v", d, err, want)
	}
	// 90 days later, what was not seen since is forgotten.
	day1 := now
	if err := record(dir, key, map[string]time.Duration{"TestA": 15 * s}, day1.Add(88*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, _ := LoadDurations(dir, key); len(d) != 4 {
		t.Fatalf("after 89 days: %v", d)
	}
	if err := record(dir, key, map[string]time.Duration{"TestA": 15 * s, "TestB": s}, day1.Add(91*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, _ = LoadDurations(dir, key)
	if want := map[string]time.Duration{"TestA": 15 * s, "TestB": 1500 * time.Millisecond}; !reflect.DeepEqual(d, want) {
		t.Fatalf("after 90 days: %v, want %v", d, want)
	}
	// Other keys are separate; no temporary files are left.
	if d, _ := LoadDurations(dir, Key("./tests/link", "")); len(d) != 0 {
		t.Errorf("another key sees %v", d)
	}
	files, _ := os.ReadDir(filepath.Join(dir, DurationsDir))
	if len(files) != 1 || files[0].Name() != key+".json" {
		t.Errorf("files in the durations directory: %v", files)
	}
}

func TestRecordDurationsDamaged(t *testing.T) {
	dir := t.TempDir()
	key := Key("./p", "")
	p := filepath.Join(dir, DurationsDir, key+".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"v":1,"tests":{"TestA":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := LoadDurations(dir, key); err == nil || !strings.Contains(err.Error(), p) || len(d) != 0 {
		t.Fatalf("damaged file: %v, %v", d, err)
	}
	// The next record replaces it.
	if err := RecordDurations(dir, key, map[string]time.Duration{"TestA": s}); err != nil {
		t.Fatal(err)
	}
	if d, err := LoadDurations(dir, key); err != nil || d["TestA"] != s {
		t.Fatalf("after a new record: %v, %v", d, err)
	}
	// Nothing to record writes nothing.
	if err := RecordDurations(dir, Key("./q", ""), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, DurationsDir, Key("./q", "")+".json")); err == nil {
		t.Error("an empty record wrote a file")
	}
}
