package kube

import (
	"context"
	"k8s.io/apimachinery/pkg/util/validation"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.9.8.7:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600)
	t.Setenv("KUBECONFIG", kc)
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	c, err := Load()
	if err != nil || c.Source != SourceKubeconfigEnv || c.REST.Host != "https://10.9.8.7:6443" || c.InCluster() {
		t.Fatalf("KUBECONFIG wins over in-cluster: %+v, %v", c, err)
	}
	if c.REST.QPS < 50 {
		t.Errorf("QPS = %v", c.REST.QPS)
	}
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing"))
	if _, err := Load(); err == nil {
		t.Error("a KUBECONFIG naming a missing file was accepted")
	}
}

func TestGetterNamespace(t *testing.T) {
	g := NewGetter(&rest.Config{Host: "https://x"}, "ns1")
	ns, explicit, err := g.ToRawKubeConfigLoader().Namespace()
	if ns != "ns1" || !explicit || err != nil {
		t.Errorf("Namespace() = %s %v %v", ns, explicit, err)
	}
	rc, _ := g.ToRESTConfig()
	rc.Host = "changed"
	if g.Config.Host != "https://x" {
		t.Error("ToRESTConfig returned the shared config, not a copy")
	}
}

func TestServiceTarget(t *testing.T) {
	ready := corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	pod := func(name string, st corev1.PodStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "link"}},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			Status: st}
	}
	cs := fake.NewSimpleClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "link", Namespace: "ns"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "link"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}, {Port: 9090}}}},
		pod("a-not-ready", corev1.PodStatus{Phase: corev1.PodRunning}),
		pod("b-ready", ready),
	)
	p, port, err := ServiceTarget(context.Background(), cs, "ns", "link", 80)
	if err != nil || p.Name != "b-ready" || port != 8080 {
		t.Errorf("port 80 -> %v %d %v, want b-ready 8080", p, port, err)
	}
	if _, port, _ := ServiceTarget(context.Background(), cs, "ns", "link", 9090); port != 9090 {
		t.Errorf("port 9090 without targetPort -> %d", port)
	}
	if _, _, err := ServiceTarget(context.Background(), cs, "ns", "link", 81); err == nil {
		t.Error("unknown service port accepted")
	}
	pods, _ := ReadyPods(context.Background(), cs, "ns", "app=link")
	if len(pods) != 1 {
		t.Errorf("ready pods = %d", len(pods))
	}
}

func TestLabelValue(t *testing.T) {
	for _, s := range []string{"", "TestA", "./tests/link", strings.Repeat("a", 100), "^Test(A|B)$/sub test", "-x-", "dependabot[bot]"} {
		v := LabelValue(s)
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q: %v", s, v, errs)
		}
	}
	for _, valid := range []string{"TestA", "alice", "0123456789abcdef"} {
		if LabelValue(valid) != valid {
			t.Errorf("the valid label value %q was changed to %q", valid, LabelValue(valid))
		}
	}
	if LabelValue(strings.Repeat("a", 100)) == LabelValue(strings.Repeat("a", 101)) {
		t.Error("long values collide")
	}
	if LabelValue("a/b") == LabelValue("a_b") {
		t.Error("a cleaned value collides with the valid value it became")
	}
}

func TestDevKubeconfigFollowsDevDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TESTSHIP_DEV_DIR", dir)
	if got := DevKubeconfig(); got != filepath.Join(dir, "kubeconfig") {
		t.Fatalf("DevKubeconfig() = %q, want it under TESTSHIP_DEV_DIR %s", got, dir)
	}
	os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.1.2.3:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("HOME", t.TempDir())
	c, err := Load()
	if err != nil || c.Source != SourceDev || c.REST.Host != "https://10.1.2.3:6443" {
		t.Fatalf("Load() with only the dev stack's kubeconfig in TESTSHIP_DEV_DIR: %+v, %v", c, err)
	}
}
