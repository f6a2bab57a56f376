//go:build e2e

package runner_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/jstemmer/go-junit-report/v2/junit"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/runner"
)

func (c *cluster) options(t testing.TB, pattern string, env map[string]string) runner.Options {
	return runner.Options{
		Namespace: c.ns,
		Image:     probeImage(t),
		Test:      "probe",
		Pattern:   pattern,
		Timeout:   5 * time.Minute,
		Env:       env,
		TTL:       time.Hour,
		NewRun:    true,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
	}
}

type outcome struct {
	res      *runner.Result
	err      error
	out, log string
	run      *runner.Run
}

func (o outcome) code() int {
	var ee *runner.ExitError
	if errors.As(o.err, &ee) {
		return ee.ExitStatus()
	}
	if o.err != nil {
		return -1
	}
	return 0
}

// launchAndFollow runs the probe remotely and follows it like run:remote.
func (c *cluster) launchAndFollow(t testing.TB, o runner.Options, fo runner.FollowOptions) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, log e2e.SyncBuffer
	run, err := runner.Launch(ctx, c.cs, o, &log)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	fo.Out, fo.Log = &out, &log
	res, err := runner.Follow(ctx, c.cs, run, fo)
	return outcome{res: res, err: err, out: out.String(), log: log.String(), run: run}
}

func TestRemoteExitCodes(t *testing.T) {
	c := newCluster(t, 0)
	for _, tc := range []struct {
		name, pattern string
		env           map[string]string
		code          int
		failed        string
		output        string
	}{
		{"pass", "^TestPass$", nil, 0, "", "probe: pass"},
		{"fail", "^TestFail$", nil, 1, "TestFail", "probe: failing on purpose"},
		{"testmain exit 3", "^TestPass$", map[string]string{"PROBE_EXIT_CODE": "3"}, 3, "", "TestMain: exiting with 3"},
		{"panic", "^TestPanic$", nil, 2, "", "panic: probe: panicking on purpose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := c.launchAndFollow(t, c.options(t, tc.pattern, tc.env), runner.FollowOptions{})
			if got := o.code(); got != tc.code {
				t.Fatalf("exit code %d, want %d (err %v)\noutput:\n%s\nlog:\n%s", got, tc.code, o.err, o.out, o.log)
			}
			if !strings.Contains(o.out, tc.output) {
				t.Errorf("output lacks %q:\n%s", tc.output, o.out)
			}
			last := strings.TrimSpace(o.log[strings.LastIndex(strings.TrimSpace(o.log), "\n")+1:])
			if !strings.Contains(last, "run "+o.run.ID) || !strings.Contains(last, fmt.Sprintf("exit code %d", tc.code)) {
				t.Errorf("summary line %q names neither the run nor the code", last)
			}
			if tc.failed != "" {
				if !strings.Contains(o.err.Error(), tc.failed) || !strings.Contains(last, "failed: "+tc.failed) {
					t.Errorf("failed test %s not named: error %q, summary %q", tc.failed, o.err, last)
				}
			}
		})
	}
}

// floodExpected is what TestFlood prints, byte for byte.
func floodExpected() string {
	var b strings.Builder
	for i := 0; i < 200000; i++ {
		fmt.Fprintf(&b, "flood %06d %s\n", i, strings.Repeat("x", i%50))
		if i == 100000 {
			b.WriteString(bigLine())
			b.WriteString("\n")
		}
	}
	b.WriteString("flood: last line\n")
	return b.String()
}

func bigLine() string {
	var b strings.Builder
	for b.Len() < 2<<20 {
		fmt.Fprintf(&b, "%08d-abcdefghijklmnopqrstuvwxyz.", b.Len())
	}
	return b.String()[:2<<20]
}

