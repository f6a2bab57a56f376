package shard

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const s = time.Second

// uneven is the example: 40s, 10s ×4, 5s ×4.
func uneven() ([]string, map[string]time.Duration) {
	d := map[string]time.Duration{"TestLong": 40 * s}
	for i := range 4 {
		d[fmt.Sprintf("TestTen%d", i)] = 10 * s
		d[fmt.Sprintf("TestFive%d", i)] = 5 * s
	}
	var tests []string
	for t := range d {
		tests = append(tests, t)
	}
	return tests, d
}

// makespan is the plan's wall time: its longest shard.
func makespan(plan [][]string, d map[string]time.Duration) time.Duration {
	var m time.Duration
	for _, l := range Loads(plan, d) {
		m = max(m, l)
	}
	return m
}

// checkPartition fails unless every test is in exactly one shard and no
// shard is empty.
func checkPartition(t *testing.T, tests []string, plan [][]string) {
	t.Helper()
	seen := map[string]int{}
	for i, sh := range plan {
		if len(sh) == 0 {
			t.Errorf("shard %d is empty: %v", i, plan)
		}
		for _, n := range sh {
			seen[n]++
		}
	}
	for _, n := range tests {
		if seen[n] != 1 {
			t.Errorf("%s is in %d shards: %v", n, seen[n], plan)
		}
		delete(seen, n)
	}
	if len(seen) > 0 {
		t.Errorf("plan has tests it was not given: %v", seen)
	}
}

func TestPlanBalanceUneven(t *testing.T) {
	tests, d := uneven()
	for _, tc := range []struct {
		n       int
		optimum time.Duration
	}{
		// 100s of tests, one of 40s: the optimum is max(40s, ceil-ish 100s/n)
		{4, 40 * s}, // 40 | 10+10 | 10+5+5 | 10+5+5
		{3, 40 * s}, // 40 | 10+10+5+5 | 10+10+5+5
		{2, 50 * s}, // 40+5+5 | 10×4+5+5
		{1, 100 * s},
	} {
		plan := Plan(tests, tc.n, d)
		checkPartition(t, tests, plan)
		got := makespan(plan, d)
		t.Logf("%d shards: wall time %s (optimum %s), loads %v: %v", tc.n, got, tc.optimum, Loads(plan, d), plan)
		if len(plan) != tc.n || got > tc.optimum+tc.optimum/10 {
			t.Errorf("%d shards: wall time %s, more than 10%% over the optimum %s: %v", tc.n, got, tc.optimum, plan)
		}
	}
	// The case exactly: 4 shards reach the optimum, 40s.
	plan := Plan(tests, 4, d)
	if want := [][]string{{"TestLong"}, {"TestTen0", "TestTen3"}, {"TestFive0", "TestFive2", "TestTen1"}, {"TestFive1", "TestFive3", "TestTen2"}}; !reflect.DeepEqual(plan, want) {
		t.Errorf("plan %v, want %v", plan, want)
	}
	if l := Loads(plan, d); !reflect.DeepEqual(l, []time.Duration{40 * s, 20 * s, 20 * s, 20 * s}) {
		t.Errorf("loads %v", l)
	}
}

// Against the even split by name, which knows no durations, LPT is what
// makes the example reach its optimum.
func TestPlanBeatsSplitByName(t *testing.T) {
	tests, d := uneven()
	byName := makespan(Plan(tests, 4, nil), d)
	lpt := makespan(Plan(tests, 4, d), d)
	t.Logf("4 shards: by name %s, by duration %s", byName, lpt)
	if lpt != 40*s || byName <= lpt {
		t.Errorf("by duration %s (want 40s), by name %s (want more)", lpt, byName)
	}
}

func TestPlanNoHistory(t *testing.T) {
	tests := []string{"TestG", "TestB", "TestA", "TestF", "TestC", "TestE", "TestD"}
	plan := Plan(tests, 3, nil)
	// Sorted by name, dealt round-robin.
	want := [][]string{{"TestA", "TestD", "TestG"}, {"TestB", "TestE"}, {"TestC", "TestF"}}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan %v, want %v", plan, want)
	}
	// Durations of other tests are no history for these.
	if p := Plan(tests, 3, map[string]time.Duration{"TestOther": time.Hour}); !reflect.DeepEqual(p, want) {
		t.Errorf("with unrelated durations: %v, want %v", p, want)
	}
	// All recorded as 0s: still spread, not all on shard 0.
	zero := map[string]time.Duration{}
	for _, n := range tests {
		zero[n] = 0
	}
	if p := Plan(tests, 3, zero); !reflect.DeepEqual(p, want) {
		t.Errorf("with 0s durations: %v, want %v", p, want)
	}
}

