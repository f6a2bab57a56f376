//go:build e2e

package entrypoint_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/image"
	"github.com/testship/testship/pkg/imagestate"
	"github.com/testship/testship/pkg/testlog"
)

// images finds the images pushed by `go run magefile.go image:push` in this
// checkout: the base (with the entrypoint) and the test image on it.
func pushedImages(t testing.TB) *imagestate.State {
	t.Helper()
	e2e.Registry(t)
	st, err := imagestate.Load(".testship")
	if err != nil || !st.Pushed || st.Base.Digest == "" || st.Test.Digest == "" {
		t.Fatalf("e2e: no pushed images (%v): run `go run magefile.go image:push` in this checkout first", err)
	}
	return st
}

var (
	onBaseMu   sync.Mutex
	onBaseRefs = map[string]string{}
)

// probeOnBase puts the runner's probe test binary (tests with known
// behaviour) on the pushed base; see onBase.
func probeOnBase(t testing.TB, st *imagestate.State) string {
	return onBase(t, st, "entry-probe", "./pkg/runner/testdata/probe")
}

// onBase compiles the test package pkg (`go test -c`) and puts it on the
// pushed base at /testship/run, as the pipeline's direct builder does; it
// pushes the image and returns its reference pinned by digest.
func onBase(t testing.TB, st *imagestate.State, repo, pkg string) string {
	t.Helper()
	onBaseMu.Lock()
	defer onBaseMu.Unlock()
	if ref, ok := onBaseRefs[pkg]; ok {
		return ref
	}
	_, bin := testimage.Test(t, e2e.Registry(t), repo+"-scratch", pkg)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "testship/", Mode: 0o755, ModTime: time.Unix(0, 0)})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "testship/run", Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
	tw.Write(data)
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	baseRef, err := name.ParseReference(st.Base.Pinned(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(baseRef)
	if err != nil {
		t.Fatalf("read the pushed base %s: %v", baseRef, err)
	}
	img, err := image.Assemble(base, layer, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(e2e.Registry(t)+"/testship-e2e/"+repo+":"+d.Hex[:16], name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	ref := tag.Context().String() + "@" + d.String()
	onBaseRefs[pkg] = ref
	return ref
}

type cluster struct {
	cs kubernetes.Interface
	ns string
}

// newCluster makes a namespace entry-e2e-<random> enforcing the restricted
// Pod Security Standard, deleted when the test ends.
func newCluster(t testing.TB) *cluster {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", e2e.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "entry-e2e-" + hex.EncodeToString(b)
	_, err = cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest", "testship.io/e2e": "entry"}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return &cluster{cs: cs, ns: ns}
}

// podSpec is the remote runner's pod, restricted, with the entrypoint as
// its command.
func podSpec(img string, args []string, env ...corev1.EnvVar) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		AutomountServiceAccountToken:  ptr.To(true),
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To(int64(10)),
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)), RunAsGroup: ptr.To(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{
			Name: "test", Image: img, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{testlog.EntrypointPath}, Args: args, Env: env,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
			SecurityContext: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		}},
	}
}

// runPod runs a pod to its end and returns its container's termination
// state and its log as the API returns it.
func (c *cluster) runPod(t *testing.T, name string, spec corev1.PodSpec) (*corev1.ContainerStateTerminated, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.cs.CoreV1().Pods(c.ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	term := c.waitTerminated(t, ctx, name)
	return term, c.log(t, ctx, name, false)
}

func (c *cluster) waitTerminated(t *testing.T, ctx context.Context, pod string) *corev1.ContainerStateTerminated {
	t.Helper()
	w, err := c.cs.CoreV1().Pods(c.ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", pod).String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok || ev.Type == watch.Deleted {
			continue
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Terminated != nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
				return s.State.Terminated
			}
		}
	}
	t.Fatalf("pod %s did not end: %v", pod, ctx.Err())
	return nil
}

func (c *cluster) log(t testing.TB, ctx context.Context, pod string, timestamps bool) string {
	t.Helper()
	b, err := c.cs.CoreV1().Pods(c.ns).GetLogs(pod, &corev1.PodLogOptions{Timestamps: timestamps}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s: %v", pod, err)
	}
	return string(b)
}

// checkRecord parses the termination message and checks it against the
// log the API returned and the container's exit code.
func checkRecord(t testing.TB, term *corev1.ContainerStateTerminated, log string) testlog.Record {
	t.Helper()
	rec, ok := testlog.ParseRecord(term.Message)
	if !ok {
		t.Fatalf("termination message is not a record: %q\nlog:\n%s", term.Message, log)
	}
	c := testlog.NewCounter()
	c.Write([]byte(log))
	if d := rec.Verify(c); d != "" {
		t.Fatalf("record does not match the log: %s\nrecord %+v\nlog:\n%s", d, rec, log)
	}
	if int(term.ExitCode) != rec.Exit {
		t.Fatalf("container exit code %d, record says %d", term.ExitCode, rec.Exit)
	}
	return rec
}

