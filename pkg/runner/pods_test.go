package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/testship/testship/pkg/testlog"
)

func shardOptions() Options {
	o := testOptions()
	o.Pods, o.Mode = 3, testlog.ModeShard
	o.ShardPlan = [][]string{{"TestA", "TestD"}, {"TestB"}, {"TestC"}}
	return o
}

func envOf(job *batchv1.Job) map[string]corev1.EnvVar {
	env := map[string]corev1.EnvVar{}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	return env
}

// A single-pod run stays a NonIndexed Job of one completion and no retry;
// its container runs testship's entrypoint (or the given command) and is
// told it is pod 0 of 1.
func TestBuildJobSinglePod(t *testing.T) {
	for _, pods := range []int{0, 1} {
		o := testOptions()
		o.Pods, o.Mode, o.ShardPlan = pods, testlog.ModeShard, [][]string{{"TestA"}} // mode and plan mean nothing for one pod
		job := BuildJob(o, "r1")
		s := job.Spec
		if s.CompletionMode != nil || *s.Completions != 1 || *s.Parallelism != 1 || *s.BackoffLimit != 0 ||
			s.BackoffLimitPerIndex != nil || s.MaxFailedIndexes != nil || s.PodReplacementPolicy != nil {
			t.Errorf("pods=%d: spec %+v, want a plain Job of one completion", pods, s)
		}
		if tsc := s.Template.Spec.TopologySpreadConstraints; tsc != nil {
			t.Errorf("pods=%d: spread constraints on a single pod: %+v", pods, tsc)
		}
		c := s.Template.Spec.Containers[0]
		if !reflect.DeepEqual(c.Command, []string{testlog.EntrypointPath}) || c.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
			t.Errorf("pods=%d: command %v, terminationMessagePolicy %s; want the entrypoint and File", pods, c.Command, c.TerminationMessagePolicy)
		}
		if got := strings.Join(c.Args, " "); got != "-test.v -test.run ^TestLink$ -test.timeout 10m0s" {
			t.Errorf("args = %q", got)
		}
		env := envOf(job)
		for name, want := range map[string]string{testlog.EnvIndex: "0", testlog.EnvCount: "1", testlog.EnvMode: testlog.ModeSingle, testlog.EnvJobName: JobName("r1")} {
			if e := env[name]; e.Value != want || e.ValueFrom != nil {
				t.Errorf("pods=%d: %s = %+v, want %q", pods, name, e, want)
			}
		}
		for _, name := range []string{testlog.EnvShardPlan, testlog.EnvSyncStart} {
			if e, set := env[name]; set {
				t.Errorf("pods=%d: %s set on a single pod: %+v", pods, name, e)
			}
		}
		if job.Annotations[AnnotationPodMode] != testlog.ModeSingle {
			t.Errorf("pod-mode annotation %q", job.Annotations[AnnotationPodMode])
		}
	}
	o := testOptions()
	o.Command = []string{testlog.TestBinaryPath}
	if c := BuildJob(o, "r1").Spec.Template.Spec.Containers[0]; !reflect.DeepEqual(c.Command, o.Command) {
		t.Errorf("Command override: %v", c.Command)
	}
}

