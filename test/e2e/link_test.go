//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"

	stack "github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/kube"
	"github.com/testship/testship/pkg/runner"
)

// The link example through the user's entry points: the mage targets and
// the in-test form. Images come from internal/testimage (the link service
// and `go test -c -tags e2e ./tests/link`), handed over with ENV_JOB_IMAGE
// and TESTSHIP_IMAGE_LINK, so these tests do not depend on Docker.

var (
	linkOnce          sync.Once
	linkTest, linkApp string
)

func linkImages(t *testing.T) (test, app string) {
	reg := stack.Registry(t)
	linkOnce.Do(func() {
		linkTest, _ = testimage.Test(t, reg, "link-test", "./tests/link", "e2e")
		linkApp = testimage.Main(t, reg, "link", "./tests/link/cmd/link")
	})
	if linkTest == "" || linkApp == "" {
		t.Fatal("link images were not built (see the first test's log)")
	}
	return linkTest, linkApp
}

type linkEnv struct {
	*cluster
	env []string
}

// newLinkEnv prepares a fresh namespace name (deleted at the end) and the
// variables pointing the targets at it and at the link images.
func newLinkEnv(t *testing.T) *linkEnv {
	// The environment deploy creates the namespace itself.
	c := newCluster(t)
	test, app := linkImages(t)
	env := append(os.Environ(),
		"KUBECONFIG="+stack.Kubeconfig(t),
		"ENV_NAMESPACE="+c.ns,
		"ENV_JOB_IMAGE="+test,
		"TESTSHIP_IMAGE_LINK="+app,
		"TESTSHIP_RUN=^TestLink$",
		"KEEP_ENVIRONMENTS=always",
		"TESTSHIP_STATE_DIR="+t.TempDir(),
	)
	return &linkEnv{cluster: c, env: env}
}