// The entrypoint runs in a restricted pod of the real cluster, in front of
// the test image's binary, and leaves a record the API returns that
// matches the log exactly.
func TestEntrypointInPod(t *testing.T) {
	st := pushedImages(t)
	c := newCluster(t)

	t.Run("test image", func(t *testing.T) {
		term, log := c.runPod(t, "link", podSpec(st.Test.Pinned(), []string{"-test.run", "TestSomething", "-test.v"}))
		rec := checkRecord(t, term, log)
		if rec.Exit != 0 || !strings.Contains(log, "testing: warning: no tests to run") || rec.Error != "" {
			t.Fatalf("record %+v\nlog:\n%s", rec, log)
		}
		t.Logf("record: %s", term.Message)
	})

	probe := probeOnBase(t, st)
	t.Run("pass and fail", func(t *testing.T) {
		term, log := c.runPod(t, "probe", podSpec(probe, []string{"-test.run", "^Test(Pass|Fail)$", "-test.v"}))
		rec := checkRecord(t, term, log)
		if rec.Exit != 1 || rec.Pass != 1 || rec.Fail != 1 || len(rec.Failed) != 1 || rec.Failed[0] != "TestFail" {
			t.Fatalf("record %+v\nlog:\n%s", rec, log)
		}
		t.Logf("record: %s", term.Message)
	})

	t.Run("shard", func(t *testing.T) {
		term, log := c.runPod(t, "shard", podSpec(probe, []string{"-test.v"},
			corev1.EnvVar{Name: testlog.EnvMode, Value: testlog.ModeShard}, corev1.EnvVar{Name: testlog.EnvCount, Value: "2"},
			corev1.EnvVar{Name: testlog.EnvIndex, Value: "1"}, corev1.EnvVar{Name: testlog.EnvShardPlan, Value: `[["TestFail"],["TestPass","TestEnv"]]`}))
		rec := checkRecord(t, term, log)
		if rec.Exit != 0 || rec.Pass != 2 || rec.Fail != 0 || !strings.Contains(log, "--- PASS: TestPass") || !strings.Contains(log, "--- PASS: TestEnv") {
			t.Fatalf("record %+v\nlog:\n%s", rec, log)
		}
	})

	// The pod's deadline makes the kubelet stop the container (SIGTERM,
	// then SIGKILL after the 10 s grace): the entrypoint passes SIGTERM on
	// (Go's default action ends the test binary at once) and still writes
	// the record.
	t.Run("sigterm", func(t *testing.T) {
		spec := podSpec(probe, []string{"-testship.quit-after=2s", "-test.run", "^TestSleep$", "-test.v"}, corev1.EnvVar{Name: "PROBE_SLEEP", Value: "5m"})
		spec.ActiveDeadlineSeconds = ptr.To(int64(5))
		term, log := c.runPod(t, "sigterm", spec)
		rec := checkRecord(t, term, log)
		if rec.Exit != 143 || rec.Signal != "SIGTERM" || !strings.Contains(log, "testship: SIGTERM passed to the test") || !strings.Contains(log, "sleep 3\n") {
			t.Fatalf("record %+v\nlog:\n%s", rec, log)
		}
	})

	// A test that catches SIGTERM and stays stuck: SIGQUIT after the
	// entrypoint's grace (2 s here, within the pod's 10 s) makes Go print
	// every goroutine, the stuck one included, and exit 2; the record
	// still reaches the API.
	t.Run("sigquit after grace", func(t *testing.T) {
		stuck := onBase(t, st, "entry-stuck", "./pkg/entrypoint/testdata/stuck")
		spec := podSpec(stuck, []string{"-testship.quit-after=2s", "-test.v"})
		spec.ActiveDeadlineSeconds = ptr.To(int64(4))
		term, log := c.runPod(t, "sigquit", spec)
		rec := checkRecord(t, term, log)
		for _, want := range []string{"stuck: SIGTERM caught, still busy", "testship: the test is still running 2s after SIGTERM; sending SIGQUIT", "SIGQUIT: quit", "stuck.stuckInCleanup("} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q", want)
			}
		}
		if rec.Exit != 2 || rec.Signal != "" {
			t.Fatalf("record %+v\nlog:\n%s", rec, log)
		}
	})

	t.Run("no test binary", func(t *testing.T) {
		term, log := c.runPod(t, "base", podSpec(st.Base.Pinned(), nil))
		rec := checkRecord(t, term, log)
		if rec.Exit != 127 || !strings.Contains(rec.Error, "test binary /testship/run not found") {
			t.Fatalf("record %+v\nlog:\n%s", rec, log)
		}
	})
}

// Three copies of an Indexed Job with a synchronised start: no copy starts
// its test before every copy is waiting, each prints the release line,
// and the spread of the release lines' timestamps is logged.
func TestSyncStartInCluster(t *testing.T) {
	st := pushedImages(t)
	c := newCluster(t)
	s := c.runCopies(t, probeOnBase(t, st), "copies", 3)
	if s.release[0].Before(s.wait[2]) {
		t.Fatalf("a copy started at %s, before the last copy waited (%s)", s.release[0], s.wait[2])
	}
	t.Logf("copies waiting from %s to %s (%s); released within %s of each other; first test lines within %s",
		s.wait[0].Format(time.RFC3339Nano), s.wait[2].Format(time.RFC3339Nano), s.wait[2].Sub(s.wait[0]), spread(s.release), spread(s.test))
}

