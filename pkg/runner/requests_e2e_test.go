//go:build e2e

package runner_test

import (
	"testing"

	"github.com/testship/testship/pkg/runner"
	"github.com/testship/testship/pkg/testlog"
)

// TestIndexedRequests counts the API requests of a run of 4 pods (an
// Indexed Job of copies) next to a single-pod run: watching and streaming,
// not polling, makes the count independent of the run's length, and 4
// pods cost at most 3× one (issue #14's targets, counted, not timed).
func TestIndexedRequests(t *testing.T) {
	c := newCluster(t, 0)
	count := func(pods int, sleep string) int64 {
		o := c.options(t, "^TestSleep$", map[string]string{"PROBE_SLEEP": sleep})
		if pods > 1 {
			o.Pods, o.Mode = pods, testlog.ModeCopy
		}
		before := c.counter.requests.Load()
		r := c.launchAndFollow(t, o, runner.FollowOptions{})
		if r.code() != 0 {
			t.Fatalf("run of %d pods, %s: %v\n%s", pods, sleep, r.err, r.log)
		}
		return c.counter.requests.Load() - before
	}
	single := count(1, "2s")
	short := count(4, "2s")
	long := count(4, "12s")
	t.Logf("API requests: single pod %d; 4 pods %d for a 2 s run, %d for a 12 s run (%.1f× the single pod)", single, short, long, float64(short)/float64(single))
	if long > short+4 {
		t.Errorf("a 12 s run of 4 pods made %d requests, a 2 s one %d: requests grow with the run's length", long, short)
	}
	if short > 3*single {
		t.Errorf("4 pods made %d requests, more than 3× a single pod's %d", short, single)
	}
}
