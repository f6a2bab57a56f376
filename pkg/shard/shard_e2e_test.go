//go:build e2e

package shard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/image"
	"github.com/testship/testship/pkg/testlog"
)

// fixtureTests are the runnable top-level names of tests/shardfixture
// (its benchmark is listed by -test.list but does not run).
var fixtureTests = []string{"Example_hello", "FuzzReverse", "TestFails", "TestQuick", "TestSkipped",
	"TestSleep1", "TestSleep2", "TestSleep3", "TestSleep4", "TestSubtests"}

// result is one run of the fixture binary.
type result struct {
	exit int
	sum  testlog.Summary
	// top counts each top-level test's result lines.
	top map[string]int
}

// runArgs is the arguments of a run with -test.v and the given -test.run
// pattern (none when "").
func runArgs(pattern string) []string {
	if pattern == "" {
		return []string{"-test.v"}
	}
	return []string{"-test.v", "-test.run", pattern}
}

// runBinary runs the fixture binary with args and reads its results like
// the runner does.
func runBinary(t *testing.T, ctx context.Context, bin string, args []string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	r := result{top: map[string]int{}}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		r.exit = ee.ExitCode()
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		r.sum.Observe(sc.Bytes())
	}
	for _, names := range [][]string{r.sum.Passed, r.sum.Failed, r.sum.Skipped} {
		for _, n := range names {
			if !strings.Contains(n, "/") {
				r.top[n]++
			}
		}
	}
	return r
}

