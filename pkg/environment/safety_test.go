package environment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestCheckNamespace(t *testing.T) {
	for _, ns := range []string{"kube-system", "kube-public", "kube-node-lease", "kube-anything"} {
		if err := CheckNamespace(ns); err == nil || !strings.Contains(err.Error(), "ENV_NAMESPACE") || !strings.Contains(err.Error(), ns) {
			t.Errorf("CheckNamespace(%q) = %v, want a refusal naming ENV_NAMESPACE", ns, err)
		}
	}
	for _, ns := range []string{"ts-alice-main", "kubeflow", "my-kube-tests"} {
		if err := CheckNamespace(ns); err != nil {
			t.Errorf("CheckNamespace(%q) = %v", ns, err)
		}
	}
	if CheckNamespace("Bad_Name") == nil {
		t.Error("an invalid name passed")
	}
}

func labelled(name string, labels map[string]string) *release.Release {
	return &release.Release{Name: name, Version: 1, Labels: labels, Info: &release.Info{Status: release.StatusDeployed}}
}

func TestSelectUninstall(t *testing.T) {
	rels := []*release.Release{
		labelled("link", map[string]string{LabelManagedBy: ManagedBy, LabelDigest: "d"}),
		labelled("legacy", map[string]string{LegacyLabelDigest: "d"}),         // deployed before the marker label
		labelled("db", map[string]string{}),                                   // someone else's, named like a chart
		labelled("theirs", map[string]string{"owner": "helm"}),                // someone else's
		labelled("other", map[string]string{LabelManagedBy: ManagedBy}),       // testship's, another chart set
		labelled("spoof", map[string]string{LabelManagedBy: "Helm", "x": ""}), // Helm's own value is no marker
	}
	un, kept := SelectUninstall(rels, []string{"link", "legacy", "db", "spoof"})
	var names []string
	for _, r := range un {
		names = append(names, r.Name)
	}
	if !reflect.DeepEqual(names, []string{"link", "legacy"}) {
		t.Errorf("uninstall %v, want [link legacy]", names)
	}
	want := map[string]string{"db": "not deployed by testship", "theirs": "not deployed by testship", "spoof": "not deployed by testship",
		"other": "not one of the environment's charts (TESTSHIP_CHARTS)"}
	if !reflect.DeepEqual(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
}

func TestDecideLegacyDigest(t *testing.T) {
	last := labelled("link", map[string]string{LegacyLabelDigest: "d"})
	if got := Decide(last, "d"); got != UpToDate {
		t.Errorf("a release with the legacy digest label: %s, want up to date", got)
	}
}

func TestExtendedExpiry(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	later := now.Add(6 * time.Hour)
	cases := []struct {
		current string
		until   time.Time
		want    string
		changed bool
	}{
		{"", later, "2026-11-28T16:00:00Z", true},
		{"garbage", later, "2026-11-28T16:00:00Z", true},
		{"2026-11-28T12:00:00Z", later, "2026-11-28T16:00:00Z", true},           // extended
		{"2026-11-29T00:00:00Z", later, "2026-11-29T00:00:00Z", false},          // never shortened
		{"2026-11-28T16:00:00Z", later, "2026-11-28T16:00:00Z", false},          // equal
		{"2026-11-28T17:00:00+02:00", later, "2026-11-28T16:00:00Z", true},      // 15:00 UTC
		{"", later.In(time.FixedZone("X", 3600)), "2026-11-28T16:00:00Z", true}, // written in UTC
	}
	for _, c := range cases {
		got, changed := ExtendedExpiry(c.current, c.until)
		if got != c.want || changed != c.changed {
			t.Errorf("ExtendedExpiry(%q, %s) = %q, %v; want %q, %v", c.current, c.until, got, changed, c.want, c.changed)
		}
	}
	if _, err := ParseExpiry("tomorrow"); err == nil || !strings.Contains(err.Error(), AnnotationExpiresAt) {
		t.Errorf("ParseExpiry(tomorrow) = %v", err)
	}
}

func ns(name string, labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: k8stypes.UID("uid-" + name), Labels: labels, Annotations: annotations}}
}

var mark = map[string]string{LabelManagedBy: ManagedBy}

