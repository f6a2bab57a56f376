package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/testship/testship/pkg/testlog"
)

// Pod states for the decision's tables.
func pending(p *corev1.Pod) {}
func running(p *corev1.Pod) {
	p.Status.ContainerStatuses[0].State.Running = &corev1.ContainerStateRunning{}
}
func pullFail(p *corev1.Pod) {
	p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}
}
func exited(code int) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].State.Terminated = &corev1.ContainerStateTerminated{ExitCode: int32(code)}
	}
}
func withRecord(rec testlog.Record) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses[0].State.Terminated = &corev1.ContainerStateTerminated{ExitCode: int32(rec.Exit), Message: string(rec.Encode())}
	}
}
func unschedulableSince(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = nil
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
			Message: "no room", LastTransitionTime: metav1.NewTime(t)}}
	}
}

// pv makes the view of pod "p-<index>" (uid "u-<index>", or uid when given).
func pv(index int, state func(*corev1.Pod), deleted bool, uid ...string) podView {
	p := pod(state)
	p.Name = fmt.Sprintf("p-%d", index)
	p.UID = types.UID(fmt.Sprintf("u-%d", index))
	if len(uid) > 0 {
		p.Name, p.UID = "p-"+uid[0], types.UID("u-"+uid[0])
	}
	return podView{Pod: p, Deleted: deleted, Index: index}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	single := jobFacts{Count: 1}
	three := jobFacts{Count: 3, Indexed: true}
	passRec := testlog.Record{Exit: 0, Lines: 3, Bytes: 30, SHA256: "x", Pass: 2}
	failRec := testlog.Record{Exit: 1, Lines: 3, Bytes: 30, SHA256: "x", Pass: 1, Fail: 1, Failed: []string{"TestB"}}
	cases := []struct {
		name     string
		pods     []podView
		job      jobFacts
		detach   bool
		failFast bool
		verdict  verdict
		code     int
		reason   string
		msg      []string // in the message
		follow   []string // uids followed
		needJob  bool
	}{
		{name: "no pod yet", job: single, verdict: keepWaiting},
		{name: "pending", pods: []podView{pv(0, pending, false)}, job: single, verdict: keepWaiting},
		{name: "running", pods: []podView{pv(0, running, false)}, job: single, verdict: keepWaiting, follow: []string{"u-0"}},
		{name: "exit 3", pods: []podView{pv(0, exited(3), false)}, job: single, verdict: finishNow, code: 3, follow: []string{"u-0"}},
		{name: "record's exit code", pods: []podView{pv(0, withRecord(failRec), false)}, job: single, verdict: finishNow, code: 1, follow: []string{"u-0"}},
		{name: "image pull: single messages name no index", pods: []podView{pv(0, pullFail, false)}, job: single, verdict: finishNow, code: ExitImagePull, reason: ReasonImagePull, msg: []string{"cannot be pulled"}},
		{name: "deleted while running", pods: []podView{pv(0, running, true)}, job: single, verdict: finishNow, code: ExitPodLost, reason: ReasonPodDeleted, msg: []string{"pod p-0 was deleted"}, follow: []string{"u-0"}, needJob: true},
		{name: "deleted, deadline passed", pods: []podView{pv(0, running, true)}, job: jobFacts{Count: 1, Checked: true, DeadlinePassed: true, ActiveDeadline: 600}, verdict: finishNow, code: ExitDeadline, reason: ReasonDeadline, msg: []string{"activeDeadlineSeconds 600"}, follow: []string{"u-0"}},
		{name: "unschedulable past grace", pods: []podView{pv(0, unschedulableSince(now.Add(-time.Minute)), false)}, job: single, verdict: finishNow, code: ExitUnschedulable, reason: ReasonUnschedulable},
		{name: "detach: running", pods: []podView{pv(0, running, false)}, job: single, detach: true, verdict: detachNow},
		{name: "detach: already ended", pods: []podView{pv(0, exited(0), false)}, job: single, detach: true, verdict: finishNow, follow: []string{"u-0"}},

		{name: "multi: one pod of three", pods: []podView{pv(0, running, false)}, job: three, verdict: keepWaiting, follow: []string{"u-0"}},
		{name: "multi: two ended, one runs", pods: []podView{pv(0, exited(0), false), pv(1, exited(1), false), pv(2, running, false)}, job: three, verdict: keepWaiting, follow: []string{"u-0", "u-1", "u-2"}},
		{name: "multi: all passed", pods: []podView{pv(0, exited(0), false), pv(1, withRecord(passRec), false), pv(2, exited(0), false)}, job: three, verdict: finishNow, code: 0, follow: []string{"u-0", "u-1", "u-2"}},
		{name: "multi: highest test code", pods: []podView{pv(0, exited(1), false), pv(1, exited(2), false), pv(2, exited(0), false)}, job: three, verdict: finishNow, code: 2, follow: []string{"u-0", "u-1", "u-2"}},
		{name: "multi: a fault wins over test failures and names the pod", pods: []podView{pv(0, exited(1), false), pv(1, running, true), pv(2, exited(0), false)}, job: three, verdict: finishNow, code: ExitPodLost, reason: ReasonPodDeleted, msg: []string{"index 1 (pod p-1)", "deleted"}, follow: []string{"u-0", "u-1", "u-2"}, needJob: true},
		{name: "multi: a replaced pod is named", pods: []podView{pv(0, exited(0), false), pv(1, running, true), pv(2, exited(0), false), pv(1, running, false, "new")}, job: three, verdict: finishNow, code: ExitPodLost, msg: []string{"index 1 (pod p-1)", "replaced by p-new"}, reason: ReasonPodDeleted, follow: []string{"u-0", "u-1", "u-2"}, needJob: true},
		{name: "multi: deadline", pods: []podView{pv(0, running, true), pv(1, running, true), pv(2, exited(0), false)}, job: jobFacts{Count: 3, Indexed: true, Checked: true, DeadlinePassed: true}, verdict: finishNow, code: ExitDeadline, reason: ReasonDeadline, follow: []string{"u-0", "u-1", "u-2"}},
		{name: "multi: a failed shard does not end the wait", pods: []podView{pv(0, running, false), pv(1, exited(1), false), pv(2, pullFail, false)}, job: three, verdict: keepWaiting, follow: []string{"u-0", "u-1"}},
		{name: "multi: fail fast ends at the first failure", pods: []podView{pv(0, running, false), pv(1, exited(1), false), pv(2, running, false)}, job: three, failFast: true, verdict: finishNow, code: 1, follow: []string{"u-0", "u-1", "u-2"}},
		{name: "multi: fail fast, a fault", pods: []podView{pv(0, running, false), pv(1, pullFail, false), pv(2, running, false)}, job: three, failFast: true, verdict: finishNow, code: ExitImagePull, reason: ReasonImagePull, msg: []string{"index 1 (pod p-1)"}, follow: []string{"u-0", "u-2"}},
		{name: "multi: fail fast, passing so far", pods: []podView{pv(0, exited(0), false), pv(1, running, false), pv(2, running, false)}, job: three, failFast: true, verdict: keepWaiting, follow: []string{"u-0", "u-1", "u-2"}},
		{name: "multi: detach waits for every pod", pods: []podView{pv(0, running, false), pv(1, running, false), pv(2, pending, false)}, job: three, detach: true, verdict: keepWaiting},
		{name: "multi: detach once all started", pods: []podView{pv(0, running, false), pv(1, exited(0), false), pv(2, running, false)}, job: three, detach: true, verdict: detachNow},
		{name: "multi: detach, a fault ends the wait", pods: []podView{pv(0, running, false), pv(1, pullFail, false)}, job: three, detach: true, verdict: finishNow, code: ExitImagePull, reason: ReasonImagePull},
		{name: "multi: a pod without index is ignored", pods: []podView{pv(0, exited(0), false), pv(7, exited(1), false), pv(1, exited(0), false), pv(2, exited(0), false)}, job: three, verdict: finishNow, code: 0, follow: []string{"u-0", "u-1", "u-2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(runView{Pods: c.pods, Job: c.job, Now: now, Grace: 15 * time.Second, Detach: c.detach, FailFast: c.failFast})
			if d.Verdict != c.verdict {
				t.Fatalf("verdict %v, want %v (%+v)", d.Verdict, c.verdict, d)
			}
			var follow []string
			for _, u := range d.Follow {
				follow = append(follow, string(u))
			}
			sort.Strings(follow)
			if fmt.Sprint(follow) != fmt.Sprint(c.follow) {
				t.Errorf("follow %v, want %v", follow, c.follow)
			}
			if len(d.Indexes) != max(c.job.Count, 1) {
				t.Errorf("%d index states for %d pods", len(d.Indexes), c.job.Count)
			}
			if d.Verdict != finishNow {
				return
			}
			if d.Code != c.code || d.Reason != c.reason || d.NeedJob != c.needJob {
				t.Errorf("code %d reason %q needJob %v, want %d %q %v (message %q)", d.Code, d.Reason, d.NeedJob, c.code, c.reason, c.needJob, d.Message)
			}
			for _, m := range c.msg {
				if !strings.Contains(d.Message, m) {
					t.Errorf("message %q lacks %q", d.Message, m)
				}
			}
			if c.job.Count <= 1 && strings.Contains(d.Message, "index") {
				t.Errorf("a single-pod message names an index: %q", d.Message)
			}
		})
	}
}