func TestBuildJobIndexed(t *testing.T) {
	cases := []struct {
		name   string
		mut    func(o *Options)
		spread corev1.UnsatisfiableConstraintAction // "" for none
	}{
		{"shards, soft by default", func(o *Options) {}, corev1.ScheduleAnyway},
		{"soft", func(o *Options) { o.Spread = SpreadSoft }, corev1.ScheduleAnyway},
		{"hard", func(o *Options) { o.Spread = SpreadHard }, corev1.DoNotSchedule},
		{"none", func(o *Options) { o.Spread = SpreadNone }, ""},
		{"fail fast", func(o *Options) { o.FailFast = true }, corev1.ScheduleAnyway},
		{"sync start", func(o *Options) { o.SyncStart = true }, corev1.ScheduleAnyway},
		{"copies", func(o *Options) { o.Mode, o.ShardPlan = testlog.ModeCopy, nil }, corev1.ScheduleAnyway},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := shardOptions()
			c.mut(&o)
			job := BuildJob(o, "r1")
			s := job.Spec
			if ptr.Deref(s.CompletionMode, "") != batchv1.IndexedCompletion || *s.Completions != 3 || *s.Parallelism != 3 {
				t.Errorf("completionMode %v completions %d parallelism %d, want Indexed 3 3", s.CompletionMode, *s.Completions, *s.Parallelism)
			}
			if s.BackoffLimit != nil || ptr.Deref(s.BackoffLimitPerIndex, -1) != 0 {
				t.Errorf("backoffLimit %v backoffLimitPerIndex %v: want no global limit and 0 per index", s.BackoffLimit, s.BackoffLimitPerIndex)
			}
			if o.FailFast != (s.MaxFailedIndexes != nil) || (s.MaxFailedIndexes != nil && *s.MaxFailedIndexes != 0) {
				t.Errorf("fail fast %t: maxFailedIndexes %v", o.FailFast, s.MaxFailedIndexes)
			}
			if ptr.Deref(s.PodReplacementPolicy, "") != batchv1.Failed {
				t.Errorf("podReplacementPolicy %v", s.PodReplacementPolicy)
			}
			if !*s.Suspend || *s.ActiveDeadlineSeconds != int64((10*time.Minute+DeadlineMargin).Seconds()) {
				t.Errorf("suspend %v deadline %v", *s.Suspend, *s.ActiveDeadlineSeconds)
			}
			tsc := s.Template.Spec.TopologySpreadConstraints
			if c.spread == "" {
				if len(tsc) != 0 {
					t.Errorf("spread none: %+v", tsc)
				}
			} else {
				if len(tsc) != 1 || tsc[0].WhenUnsatisfiable != c.spread || tsc[0].TopologyKey != "kubernetes.io/hostname" || tsc[0].MaxSkew != 1 {
					t.Fatalf("spread constraints %+v, want one by hostname, %s", tsc, c.spread)
				}
				// the selector picks this run's pods, and only them
				for k, v := range tsc[0].LabelSelector.MatchLabels {
					if s.Template.Labels[k] != v {
						t.Errorf("spread selector %s=%s does not match the run's pods (%v)", k, v, s.Template.Labels)
					}
				}
				if tsc[0].LabelSelector.MatchLabels[LabelRunID] != "r1" {
					t.Errorf("spread selector %v not by run", tsc[0].LabelSelector.MatchLabels)
				}
			}
			ctr := s.Template.Spec.Containers[0]
			if !reflect.DeepEqual(ctr.Command, []string{testlog.EntrypointPath}) || ctr.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
				t.Errorf("command %v terminationMessagePolicy %s", ctr.Command, ctr.TerminationMessagePolicy)
			}
			env := envOf(job)
			idx := env[testlog.EnvIndex]
			if idx.Value != "" || idx.ValueFrom == nil || idx.ValueFrom.FieldRef == nil ||
				idx.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
				t.Errorf("%s = %+v, want the completion index through the downward API", testlog.EnvIndex, idx)
			}
			if env[testlog.EnvCount].Value != "3" || env[testlog.EnvMode].Value != o.Mode || env[testlog.EnvJobName].Value != JobName("r1") {
				t.Errorf("count %q mode %q job %q", env[testlog.EnvCount].Value, env[testlog.EnvMode].Value, env[testlog.EnvJobName].Value)
			}
			if plan, set := env[testlog.EnvShardPlan]; o.Mode == testlog.ModeShard {
				var got [][]string
				if err := json.Unmarshal([]byte(plan.Value), &got); err != nil || !reflect.DeepEqual(got, o.ShardPlan) {
					t.Errorf("%s = %q (%v), want %v", testlog.EnvShardPlan, plan.Value, err, o.ShardPlan)
				}
			} else if set {
				t.Errorf("copies get a shard plan: %+v", plan)
			}
			if sync, set := env[testlog.EnvSyncStart]; o.SyncStart != set || (set && sync.Value != "true") {
				t.Errorf("sync start %t: %s = %+v", o.SyncStart, testlog.EnvSyncStart, sync)
			}
			if job.Annotations[AnnotationPodMode] != o.Mode {
				t.Errorf("pod-mode annotation %q, want %q", job.Annotations[AnnotationPodMode], o.Mode)
			}
			if r := RunOf(job); r.Pods != 3 || r.Mode != o.Mode || r.ID != "r1" {
				t.Errorf("RunOf = %+v", r)
			}
			// every name once: the pod variables are not the caller's
			counts := map[string]int{}
			for _, e := range ctr.Env {
				counts[e.Name]++
			}
			for name, n := range counts {
				if n > 1 {
					t.Errorf("%s defined %d times", name, n)
				}
			}
		})
	}
	// a forwarded TESTSHIP_INDEX cannot override the index
	o := shardOptions()
	o.Env = map[string]string{testlog.EnvIndex: "7", testlog.EnvCount: "9"}
	if env := envOf(BuildJob(o, "r1")); env[testlog.EnvIndex].Value != "" || env[testlog.EnvCount].Value != "3" {
		t.Errorf("a forwarded variable overrides the pod's place: %+v %+v", env[testlog.EnvIndex], env[testlog.EnvCount])
	}
	if err := CheckReserved(o); err == nil {
		t.Error("CheckReserved lets TEST_TESTSHIP_INDEX through")
	}
}