func TestExtendExpiry(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewSimpleClientset(
		ns("ts-a", mark, map[string]string{AnnotationExpiresAt: "2026-11-28T12:00:00Z"}),
		ns("theirs", nil, nil),
	)
	until := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	if err := ExtendExpiry(ctx, cs, "ts-a", until); err != nil {
		t.Fatal(err)
	}
	n, _ := cs.CoreV1().Namespaces().Get(ctx, "ts-a", metav1.GetOptions{})
	if got := n.Annotations[AnnotationExpiresAt]; got != "2026-11-28T20:00:00Z" {
		t.Errorf("after extending: expires-at %q", got)
	}
	// Never shortens.
	if err := ExtendExpiry(ctx, cs, "ts-a", until.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, _ = cs.CoreV1().Namespaces().Get(ctx, "ts-a", metav1.GetOptions{})
	if got := n.Annotations[AnnotationExpiresAt]; got != "2026-11-28T20:00:00Z" {
		t.Errorf("an earlier deadline shortened the expiry to %q", got)
	}
	// Someone else's namespace is refused and left unchanged.
	err := ExtendExpiry(ctx, cs, "theirs", until)
	if !errors.Is(err, ErrNotTestship) {
		t.Errorf("foreign namespace: %v, want ErrNotTestship", err)
	}
	n, _ = cs.CoreV1().Namespaces().Get(ctx, "theirs", metav1.GetOptions{})
	if len(n.Annotations) != 0 {
		t.Errorf("foreign namespace annotated: %v", n.Annotations)
	}
	// KeepUntil (a detached run): the foreign namespace is no error and
	// stays unchanged; a missing one is an error.
	if err := KeepUntil(ctx, cs, "theirs", until); err != nil {
		t.Errorf("KeepUntil of a foreign namespace: %v", err)
	}
	if n, _ = cs.CoreV1().Namespaces().Get(ctx, "theirs", metav1.GetOptions{}); len(n.Annotations) != 0 {
		t.Errorf("KeepUntil annotated a foreign namespace: %v", n.Annotations)
	}
	if err := KeepUntil(ctx, cs, "ts-a", until.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, _ = cs.CoreV1().Namespaces().Get(ctx, "ts-a", metav1.GetOptions{}); n.Annotations[AnnotationExpiresAt] != "2026-11-28T21:00:00Z" {
		t.Errorf("KeepUntil: expires-at %q", n.Annotations[AnnotationExpiresAt])
	}
	if err := KeepUntil(ctx, cs, "gone", until); err == nil {
		t.Error("KeepUntil of a missing namespace: no error")
	}
}

func TestSelectExpired(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	past, future := "2026-11-28T09:00:00Z", "2026-11-28T11:00:00Z"
	gone := metav1.Now()
	deleting := *ns("ts-deleting", mark, map[string]string{AnnotationExpiresAt: past})
	deleting.DeletionTimestamp = &gone
	nss := []corev1.Namespace{
		*ns("ts-old", mark, map[string]string{AnnotationExpiresAt: past, AnnotationCreatedBy: "alice"}),
		*ns("ts-older", mark, map[string]string{AnnotationExpiresAt: "2026-11-27T09:00:00Z"}),
		*ns("ts-fresh", mark, map[string]string{AnnotationExpiresAt: future}),
		*ns("ts-legacy", mark, nil),                                      // no expiry: never pruned
		*ns("theirs", nil, map[string]string{AnnotationExpiresAt: past}), // no marker
		*ns("theirs-helm", map[string]string{LabelManagedBy: "Helm"}, map[string]string{AnnotationExpiresAt: past}),
		*ns("kube-x", mark, map[string]string{AnnotationExpiresAt: past}),   // never kube-*
		*ns("ts-bad", mark, map[string]string{AnnotationExpiresAt: "soon"}), // unreadable
		deleting,
	}
	got, bad := SelectExpired(nss, now)
	var names []string
	for _, e := range got {
		names = append(names, e.Namespace)
	}
	if !reflect.DeepEqual(names, []string{"ts-older", "ts-old"}) {
		t.Errorf("expired %v, want [ts-older ts-old]", names)
	}
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "ts-bad: ") {
		t.Errorf("unreadable %v", bad)
	}
	if got[1].CreatedBy != "alice" {
		t.Errorf("created-by %q", got[1].CreatedBy)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	objs := []runtime.Object{
		ns("ts-old", mark, map[string]string{AnnotationExpiresAt: "2026-11-28T09:00:00Z"}),
		ns("ts-fresh", mark, map[string]string{AnnotationExpiresAt: "2026-11-28T11:00:00Z"}),
		ns("theirs", nil, map[string]string{AnnotationExpiresAt: "2026-11-28T09:00:00Z"}),
	}
	cs := fake.NewSimpleClientset(objs...)
	var out bytes.Buffer
	names, err := Prune(ctx, cs, now, false, &out)
	if err != nil || !reflect.DeepEqual(names, []string{"ts-old"}) || !strings.Contains(out.String(), "would remove namespace ts-old") ||
		!strings.Contains(out.String(), "ENV_PRUNE_CONFIRM=true") {
		t.Fatalf("dry run: %v, %v\n%s", names, err, out.String())
	}
	if l, _ := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); len(l.Items) != 3 {
		t.Fatalf("the dry run deleted something: %d namespaces left", len(l.Items))
	}
	out.Reset()
	names, err = Prune(ctx, cs, now, true, &out)
	if err != nil || !reflect.DeepEqual(names, []string{"ts-old"}) || !strings.Contains(out.String(), "removed namespace ts-old") {
		t.Fatalf("confirmed: %v, %v\n%s", names, err, out.String())
	}
	for name, want := range map[string]bool{"ts-old": false, "ts-fresh": true, "theirs": true} {
		_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if (err == nil) != want {
			t.Errorf("namespace %s exists=%v after prune, want %v", name, err == nil, want)
		}
	}
	out.Reset()
	if names, err := Prune(ctx, cs, now, true, &out); err != nil || len(names) != 0 || !strings.Contains(out.String(), "no expired") {
		t.Errorf("second prune: %v, %v\n%s", names, err, out.String())
	}
}

func TestEnsureNamespace(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	o := Origin{Owner: "alice", Commit: "abc", Trigger: "local"}
	p := nsPolicy{podSecurity: "restricted", ttl: 2 * time.Hour, now: now}
	cs := fake.NewSimpleClientset(ns("theirs", map[string]string{"team": "x"}, nil))

	// Created: marker, owner, pod security, who/when/expiry.
	created, managed, err := ensureNamespace(ctx, cs, "ts-new", o, p)
	if err != nil || !created || !managed {
		t.Fatalf("create: %v %v %v", created, managed, err)
	}
	n, _ := cs.CoreV1().Namespaces().Get(ctx, "ts-new", metav1.GetOptions{})
	wantL := map[string]string{LabelManagedBy: ManagedBy, LabelOwner: "alice", LabelCommit: "abc", LabelTrigger: "local", LabelPodSecurity: "restricted"}
	wantA := map[string]string{AnnotationCreatedBy: "alice", AnnotationCreatedAt: "2026-11-28T10:00:00Z", AnnotationExpiresAt: "2026-11-28T12:00:00Z"}
	if !reflect.DeepEqual(n.Labels, wantL) || !reflect.DeepEqual(n.Annotations, wantA) {
		t.Errorf("new namespace labels %v annotations %v", n.Labels, n.Annotations)
	}

	// A later deploy extends the expiry; an earlier one never shortens it.
	p2 := p
	p2.now = now.Add(time.Hour)
	if _, _, err := ensureNamespace(ctx, cs, "ts-new", o, p2); err != nil {
		t.Fatal(err)
	}
	n, _ = cs.CoreV1().Namespaces().Get(ctx, "ts-new", metav1.GetOptions{})
	if got := n.Annotations[AnnotationExpiresAt]; got != "2026-11-28T13:00:00Z" || n.Annotations[AnnotationCreatedAt] != "2026-11-28T10:00:00Z" {
		t.Errorf("after a later deploy: %v", n.Annotations)
	}
	p3 := p
	p3.ttl = 10 * time.Minute
	if _, _, err := ensureNamespace(ctx, cs, "ts-new", o, p3); err != nil {
		t.Fatal(err)
	}
	n, _ = cs.CoreV1().Namespaces().Get(ctx, "ts-new", metav1.GetOptions{})
	if got := n.Annotations[AnnotationExpiresAt]; got != "2026-11-28T13:00:00Z" {
		t.Errorf("a shorter TTL shortened the expiry to %s", got)
	}

	// ENV_POD_SECURITY=off: no label.
	poff := p
	poff.podSecurity = "off"
	if _, _, err := ensureNamespace(ctx, cs, "ts-nopss", o, poff); err != nil {
		t.Fatal(err)
	}
	n, _ = cs.CoreV1().Namespaces().Get(ctx, "ts-nopss", metav1.GetOptions{})
	if _, ok := n.Labels[LabelPodSecurity]; ok {
		t.Errorf("pod security off, but labelled %v", n.Labels)
	}

	// Someone else's namespace: refused without the opt-in, used untouched with it.
	_, _, err = ensureNamespace(ctx, cs, "theirs", o, p)
	var fe *ForeignNamespaceError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "ENV_USE_EXISTING_NAMESPACE=true") {
		t.Errorf("foreign namespace without opt-in: %v", err)
	}
	pu := p
	pu.useExisting = true
	created, managed, err = ensureNamespace(ctx, cs, "theirs", o, pu)
	if err != nil || created || managed {
		t.Errorf("foreign namespace with opt-in: %v %v %v", created, managed, err)
	}
	n, _ = cs.CoreV1().Namespaces().Get(ctx, "theirs", metav1.GetOptions{})
	if !reflect.DeepEqual(n.Labels, map[string]string{"team": "x"}) || len(n.Annotations) != 0 {
		t.Errorf("foreign namespace changed: %v %v", n.Labels, n.Annotations)
	}
}

