//go:build e2e

package runner_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/runner"
	"github.com/testship/testship/pkg/testlog"
)

// The multi-pod side of the wait against the real stack, before Launch
// makes Indexed Jobs: an Indexed Job of the probe's TestShard is made by
// hand from BuildJob (completionMode Indexed, completions = parallelism =
// N, backoffLimitPerIndex 0) in a wait-e2e-* namespace, and followed with
// Follow like run:remote.

// newWaitCluster is newCluster with a namespace named wait-e2e-*.
func newWaitCluster(t *testing.T) *cluster {
	t.Helper()
	c := newCluster(t, 0)
	// newCluster's own namespace is not used: remove it now (its clean-up
	// removes c.ns, which is the wait-e2e-* one from here on)
	_ = c.cs.CoreV1().Namespaces().Delete(context.Background(), c.ns, metav1.DeleteOptions{})
	var b [3]byte
	rand.Read(b[:])
	c.ns = "wait-e2e-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// indexedRun starts an Indexed Job of n pods running the probe's TestShard
// with env.
func (c *cluster) indexedRun(t *testing.T, n int, env map[string]string) *runner.Run {
	t.Helper()
	o := c.options(t, "^TestShard$", env)
	// The probe writes its own (deliberately lossy) record: start it
	// directly, not through the entrypoint, which would write the true one.
	o.Command = []string{testlog.TestBinaryPath}
	job := runner.BuildJob(o, runner.NewRunID())
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Spec.Completions, job.Spec.Parallelism = ptr.To(int32(n)), ptr.To(int32(n))
	job.Spec.BackoffLimit = nil
	job.Spec.BackoffLimitPerIndex = ptr.To(int32(0))
	return c.createRun(t, o, job, true)
}

// checkShardOutput checks that every line of out carries its pod's index
// prefix and that each index's numbered lines came once and in order.
func checkShardOutput(t *testing.T, out string, n, lines int, complete map[int]bool) {
	t.Helper()
	width := len(fmt.Sprint(n - 1))
	next := map[int]int{}
	shardLine := regexp.MustCompile(`^shard (\d+) line (\d+)$`)
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var idx int
		if _, err := fmt.Sscanf(l, "[%d] ", &idx); err != nil {
			t.Errorf("line without index prefix: %q", l)
			continue
		}
		prefix := fmt.Sprintf("[%*d] ", width, idx)
		if !strings.HasPrefix(l, prefix) {
			t.Errorf("line %q: prefix not aligned as %q", l, prefix)
			continue
		}
		text := strings.TrimPrefix(l, prefix)
		if strings.HasPrefix(text, "shard ") && strings.Contains(text, " line ") {
			m := shardLine.FindStringSubmatch(text)
			if m == nil || m[1] != fmt.Sprint(idx) {
				t.Errorf("line %q under prefix %d", l, idx)
				continue
			}
			num, _ := strconv.Atoi(m[2]) // not Sscan: 0024 is not octal
			if num != next[idx] {
				t.Errorf("index %d: line %d after line %d (repeated, lost or out of order)", idx, num, next[idx]-1)
			}
			next[idx] = num + 1
		}
	}
	for i := 0; i < n; i++ {
		if complete[i] && next[i] != lines {
			t.Errorf("index %d: %d of %d numbered lines shown", i, next[i], lines)
		}
	}
}