func TestRunOfSinglePodJob(t *testing.T) {
	r := RunOf(BuildJob(testOptions(), "r1"))
	if r.Pods != 1 || r.Mode != testlog.ModeSingle || r.ID != "r1" || r.Namespace != "ns1" {
		t.Errorf("RunOf = %+v", r)
	}
	// a Job of an older testship (no annotation) is a single-pod run
	job := BuildJob(testOptions(), "r1")
	delete(job.Annotations, AnnotationPodMode)
	if r := RunOf(job); r.Pods != 1 || r.Mode != testlog.ModeSingle {
		t.Errorf("RunOf(old Job) = %+v", r)
	}
}

// Only a synchronised start lets the run read a Job, and only its own.
func TestBuildRBACSyncStart(t *testing.T) {
	o := shardOptions()
	_, plain, _ := BuildRBAC(o, "r1")
	o.SyncStart = true
	_, synced, _ := BuildRBAC(o, "r1")
	named := func(rules []rbacv1.PolicyRule) (out []string) {
		for _, r := range rules {
			if len(r.ResourceNames) > 0 {
				out = append(out, fmt.Sprintf("%s %s/%s %s", strings.Join(r.Verbs, ","), strings.Join(r.APIGroups, ","), strings.Join(r.Resources, ","), strings.Join(r.ResourceNames, ",")))
			}
		}
		return out
	}
	if got := named(plain.Rules); len(got) != 0 {
		t.Errorf("rules naming objects without a synchronised start: %v", got)
	}
	if got, want := named(synced.Rules), []string{"get,list,watch batch/jobs " + JobName("r1")}; !reflect.DeepEqual(got, want) {
		t.Errorf("rules naming objects: %v, want %v", got, want)
	}
	if len(synced.Rules) != len(plain.Rules)+1 {
		t.Errorf("%d rules with a synchronised start, want %d", len(synced.Rules), len(plain.Rules)+1)
	}
	for _, r := range synced.Rules {
		for _, v := range append(append(append([]string{}, r.Verbs...), r.Resources...), r.ResourceNames...) {
			if strings.Contains(v, "*") {
				t.Errorf("wildcard in %+v", r)
			}
		}
	}
}

func TestRunKeyPods(t *testing.T) {
	base := testOptions()
	key := RunKey(base)
	for name, mut := range map[string]func(o *Options){
		"pods 1":           func(o *Options) { o.Pods = 1 },
		"mode of one pod":  func(o *Options) { o.Pods, o.Mode = 1, testlog.ModeCopy },
		"spread":           func(o *Options) { o.Spread = SpreadHard },
		"plan of one pod":  func(o *Options) { o.ShardPlan = [][]string{{"TestA"}} },
		"environment only": func(o *Options) { o.Environment = "{}" },
	} {
		o := base
		mut(&o)
		if RunKey(o) != key {
			t.Errorf("%s changes the run key of a single-pod run", name)
		}
	}
	shards := shardOptions()
	skey := RunKey(shards)
	if skey == key {
		t.Error("a 3-shard run has the key of the single-pod run")
	}
	for name, mut := range map[string]func(o *Options){
		"pods":      func(o *Options) { o.Pods = 4; o.ShardPlan = append(o.ShardPlan, []string{"TestE"}) },
		"mode":      func(o *Options) { o.Mode, o.ShardPlan = testlog.ModeCopy, nil },
		"plan":      func(o *Options) { o.ShardPlan = [][]string{{"TestA"}, {"TestB", "TestD"}, {"TestC"}} },
		"sync":      func(o *Options) { o.SyncStart = true },
		"fail fast": func(o *Options) { o.FailFast = true },
		"command":   func(o *Options) { o.Command = []string{testlog.TestBinaryPath} },
	} {
		o := shardOptions()
		mut(&o)
		if RunKey(o) == skey {
			t.Errorf("a different %s has the same run key", name)
		}
	}
	o := shardOptions()
	o.Spread = SpreadNone
	if RunKey(o) != skey {
		t.Error("the spread changes the run key")
	}
	single := testOptions()
	single.SyncStart = true
	if RunKey(single) == key {
		t.Error("a synchronised start does not count in a single pod's key")
	}
}