// run runs a command with the link variables (plus extra) and returns its
// exit code and combined output.
func (l *linkEnv) run(t *testing.T, extra []string, name string, args ...string) (int, string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = testimage.RepoRoot(t)
	cmd.Env = append(append([]string{}, l.env...), extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return code, out.String()
}

// created reads the link service's created counter (a port-forward to the
// Service): how many links the test logic created in this environment.
func (l *linkEnv) created(t *testing.T) int {
	rc, err := clientcmd.BuildConfigFromFlags("", stack.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := kube.PortForwardService(ctx, rc, l.ns, "link", 80)
	if err != nil {
		t.Fatalf("port-forward to the link service: %v", err)
	}
	defer f.Close()
	resp, err := http.Get("http://" + f.Addr() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var s struct{ Created int }
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("stats: %v: %s", err, body)
	}
	return s.Created
}

func (l *linkEnv) jobs(t *testing.T) []batchv1.Job {
	list, err := l.cs.BatchV1().Jobs(l.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{runner.LabelManagedBy: runner.ManagedBy}).String()})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// TestLinkInTestForm runs `go test` of tests/link with ENV_JOB_IMAGE set:
// env.Run() deploys, launches the remote runner for TestLink and waits; the
// local copy returns early, so the test logic runs once, remotely: the
// link service's counter says 3 links were created, not 6.
func TestLinkInTestForm(t *testing.T) {
	l := newLinkEnv(t)
	code, out := l.run(t, nil, "go", "test", "-tags", "e2e", "-count=1", "-v", "-run", "^TestLink$", "./tests/link")
	if code != 0 {
		t.Fatalf("go test exited %d:\n%s", code, out)
	}
	for _, want := range []string{"remote: --- PASS: TestLink", "testship: run ", "PASSED"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := l.created(t); n != 3 {
		t.Errorf("the link service counted %d created links, want 3: the test logic must run exactly once, remotely", n)
	}
	if j := l.jobs(t); len(j) != 1 {
		t.Errorf("%d Jobs, want 1", len(j))
	}
}

// TestLinkRunRemote runs the link test with `mage run:remote`, then runs
// a long test twice at once: the second run:remote attaches to the first
// run (one Job) and both exit with its code.
func TestLinkRunRemote(t *testing.T) {
	l := newLinkEnv(t)
	bin := mage(t)
	code, out := l.run(t, nil, bin, "run:remote")
	if code != 0 || !strings.Contains(out, "--- PASS: TestLink") || !strings.Contains(out, "PASSED") {
		t.Fatalf("run:remote exited %d:\n%s", code, out)
	}
	if n := l.created(t); n != 3 {
		t.Errorf("created counter %d, want 3 (one run)", n)
	}

	// Twice at once, with the probe's sleeping test as the test image.
	probe := []string{"ENV_JOB_IMAGE=" + probeImage(t), "TESTSHIP_RUN=^TestSleep$", "TEST_PROBE_SLEEP=15s", "TEST_PROBE_EXIT_CODE=3"}
	type result struct {
		code int
		out  string
	}
	first := make(chan result, 1)
	go func() {
		code, out := l.run(t, probe, bin, "run:remote")
		first <- result{code, out}
	}()
	waitRunning(t, l, probeImage(t))
	code2, out2 := l.run(t, probe, bin, "run:remote")
	r1 := <-first
	if r1.code != 3 || code2 != 3 {
		t.Fatalf("run:remote exited %d and %d, want 3 and 3:\n--- first\n%s\n--- second\n%s", r1.code, code2, r1.out, out2)
	}
	if !strings.Contains(out2, "attaching to it") {
		t.Errorf("the second run:remote did not attach:\n%s", out2)
	}
	n := 0
	for _, j := range l.jobs(t) {
		if j.Annotations[runner.AnnotationImage] == probeImage(t) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d Jobs of the sleeping test after two run:remote, want 1", n)
	}
	for _, o := range []string{r1.out, out2} {
		if !strings.Contains(o, "sleep: done") {
			t.Errorf("a run:remote did not show the end of the output:\n%s", o)
		}
	}
}

// waitRunning waits until a run of the image has its test container running.
func waitRunning(t *testing.T, l *linkEnv, image string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := l.cs.CoreV1().Pods(l.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: "0", LabelSelector: runner.LabelManagedBy + "=" + runner.ManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok || len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Image != image {
			continue
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running != nil {
				return
			}
		}
	}
	t.Fatal("the run's test never ran")
}

// TestLinkRunDetached: run:detached returns while the test runs; the Job
// then completes on its own.
func TestLinkRunDetached(t *testing.T) {
	l := newLinkEnv(t)
	bin := mage(t)
	// The test soaks for 20 s, so it is still running when run:detached
	// returns, however slow the machine.
	code, out := l.run(t, []string{"TEST_LINK_SOAK=20s"}, bin, "run:detached")
	if code != 0 {
		t.Fatalf("run:detached exited %d:\n%s", code, out)
	}
	jobs := l.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs, want 1", len(jobs))
	}
	id := jobs[0].Labels[runner.LabelRunID]
	if !strings.Contains(out, "mage run:attach "+id) {
		t.Errorf("run:detached does not say how to follow run %s:\n%s", id, out)
	}
	info, err := runner.Status(context.Background(), l.cs, l.ns, id)
	if err != nil {
		t.Fatal(err)
	}
	// run:detached returns once the test runs; the 20 s soak keeps it
	// running well past that.
	if info.State != "Running" {
		t.Errorf("right after run:detached the run is %s, want Running (the test soaks for 20 s)", info.State)
	}
	// the Job completes on its own; attaching shows its result
	code, out = l.run(t, []string{"TESTSHIP_FROM_START=true"}, bin, "run:attach", id)
	if code != 0 || !strings.Contains(out, "--- PASS: TestLink") || !strings.Contains(out, "link: soaked 20s") {
		t.Fatalf("run:attach exited %d:\n%s", code, out)
	}
	// and its Job completes on its own
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := l.cs.BatchV1().Jobs(l.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: "0", FieldSelector: "metadata.name=" + jobs[0].Name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		job, ok := ev.Object.(*batchv1.Job)
		if !ok {
			continue
		}
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return
			}
		}
	}
	t.Errorf("the detached run's Job did not complete")
}

