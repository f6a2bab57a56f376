//go:build e2e

package environment_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/kube"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	helmtime "helm.sh/helm/v3/pkg/time"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

type stack struct {
	rc       *rest.Config
	cs       kubernetes.Interface
	registry string
}

func setup(t *testing.T) stack { return setupB(t) }

func setupB(t testing.TB) stack {
	t.Helper()
	kc := e2e.Kubeconfig(t)
	registry := e2e.Registry(t)
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return stack{rc, cs, registry}
}

func namespace(t *testing.T, s stack, prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	ns := prefix + "-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		// Whatever the test did, leave nothing behind.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := environment.Destroy(ctx, s.rc, ns, []string{"link"}, 3*time.Minute, io.Discard); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ns
}

func opts(ns, image string, timeout time.Duration, t *testing.T) environment.Options {
	return environment.Options{
		Namespace: ns,
		Charts:    []config.ChartRef{{Name: "link"}},
		Images:    map[string]string{"link": image},
		Timeout:   timeout,
		Origin:    environment.Origin{Owner: "e2e", Commit: "0123456789abcdef", Trigger: "go-test", Scope: "e2e"},
		Out:       tlog{t},
	}
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func history(t *testing.T, s stack, ns string) []*release.Release {
	t.Helper()
	cfg := new(action.Configuration)
	if err := cfg.Init(kube.NewGetter(s.rc, ns), ns, "secrets", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	rels, err := action.NewHistory(cfg).Run("link")
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	return rels
}

// TestLifecycle deploys link, redeploys unchanged (no new revision), changes
// a value (one new revision), runs the link test from the host through a
// port-forward and from a pod through the Service's DNS name, destroys the
// environment and checks nothing is left.
func TestLifecycle(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	root := testimage.RepoRoot(t)
	image := testimage.Main(t, s.registry, "link", "./tests/link/cmd/link")
	testRef, testBin := testimage.Test(t, s.registry, "link-test", "./tests/link", "e2e")
	ns := namespace(t, s, "ts-e2e-env")

	// 1. Install.
	start := time.Now()
	env, err := environment.Deploy(ctx, s.rc, opts(ns, image, 3*time.Minute, t))
	if err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	t.Logf("first deploy (install + ready): %s", time.Since(start).Round(time.Millisecond))
	r := env.Release("link")
	if r == nil || r.Revision != 1 || r.UpToDate || r.Status != "deployed" || len(r.Workloads) != 1 || r.Workloads[0].Ready != 2 {
		t.Fatalf("after install: %+v", r)
	}
	// Deploy returned after the Service's endpoints were ready.
	slices, err := s.cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=link"})
	readyEndpoints := 0
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				readyEndpoints++
			}
		}
	}
	if err != nil || readyEndpoints == 0 {
		t.Errorf("after install: Service link has %d ready endpoints (%v)", readyEndpoints, err)
	}
	n, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || n.Labels[environment.LabelOwner] != "e2e" || n.Labels[environment.LabelCommit] != "0123456789abcdef" ||
		n.Labels[environment.LabelTrigger] != "go-test" || n.Labels[environment.LabelManagedBy] != "testship" ||
		n.Labels[environment.LabelPodSecurity] != "restricted" {
		t.Errorf("namespace labels = %v, %v", n.Labels, err)
	}
	// Who made it, when, and when it expires (ENV_TTL's default, 6h).
	if n != nil {
		exp, perr := environment.ParseExpiry(n.Annotations[environment.AnnotationExpiresAt])
		if n.Annotations[environment.AnnotationCreatedBy] != "e2e" || n.Annotations[environment.AnnotationCreatedAt] == "" ||
			perr != nil || exp.Before(start.Add(6*time.Hour-time.Minute)) || exp.After(time.Now().Add(6*time.Hour+time.Minute)) {
			t.Errorf("namespace annotations = %v (%v)", n.Annotations, perr)
		}
	}
	// Pod Security admission enforces it: a pod that is not restricted is
	// rejected (server-side dry run), so link's ready pods passed it.
	_, err = s.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "not-restricted"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("a pod that is not restricted was not rejected in %s: %v", ns, err)
	}
	// The link chart's pods were admitted under enforce: restricted, and
	// the environment records its Service with its port and the values.
	if svc := r.Service("link"); svc == nil || len(svc.Ports) != 1 || svc.Ports[0].Port != 80 || r.Values["image"] != image {
		t.Errorf("release link's Services %+v, values %v; want Service link port 80 and image %s", r.Services, r.Values, image)
	}

	// 2. Unchanged: up to date, no new revision.
	start = time.Now()
	env, err = environment.Deploy(ctx, s.rc, opts(ns, image, 3*time.Minute, t))
	if err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	t.Logf("second deploy (up to date): %s", time.Since(start).Round(time.Millisecond))
	if r := env.Release("link"); !r.UpToDate || r.Revision != 1 {
		t.Errorf("second deploy: %+v, want up to date at revision 1", r)
	}
	if h := history(t, s, ns); len(h) != 1 {
		t.Errorf("history has %d revisions after an unchanged deploy, want 1", len(h))
	}

	// 3. A changed value: exactly one new revision, pods rolled.
	o := opts(ns, image, 3*time.Minute, t)
	o.Set = "link.message=changed by e2e"
	env, err = environment.Deploy(ctx, s.rc, o)
	if err != nil {
		t.Fatalf("deploy with a changed value: %v", err)
	}
	if r := env.Release("link"); r.UpToDate || r.Revision != 2 {
		t.Errorf("changed value: %+v, want revision 2", r)
	}
	if h := history(t, s, ns); len(h) != 2 {
		t.Errorf("history has %d revisions, want 2", len(h))
	}
	if env, err = environment.Deploy(ctx, s.rc, o); err != nil || !env.Release("link").UpToDate || env.Release("link").Revision != 2 {
		t.Errorf("redeploy of the changed value: %+v, %v; want up to date at revision 2", env, err)
	}

	// 4. The link test from the host (port-forwards), as a separate process
	// deploying through testenv: same inputs, so up to date.
	cmd := exec.Command(testBin, "-test.v", "-test.run", "^TestLink$")
	cmd.Dir = filepath.Join(root, "tests", "link")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e2e.Kubeconfig(t), "ENV_NAMESPACE="+ns, "TESTSHIP_IMAGE_LINK="+image,
		"ENV_SET=link.message=changed by e2e", "KEEP_ENVIRONMENTS=always", "TESTSHIP_CHARTS=link")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestLink")) || !bytes.Contains(out, []byte("link: up to date (revision 2")) ||
		!bytes.Contains(out, []byte("link service at http://127.0.0.1:")) {
		t.Fatalf("link test from the host: %v\n%s", err, out)
	}
	t.Logf("link test from the host passed:\n%s", lastLines(out, 4))

	// 5. The link test from a pod, connecting (TESTSHIP_REMOTE) and using
	// the Service's DNS name.
	logs := runInPod(t, s, ns, testRef, env)
	if !strings.Contains(logs, "--- PASS: TestLink") || !strings.Contains(logs, "connected to environment in namespace "+ns) ||
		!strings.Contains(logs, "link service at http://link."+ns+".svc.cluster.local:80") {
		t.Fatalf("link test in a pod did not pass:\n%s", logs)
	}
	t.Logf("link test from a pod passed:\n%s", lastLines([]byte(logs), 4))
	if h := history(t, s, ns); len(h) != 2 {
		t.Errorf("the pod's run changed the release: %d revisions", len(h))
	}

	// 6. Destroy: nothing left.
	start = time.Now()
	if err := environment.Destroy(ctx, s.rc, ns, []string{"link"}, 3*time.Minute, tlog{t}); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	t.Logf("destroy: %s", time.Since(start).Round(time.Millisecond))
	if _, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s still there after destroy: %v", ns, err)
	}
	st, err := environment.GetStatus(ctx, s.rc, ns)
	if err != nil || st.Exists || len(st.Releases) != 0 {
		t.Errorf("status after destroy: %+v, %v", st, err)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runInPod runs the link test image in a pod of the environment's namespace
// as the remote runner would (TESTSHIP_REMOTE=true, TESTSHIP_ENVIRONMENT),
// with just the RBAC Connect and PodURLs need (no Secrets) and the
// restricted Pod Security Standard, and returns its log once it ends.
func runInPod(t *testing.T, s stack, ns, image string, env *environment.Environment) string {
	t.Helper()
	desc, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := "link-test"
	_, err = s.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list", "watch"}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
		ServiceAccountName: name, RestartPolicy: corev1.RestartPolicyNever,
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "test", Image: image, Args: []string{"-test.v", "-test.run", "^TestLink$"},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			Env: []corev1.EnvVar{{Name: "TESTSHIP_REMOTE", Value: "true"}, {Name: "TESTSHIP_NAMESPACE", Value: ns},
				{Name: environment.EnvDescription, Value: string(desc)}}}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	phase := corev1.PodPending
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok {
			phase = p.Status.Phase
			if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
				break
			}
		}
	}
	b, err := s.cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).Do(context.Background()).Raw()
	if err != nil {
		t.Fatalf("pod logs (phase %s): %v", phase, err)
	}
	if phase != corev1.PodSucceeded {
		t.Fatalf("test pod ended %s:\n%s", phase, b)
	}
	return string(b)
}

