//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stack "github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/runner"
)

// ghaEnv is a step's environment: GITHUB_OUTPUT and GITHUB_STEP_SUMMARY in
// temporary files, the state and reports in a temporary directory.
func ghaEnv(t *testing.T, ns string, extra ...string) (env []string, output, summary string) {
	dir := t.TempDir()
	output, summary = filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	env = append(os.Environ(),
		"GITHUB_OUTPUT="+output,
		"GITHUB_STEP_SUMMARY="+summary,
		"TESTSHIP_STATE_DIR="+filepath.Join(dir, "state"),
		"TESTSHIP_JUNIT="+filepath.Join(dir, "reports", "junit.xml"),
		"TESTSHIP_REGISTRY="+stack.Registry(t),
		"KUBECONFIG="+stack.Kubeconfig(t),
		"ENV_NAMESPACE="+ns,
		"KEEP_ENVIRONMENTS=never",
		"TESTSHIP_PROGRESS=plain",
	)
	return append(env, extra...), output, summary
}

// outputs reads a $GITHUB_OUTPUT file's one-line name=value pairs.
func outputs(path string) map[string]string {
	m := map[string]string{}
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// SIGINT to the exec'ed ci:remote while the link test runs (a cancelled
// GitHub job): the run is cancelled, the environment destroyed
// (KEEP_ENVIRONMENTS=never), run_id and namespace are in $GITHUB_OUTPUT,
// and the exit code is 88.
func TestCIRemoteInterruptCancelsAndCleansUp(t *testing.T) {
	stack.Docker(t)
	bin := mage(t)
	cs := clientset(t)
	const ns = "ts-ci-e2e-sigint"
	env, output, _ := ghaEnv(t, ns, "TEST_LINK_SOAK=60s", "TESTSHIP_MODE=remote")
	cmd := exec.Command(bin, "ci:remote")
	cmd.Dir = repoRoot
	cmd.Env = env
	out := &stack.SyncBuffer{}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			// the link test is resolving links: the run is under way
			if strings.Contains(sc.Text(), "=== RUN") {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(8 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the link test did not start within 8 minutes:\n%s", out.String())
	}
	o := outputs(output)
	if o["run_id"] == "" || o["namespace"] != ns {
		t.Errorf("outputs while the run goes on = %v, want run_id and namespace=%s written as soon as it started", o, ns)
	}
	time.Sleep(2 * time.Second) // well inside the soak
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != runner.ExitCancelled {
		t.Errorf("ci:remote ended with %v, want exit code %d\n%s", err, runner.ExitCancelled, out.String())
	}
	o = outputs(output)
	if o["run_id"] == "" || o["namespace"] != ns {
		t.Errorf("outputs = %v, want run_id and namespace=%s", o, ns)
	}
	if id := o["run_id"]; id != "" {
		// deleted (foreground: the Job goes once its pod has)
		job, err := cs.BatchV1().Jobs(ns).Get(context.Background(), runner.JobName(id), metav1.GetOptions{})
		if err == nil && job.DeletionTimestamp == nil {
			t.Errorf("the run's Job %s is not being deleted after SIGINT", runner.JobName(id))
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("get the run's Job: %v", err)
		}
	}
	waitNamespaceGone(t, cs, ns, 3*time.Minute)
	if t.Failed() {
		t.Logf("ci:remote output:\n%s", out.String())
	}
}

// A failing test run: ci:remote exits with the test's exit code 1, prints
// an ::error annotation at the failing line of the test's file, and the job
// summary has the table of passed/failed/skipped and the slowest tests;
// both reports are written.
func TestCIRemoteFailureAnnotatedAndSummarised(t *testing.T) {
	stack.Docker(t)
	bin := mage(t)
	cs := clientset(t)
	const ns = "ts-ci-e2e-fail"
	env, output, summary := ghaEnv(t, ns,
		"TESTSHIP_TEST_PACKAGE=./pkg/runner/testdata/probe",
		"TESTSHIP_RUN=^(TestPass|TestFail)$", "TESTSHIP_MODE=remote")
	cmd := exec.Command(bin, "ci:remote")
	cmd.Dir = repoRoot
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	text := string(b)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("ci:remote ended with %v, want the test's exit code 1\n%s", err, text)
	}
	want := fmt.Sprintf("::error file=pkg/runner/testdata/probe/probe_test.go,line=%d,title=TestFail::probe: failing on purpose", probeLine(t, "probe: failing on purpose"))
	if !strings.Contains(text, want) {
		t.Errorf("no annotation %q in the output:\n%s", want, text)
	}
	if n := strings.Count(text, "::error"); n != 1 {
		t.Errorf("%d annotations, want 1", n)
	}
	sum, _ := os.ReadFile(summary)
	for _, w := range []string{"| passed | failed | skipped |", "| 1 | 1 | 0 |", "- `TestFail`", "Slowest tests:", "| `TestPass` | pass |"} {
		if !strings.Contains(string(sum), w) {
			t.Errorf("summary lacks %q:\n%s", w, sum)
		}
	}
	o := outputs(output)
	if o["run_id"] == "" || o["namespace"] != ns || o["exit_code"] != "1" {
		t.Errorf("outputs = %v, want run_id, namespace=%s, exit_code=1", o, ns)
	}
	var junit string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "TESTSHIP_JUNIT="); ok {
			junit = v
		}
	}
	for _, p := range []string{junit, strings.TrimSuffix(junit, ".xml") + ".json"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("report %s: %v", p, err)
		}
	}
	// KEEP_ENVIRONMENTS=never: the pipeline destroyed the environment
	waitNamespaceGone(t, cs, ns, 3*time.Minute)
}

