package shard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/testship/testship/pkg/config"
)

func TestPrepare(t *testing.T) {
	bin := fakeBinary(t, listing)
	ctx := context.Background()
	dir := t.TempDir()
	key := Key("./tests/link", "e2e")
	pods := config.Pods{Shards: 3, Max: 16}

	// No history: by name.
	s, err := Prepare(ctx, bin, "", pods, dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"ExampleHello", "TestLinkSlow"}, {"FuzzParse", "TestOther"}, {"TestLink"}}; !reflect.DeepEqual(s.Plan, want) {
		t.Errorf("plan %v, want %v", s.Plan, want)
	}
	if strings.Join(s.Notes, "\n") != "5 tests over 3 shards, split by name (no recorded durations yet)" {
		t.Errorf("notes %q", s.Notes)
	}

	// With history, a pattern and more shards than tests.
	if err := RecordDurations(dir, key, map[string]time.Duration{"TestLink": 3 * time.Second, "TestLinkSlow": 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	s, err = Prepare(ctx, bin, "Link", pods, dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"TestLinkSlow"}, {"TestLink"}}; !reflect.DeepEqual(s.Plan, want) || !reflect.DeepEqual(s.Loads, []time.Duration{30 * time.Second, 3 * time.Second}) {
		t.Errorf("plan %v loads %v", s.Plan, s.Loads)
	}
	if want := "running 2 shards instead of 3: only 2 tests\n2 tests over 2 shards, balanced by the durations of 2 of them: about 30s, 3s"; strings.Join(s.Notes, "\n") != want {
		t.Errorf("notes %q, want %q", s.Notes, want)
	}

	// Auto: 33s of recorded tests plus 3 unknown ones at their mean
	// (16.5s): about 1m23s, the longest 30s: 2 shards of a minute.
	s, err = Prepare(ctx, bin, "", config.Pods{Auto: true, Max: 16}, dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Plan) != 2 || !strings.HasPrefix(s.Notes[0], "auto: 2 shards") {
		t.Errorf("auto: plan %v, notes %q", s.Plan, s.Notes)
	}

	// A damaged durations file: a note, a split by name.
	if err := os.WriteFile(filepath.Join(dir, DurationsDir, key+".json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Prepare(ctx, bin, "", pods, dir, key)
	if err != nil || len(s.Plan) != 3 || !strings.Contains(s.Notes[0], "damaged") || !strings.HasSuffix(s.Notes[0], "; splitting by name") {
		t.Errorf("damaged durations: %v, %+v", err, s)
	}

	// A pattern selecting nothing: no plan, TESTSHIP_RUN's error.
	var ce *config.Error
	if _, err := Prepare(ctx, bin, "TestNone", pods, dir, key); !errors.As(err, &ce) || ce.Name != config.RunPattern {
		t.Errorf("pattern selecting nothing: %v", err)
	}
}