// A grace that has not passed yet is a wake-up time, the earliest of all.
func TestDecideWakesForGrace(t *testing.T) {
	now := time.Now()
	d := decide(runView{Pods: []podView{pv(0, unschedulableSince(now.Add(-10*time.Second)), false), pv(1, unschedulableSince(now.Add(-5*time.Second)), false)},
		Job: jobFacts{Count: 2, Indexed: true}, Now: now, Grace: 15 * time.Second})
	if d.Verdict != keepWaiting || !d.WakeAt.Equal(now.Add(5*time.Second)) {
		t.Fatalf("verdict %v wake %v, want keep waiting until now+5s", d.Verdict, d.WakeAt.Sub(now))
	}
}

func TestJobFacts(t *testing.T) {
	indexed := batchv1.IndexedCompletion
	nonIndexed := batchv1.NonIndexedCompletion
	for _, c := range []struct {
		spec  batchv1.JobSpec
		count int
		multi bool
	}{
		{batchv1.JobSpec{Completions: ptr.To(int32(1))}, 1, false},
		{batchv1.JobSpec{Completions: ptr.To(int32(4)), CompletionMode: &nonIndexed}, 1, false},
		{batchv1.JobSpec{Completions: ptr.To(int32(4)), CompletionMode: &indexed}, 4, true},
		{batchv1.JobSpec{Completions: ptr.To(int32(1)), CompletionMode: &indexed}, 1, false},
	} {
		f := jobFactsOf(&batchv1.Job{Spec: c.spec})
		if f.Count != c.count || f.multi() != c.multi {
			t.Errorf("%+v: count %d multi %v, want %d %v", c.spec, f.Count, f.multi(), c.count, c.multi)
		}
	}
}