// Three shards, one failing, one whose record counts lines that never
// reached the log: one exit code (the test failure's), every line once, in
// order and prefixed, each pod's output verified or its loss counted, the
// results from the records, one JUnit report with a suite per pod.
func TestRemoteIndexedRun(t *testing.T) {
	c := newWaitCluster(t)
	const n, lines = 3, 400
	run := c.indexedRun(t, n, map[string]string{
		"PROBE_RECORD": "true", "PROBE_SHARD_LINES": fmt.Sprint(lines), "PROBE_FAIL_INDEXES": "1",
		"PROBE_LOSE_INDEX": "2", "PROBE_LOSE_LINES": "3",
	})
	rec, err := runner.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, log e2e.SyncBuffer
	res, err := runner.Follow(ctx, c.cs, run, runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: &out, Log: &log, OnPodLine: rec.PodLine}})
	if res == nil {
		t.Fatalf("no result: %v\nlog:\n%s", err, log.String())
	}
	t.Logf("log:\n%s", log.String())
	if res.ExitCode != 1 || res.Reason != "" || !res.Multi || len(res.Pods) != n {
		t.Fatalf("exit %d reason %q multi %v pods %d, want 1, none, true, %d: %s", res.ExitCode, res.Reason, res.Multi, len(res.Pods), n, res.Message)
	}
	checkShardOutput(t, out.String(), n, lines, map[int]bool{0: true, 1: true, 2: true})
	for i, p := range res.Pods {
		if p.Record == nil {
			t.Fatalf("pod %d (%s): no record read from the termination message", i, p.Pod)
		}
		// TestShard, TestShard/pass pass (TestShard fails at index 1), TestShard/skip skips
		wantFail := map[bool]int{false: 0, true: 1}[i == 1]
		if p.Counts.Passed != 2-wantFail || p.Counts.Failed != wantFail || p.Counts.Skipped != 1 {
			t.Errorf("pod %d counts %+v", i, p.Counts)
		}
		who := fmt.Sprintf("pod %s (index %d)", p.Pod, i)
		if i < 2 {
			if !p.Verified || !strings.Contains(log.String(), fmt.Sprintf("testship: %s: output verified: %d lines", who, p.Record.Lines)) {
				t.Errorf("pod %d not verified (%s)", i, p.Mismatch)
			}
		} else {
			want := fmt.Sprintf("testship: WARNING: %s: 3 of %d lines lost", who, p.Record.Lines)
			if p.Verified || p.LostLines != 3 || !strings.Contains(log.String(), want) {
				t.Errorf("pod 2: verified %v lost %d; log lacks %q", p.Verified, p.LostLines, want)
			}
		}
	}
	if res.Pods[1].ExitCode != 1 || res.Pods[0].ExitCode != 0 || res.Pods[2].ExitCode != 0 {
		t.Errorf("pod exit codes %d %d %d", res.Pods[0].ExitCode, res.Pods[1].ExitCode, res.Pods[2].ExitCode)
	}
	line := res.Line()
	for _, want := range []string{"FAILED: 5 passed, 1 failed, 3 skipped", "(failed: TestShard [1])", "exit code 1", "[1] exit 1 1/1/1"} {
		if !strings.Contains(line, want) || !strings.Contains(log.String(), want) {
			t.Errorf("summary line %q (printed: %v) lacks %q", line, strings.Contains(log.String(), line), want)
		}
	}
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := rec.WriteJUnit(path, "probe", res); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var suites junit.Testsuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatal(err)
	}
	if len(suites.Suites) != n || suites.Failures != 1 {
		t.Fatalf("JUnit: %d suites, %d failures, want %d and 1:\n%s", len(suites.Suites), suites.Failures, n, data)
	}
	for i, s := range suites.Suites {
		if s.Name != fmt.Sprintf("probe#%d", i) || s.Tests != 3 {
			t.Errorf("suite %d: %s with %d tests", i, s.Name, s.Tests)
		}
	}
}

// A pod of one shard deleted mid-run: the run ends with 85 naming that
// pod and index, after the other shards ended with their output complete.
func TestRemoteIndexedPodDeleted(t *testing.T) {
	c := newWaitCluster(t)
	const n, lines = 3, 100
	run := c.indexedRun(t, n, map[string]string{"PROBE_SHARD_LINES": fmt.Sprint(lines), "PROBE_SHARD_SLEEP": "120s", "PROBE_SLEEP_INDEX": "1"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, log e2e.SyncBuffer
	deleted := make(chan string, 1)
	go func() {
		// once index 1 sleeps (and the others have ended), delete its pod
		for ctx.Err() == nil && !strings.Contains(out.String(), "shard 1 sleeping") {
			time.Sleep(100 * time.Millisecond)
		}
		for ctx.Err() == nil && !(strings.Contains(out.String(), "shard 0 done") && strings.Contains(out.String(), "shard 2 done")) {
			time.Sleep(100 * time.Millisecond)
		}
		pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + run.ID})
		if err != nil {
			t.Error(err)
			return
		}
		for _, p := range pods.Items {
			if p.Annotations["batch.kubernetes.io/job-completion-index"] == "1" {
				deleted <- p.Name
				c.cs.CoreV1().Pods(c.ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
				return
			}
		}
		t.Error("no pod with index 1")
	}()
	res, err := runner.Follow(ctx, c.cs, run, runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: &out, Log: &log}, KeepOnFault: true})
	if res == nil {
		t.Fatalf("no result: %v\nlog:\n%s", err, log.String())
	}
	name := <-deleted
	if res.ExitCode != runner.ExitPodLost || res.Reason != runner.ReasonPodDeleted || !strings.Contains(res.Message, fmt.Sprintf("index 1 (pod %s)", name)) {
		t.Fatalf("exit %d reason %q message %q, want 85 naming index 1 (pod %s)\nlog:\n%s", res.ExitCode, res.Reason, res.Message, name, log.String())
	}
	checkShardOutput(t, out.String(), n, lines, map[int]bool{0: true, 1: true, 2: true})
	if res.Pods[0].ExitCode != 0 || res.Pods[2].ExitCode != 0 || res.Pods[1].ExitCode != runner.ExitPodLost {
		t.Errorf("pod exit codes %d %d %d", res.Pods[0].ExitCode, res.Pods[1].ExitCode, res.Pods[2].ExitCode)
	}
	for _, i := range []int{0, 2} {
		if !strings.Contains(out.String(), fmt.Sprintf("[%d] shard %d done", i, i)) {
			t.Errorf("index %d's output incomplete", i)
		}
	}
}