func TestFromDescription(t *testing.T) {
	env := &Environment{Namespace: "ts-a", Managed: true, Releases: []Release{{Name: "link", Chart: "link", ChartVersion: "0.1.0",
		Revision: 2, Status: "deployed", Digest: "d", Values: map[string]any{"image": "r/link@sha256:x", "replicas": float64(3)},
		Services: []Service{{Name: "link", Ports: []ServicePort{{Name: "http", Port: 80, Protocol: "TCP", TargetPort: "http"}}}}}}}
	b, err := env.Describe()
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromDescription(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, env) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, env)
	}
	for in, want := range map[string]string{
		"":                                  "TESTSHIP_ENVIRONMENT is empty",
		"{not json":                         "not a valid environment description",
		`{"releases":[]}`:                   "no namespace",
		`{"namespace":"a","releases":[{}]}`: "release 1 has no name",
	} {
		if _, err := FromDescription([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FromDescription(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestConnect(t *testing.T) {
	ctx := context.Background()
	env := Environment{Namespace: "ts-a", Releases: []Release{
		{Name: "link", Status: "deployed", Revision: 2, Services: []Service{{Name: "link"}}},
		{Name: "db", Status: "failed"},
	}}
	desc, _ := json.Marshal(env)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "link", Namespace: "ts-a"}}
	cs := fake.NewSimpleClientset(svc)
	var secretReads int
	cs.PrependReactor("*", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		secretReads++
		return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("no"))
	})
	got, err := Connect(ctx, cs, "ts-a", []string{"link"}, desc)
	if err != nil || len(got.Releases) != 1 || got.Releases[0].Revision != 2 {
		t.Fatalf("connect: %+v, %v", got, err)
	}
	if _, err := Connect(ctx, cs, "ts-a", []string{"link", "db", "cache"}, desc); err == nil ||
		!strings.Contains(err.Error(), "db (failed)") || !strings.Contains(err.Error(), "cache (not in TESTSHIP_ENVIRONMENT)") {
		t.Errorf("missing charts: %v", err)
	}
	if _, err := Connect(ctx, cs, "ts-b", []string{"link"}, desc); err == nil || !strings.Contains(err.Error(), "describes namespace ts-a") {
		t.Errorf("other namespace: %v", err)
	}
	if _, err := Connect(ctx, cs, "ts-a", []string{"link"}, nil); err == nil || !strings.Contains(err.Error(), "TESTSHIP_ENVIRONMENT is empty") {
		t.Errorf("no description: %v", err)
	}
	cs.CoreV1().Services("ts-a").Delete(ctx, "link", metav1.DeleteOptions{})
	if _, err := Connect(ctx, cs, "ts-a", []string{"link"}, desc); err == nil || !strings.Contains(err.Error(), "Service link does not exist") {
		t.Errorf("Service gone: %v", err)
	}
	if secretReads != 0 {
		t.Errorf("Connect read Secrets %d times", secretReads)
	}
}