func checkFlood(t *testing.T, out string) {
	t.Helper()
	want := floodExpected()
	i := strings.Index(out, want)
	if i < 0 {
		// find the first difference for the message
		start := strings.Index(out, "flood 000000")
		if start < 0 {
			t.Fatalf("no flood output at all (%d bytes)", len(out))
		}
		got := out[start:]
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		lo := max(0, n-80)
		t.Fatalf("flood output differs at byte %d: got %q..., want %q...", n, got[lo:min(len(got), n+80)], want[lo:min(len(want), n+80)])
	}
	if strings.Count(out, "flood 000000 ") != 1 || strings.Count(out, "flood 199999 ") != 1 || strings.Count(out, "flood: last line") != 1 {
		t.Errorf("lines repeated")
	}
}

func TestRemoteOutputExact(t *testing.T) {
	c := newCluster(t, 0)
	o := c.launchAndFollow(t, c.options(t, "^TestFlood$", nil), runner.FollowOptions{})
	if o.code() != 0 {
		t.Fatalf("exit %d: %v\n%s", o.code(), o.err, o.log)
	}
	checkFlood(t, o.out)
}

// TestRemoteOutputAcrossBrokenStreams cuts every followed log stream after
// 1 MiB: the runner must resume each time and still show every line once.
func TestRemoteOutputAcrossBrokenStreams(t *testing.T) {
	c := newCluster(t, 1<<20)
	o := c.launchAndFollow(t, c.options(t, "^TestFlood$", nil), runner.FollowOptions{})
	if o.code() != 0 {
		t.Fatalf("exit %d: %v\n%s", o.code(), o.err, o.log)
	}
	if c.counter.broken.Load() == 0 {
		t.Fatal("no log stream was broken: the test proves nothing")
	}
	t.Logf("log streams broken: %d", c.counter.broken.Load())
	checkFlood(t, o.out)
}

func TestRemoteEnvAndSecret(t *testing.T) {
	c := newCluster(t, 0)
	const secret = "probe-secret-6d1f0c2b"
	plain, secrets := runner.EnvFromEnviron([]string{"TEST_FOO=forwarded-foo", "E2E_TEST_PROBE_SECRET=" + secret, "UNRELATED=x"})
	opts := c.options(t, "^TestEnv$", plain)
	opts.Secrets = secrets
	o := c.launchAndFollow(t, opts, runner.FollowOptions{})
	if o.code() != 0 {
		t.Fatalf("exit %d: %v\n%s\n%s", o.code(), o.err, o.out, o.log)
	}
	if !strings.Contains(o.out, "probe: FOO=forwarded-foo\n") {
		t.Errorf("TEST_FOO not seen as FOO:\n%s", o.out)
	}
	sum := fmt.Sprintf("%x", sha256Sum(secret))
	if !strings.Contains(o.out, "probe: secret sha256="+sum+" set=true") {
		t.Errorf("secret not visible to the test:\n%s", o.out)
	}
	if !strings.Contains(o.out, "probe: remote=true namespace="+c.ns+" run="+o.run.ID) {
		t.Errorf("remote markers missing:\n%s", o.out)
	}
	if strings.Contains(o.log, secret) || strings.Contains(o.out, secret) || !strings.Contains(o.log, "E2E_TEST_PROBE_SECRET") {
		t.Errorf("the log must name the secret variable and never show its value:\n%s", o.log)
	}
	job, err := c.cs.BatchV1().Jobs(c.ns).Get(context.Background(), o.run.JobName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(job)
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("the Job read back from the API contains the secret value")
	}
	pods, _ := c.cs.CoreV1().Pods(c.ns).List(context.Background(), metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + o.run.ID})
	raw, _ = json.Marshal(pods)
	if len(pods.Items) != 1 || bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("the pod read back from the API contains the secret value (or is missing: %d pods)", len(pods.Items))
	}
}