func TestIndexPrefix(t *testing.T) {
	for _, c := range []struct {
		count, index int
		want         string
	}{
		{2, 0, "[0] "}, {2, 1, "[1] "}, {10, 3, "[3] "}, {11, 3, "[ 3] "}, {11, 10, "[10] "}, {100, 7, "[ 7] "}, {101, 7, "[  7] "},
	} {
		if got := indexPrefix(c.count, false)(c.index); got != c.want {
			t.Errorf("count %d index %d: %q, want %q", c.count, c.index, got, c.want)
		}
	}
	col := indexPrefix(12, true)
	if got := col(3); got != "\x1b[32m[ 3]\x1b[0m " {
		t.Errorf("coloured prefix %q", got)
	}
	if col(0) == col(1) {
		t.Error("two indexes share a colour")
	}
}

func TestOutputPrefixesMultiOnly(t *testing.T) {
	var single, multi bytes.Buffer
	var seen []string
	so := newOutput(WaitOptions{Out: &single, OnLine: func(l []byte) { seen = append(seen, string(l)) }}, 1, false)
	so.line(0, []byte("a\n"))
	so.line(0, []byte("no newline"))
	if single.String() != "a\nno newline\n" {
		t.Errorf("single-pod output %q", single.String())
	}
	if fmt.Sprint(seen) != "[a\n no newline]" {
		t.Errorf("OnLine saw %q", seen)
	}
	var indexed []string
	mo := newOutput(WaitOptions{Out: &multi, OnPodLine: func(i int, l []byte) { indexed = append(indexed, fmt.Sprintf("%d:%s", i, l)) }}, 12, true)
	mo.line(0, []byte("x\n"))
	mo.line(11, []byte("y\n"))
	if multi.String() != "[ 0] x\n[11] y\n" {
		t.Errorf("multi-pod output %q", multi.String())
	}
	if fmt.Sprint(indexed) != "[0:x\n 11:y\n]" {
		t.Errorf("OnPodLine saw %q", indexed)
	}
}

