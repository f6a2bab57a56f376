//go:build e2e

package workflows

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testship/testship/internal/e2e"
)

// TestRemoteTestWorkflowLocally runs the run: steps of remote-test.yml's job
// in order, as GitHub's runner would, against the local stack: the same
// Mage targets with the variables the workflow sets, inputs and repository
// variables substituted with test values, $GITHUB_OUTPUT and
// $GITHUB_STEP_SUMMARY in temporary files. The actions (checkout, setup-go,
// AWS OIDC credentials, artifact upload) are skipped: this machine has the
// code and Go, and the local registry needs no AWS. It then checks what the
// steps produced: the image references on $GITHUB_OUTPUT, the images in the
// registry, the JUnit report and the job summary.
func TestRemoteTestWorkflowLocally(t *testing.T) {
	kubeconfig := e2e.Kubeconfig(t)
	registry := e2e.Registry(t)
	e2e.Docker(t)
	clients := kubeClient(t, kubeconfig)

	ns := fmt.Sprintf("testship-wf-%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { deleteNamespace(t, clients, ns) })

	runnerTemp := t.TempDir()
	var log e2e.SyncBuffer
	env := withoutAWS(os.Environ())
	env = append(env,
		"KUBECONFIG="+kubeconfig,
		"TESTSHIP_STATE_DIR="+t.TempDir(), // not the developer's .testship
		"TESTSHIP_PROGRESS=plain",
	)
	l := &Local{
		Workflow: filepath.Join(repoRoot, Dir, "remote-test.yml"),
		Job:      "remote-test",
		Dir:      repoRoot,
		Event:    "workflow_dispatch",
		Inputs: map[string]string{
			"run":       "TestLink",
			"namespace": ns,
			"keep":      "never",
			"timeout":   "10m",
			"mode":      "remote",
		},
		Vars: map[string]string{
			"TESTSHIP_REGISTRY":     registry,
			"TESTSHIP_AWS_REGION":   "",
			"TESTSHIP_AWS_ROLE_ARN": "",
			"TESTSHIP_EKS_CLUSTER":  "", // the Prepare step keeps $KUBECONFIG
		},
		Env:        env,
		Out:        io.MultiWriter(logWriter(t), &log),
		RunnerTemp: runnerTemp,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := l.Run(ctx)
	if res != nil {
		t.Logf("job summary:\n%s", res.Summary)
	}
	if err != nil {
		t.Fatal(err)
	}

	// Which steps ran: the actions are skipped, the detached variant is not
	// chosen, everything else ran and succeeded.
	var ran, skipped []string
	for _, s := range res.Steps {
		switch s.Outcome {
		case "success":
			ran = append(ran, s.Name)
		case "skipped":
			skipped = append(skipped, s.Name+" ("+s.Note+")")
		default:
			t.Errorf("step %q: outcome %s", s.Name, s.Outcome)
		}
	}
	t.Logf("ran: %s", strings.Join(ran, "; "))
	t.Logf("skipped: %s", strings.Join(skipped, "; "))
	if res.Step("push").Outcome != "success" || res.Step("remote").Outcome != "success" || res.Step("detached").Outcome != "skipped" {
		t.Errorf("outcomes: push %s, remote %s, detached %s; want success, success, skipped",
			res.Step("push").Outcome, res.Step("remote").Outcome, res.Step("detached").Outcome)
	}

	// image:push wrote the references to $GITHUB_OUTPUT, and they exist in
	// the registry with the digests it reported.
	out := res.Step("push").Outputs
	for _, name := range []string{"base", "test", "link"} {
		ref, digest := out[name+"_image"], out[name+"_image_digest"]
		prefix := registry + "/testship/" + name + ":"
		if !strings.HasPrefix(ref, prefix) {
			t.Errorf("output %s_image = %q, want %s<tag>", name, ref, prefix)
			continue
		}
		if !strings.HasPrefix(digest, "sha256:") {
			t.Errorf("output %s_image_digest = %q, want sha256:...", name, digest)
			continue
		}
		if got := registryDigest(t, registry, "testship/"+name, strings.TrimPrefix(ref, prefix)); got != digest {
			t.Errorf("registry has %s at digest %q, $GITHUB_OUTPUT says %q", ref, got, digest)
		}
	}

	// The run step ran the pushed test image (by digest) in the namespace
	// the input named.
	if s := res.Step("remote"); !strings.Contains(s.Run, "run:remote") {
		t.Errorf("remote step ran %q", s.Run)
	}
	started := startedRe.FindStringSubmatch(log.String())
	if started == nil {
		t.Fatalf("the run step's output has no %q line", startedRe)
	}
	runID, jobNS, jobImage := started[1], started[2], started[3]
	if jobNS != ns {
		t.Errorf("the run went to namespace %s, want %s (the namespace input)", jobNS, ns)
	}
	if o := res.Step("remote").Outputs; o["run_id"] != runID || o["namespace"] != ns || o["exit_code"] != "0" {
		t.Errorf("run:remote's outputs = %q, want run_id %s, namespace %s, exit_code 0", o, runID, ns)
	}
	// The image came from the push step's $GITHUB_OUTPUT (ENV_JOB_IMAGE),
	// by tag or pinned to the digest the push reported.
	if d := out["test_image_digest"]; jobImage != out["test_image"] && !strings.HasSuffix(jobImage, "@"+d) {
		t.Errorf("the run's image is %s, want the pushed test image %s (%s)", jobImage, out["test_image"], d)
	}
	if !strings.Contains(log.String(), "(ENV_JOB_IMAGE): not building images") {
		t.Errorf("the run step rebuilt or re-pushed images instead of using the push step's output")
	}

	// The JUnit report the workflow uploads exists and names the test.
	junitPath := res.Env["TESTSHIP_JUNIT"]
	if !strings.HasPrefix(junitPath, runnerTemp) {
		t.Errorf("TESTSHIP_JUNIT = %q, want a file in $RUNNER_TEMP %s", junitPath, runnerTemp)
	}
	junit, err := os.ReadFile(junitPath)
	if err != nil {
		t.Errorf("JUnit report: %v", err)
	} else if !strings.Contains(string(junit), "<testsuite") || !strings.Contains(string(junit), `name="TestLink`) {
		t.Errorf("JUnit report does not name TestLink:\n%s", junit)
	}

	// The job summary: the result, the test image's digest and the run.
	sum := res.Summary
	for _, want := range []string{out["test_image_digest"], runID} {
		if want != "" && !strings.Contains(sum, want) {
			t.Errorf("job summary lacks %q:\n%s", want, sum)
		}
	}
	if !strings.Contains(strings.ToLower(sum), "pass") {
		t.Errorf("job summary does not report the test passing:\n%s", sum)
	}
}

var startedRe = regexp.MustCompile(`testship: started run (\S+): Job ([^/\s]+)/\S+, image ([^,\s]+)`)

// withoutAWS drops AWS settings from the environment: the local registry
// needs none, and a developer's profile must not reach the steps.
func withoutAWS(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "GITHUB_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func kubeClient(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deleteNamespace removes what the run left (keep=never should have left
// nothing but the runner's own objects) and waits until it is gone.
func deleteNamespace(t *testing.T, c kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Logf("cleanup: delete namespace %s: %v", ns, err)
		return
	}
	for ctx.Err() == nil {
		if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Logf("cleanup: namespace %s still terminating", ns)
}

// registryDigest asks the registry for a tag's manifest digest.
func registryDigest(t *testing.T, registry, repo, tag string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+registry+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
	}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("registry: %v", err)
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("registry: HEAD %s:%s: %s", repo, tag, resp.Status)
		return ""
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// logWriter streams the steps' output into the test log line by line.
func logWriter(t *testing.T) io.Writer {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			t.Log(sc.Text())
		}
	}()
	t.Cleanup(func() { pw.Close(); <-done })
	return pw
}

// TestRemoteTestWorkflowDetachedLocally runs the workflow's steps with mode
// detached: the run step returns once the test has started, and the job
// summary says how to re-attach. The test then re-attaches with that target
// to see the run through before removing its namespace.
func TestRemoteTestWorkflowDetachedLocally(t *testing.T) {
	kubeconfig := e2e.Kubeconfig(t)
	registry := e2e.Registry(t)
	e2e.Docker(t)
	clients := kubeClient(t, kubeconfig)

	ns := fmt.Sprintf("testship-wfd-%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { deleteNamespace(t, clients, ns) })

	var log e2e.SyncBuffer
	env := withoutAWS(os.Environ())
	env = append(env, "KUBECONFIG="+kubeconfig, "TESTSHIP_STATE_DIR="+t.TempDir(), "TESTSHIP_PROGRESS=plain")
	l := &Local{
		Workflow: filepath.Join(repoRoot, Dir, "remote-test.yml"),
		Job:      "remote-test",
		Dir:      repoRoot,
		Inputs:   map[string]string{"run": "TestLink", "namespace": ns, "keep": "never", "timeout": "10m", "mode": "detached"},
		Vars:     map[string]string{"TESTSHIP_REGISTRY": registry},
		Env:      env,
		Out:      io.MultiWriter(logWriter(t), &log),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := l.Run(ctx)
	if res != nil {
		t.Logf("job summary:\n%s", res.Summary)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Step("detached").Outcome != "success" || res.Step("remote").Outcome != "skipped" {
		t.Errorf("outcomes: detached %s, remote %s; want success, skipped", res.Step("detached").Outcome, res.Step("remote").Outcome)
	}
	started := startedRe.FindStringSubmatch(log.String())
	if started == nil {
		t.Fatalf("the run step's output has no %q line", startedRe)
	}
	runID := started[1]
	if o := res.Step("detached").Outputs; o["run_id"] != runID || o["namespace"] != ns {
		t.Errorf("run:detached's outputs = %q, want run_id %s, namespace %s", o, runID, ns)
	}
	attach := "run:attach " + runID
	if !strings.Contains(res.Summary, attach) {
		t.Errorf("the job summary of a detached run does not say how to re-attach (%q):\n%s", attach, res.Summary)
	}

	// Re-attach as the summary says, and see the run pass.
	cmd := exec.CommandContext(ctx, "go", "run", "magefile.go", "run:attach", runID)
	cmd.Dir = repoRoot
	cmd.Env = append(env, "ENV_NAMESPACE="+ns)
	cmd.Stdout, cmd.Stderr = logWriter(t), logWriter(t)
	if err := cmd.Run(); err != nil {
		t.Errorf("re-attaching with %s: %v", attach, err)
	}
}