func TestRemoteAttachAndDetach(t *testing.T) {
	c := newCluster(t, 0)
	ctx := context.Background()
	opts := c.options(t, "^TestSleep$", map[string]string{"PROBE_SLEEP": "8s"})
	opts.NewRun = false
	var log e2e.SyncBuffer
	// two launches at the same moment: one run
	var first, second *runner.Run
	var err1, err2 error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); first, err1 = runner.Launch(ctx, c.cs, opts, &log) }()
	go func() { defer wg.Done(); second, err2 = runner.Launch(ctx, c.cs, opts, &log) }()
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if first.Attached {
		first, second = second, first
	}
	if first.Attached || !second.Attached || second.ID != first.ID {
		t.Fatalf("two launches at once: attached %v/%v, ids %s/%s; want one run", first.Attached, second.Attached, first.ID, second.ID)
	}
	jobs, err := c.cs.BatchV1().Jobs(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelManagedBy + "=" + runner.ManagedBy})
	if err != nil || len(jobs.Items) != 1 {
		t.Fatalf("%d Jobs after two launches, want 1 (%v)", len(jobs.Items), err)
	}

	// Detached: returns once the test runs, the run then ends on its own.
	res, err := runner.Follow(ctx, c.cs, first, runner.FollowOptions{WaitOptions: runner.WaitOptions{Detach: true, Log: &log}})
	if err != nil || !res.Detached {
		t.Fatalf("detach: %+v %v", res, err)
	}
	info, err := runner.Status(ctx, c.cs, c.ns, first.ID)
	if err != nil || info.State != "Running" {
		t.Fatalf("after detach the run should be running: %+v %v", info, err)
	}
	if !strings.Contains(log.String(), "mage run:attach "+first.ID) {
		t.Errorf("detach does not say how to follow:\n%s", log.String())
	}

	// Re-attach from the start: the whole output and the code.
	var out e2e.SyncBuffer
	res, err = runner.Follow(ctx, c.cs, second, runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: &out, Log: &log}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("attach: %+v %v\n%s", res, err, log.String())
	}
	if !strings.Contains(out.String(), "sleep 0\n") || !strings.Contains(out.String(), "sleep: done\n") {
		t.Errorf("attached output incomplete:\n%s", out.String())
	}
	// A launch after it finished starts a new run.
	third, err := runner.Launch(ctx, c.cs, opts, &log)
	if err != nil || third.Attached {
		t.Fatalf("launch after the end: %+v %v", third, err)
	}
	if err := runner.Cancel(ctx, c.cs, c.ns, third.ID, true); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c, third.ID)
}

// leftovers lists what testship created for a run.
func leftovers(t *testing.T, c *cluster, id string) []string {
	t.Helper()
	return e2e.Objects(c.cs, c.ns, labels.SelectorFromSet(labels.Set{runner.LabelRunID: id}).String())
}

// labelled lists every object in the namespace carrying testship's
// managed-by label.
func labelled(t *testing.T, c *cluster) []string {
	t.Helper()
	return e2e.Objects(c.cs, c.ns, runner.LabelManagedBy+"="+runner.ManagedBy)
}

func assertGone(t *testing.T, c *cluster, id string) {
	t.Helper()
	if l := leftovers(t, c, id); len(l) > 0 {
		t.Errorf("left behind for run %s: %v", id, l)
	}
}