// fedFollower is a follower that received lines (stamped, so that a
// re-read of the fake clientset's unstamped log adds nothing).
func fedFollower(t *testing.T, index int, lines []string, out *output) *follower {
	t.Helper()
	p := pod(exited(0))
	p.Name, p.UID = fmt.Sprintf("p-%d", index), types.UID(fmt.Sprintf("u-%d", index))
	f := newFollower("ns1", "r1", p, index, true, out, &bytes.Buffer{}, false)
	var b strings.Builder
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for i, l := range lines {
		b.WriteString(stamp(t0.Add(time.Duration(i)*time.Millisecond), strings.TrimSuffix(l, "\n")))
	}
	if err := f.resumer.read(strings.NewReader(b.String()), true); err != nil {
		t.Fatal(err)
	}
	return f
}

// recordOf is the entrypoint's record of lines (plus extra lines that the
// runner never received).
func recordOf(lines []string, extra int, exit int) testlog.Record {
	c := testlog.NewCounter()
	var s testlog.Summary
	for _, l := range lines {
		c.Write([]byte(l))
		s.Observe([]byte(l))
	}
	for i := 0; i < extra; i++ {
		l := fmt.Sprintf("--- FAIL: TestLost%d (0.00s)\n", i)
		c.Write([]byte(l))
		s.Observe([]byte(l))
	}
	return testlog.Record{Exit: exit, Lines: c.Lines(), Bytes: c.Bytes(), SHA256: c.Sum(), Pass: len(s.Passed), Fail: len(s.Failed), Skip: len(s.Skipped), Failed: s.FailedTop()}
}

func TestVerifyOutput(t *testing.T) {
	lines := []string{"=== RUN   TestA\n", "--- PASS: TestA (0.00s)\n", "=== RUN   TestB\n", "--- SKIP: TestB (0.00s)\n", "PASS\n"}
	cs := newFake()
	for _, c := range []struct {
		name     string
		rec      *testlog.Record
		multi    bool
		verified bool
		lost     int64
		log      string
		counts   Counts
		exit     int
	}{
		{"match", ptr.To(recordOf(lines, 0, 0)), false, true, 0, "testship: output verified: 5 lines\n", Counts{Passed: 1, Skipped: 1}, 0},
		{"match, multi", ptr.To(recordOf(lines, 0, 0)), true, true, 0, "testship: pod p-2 (index 2): output verified: 5 lines\n", Counts{Passed: 1, Skipped: 1}, 0},
		{"lost tail", ptr.To(recordOf(lines, 3, 1)), true, false, 3,
			"testship: WARNING: pod p-2 (index 2): 3 of 8 lines lost", Counts{Passed: 1, Failed: 3, Skipped: 1, FailedTests: []string{"TestLost0", "TestLost1", "TestLost2"}}, 1},
		{"no record", nil, false, false, 0, "", Counts{Passed: 1, Skipped: 1}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, log bytes.Buffer
			f := fedFollower(t, 2, lines, newOutput(WaitOptions{Out: &out}, 3, true))
			s := indexState{Index: 2, Pod: "p-2", UID: "u-2", Seen: true, Started: true, Ended: true, Done: true, ExitCode: 0, Record: c.rec}
			if c.rec != nil {
				s.ExitCode = c.rec.Exit
			}
			p := podResult(context.Background(), cs, "ns1", s, f, c.multi, WaitOptions{Log: &log})
			if p.Verified != c.verified || p.LostLines != c.lost || p.Lines != 5 || p.ExitCode != c.exit {
				t.Errorf("verified %v lost %d lines %d exit %d, want %v %d 5 %d (%s)", p.Verified, p.LostLines, p.Lines, p.ExitCode, c.verified, c.lost, c.exit, p.Mismatch)
			}
			if c.log == "" && log.Len() > 0 || !strings.HasPrefix(log.String(), c.log) {
				t.Errorf("log %q, want %q", log.String(), c.log)
			}
			if fmt.Sprintf("%+v", p.Counts) != fmt.Sprintf("%+v", c.counts) {
				t.Errorf("counts %+v, want %+v", p.Counts, c.counts)
			}
			if c.lost > 0 && !strings.Contains(log.String(), "exit code 1, 1 passed, 3 failed, 1 skipped") {
				t.Errorf("the warning does not give the record's results: %q", log.String())
			}
		})
	}
}

