//go:build e2e

package runner_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/imageref"
	"github.com/testship/testship/pkg/runner"
	"github.com/testship/testship/pkg/testlog"
)

// The pods image: pkg/runner/testdata/pods compiled with `go test -c`,
// ENTRYPOINT /testship/run, testship's entrypoint beside it (testimage),
// pushed once per test process, pinned.
var (
	podsOnce sync.Once
	podsRef  string
)

func podsImage(t testing.TB) string {
	t.Helper()
	podsOnce.Do(func() {
		tag, _ := testimage.Test(t, e2e.Registry(t), "jobspec-pods", "./pkg/runner/testdata/pods")
		var err error
		if podsRef, err = imageref.Resolve(context.Background(), tag); err != nil {
			t.Errorf("resolve the pods image: %v", err)
		}
	})
	if podsRef == "" {
		t.Fatal("the pods image was not built (see the first test's log)")
	}
	return podsRef
}

// newPodsCluster is newCluster with a namespace of this branch's
// (jobspec-e2e-*), enforcing the restricted Pod Security Standard: every
// pod of a multi-pod run must pass it to start at all.
func newPodsCluster(t *testing.T) *cluster {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", e2e.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 50, 100
	var b [3]byte
	rand.Read(b[:])
	c := &cluster{ns: "jobspec-e2e-" + hex.EncodeToString(b[:])}
	if c.cs, err = kubernetes.NewForConfig(rc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.ns, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.cs.CoreV1().Namespaces().Delete(context.Background(), c.ns, metav1.DeleteOptions{}) })
	return c
}

// podsOptions is a multi-pod run of the pods image whose container runs
// the test binary itself (Options.Command), not testship's entrypoint:
// what the pods get from the Job is tested here, not what the entrypoint
// makes of it (that is TestPodsThroughEntrypoint's).
func (c *cluster) podsOptions(t *testing.T, n int, mode, pattern string, env map[string]string) runner.Options {
	return runner.Options{
		Namespace: c.ns,
		Image:     podsImage(t),
		Test:      "pods",
		Pattern:   pattern,
		Timeout:   5 * time.Minute,
		Env:       env,
		TTL:       time.Hour,
		NewRun:    true,
		Pods:      n,
		Mode:      mode,
		Command:   []string{testlog.TestBinaryPath},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
	}
}

// jobEnd waits until the run's Job has a Complete or Failed condition and
// returns it.
func jobEnd(t *testing.T, c *cluster, id string) (*batchv1.Job, batchv1.JobCondition) {
	t.Helper()
	var job *batchv1.Job
	var end batchv1.JobCondition
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := c.cs.BatchV1().Jobs(c.ns).Get(ctx, runner.JobName(id), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		job = j
		for _, cond := range j.Status.Conditions {
			if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
				end = cond
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("run %s did not end: %v; Job status %+v", id, err, job.Status)
	}
	return job, end
}

// runPods lists the run's pods by completion index.
func runPods(t *testing.T, c *cluster, id string, n int) map[int]*corev1.Pod {
	t.Helper()
	pods, err := c.cs.CoreV1().Pods(c.ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{runner.LabelRunID: id}).String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != n {
		t.Errorf("run %s has %d pods, want %d", id, len(pods.Items), n)
	}
	return runner.PodsByIndex(pods.Items, n)
}

func exitCode(p *corev1.Pod) (int32, bool) {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == runner.ContainerName && s.State.Terminated != nil {
			return s.State.Terminated.ExitCode, true
		}
	}
	return 0, false
}