func TestPlanUnknownTests(t *testing.T) {
	// Two known tests of 30s and 10s, four new ones counted as the mean,
	// 20s each: the new ones are dealt over the shards the long test does
	// not fill, and the short one tops up the long test's shard.
	d := map[string]time.Duration{"TestKnownLong": 30 * s, "TestKnownShort": 10 * s}
	tests := []string{"TestKnownLong", "TestKnownShort", "TestNew1", "TestNew2", "TestNew3", "TestNew4"}
	plan := Plan(tests, 3, d)
	checkPartition(t, tests, plan)
	want := [][]string{{"TestKnownLong", "TestKnownShort"}, {"TestNew1", "TestNew3"}, {"TestNew2", "TestNew4"}}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan %v, want %v", plan, want)
	}
	if l := Loads(plan, d); !reflect.DeepEqual(l, []time.Duration{40 * s, 40 * s, 40 * s}) {
		t.Errorf("loads %v, want 40s each", l)
	}
	// Only new tests but one: they go round-robin around it.
	d = map[string]time.Duration{"TestKnown": 2 * s}
	tests = []string{"TestKnown", "TestA", "TestB", "TestC", "TestD", "TestE"}
	want = [][]string{{"TestA", "TestD"}, {"TestB", "TestE"}, {"TestC", "TestKnown"}}
	if plan := Plan(tests, 3, d); !reflect.DeepEqual(plan, want) {
		t.Errorf("plan %v, want %v", plan, want)
	}
}

func TestPlanDeterministic(t *testing.T) {
	tests, d := uneven()
	// Equal durations everywhere make many ties: still one answer.
	for name := range d {
		d[name] = 5 * s
	}
	first := Plan(tests, 3, d)
	for i := range 50 {
		shuffled := append([]string(nil), tests...)
		for j := range shuffled {
			k := (j*7 + i) % len(shuffled)
			shuffled[j], shuffled[k] = shuffled[k], shuffled[j]
		}
		if p := Plan(shuffled, 3, d); !reflect.DeepEqual(p, first) {
			t.Fatalf("order %v gives %v, first gave %v", shuffled, p, first)
		}
	}
}

func TestPlanMoreShardsThanTests(t *testing.T) {
	tests := []string{"TestB", "TestA", "TestA"} // a name twice counts once
	plan := Plan(tests, 5, nil)
	if want := [][]string{{"TestA"}, {"TestB"}}; !reflect.DeepEqual(plan, want) {
		t.Errorf("plan %v, want %v", plan, want)
	}
	if n := Note(5, plan); n != "running 2 shards instead of 5: only 2 tests" {
		t.Errorf("Note = %q", n)
	}
	if n := Note(2, plan); n != "" {
		t.Errorf("Note with as many shards = %q", n)
	}
	if n := Note(3, Plan([]string{"TestA"}, 3, nil)); n != "running 1 shard instead of 3: only 1 test" {
		t.Errorf("Note = %q", n)
	}
	if p := Plan(nil, 3, nil); p != nil {
		t.Errorf("no tests: %v", p)
	}
	if p := Plan(tests, 0, nil); len(p) != 1 || len(p[0]) != 2 {
		t.Errorf("0 shards: %v, want one", p)
	}
}

func TestAuto(t *testing.T) {
	tests, d := uneven()
	many := map[string]time.Duration{}
	var manyTests []string
	for i := range 30 {
		n := fmt.Sprintf("Test%02d", i)
		manyTests = append(manyTests, n)
		many[n] = 45 * s // 22.5 minutes in all
	}
	for _, tc := range []struct {
		name  string
		tests []string
		d     map[string]time.Duration
		max   int
		want  int
		why   string
	}{
		{"no history: one per test", tests, nil, 16, 9, "no recorded durations"},
		{"no history: bounded by max", tests, nil, 4, 4, "at most TESTSHIP_SHARDS_MAX=4"},
		{"uneven: 100s over a minute each", tests, d, 16, 2, "about 1m40s of tests"},
		{"long suite: a minute each", manyTests, many, 100, 23, "about 22m30s"},
		{"long suite: bounded by max", manyTests, many, 16, 16, ""},
		{"a test longer than the target sets it", []string{"TestA", "TestB", "TestC"},
			map[string]time.Duration{"TestA": 5 * time.Minute, "TestB": 4 * time.Minute, "TestC": 3 * time.Minute}, 16, 3, "longest test 5m0s"},
		{"one test", []string{"TestA"}, nil, 16, 1, "1 shard"},
		{"short suite: one shard", tests, map[string]time.Duration{"TestLong": s}, 16, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, why := Auto(tc.tests, tc.d, tc.max)
			if n != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("Auto = %d (%s), want %d (%s)", n, why, tc.want, tc.why)
			}
		})
	}
}