func TestMultiResultLineAndMarkdown(t *testing.T) {
	rec := recordOf([]string{"--- FAIL: TestB (0.00s)\n"}, 0, 1)
	r := &Result{RunID: "r9", Namespace: "ns", ExitCode: 1, Duration: 2 * time.Second, Count: 3, Multi: true, Pods: []PodResult{
		{Index: 0, Pod: "p-0", Counts: Counts{Passed: 4}, Verified: true, Lines: 10, Record: &testlog.Record{Lines: 10}},
		{Index: 1, Pod: "p-1", ExitCode: 1, Counts: countsOfRecord(rec, Summary{}), Record: &rec, LostLines: 2},
		{Index: 2, Pod: "p-2", Counts: Counts{Passed: 2, Skipped: 1}, Lines: 7},
	}}
	tot := r.Totals()
	if tot.Passed != 6 || tot.Failed != 1 || tot.Skipped != 1 || fmt.Sprint(tot.FailedTests) != "[TestB [1]]" {
		t.Fatalf("totals %+v", tot)
	}
	line := r.Line()
	for _, want := range []string{"run r9 FAILED: 6 passed, 1 failed, 1 skipped", "(failed: TestB [1])", "exit code 1", "[0] ok 4/0/0", "[1] exit 1 0/1/0", "[2] ok 2/0/1"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	md := r.Markdown()
	for _, want := range []string{"| 1 | `p-1` | exit 1 | 0 | 1 | 0 | 2 of 1 lines lost |", "| 0 | `p-0` | ok | 4 | 0 | 0 | 10 lines, verified |", "- `TestB [1]`"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// a single-pod result says nothing per pod
	one := &Result{RunID: "r1", ExitCode: 0, Count: 1, Pods: []PodResult{{Pod: "p", Counts: Counts{Passed: 2}}}}
	if l := one.Line(); strings.Contains(l, "per pod") || !strings.Contains(l, "PASSED: 2 passed") {
		t.Errorf("single-pod line %q", l)
	}
}

// A three-pod Indexed run on the fake clientset: prefixed output, per-pod
// results, verification against each pod's record, one exit code.
func TestWaitMultiPodFakeCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newFake()
	job := BuildJob(testOptions(), "r3")
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Spec.Completions, job.Spec.Parallelism = ptr.To(int32(3)), ptr.To(int32(3))
	job, err := cs.BatchV1().Jobs("ns1").Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The fake clientset's log of every pod is "fake logs" (no newline).
	matching := recordOf([]string{"fake logs"}, 0, 0)
	lossy := testlog.Record{Exit: 1, Lines: 3, Bytes: 60, SHA256: "ab", Fail: 2, Failed: []string{"TestLost0", "TestLost1"}}
	var pods []*corev1.Pod
	for i := 0; i < 3; i++ {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d-x", job.Name, i), Namespace: "ns1", UID: types.UID(fmt.Sprint("uid-", i)), Labels: job.Spec.Template.Labels,
				Annotations: map[string]string{batchCompletionIndex: fmt.Sprint(i)}},
			Spec:   job.Spec.Template.Spec,
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		}
		if _, err := cs.CoreV1().Pods("ns1").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		for i, p := range pods {
			rec := matching
			if i == 1 {
				rec = lossy
			}
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(rec.Exit), Message: string(rec.Encode())}}
			cs.CoreV1().Pods("ns1").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var out, log bytes.Buffer
	var recorded []string
	res, err := Wait(ctx, cs, RunOf(job), WaitOptions{Out: &out, Log: &log, OnPodLine: func(i int, l []byte) { recorded = append(recorded, fmt.Sprintf("%d:%s", i, l)) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 1 || res.Reason != "" || !res.Multi || res.Count != 3 || len(res.Pods) != 3 {
		t.Fatalf("result %+v", res)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	sort.Strings(got)
	if fmt.Sprint(got) != "[[0] fake logs [1] fake logs [2] fake logs]" {
		t.Errorf("output %q", out.String())
	}
	sort.Strings(recorded)
	if fmt.Sprint(recorded) != "[0:fake logs 1:fake logs 2:fake logs]" {
		t.Errorf("OnPodLine saw %q", recorded)
	}
	for i, p := range res.Pods {
		if p.Index != i || p.Pod != pods[i].Name || p.Lines != 1 {
			t.Errorf("pod %d: %+v", i, p)
		}
		if want := i != 1; p.Verified != want {
			t.Errorf("pod %d verified %v, want %v", i, p.Verified, want)
		}
	}
	if res.Pods[1].LostLines != 2 || res.Pods[1].Counts.Failed != 2 || res.Pods[1].ExitCode != 1 {
		t.Errorf("lossy pod %+v", res.Pods[1])
	}
	for _, want := range []string{
		"testship: pod " + pods[0].Name + " (index 0): output verified: 1 lines",
		"testship: WARNING: pod " + pods[1].Name + " (index 1): 2 of 3 lines lost",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if l := res.Line(); !strings.Contains(l, "(failed: TestLost0 [1], TestLost1 [1])") || !strings.Contains(l, "[1] exit 1 0/2/0") {
		t.Errorf("summary line %q", l)
	}
}

func TestRecorderMultiPodReports(t *testing.T) {
	rec, err := NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	shard := map[int][]string{
		0: {"=== RUN   TestA\n", "--- PASS: TestA (0.10s)\n", "PASS\n"},
		1: {"=== RUN   TestB\n", "    b_test.go:3: boom\n", "--- FAIL: TestB (0.20s)\n", "=== RUN   TestA\n", "--- PASS: TestA (0.00s)\n", "FAIL\n"},
	}
	// interleaved, as a multi-pod run delivers them
	for i := 0; i < 6; i++ {
		for idx := 0; idx < 2; idx++ {
			if i < len(shard[idx]) {
				rec.PodLine(idx, []byte(shard[idx][i]))
			}
		}
	}
	res := &Result{ExitCode: 1, Duration: time.Second, Count: 2, Multi: true, Pods: []PodResult{{Index: 0}, {Index: 1, ExitCode: 1}}}
	dir := t.TempDir()
	if err := rec.WriteJUnit(filepath.Join(dir, "junit.xml"), "pkg", res); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	var suites junit.Testsuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatal(err)
	}
	if len(suites.Suites) != 2 || suites.Suites[0].Name != "pkg#0" || suites.Suites[1].Name != "pkg#1" || suites.Tests != 3 || suites.Failures != 1 {
		t.Fatalf("suites:\n%s", data)
	}
	if s := suites.Suites[1]; s.Tests != 2 || s.Failures != 1 || s.Testcases[0].Name != "TestB" || s.Testcases[0].Failure == nil || !strings.Contains(s.Testcases[0].Failure.Data, "boom") {
		t.Errorf("shard 1's suite: %+v", s)
	}
	if err := rec.WriteJSON(filepath.Join(dir, "events.json"), "pkg", res); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "events.json"))
	results := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var ev struct{ Action, Package, Test string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		if ev.Action == "pass" || ev.Action == "fail" {
			results[ev.Package+" "+ev.Test] = ev.Action
		}
	}
	want := map[string]string{"pkg#0 TestA": "pass", "pkg#0 ": "pass", "pkg#1 TestB": "fail", "pkg#1 TestA": "pass", "pkg#1 ": "fail"}
	if fmt.Sprint(results) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", results, want)
	}
}

func TestPodIndex(t *testing.T) {
	for _, c := range []struct {
		ann, label map[string]string
		index      int
		ok         bool
	}{
		{map[string]string{batchCompletionIndex: "3"}, nil, 3, true},
		{nil, map[string]string{batchCompletionIndex: "12"}, 12, true},
		{nil, nil, 0, false},
		{map[string]string{batchCompletionIndex: "3x"}, nil, 0, false},
		{map[string]string{batchCompletionIndex: "-1"}, nil, 0, false},
	} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: c.ann, Labels: c.label}}
		if i, ok := PodIndex(p); i != c.index || ok != c.ok {
			t.Errorf("%v %v: %d %v, want %d %v", c.ann, c.label, i, ok, c.index, c.ok)
		}
	}
}