// A run that outlives the job: ci:remote detached returns while the link
// test soaks and names the run in the summary; ci:remote attach with a
// short local wait gives up (exit 87) and leaves it running, named again;
// ci:cleanup (the workflow's last step, fed the outputs) cancels it and
// removes the namespace.
func TestCIRemoteDetachedAttachAndCleanup(t *testing.T) {
	stack.Docker(t)
	bin := mage(t)
	cs := clientset(t)
	const ns = "ts-ci-e2e-detached"
	run := func(env []string, target string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, target)
		cmd.Dir = repoRoot
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(b), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", target, err, b)
		}
		return string(b), 0
	}
	env, output, summary := ghaEnv(t, ns, "TEST_LINK_SOAK=90s", "TESTSHIP_MODE=detached")
	out, code := run(env, "ci:remote")
	if code != 0 {
		t.Fatalf("ci:remote detached: exit %d\n%s", code, out)
	}
	o := outputs(output)
	id := o["run_id"]
	if id == "" || o["namespace"] != ns {
		t.Fatalf("outputs = %v, want run_id and namespace=%s\n%s", o, ns, out)
	}
	sum, _ := os.ReadFile(summary)
	if want := "ENV_NAMESPACE=" + ns + " go run magefile.go run:attach " + id; !strings.Contains(string(sum), want) {
		t.Errorf("summary lacks the re-attach command %q:\n%s", want, sum)
	}

	env2, output2, summary2 := ghaEnv(t, ns, "TESTSHIP_MODE=attach", "TESTSHIP_CI_RUN="+id, "TESTSHIP_WAIT_TIMEOUT=5s")
	out, code = run(env2, "ci:remote")
	if code != runner.ExitWaitTimeout {
		t.Errorf("ci:remote attach with a 5s wait: exit %d, want %d\n%s", code, runner.ExitWaitTimeout, out)
	}
	if o := outputs(output2); o["run_id"] != id || o["namespace"] != ns {
		t.Errorf("attach outputs = %v, want run_id=%s namespace=%s", o, id, ns)
	}
	sum, _ = os.ReadFile(summary2)
	if !strings.Contains(string(sum), "Run `"+id+"` goes on in namespace `"+ns+"`") {
		t.Errorf("attach summary does not name the run left going:\n%s", sum)
	}
	if _, err := cs.BatchV1().Jobs(ns).Get(context.Background(), runner.JobName(id), metav1.GetOptions{}); err != nil {
		t.Fatalf("the run must go on after a local wait timeout: %v", err)
	}

	env3, _, _ := ghaEnv(t, "", "TESTSHIP_CI_RUN="+id, "ENV_NAMESPACE="+ns)
	out, code = run(env3, "ci:cleanup")
	if code != 0 {
		t.Errorf("ci:cleanup: exit %d\n%s", code, out)
	}
	for _, want := range []string{"cancelled run " + id, "namespace " + ns + ": deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("ci:cleanup output lacks %q:\n%s", want, out)
		}
	}
	waitNamespaceGone(t, cs, ns, time.Minute)
}

// probeLine is the line of the probe test that holds text, so the expected
// annotation follows the probe as it changes.
func probeLine(t *testing.T, text string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "pkg/runner/testdata/probe/probe_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, text) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the probe test", text)
	return 0
}