// createRun makes a run by hand from a (changed) Job, as Launch would,
// with or without its Secret, and starts it.
func (c *cluster) createRun(t *testing.T, o runner.Options, job *batchv1.Job, withSecret bool) *runner.Run {
	t.Helper()
	ctx := context.Background()
	id := job.Labels[runner.LabelRunID]
	job, err := c.cs.BatchV1().Jobs(c.ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner := []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}}
	sa, role, rb := runner.BuildRBAC(o, id)
	sa.OwnerReferences, role.OwnerReferences, rb.OwnerReferences = owner, owner, owner
	if _, err := c.cs.CoreV1().ServiceAccounts(c.ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.RbacV1().Roles(c.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.RbacV1().RoleBindings(c.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if withSecret {
		sec := runner.BuildSecret(o, id)
		sec.OwnerReferences = owner
		if _, err := c.cs.CoreV1().Secrets(c.ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	job, err = c.cs.BatchV1().Jobs(c.ns).Patch(ctx, job.Name, types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return runner.RunOf(job)
}

func TestRemoteFaults(t *testing.T) {
	c := newCluster(t, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(o *runner.Options)
		during func(t *testing.T, run *runner.Run) // injects the fault once the test runs
		create func(t *testing.T, o runner.Options) *runner.Run
		code   int
		reason string
		msg    string
		output string // printed before the fault, must be shown
	}{
		{name: "image cannot be pulled", code: runner.ExitImagePull, reason: "ImagePull", msg: "@sha256:00000000",
			mutate: func(o *runner.Options) {
				o.Image = strings.Split(o.Image, "@")[0] + "@sha256:" + strings.Repeat("0", 64)
			}},
		{name: "unschedulable", code: runner.ExitUnschedulable, reason: "Unschedulable", msg: "Insufficient memory",
			mutate: func(o *runner.Options) {
				o.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("200Gi")
				o.Resources.Limits[corev1.ResourceMemory] = resource.MustParse("200Gi")
			}},
		{name: "missing secret", code: runner.ExitContainerConfig, reason: "ContainerConfig", msg: "not found",
			create: func(t *testing.T, o runner.Options) *runner.Run {
				// a Job whose Secret was never created
				o.Secrets = map[string]string{"E2E_TEST_MISSING": "x"}
				return c.createRun(t, o, runner.BuildJob(o, runner.NewRunID()), false)
			}},
		{name: "oom killed", code: runner.ExitOOMKilled, reason: "OOMKilled", msg: "64Mi", output: "memory: 16 MiB",
			mutate: func(o *runner.Options) {
				o.Pattern = "^TestMemory$"
				o.Resources.Limits[corev1.ResourceMemory] = resource.MustParse("64Mi")
			}},
		{name: "pod deleted", code: runner.ExitPodLost, reason: "PodDeleted", msg: "deleted", output: "sleep 0",
			mutate: func(o *runner.Options) { o.Pattern, o.Env = "^TestSleep$", map[string]string{"PROBE_SLEEP": "60s"} },
			during: func(t *testing.T, run *runner.Run) {
				pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + run.ID})
				if err != nil || len(pods.Items) != 1 {
					t.Errorf("find pod: %v", err)
					return
				}
				if err := c.cs.CoreV1().Pods(c.ns).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{}); err != nil {
					t.Error(err)
				}
			}},
		{name: "job deadline", code: runner.ExitDeadline, reason: "DeadlineExceeded", msg: "activeDeadlineSeconds 4", output: "sleep 0",
			create: func(t *testing.T, o runner.Options) *runner.Run {
				o.Pattern, o.Env = "^TestSleep$", map[string]string{"PROBE_SLEEP": "60s"}
				job := runner.BuildJob(o, runner.NewRunID())
				four := int64(4)
				job.Spec.ActiveDeadlineSeconds = &four
				return c.createRun(t, o, job, true)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := labelled(t, c)
			o := c.options(t, "^TestPass$", nil)
			if tc.mutate != nil {
				tc.mutate(&o)
			}
			var run *runner.Run
			var out, log e2e.SyncBuffer
			if tc.create != nil {
				run = tc.create(t, o)
			} else {
				var err error
				if run, err = runner.Launch(ctx, c.cs, o, &log); err != nil {
					t.Fatal(err)
				}
			}
			fo := runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: &out, Log: &log, UnschedulableGrace: 3 * time.Second}}
			if tc.during != nil {
				fo.OnLine = func(line []byte) {
					if bytes.HasPrefix(line, []byte("sleep 2\n")) {
						go tc.during(t, run)
					}
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			res, err := runner.Follow(wctx, c.cs, run, fo)
			var ee *runner.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("want an exit error, got %v (%+v)\n%s", err, res, log.String())
			}
			if ee.Code != tc.code || ee.Reason != tc.reason || !strings.Contains(ee.Message, tc.msg) {
				t.Errorf("got code %d reason %s message %q; want %d %s containing %q\nlog:\n%s", ee.Code, ee.Reason, ee.Message, tc.code, tc.reason, tc.msg, log.String())
			}
			if tc.output != "" && !strings.Contains(out.String(), tc.output) {
				t.Errorf("output before the fault not shown (want %q):\n%s", tc.output, out.String())
			}
			assertGone(t, c, run.ID)
			if after := labelled(t, c); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("objects with testship's labels before the fault: %v, after: %v", before, after)
			}
		})
	}
}

