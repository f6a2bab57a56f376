// Package shard splits a test package's top-level tests over the pods of a
// sharded run: the list comes from the test binary itself (-test.list,
// List), the split balances the durations recorded by earlier runs of the
// same package (Plan, Auto), kept in the state directory
// (LoadDurations, RecordDurations). It does not talk to Kubernetes: the
// runner puts the plan in the Job (TESTSHIP_SHARD_PLAN) and each pod's
// entrypoint runs its index's tests with testlog.ShardRun.
package shard

import (
	"fmt"
	"sort"
	"time"
)

// minWeight is what a test weighs at least in the balance: go test prints
// durations to 10ms, and a test of "0.00s" still costs something.
const minWeight = 10 * time.Millisecond

// Plan splits tests (top-level names) over n shards, balanced by
// duration: each test goes, longest first, to the shard with the least
// work so far (longest-processing-time first; ties go to the shard with
// fewer tests, then the lower index). A test without a recorded duration
// counts as the mean of the recorded ones, so unknown tests spread over
// the shards like round-robin; with no history at all every test counts
// the same and the plan is a round-robin over the names in sorted order.
// The plan is deterministic: the same tests and durations give the same
// plan. Each shard's names are sorted.
//
// There are never empty shards: with fewer tests than n the plan has one
// shard per test (len(plan) < n; Note says so). No tests give no shards.
func Plan(tests []string, n int, durations map[string]time.Duration) [][]string {
	tests = unique(tests)
	if len(tests) == 0 {
		return nil
	}
	n = max(1, min(n, len(tests)))
	w := weights(tests, durations)
	order := append([]string(nil), tests...)
	sort.SliceStable(order, func(i, j int) bool { return w[order[i]] > w[order[j]] }) // names sorted within equal weights
	plan := make([][]string, n)
	load := make([]time.Duration, n)
	for _, t := range order {
		best := 0
		for i := 1; i < n; i++ {
			if load[i] < load[best] || load[i] == load[best] && len(plan[i]) < len(plan[best]) {
				best = i
			}
		}
		plan[best] = append(plan[best], t)
		load[best] += w[t]
	}
	for _, s := range plan {
		sort.Strings(s)
	}
	return plan
}

// Loads is the expected duration of each shard of plan: the sum of its
// tests' weights as Plan counts them (unknown tests as the mean of the
// known). With no durations it is 0 for every shard.
func Loads(plan [][]string, durations map[string]time.Duration) []time.Duration {
	var all []string
	for _, s := range plan {
		all = append(all, s...)
	}
	out := make([]time.Duration, len(plan))
	if len(known(all, durations)) == 0 {
		return out
	}
	w := weights(all, durations)
	for i, s := range plan {
		for _, t := range s {
			out[i] += w[t]
		}
	}
	return out
}

// Note says why a plan has fewer shards than asked for ("" when it has as
// many), for the runner to print.
func Note(asked int, plan [][]string) string {
	if len(plan) >= asked {
		return ""
	}
	return fmt.Sprintf("running %d shard%s instead of %d: only %d test%s", len(plan), plural(len(plan)), asked, len(plan), plural(len(plan)))
}

// AutoTarget is how long TESTSHIP_SHARDS=auto aims to make each shard:
// long enough that a pod's start (seconds to pull and schedule) is a small
// part of it.
const AutoTarget = time.Minute

// Auto chooses the number of shards for TESTSHIP_SHARDS=auto: with
// recorded durations, enough shards that each has about AutoTarget of
// work, or the longest test when that is longer (more shards cannot
// finish sooner than it); with no recorded durations, one shard per test.
// Either way at least 1 and at most max and the number of tests. It says
// why, for the runner to print.
func Auto(tests []string, durations map[string]time.Duration, maxShards int) (int, string) {
	tests = unique(tests)
	limit := max(1, min(maxShards, len(tests)))
	if len(known(tests, durations)) == 0 {
		return limit, fmt.Sprintf("auto: %d shard%s (no recorded durations: one per test, at most TESTSHIP_SHARDS_MAX=%d)", limit, plural(limit), maxShards)
	}
	var total, longest time.Duration
	for _, w := range weights(tests, durations) {
		total += w
		longest = max(longest, w)
	}
	target := max(AutoTarget, longest)
	n := max(1, min(limit, int((total+target-1)/target)))
	return n, fmt.Sprintf("auto: %d shard%s for about %s of tests (%s per shard at most, longest test %s; at most TESTSHIP_SHARDS_MAX=%d)",
		n, plural(n), total.Round(time.Second), target.Round(time.Second), longest.Round(time.Second), maxShards)
}

// weights gives each test its weight: its recorded duration (at least
// minWeight), or the mean of the recorded ones of tests when it has none
// (1s when none has one: only the equality matters then).
func weights(tests []string, durations map[string]time.Duration) map[string]time.Duration {
	k := known(tests, durations)
	mean := time.Second
	if len(k) > 0 {
		var sum time.Duration
		for _, d := range k {
			sum += d
		}
		mean = sum / time.Duration(len(k))
	}
	w := make(map[string]time.Duration, len(tests))
	for _, t := range tests {
		if d, ok := k[t]; ok {
			w[t] = d
		} else {
			w[t] = mean
		}
	}
	return w
}

// known gives the recorded durations of tests (at least minWeight).
func known(tests []string, durations map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, t := range tests {
		if d, ok := durations[t]; ok {
			out[t] = max(d, minWeight)
		}
	}
	return out
}

// unique returns the names sorted, each once.
func unique(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	j := 0
	for i, n := range out {
		if i == 0 || n != out[j-1] {
			out[j] = n
			j++
		}
	}
	return out[:j]
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