// A 3-pod shard run: one Indexed Job as the API server keeps it, three
// pods with distinct indexes that each see the count, the mode, the plan
// and the Job's name; run:logs and run:status show it as one run.
func TestPodsShardRun(t *testing.T) {
	c := newPodsCluster(t)
	ctx := context.Background()
	o := c.podsOptions(t, 3, testlog.ModeShard, "^TestIndex$", nil)
	o.ShardPlan = [][]string{{"TestA"}, {"TestB"}, {"TestC"}}
	var log e2e.SyncBuffer
	run, err := runner.Launch(ctx, c.cs, o, &log)
	if err != nil {
		t.Fatal(err)
	}
	if run.Pods != 3 || run.Mode != testlog.ModeShard {
		t.Errorf("Run.Pods, Mode = %d, %q; want 3, shard", run.Pods, run.Mode)
	}
	if !strings.Contains(log.String(), ", 3 shards") {
		t.Errorf("launch message does not say 3 shards:\n%s", log.String())
	}
	job, end := jobEnd(t, c, run.ID)
	if end.Type != batchv1.JobComplete {
		t.Fatalf("run ended %s %s: %s", end.Type, end.Reason, end.Message)
	}
	if r := runner.RunOf(job); r.Pods != 3 || r.Mode != testlog.ModeShard || r.ID != run.ID {
		t.Errorf("RunOf(the Job) = %d pods, mode %q, id %s", r.Pods, r.Mode, r.ID)
	}
	s := job.Spec
	switch {
	case s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion:
		t.Errorf("completionMode = %v, want Indexed", s.CompletionMode)
	case *s.Completions != 3 || *s.Parallelism != 3:
		t.Errorf("completions %d parallelism %d, want 3 and 3", *s.Completions, *s.Parallelism)
	case s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 0:
		t.Errorf("backoffLimitPerIndex = %v, want 0", s.BackoffLimitPerIndex)
	case s.MaxFailedIndexes != nil:
		t.Errorf("maxFailedIndexes = %d without fail-fast", *s.MaxFailedIndexes)
	case s.PodReplacementPolicy == nil || *s.PodReplacementPolicy != batchv1.Failed:
		t.Errorf("podReplacementPolicy = %v, want Failed", s.PodReplacementPolicy)
	case s.BackoffLimit != nil && *s.BackoffLimit < 3:
		t.Errorf("backoffLimit = %d: a global limit would stop the other indexes", *s.BackoffLimit)
	}
	if tsc := s.Template.Spec.TopologySpreadConstraints; len(tsc) != 1 || tsc[0].TopologyKey != corev1.LabelHostname ||
		tsc[0].WhenUnsatisfiable != corev1.ScheduleAnyway || tsc[0].LabelSelector.MatchLabels[runner.LabelRunID] != run.ID {
		t.Errorf("topologySpreadConstraints = %+v", tsc)
	}
	if job.Status.Succeeded != 3 || job.Status.CompletedIndexes != "0-2" {
		t.Errorf("succeeded %d, completedIndexes %q; want 3, 0-2", job.Status.Succeeded, job.Status.CompletedIndexes)
	}
	pods := runPods(t, c, run.ID, 3)
	var logs bytes.Buffer
	if err := runner.Logs(ctx, c.cs, c.ns, run.ID, &logs); err != nil {
		t.Fatal(err)
	}
	plan, _ := json.Marshal(o.ShardPlan)
	for i := 0; i < 3; i++ {
		p := pods[i]
		if p == nil {
			t.Errorf("no pod of index %d", i)
			continue
		}
		if code, ok := exitCode(p); !ok || code != 0 {
			t.Errorf("pod %s (index %d) exit %d, terminated %t", p.Name, i, code, ok)
		}
		if p.Spec.ServiceAccountName != runner.IdentityName(run.ID) || len(p.Spec.Containers[0].Command) != 1 {
			t.Errorf("pod %s: serviceAccount %s command %v", p.Name, p.Spec.ServiceAccountName, p.Spec.Containers[0].Command)
		}
		want := fmt.Sprintf("[%d] pods: index=%d count=3 mode=shard job=%s sync=\n", i, i, runner.JobName(run.ID))
		if !strings.Contains(logs.String(), want) {
			t.Errorf("run:logs lacks %q", want)
		}
		if want := fmt.Sprintf("[%d] pods: plan=%s\n", i, plan); !strings.Contains(logs.String(), want) {
			t.Errorf("run:logs lacks %q", want)
		}
	}
	// each pod's output in turn, in index order, every line prefixed
	lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
	last := 0
	for _, l := range lines {
		var i int
		if _, err := fmt.Sscanf(l, "[%d] ", &i); err != nil || i < last {
			t.Errorf("run:logs line %q out of index order or unprefixed:\n%s", l, logs.String())
			break
		}
		last = i
	}
	info, err := runner.Status(ctx, c.cs, c.ns, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "Succeeded" || info.Counts != "3/3 succeeded" || info.ExitCode == nil || *info.ExitCode != 0 || len(info.Indexes) != 3 {
		t.Errorf("status = %+v", info)
	}
	var list bytes.Buffer
	runs, err := runner.List(ctx, c.cs, c.ns)
	if err != nil {
		t.Fatal(err)
	}
	runner.PrintList(&list, runs)
	if !regexp.MustCompile(run.ID + `\s+` + c.ns + `.*3 shards\s+Succeeded.*3/3 succeeded`).MatchString(list.String()) {
		t.Errorf("run:list:\n%s", list.String())
	}
	if err := runner.Cancel(ctx, c.cs, c.ns, run.ID, true); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c, run.ID)
}