func TestRemoteCancel(t *testing.T) {
	c := newCluster(t, 0)
	ctx := context.Background()
	opts := c.options(t, "^TestSleep$", map[string]string{"PROBE_SLEEP": "60s"})
	opts.Secrets = map[string]string{"E2E_TEST_X": "y"}
	var log e2e.SyncBuffer
	run, err := runner.Launch(ctx, c.cs, opts, &log)
	if err != nil {
		t.Fatal(err)
	}
	// Ctrl-C while following: the default cancels the run.
	fctx, cancel := context.WithCancel(ctx)
	fo := runner.FollowOptions{WaitOptions: runner.WaitOptions{Log: &log, OnLine: func(line []byte) {
		if bytes.HasPrefix(line, []byte("sleep 1\n")) {
			cancel()
		}
	}}}
	_, err = runner.Follow(fctx, c.cs, run, fo)
	var ee *runner.ExitError
	if !errors.As(err, &ee) || ee.Code != runner.ExitCancelled {
		t.Fatalf("interrupted follow: %v", err)
	}
	if !strings.Contains(log.String(), "cancelled run "+run.ID) {
		t.Errorf("interrupt does not say what it did:\n%s", log.String())
	}
	// Deletion is in the foreground; wait for it through Cancel (which
	// then finds nothing to delete) or check directly.
	_ = runner.Cancel(ctx, c.cs, c.ns, run.ID, true)
	assertGone(t, c, run.ID)
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// TestRemoteJUnitReport runs passing, failing, skipped and parallel
// subtests remotely and parses the JUnit report back.
func TestRemoteJUnitReport(t *testing.T) {
	c := newCluster(t, 0)
	rec, err := runner.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	o := c.launchAndFollow(t, c.options(t, "^TestReport$|^TestPass$", nil), runner.FollowOptions{WaitOptions: runner.WaitOptions{OnLine: rec.Line}})
	if o.code() != 1 {
		t.Fatalf("exit %d, want 1: %v\n%s", o.code(), o.err, o.log)
	}
	path := filepath.Join(t.TempDir(), "report.xml")
	if err := rec.WriteJUnit(path, "probe", o.res); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var suites junit.Testsuites
	if err := xml.Unmarshal(data, &suites); err != nil || len(suites.Suites) != 1 {
		t.Fatalf("parse the report back: %v\n%s", err, data)
	}
	got := map[string]string{}
	for _, tc := range suites.Suites[0].Testcases {
		state := "pass"
		switch {
		case tc.Failure != nil:
			state = "fail"
		case tc.Skipped != nil:
			state = "skip"
		}
		got[tc.Name] = state
		if tc.Name == "TestReport/group/par0" {
			if d, _ := time.ParseDuration(tc.Time + "s"); d < 300*time.Millisecond {
				t.Errorf("par0 took %s in the report, want at least 0.3s", tc.Time)
			}
		}
		if tc.Name == "TestReport/fail" && !strings.Contains(tc.Failure.Data, "report: failing subtest") {
			t.Errorf("failure output missing: %q", tc.Failure.Data)
		}
	}
	want := map[string]string{"TestPass": "pass", "TestReport": "fail", "TestReport/pass": "pass", "TestReport/fail": "fail", "TestReport/skip": "skip",
		"TestReport/group": "pass", "TestReport/group/par0": "pass", "TestReport/group/par1": "pass", "TestReport/group/par2": "pass"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("report cases:\n got %v\nwant %v", got, want)
	}
	events := filepath.Join(t.TempDir(), "events.json")
	if err := rec.WriteJSON(events, "probe", o.res); err != nil {
		t.Fatal(err)
	}
	ev, _ := os.ReadFile(events)
	if !bytes.Contains(ev, []byte(`"Action":"fail","Package":"probe","Test":"TestReport/fail"`)) {
		t.Errorf("go test -json events lack the failed subtest:\n%.2000s", ev)
	}
}