func TestCheckPods(t *testing.T) {
	for _, c := range []struct {
		name string
		mut  func(o *Options)
		err  string // "" when fine
	}{
		{"shards", func(o *Options) {}, ""},
		{"copies", func(o *Options) { o.Mode, o.ShardPlan = testlog.ModeCopy, nil }, ""},
		{"single pod, any mode", func(o *Options) { o.Pods, o.Mode = 1, "whatever" }, ""},
		{"negative", func(o *Options) { o.Pods = -1 }, "-1 pods: want 1 to 1000"},
		{"too many", func(o *Options) { o.Pods = MaxPods + 1 }, "1001 pods"},
		{"no mode", func(o *Options) { o.Mode = "" }, `pod mode "" for a run of 3 pods: want shard`},
		{"plan too short", func(o *Options) { o.ShardPlan = o.ShardPlan[:2] }, "a shard plan of 2 shards for 3 pods"},
		{"empty shard", func(o *Options) { o.ShardPlan[1] = nil }, "shard 1 of 3 has no tests: run fewer shards"},
		{"test twice", func(o *Options) { o.ShardPlan[2] = []string{"TestA"} }, "test TestA is in shards 0 and 2"},
		{"copies with a plan", func(o *Options) { o.Mode = testlog.ModeCopy }, "copies run the same tests"},
		{"spread", func(o *Options) { o.Spread = "strict" }, `spread "strict": want soft (the default), hard or none`},
	} {
		o := shardOptions()
		c.mut(&o)
		err := CheckPods(o)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
}

// Launch refuses bad multi-pod options before it creates anything, and
// returns a run that knows its pods.
func TestLaunchPods(t *testing.T) {
	ctx := context.Background()
	cs := newFake()
	o := shardOptions()
	o.ShardPlan = o.ShardPlan[:1]
	if _, err := Launch(ctx, cs, o, io.Discard); err == nil || !strings.Contains(err.Error(), "shard plan") {
		t.Errorf("launch with a bad plan: %v", err)
	}
	if n := len(cs.Actions()); n != 0 {
		t.Errorf("a refused launch made %d API calls", n)
	}
	o = shardOptions()
	o.SyncStart = true
	var out bytes.Buffer
	run, err := Launch(ctx, cs, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if run.Pods != 3 || run.Mode != testlog.ModeShard {
		t.Errorf("run = %+v", run)
	}
	if !strings.Contains(out.String(), ", 3 shards starting together\n") {
		t.Errorf("launch message:\n%s", out.String())
	}
	again, err := Launch(ctx, cs, o, io.Discard)
	if err != nil || !again.Attached || again.ID != run.ID || again.Pods != 3 || again.Mode != testlog.ModeShard {
		t.Errorf("identical launch: %+v %v, want attached to %s with its pods", again, err, run.ID)
	}
}

// indexPod is pod i of a multi-pod run, its test container in state st.
func indexPod(i int, st corev1.ContainerState) corev1.Pod {
	p := pod(func(p *corev1.Pod) {
		p.Name = fmt.Sprintf("testship-r1-%d-x", i)
		p.Namespace = "ns1"
		p.Labels = map[string]string{LabelRunID: "r1", LabelManagedBy: ManagedBy, LabelComponent: Component, batchv1.JobCompletionIndexAnnotation: strconv.Itoa(i)}
		p.Status.ContainerStatuses[0].State = st
	})
	return *p
}

var (
	ctrRunning   = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	ctrPassed    = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	ctrFailed    = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	ctrWaiting   = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	ctrPullError = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}
)

func TestDescribeIndexes(t *testing.T) {
	o := shardOptions()
	o.Pods = 4
	o.ShardPlan = append(o.ShardPlan, []string{"TestE"})
	jobWith := func(mut func(j *batchv1.Job)) *batchv1.Job {
		j := BuildJob(o, "r1")
		if mut != nil {
			mut(j)
		}
		return j
	}
	failedCond := func(reason string) func(j *batchv1.Job) {
		return func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: "the Job failed"}}
		}
	}
	for _, c := range []struct {
		name   string
		job    *batchv1.Job
		pods   []corev1.Pod
		state  string
		counts string
		exit   *int
		reason string
	}{
		{"not started", jobWith(nil), nil, "Pending", "0/4 succeeded, 4 pending", nil, ""},
		{"starting", jobWith(nil), []corev1.Pod{indexPod(0, ctrRunning), indexPod(1, ctrWaiting)}, "Running", "0/4 succeeded, 1 running, 3 pending", nil, ""},
		{"one failed, others running", jobWith(nil),
			[]corev1.Pod{indexPod(0, ctrPassed), indexPod(1, ctrRunning), indexPod(2, ctrFailed), indexPod(3, ctrRunning)},
			"Running", "1/4 succeeded, 1 failed (index 2), 2 running", ptr.To(1), ""},
		{"all done, one failed", jobWith(failedCond(batchv1.JobReasonFailedIndexes)),
			[]corev1.Pod{indexPod(3, ctrPassed), indexPod(0, ctrPassed), indexPod(2, ctrFailed), indexPod(1, ctrPassed)},
			"Failed", "3/4 succeeded, 1 failed (index 2)", ptr.To(1), batchv1.JobReasonFailedIndexes},
		{"all passed", jobWith(nil),
			[]corev1.Pod{indexPod(0, ctrPassed), indexPod(1, ctrPassed), indexPod(2, ctrPassed), indexPod(3, ctrPassed)},
			"Succeeded", "4/4 succeeded", ptr.To(0), ""},
		{"pods gone, the Job knows", jobWith(func(j *batchv1.Job) {
			j.Status.CompletedIndexes, j.Status.FailedIndexes = "0,2-3", ptr.To("1")
			failedCond(batchv1.JobReasonFailedIndexes)(j)
		}), nil, "Failed", "3/4 succeeded, 1 failed (index 1)", nil, batchv1.JobReasonFailedIndexes},
		{"a fault on one index", jobWith(nil),
			[]corev1.Pod{indexPod(0, ctrRunning), indexPod(1, ctrPullError), indexPod(2, ctrRunning), indexPod(3, ctrRunning)},
			"Running", "0/4 succeeded, 1 failed (index 1), 3 running", nil, ReasonImagePull},
		{"fail fast", jobWith(failedCond(batchv1.JobReasonMaxFailedIndexesExceeded)),
			[]corev1.Pod{indexPod(0, ctrRunning), indexPod(3, ctrFailed), indexPod(1, ctrFailed)},
			"Failed", "0/4 succeeded, 2 failed (indexes 1, 3), 2 stopped", ptr.To(1), batchv1.JobReasonMaxFailedIndexesExceeded},
		{"deadline, none failed", jobWith(failedCond(batchv1.JobReasonDeadlineExceeded)),
			[]corev1.Pod{indexPod(0, ctrPassed), indexPod(1, ctrRunning)},
			"Failed", "1/4 succeeded, 3 stopped", nil, batchv1.JobReasonDeadlineExceeded},
	} {
		info := describe(c.job, c.pods)
		exit := func(p *int) string {
			if p == nil {
				return "none"
			}
			return strconv.Itoa(*p)
		}
		if info.State != c.state || info.Counts != c.counts || exit(info.ExitCode) != exit(c.exit) || info.Reason != c.reason {
			t.Errorf("%s: state %s, counts %q, exit %s, reason %q; want %s, %q, %s, %q", c.name, info.State, info.Counts, exit(info.ExitCode), info.Reason, c.state, c.counts, exit(c.exit), c.reason)
		}
		if info.Pods != 4 || info.Mode != testlog.ModeShard || len(info.Indexes) != 4 || info.Pod != "" {
			t.Errorf("%s: pods %d mode %s indexes %d pod %q", c.name, info.Pods, info.Mode, len(info.Indexes), info.Pod)
		}
		for i, ii := range info.Indexes {
			if ii.Index != i {
				t.Errorf("%s: index %d described as %d", c.name, i, ii.Index)
			}
		}
	}
	info := describe(jobWith(nil), []corev1.Pod{indexPod(0, ctrRunning), indexPod(1, ctrPullError), indexPod(2, ctrRunning), indexPod(3, ctrRunning)})
	if !strings.HasPrefix(info.Message, "index 1: image ") {
		t.Errorf("fault message %q does not name the index", info.Message)
	}
	var buf bytes.Buffer
	PrintStatus(&buf, &info)
	for _, want := range []string{"pods:      4 shards: 0/4 succeeded, 1 failed (index 1), 3 running\n", "  [1] testship-r1-1-x Failed ImagePull"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	PrintList(&buf, []Info{info, describe(BuildJob(testOptions(), "r2"), nil)})
	for _, want := range []string{"PODS", "4 shards", "0/4 succeeded, 1 failed (index 1), 3 running (ImagePull)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("list lacks %q:\n%s", want, buf.String())
		}
	}
}