// Detach from a multi-pod run returns once every pod's test runs; the
// run goes on.
func TestRemoteIndexedDetach(t *testing.T) {
	c := newWaitCluster(t)
	run := c.indexedRun(t, 2, map[string]string{"PROBE_SHARD_LINES": "10", "PROBE_SHARD_SLEEP": "60s", "PROBE_SLEEP_INDEX": "0"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log e2e.SyncBuffer
	res, err := runner.Wait(ctx, c.cs, run, runner.WaitOptions{Log: &log, Detach: true})
	if err != nil || !res.Detached {
		t.Fatalf("detach: %+v %v", res, err)
	}
	pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + run.ID})
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, p := range pods.Items {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running != nil || s.State.Terminated != nil {
				started++
			}
		}
	}
	if started != 2 {
		t.Errorf("detached with %d of 2 tests started", started)
	}
	if err := runner.Cancel(ctx, c.cs, c.ns, run.ID, true); err != nil {
		t.Error(err)
	}
}

// FailFast: the first failing shard ends the wait; a shard still running
// is reported as not ended.
func TestRemoteIndexedFailFast(t *testing.T) {
	c := newWaitCluster(t)
	run := c.indexedRun(t, 2, map[string]string{"PROBE_SHARD_LINES": "10", "PROBE_FAIL_INDEXES": "1", "PROBE_SHARD_SLEEP": "90s", "PROBE_SLEEP_INDEX": "0"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, log e2e.SyncBuffer
	res, err := runner.Wait(ctx, c.cs, run, runner.WaitOptions{Out: &out, Log: &log, FailFast: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 1 || res.Reason != "" || len(res.Pods) != 2 || res.Pods[1].ExitCode != 1 || res.Pods[0].ExitCode != -1 {
		t.Fatalf("result %+v\nlog:\n%s", res, log.String())
	}
	if !strings.Contains(out.String(), "[1] shard 1 done") || strings.Contains(out.String(), "shard 0 done") {
		t.Errorf("output:\n%s", out.String())
	}
	if l := res.Line(); !strings.Contains(l, "[0] not ended") || !strings.Contains(l, "failed: TestShard [1]") {
		t.Errorf("summary line %q", l)
	}
	if err := runner.Cancel(ctx, c.cs, c.ns, run.ID, true); err != nil {
		t.Error(err)
	}
}

// A single-pod run whose pod leaves the entrypoint's record: the whole
// flood (200,000 lines and a 2 MiB line) is verified against it, with no
// prefix on the output; a record that counts lines the log never had
// makes the exact loss reported and the results taken from the record.
func TestRemoteSinglePodVerified(t *testing.T) {
	c := newWaitCluster(t)
	t.Run("flood verified", func(t *testing.T) {
		o := c.launchAndFollow(t, c.options(t, "^TestFlood$", map[string]string{"PROBE_RECORD": "true"}), runner.FollowOptions{})
		if o.code() != 0 {
			t.Fatalf("exit %d: %v\n%s", o.code(), o.err, o.log)
		}
		checkFlood(t, o.out)
		p := o.res.Pods[0]
		if o.res.Multi || !p.Verified || p.Record == nil || p.Lines != p.Record.Lines || !strings.Contains(o.log, fmt.Sprintf("testship: output verified: %d lines\n", p.Lines)) {
			t.Errorf("not verified: %+v (%s)\n%s", p, p.Mismatch, o.log)
		}
		if strings.HasPrefix(o.out, "[0] ") {
			t.Error("a single-pod run's output is prefixed")
		}
	})
	t.Run("lost lines", func(t *testing.T) {
		opts := c.options(t, "^TestPass$", map[string]string{"PROBE_RECORD": "true", "PROBE_LOSE_LINES": "2"})
		opts.Command = []string{testlog.TestBinaryPath} // the probe's own lossy record, not the entrypoint's
		o := c.launchAndFollow(t, opts, runner.FollowOptions{})
		if o.code() != 0 {
			t.Fatalf("exit %d: %v\n%s", o.code(), o.err, o.log)
		}
		p := o.res.Pods[0]
		want := fmt.Sprintf("testship: WARNING: pod %s: 2 of %d lines lost", p.Pod, p.Lines+2)
		if p.Verified || p.LostLines != 2 || !strings.Contains(o.log, want) {
			t.Errorf("verified %v lost %d; log lacks %q:\n%s", p.Verified, p.LostLines, want, o.log)
		}
		if p.Counts.Passed != 1 || !strings.Contains(o.log, "PASSED: 1 passed, 0 failed, 0 skipped") {
			t.Errorf("counts %+v\n%s", p.Counts, o.log)
		}
	})
}