// runShards runs every shard of plan at once, each with the arguments its
// pod's entrypoint would use (testlog.ShardArgs of the single pod's).
func runShards(t *testing.T, ctx context.Context, bin string, plan [][]string, pattern string) []result {
	t.Helper()
	out := make([]result, len(plan))
	var wg sync.WaitGroup
	for i, names := range plan {
		wg.Go(func() { out[i] = runBinary(t, ctx, bin, testlog.ShardArgs(runArgs(pattern), names)) })
	}
	wg.Wait()
	return out
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// checkSharded compares the shards' results with the unsharded run's:
// every planned test ran in its own shard exactly once, and the pass,
// fail and skip sets (subtests included) and the overall outcome are the
// same.
func checkSharded(t *testing.T, plan [][]string, shards []result, whole result) {
	t.Helper()
	var passed, failed, skipped []string
	anyFailed := false
	for i, r := range shards {
		for n, c := range r.top {
			if c != 1 {
				t.Errorf("shard %d: %s reported %d times", i, n, c)
			}
		}
		if got := sorted(keys(r.top)); !reflect.DeepEqual(got, sorted(plan[i])) {
			t.Errorf("shard %d ran %v, its plan is %v", i, got, plan[i])
		}
		if (r.exit != 0) != (len(r.sum.Failed) > 0) || r.exit > 1 {
			t.Errorf("shard %d: exit %d with failures %v", i, r.exit, r.sum.Failed)
		}
		anyFailed = anyFailed || r.exit != 0
		passed, failed, skipped = append(passed, r.sum.Passed...), append(failed, r.sum.Failed...), append(skipped, r.sum.Skipped...)
	}
	for _, c := range []struct {
		what        string
		shards, one []string
	}{{"passed", passed, whole.sum.Passed}, {"failed", failed, whole.sum.Failed}, {"skipped", skipped, whole.sum.Skipped}} {
		if !reflect.DeepEqual(sorted(c.shards), sorted(c.one)) {
			t.Errorf("%s: the shards %v, the unsharded run %v", c.what, sorted(c.shards), sorted(c.one))
		}
	}
	if anyFailed != (whole.exit != 0) {
		t.Errorf("a shard failed: %v; the unsharded run exited %d", anyFailed, whole.exit)
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFixtureSharded compiles tests/shardfixture for this host, lists its
// tests, plans 3 shards and runs each shard's selection with the real
// binary: every test runs once, in its shard, and the union of the
// results is an unsharded run's. Then again with the durations that run
// recorded, and with a TESTSHIP_RUN pattern that has subtest levels.
func TestFixtureSharded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	state := t.TempDir()
	bin, err := image.HostTestBinary(ctx, config.Image{StateDir: state, TestPackage: "../../tests/shardfixture", TestTags: "shardfixture"})
	if err != nil {
		t.Fatal(err)
	}

	all, err := List(ctx, bin, "")
	if err != nil || !reflect.DeepEqual(all, fixtureTests) {
		t.Fatalf("List = %v, %v; want %v", all, err, fixtureTests)
	}
	if got, err := List(ctx, bin, "Sleep[12]|Quick"); err != nil || !reflect.DeepEqual(got, []string{"TestQuick", "TestSleep1", "TestSleep2"}) {
		t.Errorf("List(Sleep[12]|Quick) = %v, %v", got, err)
	}
	var ce *config.Error
	if _, err := List(ctx, bin, "TestNothing"); !errors.As(err, &ce) || ce.Name != config.RunPattern ||
		!strings.Contains(err.Error(), "selects none of the package's 10 tests; want a go test -run pattern that selects some of "+strings.Join(fixtureTests, ", ")) {
		t.Errorf("a pattern matching nothing: %v", err)
	}

	whole := runBinary(t, ctx, bin, runArgs(""))
	if whole.exit != 1 || !reflect.DeepEqual(sorted(keys(whole.top)), fixtureTests) || len(whole.sum.FailedTop()) != 1 {
		t.Fatalf("the unsharded run: exit %d, %+v", whole.exit, whole.sum)
	}

	t.Run("no history", func(t *testing.T) {
		plan := Plan(all, 3, nil)
		t.Logf("plan %v", plan)
		checkPartition(t, all, plan)
		checkSharded(t, plan, runShards(t, ctx, bin, plan, ""), whole)
	})

	t.Run("with the recorded durations", func(t *testing.T) {
		key := Key("./tests/shardfixture", "shardfixture")
		if err := RecordDurations(state, key, whole.sum.Durations); err != nil {
			t.Fatal(err)
		}
		d, err := LoadDurations(state, key)
		if err != nil || len(d) != len(fixtureTests) || d["TestSleep4"] < 4*time.Second || d["TestSleep4"] > 5*time.Second {
			t.Fatalf("recorded durations %v, %v", d, err)
		}
		plan := Plan(all, 3, d)
		loads := Loads(plan, d)
		t.Logf("plan %v, expected loads %v", plan, loads)
		// Sleeps of 4, 3, 2, 2 (subtests), 1 and 1 s: the best split into
		// 3 is 5 s (4+1 | 3+1 | 2+2); within 10% of it.
		for i, l := range loads {
			if l > 5500*time.Millisecond {
				t.Errorf("shard %d expects %s, more than 10%% over the best split's 5s: %v", i, l, plan)
			}
		}
		checkPartition(t, all, plan)
		checkSharded(t, plan, runShards(t, ctx, bin, plan, ""), whole)
	})

	t.Run("TESTSHIP_RUN with subtests", func(t *testing.T) {
		pattern := "TestSubtests/fast|Sleep1|Example"
		tests, err := List(ctx, bin, pattern)
		if err != nil || !reflect.DeepEqual(tests, []string{"Example_hello", "TestSleep1", "TestSubtests"}) {
			t.Fatalf("List(%q) = %v, %v", pattern, tests, err)
		}
		one := runBinary(t, ctx, bin, runArgs(pattern))
		if !reflect.DeepEqual(sorted(one.sum.Passed), []string{"Example_hello", "TestSleep1", "TestSubtests", "TestSubtests/fast"}) {
			t.Fatalf("unsharded with %q: %+v", pattern, one.sum)
		}
		plan := Plan(tests, 2, nil)
		checkPartition(t, tests, plan)
		checkSharded(t, plan, runShards(t, ctx, bin, plan, pattern), one)
	})
}