// TestDeployFailures: a chart error, a values error and an image that
// cannot be pulled each fail the deploy within its timeout, naming the
// chart, the object and the reason; the next deploy fixes each. A release
// left pending by a killed run is explained, and recovered once stale.
func TestDeployFailures(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	image := testimage.Main(t, s.registry, "link", "./tests/link/cmd/link")
	ns := namespace(t, s, "ts-e2e-envfail")
	good := func(step string) *environment.Environment {
		t.Helper()
		env, err := environment.Deploy(ctx, s.rc, opts(ns, image, 3*time.Minute, t))
		if err != nil {
			t.Fatalf("%s: the next good deploy did not fix it: %v", step, err)
		}
		if r := env.Release("link"); r.Status != "deployed" || r.Workloads[0].Ready != 2 {
			t.Fatalf("%s: after the fix: %+v", step, r)
		}
		return env
	}

	// Chart error: a template that does not parse, from a directory.
	dir := t.TempDir()
	brokenChart(t, filepath.Join(dir, "link"))
	o := opts(ns, image, time.Minute, t)
	o.Charts = []config.ChartRef{{Name: "link", Source: filepath.Join(dir, "link")}}
	_, err := environment.Deploy(ctx, s.rc, o)
	wantErr(t, "chart error", err, "chart link", "deployment.yaml")
	good("chart error")

	// Values error caught by the chart's schema.
	o = opts(ns, image, time.Minute, t)
	o.Values = map[string]map[string]any{"link": {"replicas": "two"}}
	_, err = environment.Deploy(ctx, s.rc, o)
	wantErr(t, "values error (schema)", err, "chart link", "replicas")
	// Values error the API server rejects: the object is named.
	o.Values = map[string]map[string]any{"link": {"resources": map[string]any{"requests": map[string]any{"cpu": "lots"}}}}
	_, err = environment.Deploy(ctx, s.rc, o)
	wantErr(t, "values error (API)", err, "chart link", "Deployment", "link")
	good("values error")

	// An image that cannot be pulled: fails early with the reason.
	bad := s.registry + "/testship-e2e/does-not-exist:nope"
	o = opts(ns, bad, 2*time.Minute, t)
	start := time.Now()
	_, err = environment.Deploy(ctx, s.rc, o)
	took := time.Since(start)
	wantErr(t, "unpullable image", err, "chart link", "Deployment link", "for image "+bad)
	if !strings.Contains(err.Error(), "ImagePullBackOff") && !strings.Contains(err.Error(), "ErrImagePull") {
		t.Errorf("unpullable image: error lacks the pull reason: %v", err)
	}
	if took > 2*time.Minute+30*time.Second {
		t.Errorf("unpullable image: took %s, beyond the 2m timeout", took)
	}
	t.Logf("unpullable image reported after %s: %v", took.Round(time.Millisecond), err)
	if st, _ := environment.GetStatus(ctx, s.rc, ns); st == nil || len(st.Releases) != 1 || !strings.HasPrefix(st.Releases[0].Status, "failed") {
		t.Errorf("status after the failed deploy: %+v", st)
	}
	good("unpullable image")

	// Workloads ready, but a Service port has no endpoint (its target is a
	// named port no container has): the deploy waits for the endpoints and
	// fails at its timeout naming the Service and the port.
	dir = t.TempDir()
	copyChart(t, filepath.Join(dir, "link"), func(rel string, b []byte) []byte {
		if rel == filepath.Join("templates", "service.yaml") {
			b = append(bytes.TrimRight(b, "\n"), []byte("\n    - name: metrics\n      port: 9090\n      targetPort: nosuchport\n")...)
		}
		return b
	})
	o = opts(ns, image, 45*time.Second, t)
	o.Charts = []config.ChartRef{{Name: "link", Source: filepath.Join(dir, "link")}}
	env, err := environment.Deploy(ctx, s.rc, o)
	wantErr(t, "service without endpoints", err, "chart link", "Service link has no ready endpoint for port metrics (9090/TCP)", "ENV_TIMEOUT")
	if !errors.Is(err, environment.ErrNotReady) {
		t.Errorf("service without endpoints: %v is not ErrNotReady", err)
	}
	if env != nil && len(env.Releases) == 1 && env.Releases[0].Workloads[0].Ready != 2 {
		t.Errorf("service without endpoints: the workloads should be ready: %+v", env.Releases[0])
	}
	good("service without endpoints")

	// A release left pending by a killed run.
	cfg := new(action.Configuration)
	if err := cfg.Init(kube.NewGetter(s.rc, ns), ns, "secrets", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last("link")
	if err != nil {
		t.Fatal(err)
	}
	last.SetStatus(release.StatusPendingUpgrade, "simulated killed run")
	last.Info.LastDeployed = helmtime.Now()
	if err := cfg.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	o = opts(ns, image, 3*time.Minute, t)
	o.Set = "link.message=after pending"
	_, err = environment.Deploy(ctx, s.rc, o)
	wantErr(t, "fresh pending release", err, "pending-upgrade", "in progress", "env:destroy")
	last.Info.LastDeployed = helmtime.Time{Time: time.Now().Add(-time.Hour)}
	if err := cfg.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	env, err = environment.Deploy(ctx, s.rc, o)
	if err != nil || env.Release("link").Status != "deployed" {
		t.Fatalf("stale pending release was not recovered: %v", err)
	}
}

func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: deploy succeeded", what)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not mention %q: %v", what, p, err)
		}
	}
	t.Logf("%s: %v", what, err)
}

// brokenChart copies the embedded link chart to dir with a template that
// does not parse.
func brokenChart(t *testing.T, dir string) {
	t.Helper()
	copyChart(t, dir, func(rel string, b []byte) []byte {
		if rel == filepath.Join("templates", "deployment.yaml") {
			b = append(b, []byte("\n{{ .Values.image | nosuchfunction }}\n")...)
		}
		return b
	})
}

// copyChart copies the link chart to dir, passing each file (by its path in
// the chart) through edit.
func copyChart(t *testing.T, dir string, edit func(rel string, b []byte) []byte) {
	t.Helper()
	root := testimage.RepoRoot(t)
	src := filepath.Join(root, "charts", "link")
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), edit(rel, b), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