// TestLinkRunLocal: run:local runs go test here against the deployed
// environment (port-forwards).
func TestLinkRunLocal(t *testing.T) {
	l := newLinkEnv(t)
	bin := mage(t)
	code, out := l.run(t, nil, bin, "run:local")
	if code != 0 || !strings.Contains(out, "--- PASS: TestLink") {
		t.Fatalf("run:local exited %d:\n%s", code, out)
	}
	if j := l.jobs(t); len(j) != 0 {
		t.Errorf("run:local started %d remote Jobs", len(j))
	}
}

var runIDPattern = regexp.MustCompile(`started run (\S+):`)

// TestRunLifecycleTargets drives a long probe run through run:detached,
// run:list, run:status, run:logs and run:cancel.
func TestRunLifecycleTargets(t *testing.T) {
	l := newLinkEnv(t)
	bin := mage(t)
	probe := []string{"ENV_JOB_IMAGE=" + probeImage(t), "TESTSHIP_RUN=^TestSleep$", "TEST_PROBE_SLEEP=60s"}
	code, out := l.run(t, probe, bin, "run:detached")
	m := runIDPattern.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("run:detached exited %d:\n%s", code, out)
	}
	id := m[1]
	code, out = l.run(t, nil, bin, "run:list")
	if code != 0 || !regexp.MustCompile(id+`\s+`+l.ns+`.*Running`).MatchString(out) {
		t.Errorf("run:list exited %d, want run %s Running:\n%s", code, id, out)
	}
	code, out = l.run(t, nil, bin, "run:status", id)
	if code != 0 || !strings.Contains(out, "state:     Running") {
		t.Errorf("run:status exited %d:\n%s", code, out)
	}
	waitLine(t, l, id, "sleep 3")
	code, out = l.run(t, nil, bin, "run:logs", id)
	if code != 0 || !strings.HasPrefix(out, "=== RUN   TestSleep\nsleep 0\nsleep 1\n") {
		t.Errorf("run:logs exited %d:\n%s", code, out)
	}
	code, out = l.run(t, nil, bin, "run:cancel", id)
	if code != 0 || !strings.Contains(out, "cancelled run "+id) {
		t.Errorf("run:cancel exited %d:\n%s", code, out)
	}
	assertGone(t, l.cluster, id)
	code, out = l.run(t, nil, bin, "run:status", id)
	if code == 0 || !strings.Contains(out, "no run "+id) {
		t.Errorf("run:status of a cancelled run exited %d:\n%s", code, out)
	}
}

// waitLine follows the run (from the start) until it printed line.
func waitLine(t *testing.T, l *linkEnv, id, line string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job, err := runner.Find(ctx, l.cs, l.ns, id)
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	_, _ = runner.Wait(ctx, l.cs, runner.RunOf(job), runner.WaitOptions{OnLine: func(b []byte) {
		if strings.TrimSpace(string(b)) == line {
			seen = true
			cancel()
		}
	}})
	if !seen {
		t.Fatalf("run %s never printed %q", id, line)
	}
}

// TestRunKillAndReattach kills the local `mage run:remote` mid-run (no
// chance to clean up), then run:attach gets the whole output and the
// test's exit code.
func TestRunKillAndReattach(t *testing.T) {
	l := newLinkEnv(t)
	bin := mage(t)
	cmd := exec.Command(bin, "run:remote")
	cmd.Dir = testimage.RepoRoot(t)
	cmd.Env = append(append([]string{}, l.env...), "ENV_JOB_IMAGE="+probeImage(t), "TESTSHIP_RUN=^TestSleep$", "TEST_PROBE_SLEEP=8s", "TEST_PROBE_EXIT_CODE=3")
	var out stack.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id := waitRunID(t, &out)
	waitLine(t, l, id, "sleep 2")
	cmd.Process.Kill()
	cmd.Wait()
	code, att := l.run(t, []string{"TESTSHIP_FROM_START=true"}, bin, "run:attach", id)
	if code != 3 {
		t.Fatalf("run:attach exited %d, want the test's 3:\n%s", code, att)
	}
	for _, want := range []string{"=== RUN   TestSleep\nsleep 0\nsleep 1\nsleep 2\n", "sleep: done\n", "TestMain: exiting with 3\n"} {
		if !strings.Contains(att, want) {
			t.Errorf("re-attached output lacks %q:\n%s", want, att)
		}
	}
}

