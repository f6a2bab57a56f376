//go:build e2e

package environment_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/kube"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func suffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// foreignNamespace creates a namespace without testship's marker (someone
// else's), removed when the test ends by the test itself.
func foreignNamespace(t *testing.T, s stack, name string, annotations map[string]string) {
	t.Helper()
	ctx := context.Background()
	_, err := s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"team": "someone-else"}, Annotations: annotations}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// installForeign installs a tiny chart (one ConfigMap) as release name in
// ns with the Helm SDK, as another team would: without testship's marker.
func installForeign(t *testing.T, s stack, ns, name string) {
	t.Helper()
	cfg := new(action.Configuration)
	if err := cfg.Init(kube.NewGetter(s.rc, ns), ns, "secrets", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	ch := &chart.Chart{Metadata: &chart.Metadata{APIVersion: "v2", Name: "foreign", Version: "0.1.0"},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-data\ndata:\n  owner: someone-else\n")}}}
	in := action.NewInstall(cfg)
	in.Namespace, in.ReleaseName = ns, name
	if _, err := in.Run(ch, map[string]any{}); err != nil {
		t.Fatalf("install foreign release %s: %v", name, err)
	}
}

// releases lists the releases in ns (any state) by name.
func releases(t *testing.T, s stack, ns string) []string {
	t.Helper()
	cfg := new(action.Configuration)
	if err := cfg.Init(kube.NewGetter(s.rc, ns), ns, "secrets", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	l := action.NewList(cfg)
	l.All = true
	l.StateMask = action.ListAll
	l.SetStateMask()
	rels, err := l.Run()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rels {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}

// TestForeignNamespace: a namespace holding another team's Helm release and
// Secret. Deploying into it without ENV_USE_EXISTING_NAMESPACE is refused
// before anything is created; with it, link deploys, and destroy (asked to
// destroy both chart names) uninstalls only link: the foreign release, its
// ConfigMap, the Secret and the namespace are untouched. A foreign release
// with a chart's name is not taken over.
func TestForeignNamespace(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	image := testimage.Main(t, s.registry, "link", "./tests/link/cmd/link")
	ns := "ts-envsafe-foreign-" + suffix()
	foreignNamespace(t, s, ns, nil)
	_, err := s.cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "their-secret"},
		StringData: map[string]string{"password": "not yours"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	installForeign(t, s, ns, "db")
	charts := []string{"link", "db"}
	untouched := func(step string) {
		t.Helper()
		n, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || n.DeletionTimestamp != nil || n.Labels["team"] != "someone-else" || len(n.Labels) != 2 || len(n.Annotations) != 0 {
			t.Fatalf("%s: namespace changed: %+v, %v", step, n.ObjectMeta, err)
		}
		if sec, err := s.cs.CoreV1().Secrets(ns).Get(ctx, "their-secret", metav1.GetOptions{}); err != nil || string(sec.Data["password"]) != "not yours" {
			t.Fatalf("%s: the foreign Secret changed: %v", step, err)
		}
		if _, err := s.cs.CoreV1().ConfigMaps(ns).Get(ctx, "db-data", metav1.GetOptions{}); err != nil {
			t.Fatalf("%s: the foreign release's ConfigMap: %v", step, err)
		}
		if r := releases(t, s, ns); !slices.Contains(r, "db") {
			t.Fatalf("%s: the foreign release db is gone: %v", step, r)
		}
	}

	// Without the opt-in: refused, nothing created.
	o := opts(ns, image, 3*time.Minute, t)
	_, err = environment.Deploy(ctx, s.rc, o)
	var fe *environment.ForeignNamespaceError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "ENV_USE_EXISTING_NAMESPACE=true") {
		t.Fatalf("deploy into a foreign namespace without the opt-in: %v, want a ForeignNamespaceError", err)
	}
	t.Logf("refused: %v", err)
	if r := releases(t, s, ns); !slices.Equal(r, []string{"db"}) {
		t.Errorf("after the refusal the namespace holds releases %v, want only db", r)
	}
	if _, err := s.cs.AppsV1().Deployments(ns).Get(ctx, "link", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after the refusal Deployment link: %v", err)
	}
	untouched("refused deploy")

	// With the opt-in: deployed; destroy removes link only.
	o.Safety.UseExistingNamespace = true
	env, err := environment.Deploy(ctx, s.rc, o)
	if err != nil {
		t.Fatalf("deploy with ENV_USE_EXISTING_NAMESPACE=true: %v", err)
	}
	if env.Managed || env.NamespaceCreated || env.Release("link").Status != "deployed" {
		t.Errorf("deploy into a foreign namespace: %+v", env)
	}
	untouched("deploy")
	var out bytes.Buffer
	if err := environment.Destroy(ctx, s.rc, ns, charts, 3*time.Minute, &out); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	t.Logf("destroy:\n%s", out.String())
	for _, want := range []string{"link: uninstalled", "db: kept: not deployed by testship", "namespace " + ns + ": kept (not created by testship)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("destroy's output lacks %q", want)
		}
	}
	if r := releases(t, s, ns); !slices.Equal(r, []string{"db"}) {
		t.Errorf("after destroy the namespace holds releases %v, want only db", r)
	}
	untouched("destroy")

	// A foreign release named like one of the charts is not taken over.
	installForeign(t, s, ns, "link")
	_, err = environment.Deploy(ctx, s.rc, o)
	if err == nil || !strings.Contains(err.Error(), "already holds a release link that testship did not deploy") {
		t.Errorf("deploy over a foreign release named link: %v", err)
	}
	out.Reset()
	if err := environment.Destroy(ctx, s.rc, ns, charts, 3*time.Minute, &out); err != nil {
		t.Fatalf("second destroy: %v", err)
	}
	if r := releases(t, s, ns); !slices.Equal(r, []string{"db", "link"}) || !strings.Contains(out.String(), "link: kept: not deployed by testship") {
		t.Errorf("second destroy: releases %v, output:\n%s", r, out.String())
	}
	untouched("second destroy")
}

// TestKubeNamespacesRefused: kube-system (and any kube-*) is refused by
// Deploy and Destroy before anything is created.
func TestKubeNamespacesRefused(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	before, err := s.cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	o := environment.Options{Namespace: "kube-system", Charts: []config.ChartRef{{Name: "link"}}, Images: map[string]string{"link": "x"},
		Origin: environment.Origin{Owner: "e2e", Scope: "envsafe"}, Safety: config.EnvSafety{UseExistingNamespace: true}}
	_, err = environment.Deploy(ctx, s.rc, o)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Name != "ENV_NAMESPACE" || ce.Value != "kube-system" {
		t.Fatalf("deploy into kube-system: %v, want a config error naming ENV_NAMESPACE", err)
	}
	t.Logf("refused: %v", err)
	after, err := s.cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil || len(after.Items) != len(before.Items) {
		t.Errorf("Helm records in kube-system: %d before, %d after (%v)", len(before.Items), len(after.Items), err)
	}
	if _, err := s.cs.AppsV1().Deployments("kube-system").Get(ctx, "link", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment link in kube-system: %v", err)
	}
	if err := environment.Destroy(ctx, s.rc, "kube-system", []string{"link"}, time.Minute, nil); !errors.As(err, &ce) {
		t.Errorf("destroy kube-system: %v, want a refusal", err)
	}
	// A kube-* namespace that does not exist is not created.
	ns := "kube-ts-envsafe-" + suffix()
	o.Namespace = ns
	if _, err := environment.Deploy(ctx, s.rc, o); !errors.As(err, &ce) {
		t.Errorf("deploy into %s: %v, want a refusal", ns, err)
	}
	if _, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s was created: %v", ns, err)
	}
}

// tinyChart writes a chart with one ConfigMap to a directory.
func tinyChart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte("apiVersion: v2\nname: tiny\nversion: 0.1.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "templates", "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  a: b\n"), 0o644)
	return dir
}

// TestPruneExpired: env:prune's library removes an expired testship environment
// (deployed, then its expires-at set in the past) and keeps an unexpired
// one and a foreign namespace whose expires-at annotation is in the past;
// without confirmation it removes nothing. A deploy with a TTL records
// who, when and the expiry, and a redeploy with a shorter TTL does not
// shorten it; ExtendExpiry extends it.
func TestPruneExpired(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	dir := tinyChart(t)
	id := suffix()
	expired, fresh, foreign := "ts-envsafe-prune-old-"+id, "ts-envsafe-prune-new-"+id, "ts-envsafe-prune-foreign-"+id
	deploy := func(ns string, ttl time.Duration) *environment.Environment {
		t.Helper()
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			environment.Destroy(c, s.rc, ns, []string{"tiny"}, 3*time.Minute, nil)
		})
		env, err := environment.Deploy(ctx, s.rc, environment.Options{Namespace: ns, Charts: []config.ChartRef{{Name: "tiny", Source: dir}},
			Timeout: time.Minute, Origin: environment.Origin{Owner: "e2e-envsafe", Commit: "c0ffee", Trigger: "go-test", Scope: "prune"},
			Safety: config.EnvSafety{TTL: ttl, PodSecurity: "restricted"}, Out: tlog{t}})
		if err != nil {
			t.Fatalf("deploy %s: %v", ns, err)
		}
		return env
	}
	start := time.Now()
	deploy(expired, 10*time.Minute)
	deploy(fresh, 2*time.Hour)
	foreignNamespace(t, s, foreign, map[string]string{environment.AnnotationExpiresAt: "2020-01-01T00:00:00Z"})

	expiry := func(ns string) time.Time {
		t.Helper()
		n, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		exp, err := environment.ParseExpiry(n.Annotations[environment.AnnotationExpiresAt])
		if err != nil || n.Annotations[environment.AnnotationCreatedBy] != "e2e-envsafe" || n.Annotations[environment.AnnotationCreatedAt] == "" {
			t.Fatalf("namespace %s annotations %v (%v)", ns, n.Annotations, err)
		}
		return exp
	}
	if exp := expiry(fresh); exp.Before(start.Add(2*time.Hour-time.Second)) || exp.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("ENV_TTL=2h: expires at %s, deployed at %s", exp, start)
	}
	// A redeploy with a shorter TTL does not shorten the expiry.
	before := expiry(fresh)
	deploy(fresh, 10*time.Minute)
	if exp := expiry(fresh); !exp.Equal(before) {
		t.Errorf("a shorter TTL moved the expiry from %s to %s", before, exp)
	}
	// A detached run's deadline extends it.
	if err := environment.ExtendExpiry(ctx, s.cs, fresh, time.Now().Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if exp := expiry(fresh); exp.Before(time.Now().Add(3*time.Hour - time.Minute)) {
		t.Errorf("ExtendExpiry to +3h: expires at %s", exp)
	}
	if err := environment.ExtendExpiry(ctx, s.cs, foreign, time.Now().Add(3*time.Hour)); !errors.Is(err, environment.ErrNotTestship) {
		t.Errorf("ExtendExpiry of a foreign namespace: %v", err)
	}

	// Expire one environment.
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	_, err := s.cs.CoreV1().Namespaces().Patch(ctx, expired, "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"`+environment.AnnotationExpiresAt+`":"`+past+`"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	names, err := environment.Prune(ctx, s.cs, time.Now(), false, &out)
	t.Logf("prune (dry run):\n%s", out.String())
	if err != nil || !slices.Contains(names, expired) || slices.Contains(names, fresh) || slices.Contains(names, foreign) {
		t.Fatalf("dry run selected %v (%v)", names, err)
	}
	if n, err := s.cs.CoreV1().Namespaces().Get(ctx, expired, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("the dry run removed %s: %v", expired, err)
	}
	out.Reset()
	names, err = environment.Prune(ctx, s.cs, time.Now(), true, &out)
	t.Logf("prune (confirmed):\n%s", out.String())
	if err != nil || !slices.Contains(names, expired) || !strings.Contains(out.String(), "removed namespace "+expired) {
		t.Fatalf("prune removed %v (%v)", names, err)
	}
	if n, err := s.cs.CoreV1().Namespaces().Get(ctx, expired, metav1.GetOptions{}); err == nil && n.DeletionTimestamp == nil {
		t.Errorf("expired namespace %s is not being deleted", expired)
	}
	for _, keep := range []string{fresh, foreign} {
		if n, err := s.cs.CoreV1().Namespaces().Get(ctx, keep, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
			t.Errorf("prune touched %s: %v", keep, err)
		}
	}
	if r := releases(t, s, fresh); !slices.Equal(r, []string{"tiny"}) {
		t.Errorf("the unexpired environment's releases: %v", r)
	}
	st, err := environment.GetStatus(ctx, s.rc, fresh)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	st.Print(&out)
	if !strings.Contains(out.String(), "expires at ") || !strings.Contains(out.String(), "created by e2e-envsafe") {
		t.Errorf("env:status does not show the expiry:\n%s", out.String())
	}
	t.Logf("status:\n%s", out.String())
}

// TestNoCharts: TESTSHIP_CHARTS=none deploys the namespace alone (no Helm
// release), with testship's labels and expiry, and destroy removes it.
func TestNoCharts(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	t.Setenv(config.EnvCharts, config.NoCharts)
	charts, err := config.ParseCharts(config.Get(config.EnvCharts))
	if err != nil || len(charts) != 0 {
		t.Fatalf("ParseCharts(none) = %v, %v", charts, err)
	}
	ns := "ts-envsafe-nocharts-" + suffix()
	var out bytes.Buffer
	env, err := environment.Deploy(ctx, s.rc, environment.Options{Namespace: ns, Charts: charts,
		Origin: environment.Origin{Owner: "e2e", Scope: "nocharts"}, Out: &out})
	if err != nil {
		t.Fatalf("deploy with no charts: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { s.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if !env.NamespaceCreated || len(env.Releases) != 0 {
		t.Errorf("environment = %+v, want a created namespace and no releases", env)
	}
	n, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || !environment.IsTestshipNamespace(n) || n.Annotations["testship.dev/expires-at"] == "" {
		t.Fatalf("namespace %s: %v, labels %v, annotations %v", ns, err, n.Labels, n.Annotations)
	}
	if got := releases(t, s, ns); len(got) != 0 {
		t.Errorf("releases in %s: %v, want none", ns, got)
	}
	if err := environment.Destroy(ctx, s.rc, ns, nil, 2*time.Minute, &out); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if _, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after destroy: %v", ns, err)
	}
}