// backoffLimitPerIndex 0: one copy failing at once does not stop the
// others, which run to their end and pass; the run fails as a whole, and
// run:status names the failed index. Hard spread still schedules all three
// (on one node a single topology domain has no skew).
func TestPodsFailingIndexDoesNotStopOthers(t *testing.T) {
	c := newPodsCluster(t)
	ctx := context.Background()
	o := c.podsOptions(t, 3, testlog.ModeCopy, "^TestIndex$", map[string]string{"PODS_FAIL_INDEX": "1", "PODS_SLEEP": "6s"})
	o.Spread = runner.SpreadHard
	run, err := runner.Launch(ctx, c.cs, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	job, end := jobEnd(t, c, run.ID)
	if end.Type != batchv1.JobFailed || end.Reason != batchv1.JobReasonFailedIndexes {
		t.Errorf("Job ended %s (%s: %s), want Failed with reason %s", end.Type, end.Reason, end.Message, batchv1.JobReasonFailedIndexes)
	}
	if job.Status.CompletedIndexes != "0,2" || job.Status.FailedIndexes == nil || *job.Status.FailedIndexes != "1" {
		t.Errorf("completedIndexes %q failedIndexes %v, want 0,2 and 1", job.Status.CompletedIndexes, job.Status.FailedIndexes)
	}
	if tsc := job.Spec.Template.Spec.TopologySpreadConstraints; len(tsc) != 1 || tsc[0].WhenUnsatisfiable != corev1.DoNotSchedule {
		t.Errorf("hard spread: %+v", tsc)
	}
	pods := runPods(t, c, run.ID, 3)
	for i, want := range []int32{0, 1, 0} {
		if p := pods[i]; p == nil {
			t.Errorf("no pod of index %d", i)
		} else if code, ok := exitCode(p); !ok || code != want {
			t.Errorf("index %d: exit %d (terminated %t), want %d", i, code, ok, want)
		}
	}
	var logs bytes.Buffer
	if err := runner.Logs(ctx, c.cs, c.ns, run.ID, &logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[0] pods: index 0 done\n", "[2] pods: index 2 done\n", "[1] pods: index=1 count=3 mode=copy"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("run:logs lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "[1] pods: index 1 done") {
		t.Errorf("index 1 did not fail:\n%s", logs.String())
	}
	info, err := runner.Status(ctx, c.cs, c.ns, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "Failed" || info.Counts != "2/3 succeeded, 1 failed (index 1)" || info.ExitCode == nil || *info.ExitCode != 1 {
		t.Errorf("status = %+v (counts %q)", info, info.Counts)
	}
}

// FailFast (maxFailedIndexes 0): the first failed index ends the Job and
// its other pods, which would otherwise sleep two minutes and pass.
func TestPodsFailFast(t *testing.T) {
	c := newPodsCluster(t)
	ctx := context.Background()
	o := c.podsOptions(t, 3, testlog.ModeCopy, "^TestIndex$", map[string]string{"PODS_FAIL_INDEX": "1", "PODS_SLEEP": "120s"})
	o.FailFast = true
	run, err := runner.Launch(ctx, c.cs, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	job, end := jobEnd(t, c, run.ID)
	if end.Type != batchv1.JobFailed || end.Reason != batchv1.JobReasonMaxFailedIndexesExceeded {
		t.Errorf("Job ended %s (%s: %s), want Failed with reason %s", end.Type, end.Reason, end.Message, batchv1.JobReasonMaxFailedIndexesExceeded)
	}
	if job.Spec.MaxFailedIndexes == nil || *job.Spec.MaxFailedIndexes != 0 {
		t.Errorf("maxFailedIndexes = %v, want 0", job.Spec.MaxFailedIndexes)
	}
	if job.Status.Succeeded != 0 || job.Status.CompletedIndexes != "" {
		t.Errorf("with fail-fast an index still completed: succeeded %d, completedIndexes %q", job.Status.Succeeded, job.Status.CompletedIndexes)
	}
	// the others are being (or have been) stopped, never passed
	pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + run.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if code, ok := exitCode(&p); ok && code == 0 {
			t.Errorf("pod %s passed despite fail-fast", p.Name)
		}
	}
	info, err := runner.Status(ctx, c.cs, c.ns, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "Failed" || !strings.Contains(info.Counts, "0/3 succeeded") {
		t.Errorf("status = %+v", info)
	}
	if err := runner.Cancel(ctx, c.cs, c.ns, run.ID, true); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c, run.ID)
}

// A synchronised start gives the run's Role read access to its own Job
// (and no other object); the pods are told to wait. Cancel removes the
// running multi-pod run, all its pods included.
func TestPodsSyncStartIdentityAndCancel(t *testing.T) {
	c := newPodsCluster(t)
	ctx := context.Background()
	o := c.podsOptions(t, 2, testlog.ModeCopy, "^TestIndex$", map[string]string{"PODS_SLEEP": "120s"})
	o.SyncStart = true
	run, err := runner.Launch(ctx, c.cs, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	role, err := c.cs.RbacV1().Roles(c.ns).Get(ctx, runner.IdentityName(run.ID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var own []rbacv1.PolicyRule
	for _, r := range role.Rules {
		if len(r.ResourceNames) > 0 {
			own = append(own, r)
		}
	}
	if len(own) != 1 || own[0].APIGroups[0] != "batch" || own[0].Resources[0] != "jobs" || own[0].ResourceNames[0] != runner.JobName(run.ID) ||
		strings.Join(own[0].Verbs, ",") != "get,list,watch" {
		t.Errorf("rules naming objects: %+v, want get,list,watch on its own Job", own)
	}
	// both pods run (and wait out their sleep)
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := c.cs.BatchV1().Jobs(c.ns).Get(ctx, runner.JobName(run.ID), metav1.GetOptions{})
		return err == nil && j.Status.Ready != nil && *j.Status.Ready == 2, err
	})
	if err != nil {
		t.Fatalf("the 2 pods never were ready: %v", err)
	}
	info, err := runner.Status(ctx, c.cs, c.ns, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "Running" || info.Counts != "0/2 succeeded, 2 running" {
		t.Errorf("status of a running run = %+v", info)
	}
	for i, p := range runPods(t, c, run.ID, 2) {
		env := map[string]corev1.EnvVar{}
		for _, e := range p.Spec.Containers[0].Env {
			env[e.Name] = e
		}
		if env[testlog.EnvSyncStart].Value != "true" || env[testlog.EnvCount].Value != "2" || env[testlog.EnvIndex].ValueFrom == nil {
			t.Errorf("index %d env: %+v", i, p.Spec.Containers[0].Env)
		}
	}
	if err := runner.Cancel(ctx, c.cs, c.ns, run.ID, true); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c, run.ID)
}

// A pod deleted mid-run fails its index, once: no replacement pod is made
// (backoffLimitPerIndex 0, podReplacementPolicy Failed), and the other
// pods run to their end.
func TestPodsDeletedPodFailsItsIndex(t *testing.T) {
	c := newPodsCluster(t)
	ctx := context.Background()
	o := c.podsOptions(t, 3, testlog.ModeCopy, "^TestIndex$", map[string]string{"PODS_SLEEP": "15s"})
	run, err := runner.Launch(ctx, c.cs, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	err = wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + run.ID})
		if err != nil {
			return false, err
		}
		for _, p := range runner.PodsByIndex(pods.Items, 3) {
			if i, _ := runner.PodIndex(p); i == 1 && p.Status.Phase == corev1.PodRunning {
				victim = p.Name
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("index 1 never ran: %v", err)
	}
	if err := c.cs.CoreV1().Pods(c.ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	job, end := jobEnd(t, c, run.ID)
	if end.Type != batchv1.JobFailed || end.Reason != batchv1.JobReasonFailedIndexes {
		t.Errorf("Job ended %s (%s: %s), want Failed with reason %s", end.Type, end.Reason, end.Message, batchv1.JobReasonFailedIndexes)
	}
	if job.Status.CompletedIndexes != "0,2" || job.Status.FailedIndexes == nil || *job.Status.FailedIndexes != "1" {
		t.Errorf("completedIndexes %q failedIndexes %v, want 0,2 and 1", job.Status.CompletedIndexes, job.Status.FailedIndexes)
	}
	pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + run.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if i, _ := runner.PodIndex(&p); i == 1 && p.Name != victim {
			t.Errorf("index 1 got a replacement pod %s", p.Name)
		}
	}
	info, err := runner.Status(ctx, c.cs, c.ns, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "Failed" || !strings.HasPrefix(info.Counts, "2/3 succeeded, 1 failed (index 1)") {
		t.Errorf("status = %+v (counts %q)", info, info.Counts)
	}
}
