//go:build e2e

package devstack_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/devstack"
)

// probeImage builds testdata/probe statically, puts it in an image FROM
// scratch with the Docker Engine API and pushes it to the local registry.
func probeImage(t *testing.T, ctx context.Context) string {
	t.Helper()
	e2e.Docker(t)
	reg := e2e.Registry(t)
	dir := t.TempDir()
	gobuild := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "probe"), "./testdata/probe")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	var buildCtx bytes.Buffer
	tw := tar.NewWriter(&buildCtx)
	for name, body := range map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY probe /probe\nUSER 65532\nENTRYPOINT [\"/probe\"]\n"),
		"probe":      bin,
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))})
		tw.Write(body)
	}
	tw.Close()

	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	// Tagged by content: reruns reuse the tag (no registry growth), a
	// changed probe gets a new one (the kubelet never runs a stale copy).
	ref := fmt.Sprintf("%s/testship-e2e/probe:%x", reg, sha256.Sum256(bin))[:len(reg)+len("/testship-e2e/probe:")+16]
	resp, err := dc.ImageBuild(ctx, &buildCtx, build.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("docker build: %v", err)
	}
	var log bytes.Buffer
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, &log, 0, false, nil)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		dc.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	push, err := dc.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: base64.URLEncoding.EncodeToString([]byte("{}"))})
	if err != nil {
		t.Fatalf("docker push %s: %v", ref, err)
	}
	log.Reset()
	err = jsonmessage.DisplayJSONMessagesStream(push, &log, 0, false, nil)
	push.Close()
	if err != nil {
		t.Fatalf("docker push %s: %v\n%s", ref, err, log.String())
	}
	return ref
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e2e.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// namespace creates a namespace for one test and deletes it at the end.
func namespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "devstack-e2e-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	// Pods need the namespace's default ServiceAccount.
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", ns.Name, err)
	}
	return ns.Name
}

func job(name, img string, args []string, sa string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:      corev1.RestartPolicyNever,
				ServiceAccountName: sa,
				Containers:         []corev1.Container{{Name: "probe", Image: img, Args: args}},
			}},
		},
	}
}

// finish waits for the Job's Complete or Failed condition and returns it
// with the Job's pod.
func finish(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name string) (batchv1.JobCondition, corev1.Pod) {
	t.Helper()
	var cond batchv1.JobCondition
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
				cond = c
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("job %s/%s did not finish: %v\n%s", ns, name, err, describePods(cs, ns))
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of job %s: %v (%d pods)", name, err, len(pods.Items))
	}
	return cond, pods.Items[0]
}

func logs(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, pod string) string {
	t.Helper()
	raw, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s: %v", pod, err)
	}
	return string(raw)
}

func describePods(cs kubernetes.Interface, ns string) string {
	var b strings.Builder
	pods, _ := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: phase %s\n", p.Name, p.Status.Phase)
		for _, s := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "  container %s: %+v\n", s.Name, s.State)
		}
	}
	evs, _ := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: fields.Everything().String()})
	for _, e := range evs.Items {
		fmt.Fprintf(&b, "event %s %s: %s\n", e.InvolvedObject.Name, e.Reason, e.Message)
	}
	return b.String()
}