// waitRunID reads a running mage's output until it names its run.
func waitRunID(t *testing.T, out *stack.SyncBuffer) string {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if m := runIDPattern.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		time.Sleep(100 * time.Millisecond) // another process's output: no event to wait on
	}
	t.Fatalf("no run started:\n%s", out.String())
	return ""
}

// TestRunInterruptCancels sends Ctrl-C (SIGINT) to `mage run:remote`: it
// cancels the run within Mage's grace period, says so, and exits 88; a
// run:remote right after starts a new run.
func TestRunInterruptCancels(t *testing.T) {
	l := newLinkEnv(t)
	bin := mage(t)
	cmd := exec.Command(bin, "run:remote")
	cmd.Dir = testimage.RepoRoot(t)
	cmd.Env = append(append([]string{}, l.env...), "ENV_JOB_IMAGE="+probeImage(t), "TESTSHIP_RUN=^TestSleep$", "TEST_PROBE_SLEEP=60s")
	var out stack.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id := waitRunID(t, &out)
	waitLine(t, l, id, "sleep 2")
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != runner.ExitCancelled {
		t.Fatalf("interrupted run:remote: %v, want exit %d:\n%s", err, runner.ExitCancelled, out.String())
	}
	if !strings.Contains(out.String(), "cancelled run "+id) {
		t.Errorf("the interrupt does not say what it stopped:\n%s", out.String())
	}
	// run:remote again at once, the image named by its tag this time (it
	// resolves to the same digest, so the same run key): a new run starts,
	// without waiting for the cancelled one.
	again := exec.Command(bin, "run:remote")
	again.Dir = cmd.Dir
	again.Env = append(append([]string{}, l.env...), "ENV_JOB_IMAGE="+probeTagOf(t), "TESTSHIP_RUN=^TestSleep$", "TEST_PROBE_SLEEP=60s")
	var out2 stack.SyncBuffer
	again.Stdout, again.Stderr = &out2, &out2
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	id2 := waitRunID(t, &out2)
	if id2 == id || strings.Contains(out2.String(), "attaching") {
		t.Errorf("run:remote right after Ctrl-C attached to the cancelled run %s:\n%s", id, out2.String())
	}
	waitLine(t, l, id2, "sleep 1")
	again.Process.Signal(os.Interrupt)
	if err := again.Wait(); err == nil {
		t.Errorf("the second run:remote was not interrupted:\n%s", out2.String())
	}
	// the Jobs' foreground deletions were requested; wait for them to finish
	for _, run := range []string{id, id2} {
		_ = runner.Cancel(context.Background(), l.cs, l.ns, run, true)
		assertGone(t, l.cluster, run)
	}
}

// TestRunRemoteKeepPolicy: after a waited run, KEEP_ENVIRONMENTS=never
// removes the environment; onfail keeps it when the test failed.
func TestRunRemoteKeepPolicy(t *testing.T) {
	l := newLinkEnv(t)
	bin := mage(t)
	ctx := context.Background()
	probe := []string{"ENV_JOB_IMAGE=" + probeImage(t), "TESTSHIP_RUN=^TestFail$", "KEEP_ENVIRONMENTS=onfail"}
	code, out := l.run(t, probe, bin, "run:remote")
	if code != 1 || !strings.Contains(out, "keeping the environment") {
		t.Fatalf("failed run with onfail: exit %d, want 1 and the environment kept:\n%s", code, out)
	}
	if _, err := l.cs.CoreV1().Namespaces().Get(ctx, l.ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("onfail after a failure: namespace %s: %v", l.ns, err)
	}
	probe = []string{"ENV_JOB_IMAGE=" + probeImage(t), "TESTSHIP_RUN=^TestPass$", "KEEP_ENVIRONMENTS=never"}
	code, out = l.run(t, probe, bin, "run:remote")
	if code != 0 {
		t.Fatalf("passing run: exit %d:\n%s", code, out)
	}
	ns, err := l.cs.CoreV1().Namespaces().Get(ctx, l.ns, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("KEEP_ENVIRONMENTS=never: namespace %s still there after the run:\n%s", l.ns, out)
	}
}

// probeTagOf is the probe image by its tag.
func probeTagOf(t testing.TB) string {
	_, tag := testimage.Probe(t, stack.Registry(t))
	return tag
}