// A replaced pod (same index, newer) stands for its index; pods with a
// bad or out-of-range index are left out.
func TestPodsByIndex(t *testing.T) {
	old, cur := indexPod(1, ctrFailed), indexPod(1, ctrRunning)
	old.Name, cur.Name = "old", "cur"
	old.CreationTimestamp, cur.CreationTimestamp = metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0))
	bad, far := indexPod(0, ctrRunning), indexPod(5, ctrRunning)
	bad.Labels[batchv1.JobCompletionIndexAnnotation] = "x"
	got := PodsByIndex([]corev1.Pod{cur, old, bad, far}, 3)
	if len(got) != 1 || got[1].Name != "cur" {
		t.Errorf("PodsByIndex = %v", got)
	}
	single := indexPod(0, ctrRunning)
	delete(single.Labels, batchv1.JobCompletionIndexAnnotation)
	if got := PodsByIndex([]corev1.Pod{single}, 1); got[0] == nil {
		t.Error("the pod of a single-pod run is not index 0")
	}
	if got, want := indexSet("0,2-4, 7"), map[int]bool{0: true, 2: true, 3: true, 4: true, 7: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("indexSet = %v", got)
	}
	if got := indexSet(""); len(got) != 0 {
		t.Errorf("indexSet(\"\") = %v", got)
	}
}

