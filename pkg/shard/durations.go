package shard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// DurationsDir is where the durations are kept inside the state directory
// (TESTSHIP_STATE_DIR): one file <key>.json per test package and tags.
const DurationsDir = "durations"

// historyVersion is the version of the durations file's format.
const historyVersion = 1

// forget drops a test not seen for this long (renamed or deleted).
const forget = 90 * 24 * time.Hour

// history is a durations file.
type history struct {
	V     int              `json:"v"`
	Key   string           `json:"key"`
	Tests map[string]entry `json:"tests"`
}

// entry is one test's recorded duration.
type entry struct {
	// Seconds is the smoothed duration: the mean of the previous value and
	// the latest run's, so one slow or fast run moves it halfway.
	Seconds float64   `json:"seconds"`
	Runs    int       `json:"runs"`
	Last    time.Time `json:"last"`
}

var keyChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Key names the durations of a test package built with tags: readable
// (tests-link.e2e) and made unique by a short digest of both, so
// different packages or tags never share durations.
func Key(pkg, tags string) string {
	var ts []string
	for _, t := range strings.Split(tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			ts = append(ts, t)
		}
	}
	sort.Strings(ts)
	norm := strings.Join(ts, ",")
	sum := sha256.Sum256([]byte(pkg + "\x00" + norm))
	name := strings.Trim(keyChars.ReplaceAllString(strings.TrimPrefix(pkg, "./"), "-"), "-")
	if norm != "" {
		name += "." + keyChars.ReplaceAllString(norm, "-")
	}
	if len(name) > 80 {
		name = name[:80]
	}
	return name + "." + hex.EncodeToString(sum[:4])
}

// path is the durations file of key in the state directory dir.
func path(dir, key string) string { return filepath.Join(dir, DurationsDir, key+".json") }

// LoadDurations returns the recorded durations of key's top-level tests
// in the state directory dir: empty, without error, when none were
// recorded. A damaged file is an error (with no durations: the caller can
// go on without them; the next RecordDurations replaces the file).
func LoadDurations(dir, key string) (map[string]time.Duration, error) {
	h, err := load(dir, key)
	out := map[string]time.Duration{}
	for name, e := range h.Tests {
		out[name] = time.Duration(e.Seconds * float64(time.Second)).Round(time.Millisecond)
	}
	return out, err
}

func load(dir, key string) (history, error) {
	h := history{V: historyVersion, Key: key, Tests: map[string]entry{}}
	b, err := os.ReadFile(path(dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("reading the recorded test durations: %w", err)
	}
	var got history
	if err := json.Unmarshal(b, &got); err != nil || got.V != historyVersion {
		return h, fmt.Errorf("the recorded test durations %s are damaged or of another version (delete the file; the next run records new ones)", path(dir, key))
	}
	if got.Tests != nil {
		h.Tests = got.Tests
	}
	return h, nil
}

// RecordDurations merges a run's durations of top-level tests
// (testlog.Summary.Durations of every pod) into key's file in the state
// directory dir: a new test takes its duration, a known one the mean of
// its previous value and the new one; tests not seen for 90 days are
// dropped. The file is replaced atomically (a concurrent run's record may
// be lost, never half-written). A damaged previous file is replaced.
func RecordDurations(dir, key string, results map[string]time.Duration) error {
	return record(dir, key, results, time.Now())
}

func record(dir, key string, results map[string]time.Duration, now time.Time) error {
	if len(results) == 0 {
		return nil
	}
	h, _ := load(dir, key) // a damaged file is replaced
	for name, d := range results {
		secs := d.Seconds()
		if e, ok := h.Tests[name]; ok {
			secs = (e.Seconds + secs) / 2
			h.Tests[name] = entry{Seconds: secs, Runs: e.Runs + 1, Last: now}
		} else {
			h.Tests[name] = entry{Seconds: secs, Runs: 1, Last: now}
		}
	}
	for name, e := range h.Tests {
		if now.Sub(e.Last) > forget {
			delete(h.Tests, name)
		}
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	p := path(dir, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("recording the test durations: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+key+".*.tmp")
	if err != nil {
		return fmt.Errorf("recording the test durations: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("recording the test durations: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("recording the test durations: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("recording the test durations: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("recording the test durations: %w", err)
	}
	return nil
}