// TestClusterRunsImagesFromLocalRegistry is the local stack's proof: an
// image built with the Docker Engine API and pushed to the local registry
// runs as a Job whose exit code, logs and Failed condition come back; a pod
// lists pods through the kubernetes Service with its ServiceAccount; a pod
// resolves a Service by DNS name and reaches the pod behind it.
func TestClusterRunsImagesFromLocalRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	img := probeImage(t, ctx)
	cs := clientset(t)
	ns := namespace(t, cs)

	t.Run("job exit code 3", func(t *testing.T) {
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job("exit3", img, []string{"exit3"}, ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cond, pod := finish(t, ctx, cs, ns, "exit3")
		if cond.Type != batchv1.JobFailed {
			t.Errorf("job condition %s (%s), want Failed", cond.Type, cond.Message)
		}
		if len(pod.Status.ContainerStatuses) != 1 || pod.Status.ContainerStatuses[0].State.Terminated == nil {
			t.Fatalf("container not terminated: %+v", pod.Status.ContainerStatuses)
		}
		if code := pod.Status.ContainerStatuses[0].State.Terminated.ExitCode; code != 3 {
			t.Errorf("exit code %d, want 3", code)
		}
		out := logs(t, ctx, cs, ns, pod.Name)
		for _, want := range []string{"probe: hello on stdout", "probe: hello on stderr, exiting 3"} {
			if !strings.Contains(out, want) {
				t.Errorf("logs lack %q:\n%s", want, out)
			}
		}
	})

	t.Run("in-cluster client lists pods", func(t *testing.T) {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "lister"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-lister"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "lister"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-lister"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "lister", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job("list-pods", img, []string{"list-pods"}, "lister"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cond, pod := finish(t, ctx, cs, ns, "list-pods")
		out := logs(t, ctx, cs, ns, pod.Name)
		if cond.Type != batchv1.JobComplete {
			t.Fatalf("job condition %s (%s), want Complete; logs:\n%s", cond.Type, cond.Message, out)
		}
		if !strings.Contains(out, "apiserver https://10.0.0.1:443") || !strings.Contains(out, "pod "+pod.Name) {
			t.Errorf("want the apiserver at 10.0.0.1:443 and its own pod %s in the list; logs:\n%s", pod.Name, out)
		}

		// The same without the Role's permission must be refused: RBAC is on.
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job("list-pods-denied", img, []string{"list-pods"}, ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cond, pod = finish(t, ctx, cs, ns, "list-pods-denied")
		out = logs(t, ctx, cs, ns, pod.Name)
		if cond.Type != batchv1.JobFailed || !strings.Contains(out, "forbidden") {
			t.Errorf("default ServiceAccount listing pods: condition %s, logs:\n%s; want Failed and forbidden", cond.Type, out)
		}
	})

	t.Run("service by DNS name", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: img, Args: []string{"serve"},
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{Selector: labels,
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		host := "web." + ns + ".svc.cluster.local"
		if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job("fetch", img, []string{"fetch", host}, ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cond, pod := finish(t, ctx, cs, ns, "fetch")
		out := logs(t, ctx, cs, ns, pod.Name)
		if cond.Type != batchv1.JobComplete {
			t.Fatalf("fetch %s: condition %s, logs:\n%s\n%s", host, cond.Type, out, describePods(cs, ns))
		}
		if !strings.Contains(out, "resolved "+svc.Spec.ClusterIP+"\n") {
			t.Errorf("%s should resolve to the Service's ClusterIP %s; logs:\n%s", host, svc.Spec.ClusterIP, out)
		}
		if !strings.Contains(out, "body hello from web") {
			t.Errorf("want the web pod's answer through the Service; logs:\n%s", out)
		}
	})
}

func options(t *testing.T) devstack.Options {
	c, err := config.LoadDev()
	if err != nil {
		t.Fatal(err)
	}
	return devstack.OptionsFromConfig(c, testWriter{t})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestUpTwiceStartsNothing: on a running stack, Up finds every component
// healthy and changes nothing.
func TestUpTwiceStartsNothing(t *testing.T) {
	e2e.Kubeconfig(t)
	ctx := context.Background()
	o := options(t)
	rep, err := devstack.Up(ctx, o)
	if err != nil {
		t.Fatalf("Up on the running stack: %v", err)
	}
	if ch := rep.Changed(); len(ch) != 0 {
		t.Errorf("Up on a running stack changed %v, want nothing: %s", ch, rep.Summary("changed"))
	}
	if !strings.HasPrefix(rep.Summary("started"), "nothing to do") {
		t.Errorf("summary %q should say there was nothing to do", rep.Summary("started"))
	}
	rows, err := devstack.Status(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if !r.Healthy() {
			t.Errorf("status of %s: %s (%s)", r.Name, r.State, r.Detail)
		}
	}
}

// BenchmarkUpWhenRunning measures the no-op dev:up on a healthy stack (every
// health check, nothing started).
func BenchmarkUpWhenRunning(b *testing.B) {
	e2e.Kubeconfig(b)
	c, err := config.LoadDev()
	if err != nil {
		b.Fatal(err)
	}
	o := devstack.OptionsFromConfig(c, io.Discard)
	for b.Loop() {
		rep, err := devstack.Up(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		if ch := rep.Changed(); len(ch) != 0 {
			b.Fatalf("Up on a running stack changed %v", ch)
		}
	}
}