func TestIndexPrefixWidths(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want string
	}{{0, 1, "[0] "}, {2, 3, "[2] "}, {9, 10, "[9] "}, {3, 11, "[ 3] "}, {10, 11, "[10] "}, {7, 101, "[  7] "}} {
		if got := IndexPrefix(c.i, c.n); got != c.want {
			t.Errorf("IndexPrefix(%d, %d) = %q, want %q", c.i, c.n, got, c.want)
		}
	}
}

// run:logs of a multi-pod run: each pod's output in index order, every
// line prefixed; a missing pod is said.
func TestLogsMultiPod(t *testing.T) {
	ctx := context.Background()
	o := shardOptions()
	job := BuildJob(o, "r1")
	p2, p0 := indexPod(2, ctrPassed), indexPod(0, ctrPassed)
	cs := newFake(job, &p2, &p0)
	var out bytes.Buffer
	if err := Logs(ctx, cs, "ns1", "r1", &out); err != nil {
		t.Fatal(err)
	}
	// the fake clientset serves "fake logs" for every pod
	if got, want := out.String(), "[0] fake logs\n[1] (no pod: not started yet, or gone)\n[2] fake logs\n"; got != want {
		t.Errorf("logs:\n%s\nwant:\n%s", got, want)
	}
	single := BuildJob(testOptions(), "r2")
	sp := indexPod(0, ctrPassed)
	sp.Name, sp.Labels[LabelRunID] = "single", "r2"
	delete(sp.Labels, batchv1.JobCompletionIndexAnnotation)
	out.Reset()
	if err := Logs(ctx, newFake(single, &sp), "ns1", "r2", &out); err != nil || out.String() != "fake logs\n" {
		t.Errorf("single-pod logs %q, %v; want no prefix", out.String(), err)
	}
}

// A multi-pod run is busy (an identical launch attaches) until every one
// of its pods' tests has ended, not just the first.
func TestRunBusyMultiPod(t *testing.T) {
	ctx := context.Background()
	job := BuildJob(shardOptions(), "r1")
	job.Spec.Suspend = ptr.To(false)
	for _, c := range []struct {
		name string
		pods []corev1.Pod
		busy bool
	}{
		{"no pods yet", nil, true},
		{"one of three ended, others not created", []corev1.Pod{indexPod(0, ctrPassed)}, true},
		{"one of three still running", []corev1.Pod{indexPod(0, ctrPassed), indexPod(1, ctrFailed), indexPod(2, ctrRunning)}, true},
		{"all ended", []corev1.Pod{indexPod(0, ctrPassed), indexPod(1, ctrFailed), indexPod(2, ctrPassed)}, false},
	} {
		objs := []runtime.Object{job.DeepCopy()}
		for i := range c.pods {
			objs = append(objs, &c.pods[i])
		}
		busy, err := runBusy(ctx, newFake(objs...), "ns1", "r1")
		if err != nil || busy != c.busy {
			t.Errorf("%s: busy %t (%v), want %t", c.name, busy, err, c.busy)
		}
	}
}