// BenchmarkSyncStart8 measures the spread of the first test line of 8
// synchronised copies (issue #14: ≤ 1 s), of their release lines, and of
// their arrival (the copies' "waiting" lines, for comparison).
func BenchmarkSyncStart8(b *testing.B) {
	st := pushedImages(b)
	c := newCluster(b)
	probe := probeOnBase(b, st)
	var first, release, arrival time.Duration
	for i := 0; i < b.N; i++ {
		s := c.runCopies(b, probe, fmt.Sprintf("copies-%d", i), 8)
		first += spread(s.test)
		release += spread(s.release)
		arrival += spread(s.wait)
	}
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "first-line-spread-ms")
	b.ReportMetric(float64(release.Milliseconds())/float64(b.N), "release-spread-ms")
	b.ReportMetric(float64(arrival.Milliseconds())/float64(b.N), "arrival-spread-ms")
}

func spread(ts []time.Time) time.Duration { return ts[len(ts)-1].Sub(ts[0]) }

// started is when the copies of one run waited, were released and began
// their test (kubelet timestamps, each sorted).
type started struct{ wait, release, test []time.Time }

// runCopies runs n copies of the probe's TestPass as an Indexed Job with a
// synchronised start, under a service account whose Role grants the rule
// the run's Role needs (get, list, watch on the one Job), and checks each
// pod's record against its log.
func (c *cluster) runCopies(t testing.TB, probe, jobName string, n int) started {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	must(t, createSA(ctx, c, jobName))
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: jobName}, Spec: batchv1.JobSpec{
		CompletionMode: ptr.To(batchv1.IndexedCompletion), Completions: ptr.To(int32(n)), Parallelism: ptr.To(int32(n)),
		BackoffLimit: ptr.To(int32(0)),
		Template: corev1.PodTemplateSpec{Spec: podSpec(probe, []string{"-test.run", "^TestPass$", "-test.v"},
			corev1.EnvVar{Name: testlog.EnvMode, Value: testlog.ModeCopy}, corev1.EnvVar{Name: testlog.EnvCount, Value: fmt.Sprint(n)},
			corev1.EnvVar{Name: testlog.EnvSyncStart, Value: "true"}, corev1.EnvVar{Name: testlog.EnvJobName, Value: jobName})},
	}}
	job.Spec.Template.Spec.ServiceAccountName = jobName
	if _, err := c.cs.BatchV1().Jobs(c.ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := c.cs.BatchV1().Jobs(c.ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", jobName).String()})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range w.ResultChan() {
		if j, ok := ev.Object.(*batchv1.Job); ok && int(j.Status.Succeeded+j.Status.Failed) >= n {
			break
		}
	}
	w.Stop()
	pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + jobName})
	if err != nil || len(pods.Items) != n {
		t.Fatalf("%d pods (%v)", len(pods.Items), err)
	}
	var s started
	for _, p := range pods.Items {
		log := c.log(t, ctx, p.Name, true)
		plain := c.log(t, ctx, p.Name, false)
		var term *corev1.ContainerStateTerminated
		for _, cs := range p.Status.ContainerStatuses {
			term = cs.State.Terminated
		}
		if term == nil {
			t.Fatalf("pod %s has not ended: %+v", p.Name, p.Status)
		}
		rec := checkRecord(t, term, plain)
		if rec.Exit != 0 || rec.Pass != 1 {
			t.Fatalf("pod %s: record %+v\nlog:\n%s", p.Name, rec, plain)
		}
		wait := stamp(log, fmt.Sprintf("testship: waiting until all %d copies", n))
		release := stamp(log, fmt.Sprintf("testship: all %d copies running; starting", n))
		test := stamp(log, "=== RUN")
		if wait.IsZero() || release.IsZero() || test.Before(release) {
			t.Fatalf("pod %s: no wait, release and test in order:\n%s", p.Name, log)
		}
		s.wait, s.release, s.test = append(s.wait, wait), append(s.release, release), append(s.test, test)
	}
	for _, ts := range [][]time.Time{s.wait, s.release, s.test} {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	}
	return s
}

// stamp returns the kubelet timestamp of the first log line containing s.
func stamp(log, s string) time.Time {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		ts, line, _ := strings.Cut(sc.Text(), " ")
		if strings.Contains(line, s) {
			t, _ := time.Parse(time.RFC3339Nano, ts)
			return t
		}
	}
	return time.Time{}
}

// createSA makes the service account of the copies and the Role the
// synchronised start needs: get, list and watch on the one Job.
func createSA(ctx context.Context, c *cluster, job string) error {
	if _, err := c.cs.CoreV1().ServiceAccounts(c.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: job}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := c.cs.RbacV1().Roles(c.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: job},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, ResourceNames: []string{job}, Verbs: []string{"get", "list", "watch"}}}},
		metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := c.cs.RbacV1().RoleBindings(c.ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: job},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: job},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: job, Namespace: c.ns}}}, metav1.CreateOptions{})
	return err
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
