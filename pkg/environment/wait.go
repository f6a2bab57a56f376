package environment

import (
	"context"
	"errors"
	"fmt"
	"github.com/testship/testship/pkg/kube"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Workload is an object of a release whose readiness testship waits for.
type Workload struct {
	Kind, Name string
}

func (w Workload) String() string { return w.Kind + " " + w.Name }

// workloads lists the Deployments, StatefulSets and DaemonSets in a rendered
// release manifest, in a stable order.
func workloads(manifest string) []Workload {
	var out []Workload
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal([]byte(doc), &head) != nil {
			continue
		}
		switch head.Kind {
		case "Deployment", "StatefulSet", "DaemonSet":
			out = append(out, Workload{Kind: head.Kind, Name: head.Metadata.Name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// WorkloadState is one workload's readiness, as env:status shows it.
type WorkloadState struct {
	Workload
	Ready, Want int
	OK          bool
	Problem     string // the most telling reason it is not ready, if known
	Fatal       bool   // the problem will not go away by waiting
}

// fatalWaiting are container waiting reasons that waiting will not cure.
var fatalWaiting = map[string]bool{
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CreateContainerConfigError": true,
}

// inspect reports the readiness of one workload and, when it is not ready,
// the most telling problem of its current pods.
func inspect(ctx context.Context, cs kubernetes.Interface, ns string, w Workload) (WorkloadState, error) {
	st := WorkloadState{Workload: w}
	var selector *metav1.LabelSelector
	var podFilter func(*corev1.Pod) bool
	var observed bool
	switch w.Kind {
	case "Deployment":
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return st, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st.Want, st.Ready = int(want), int(d.Status.ReadyReplicas)
		st.OK = d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
			d.Status.Replicas == want && d.Status.AvailableReplicas == want
		selector = d.Spec.Selector
		observed = d.Status.ObservedGeneration >= d.Generation
		for _, c := range d.Status.Conditions {
			if !observed || st.OK {
				break
			}
			if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
				st.Problem, st.Fatal = "progress deadline exceeded: "+c.Message, true
			}
			if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
				st.Problem = "cannot create pods: " + c.Message
			}
		}
		podFilter = currentReplicaSet(ctx, cs, d)
	case "StatefulSet":
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return st, err
		}
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		st.Want, st.Ready = int(want), int(s.Status.ReadyReplicas)
		st.OK = s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas == want &&
			s.Status.UpdatedReplicas == want && (s.Status.UpdateRevision == "" || s.Status.CurrentRevision == s.Status.UpdateRevision)
		selector = s.Spec.Selector
		observed = s.Status.ObservedGeneration >= s.Generation
		rev := s.Status.UpdateRevision
		podFilter = func(p *corev1.Pod) bool { return rev == "" || p.Labels["controller-revision-hash"] == rev }
	case "DaemonSet":
		d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return st, err
		}
		st.Want, st.Ready = int(d.Status.DesiredNumberScheduled), int(d.Status.NumberReady)
		st.OK = d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedNumberScheduled == d.Status.DesiredNumberScheduled &&
			d.Status.NumberReady == d.Status.DesiredNumberScheduled
		selector = d.Spec.Selector
		observed = d.Status.ObservedGeneration >= d.Generation
		podFilter = func(*corev1.Pod) bool { return true }
	default:
		return st, fmt.Errorf("cannot wait for %s", w)
	}
	if st.OK || selector == nil {
		return st, nil
	}
	if !observed {
		// The controller has not acted on the new spec yet: the pods that
		// exist belong to the previous revision and say nothing about this
		// one (a fix for a broken image must not fail on the broken pods).
		st.Problem = "waiting for the controller to observe the new spec"
		return st, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return st, err
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return st, err
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || !podFilter(p) {
			continue
		}
		if msg, fatal := podProblem(p); msg != "" && (st.Problem == "" || fatal) {
			st.Problem, st.Fatal = msg, fatal || st.Fatal
			if fatal {
				break
			}
		}
	}
	return st, nil
}

// currentReplicaSet returns a filter keeping the pods of the Deployment's
// newest ReplicaSet, so pods of an old, broken revision that are going away
// do not fail a deploy that fixed them.
func currentReplicaSet(ctx context.Context, cs kubernetes.Interface, d *appsv1.Deployment) func(*corev1.Pod) bool {
	all := func(*corev1.Pod) bool { return true }
	rev := d.Annotations["deployment.kubernetes.io/revision"]
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if rev == "" || err != nil {
		return all
	}
	rss, err := cs.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return all
	}
	for _, rs := range rss.Items {
		if rs.Annotations["deployment.kubernetes.io/revision"] == rev && metav1.IsControlledBy(&rs, d) {
			hash := rs.Labels["pod-template-hash"]
			return func(p *corev1.Pod) bool { return p.Labels["pod-template-hash"] == hash }
		}
	}
	return all
}

// podProblem describes why a pod is not ready, and whether waiting is
// pointless: an image that cannot be pulled, a bad container config, or a
// container that keeps crashing.
func podProblem(p *corev1.Pod) (string, bool) {
	images := map[string]string{}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		images[c.Name] = c.Image
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		where := fmt.Sprintf("pod %s container %s", p.Name, cs.Name)
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			msg := fmt.Sprintf("%s: %s", where, w.Reason)
			if strings.Contains(w.Reason, "Image") {
				msg = fmt.Sprintf("%s: %s for image %s", where, w.Reason, images[cs.Name])
			}
			if w.Reason == "CrashLoopBackOff" {
				if t := cs.LastTerminationState.Terminated; t != nil {
					msg += fmt.Sprintf(" (last exit code %d, %s)", t.ExitCode, t.Reason)
				}
				if w.Message != "" {
					msg += ": " + firstLine(w.Message)
				}
				return msg, cs.RestartCount >= 3
			}
			if w.Message != "" {
				msg += ": " + firstLine(w.Message)
			}
			return msg, fatalWaiting[w.Reason]
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("%s: exited with code %d (%s)", where, t.ExitCode, t.Reason), false
		}
		if cs.State.Running != nil && !cs.Ready {
			return fmt.Sprintf("%s: running but not ready (readiness probe failing)", where), false
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("pod %s: not scheduled: %s %s", p.Name, c.Reason, c.Message), false
		}
	}
	return "", false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// ErrNotReady is wrapped by readiness failures.
var ErrNotReady = errors.New("workloads not ready")

// waitReady waits until every workload is ready, driven by watches on the
// namespace's pods and workloads (no polling). It fails early on a problem
// waiting will not cure, and at the timeout with the last problem seen; both
// errors name the chart, the object and the reason. Then, within the same
// timeout, it waits until the named Services have ready endpoints (see
// waitEndpoints). A chart without workloads waits for nothing: its Services'
// selectors, if any, point at pods it does not own.
func waitReady(ctx context.Context, cs kubernetes.Interface, ns, chartName string, ws []Workload, svcs []string, timeout time.Duration) ([]WorkloadState, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	states, err := waitWorkloads(ctx, cs, ns, chartName, ws, timeout)
	if err != nil {
		return states, err
	}
	return states, waitEndpoints(ctx, cs, ns, chartName, svcs, timeout)
}

// waitWorkloads is waitReady's wait for the workloads; ctx carries the
// timeout.
func waitWorkloads(ctx context.Context, cs kubernetes.Interface, ns, chartName string, ws []Workload, timeout time.Duration) ([]WorkloadState, error) {
	// The watches end with this wait, not with the whole of waitReady.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	events := make(chan struct{}, 1)
	kick := func() {
		select {
		case events <- struct{}{}:
		default:
		}
	}
	kinds := map[string]bool{"Pod": true}
	for _, w := range ws {
		kinds[w.Kind] = true
	}
	for kind := range kinds {
		go watchKind(ctx, cs, ns, kind, kick)
	}

	var states []WorkloadState
	for {
		states = states[:0]
		ready := true
		for _, w := range ws {
			st, err := inspect(ctx, cs, ns, w)
			if err != nil && ctx.Err() == nil {
				if apierrors.IsNotFound(err) {
					st.Problem = "does not exist yet"
				} else {
					return nil, fmt.Errorf("chart %s: %s: %w", chartName, w, err)
				}
			}
			states = append(states, st)
			if st.Fatal {
				return states, fmt.Errorf("chart %s: %s in namespace %s cannot become ready: %s: %w", chartName, w, ns, st.Problem, ErrNotReady)
			}
			ready = ready && st.OK
		}
		if ready {
			return states, nil
		}
		select {
		case <-events:
		case <-ctx.Done():
			return states, notReadyError(chartName, ns, states, timeout, ctx)
		}
	}
}

func notReadyError(chartName, ns string, states []WorkloadState, timeout time.Duration, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("chart %s: waiting for readiness: %w", chartName, ctx.Err())
	}
	var parts []string
	for _, st := range states {
		if st.OK {
			continue
		}
		p := fmt.Sprintf("%s: %d/%d ready", st.Workload, st.Ready, st.Want)
		if st.Problem != "" {
			p += "; " + st.Problem
		}
		parts = append(parts, p)
	}
	return fmt.Errorf("chart %s: not ready in namespace %s after %s (ENV_TIMEOUT): %s: %w",
		chartName, ns, timeout, strings.Join(parts, "; "), ErrNotReady)
}

// watchKind calls kick on every change of objects of kind in ns until ctx
// ends; client-go's UntilWithSync lists, watches and re-lists when a watch
// breaks, so no change between two watches is lost.
func watchKind(ctx context.Context, cs kubernetes.Interface, ns, kind string, kick func()) {
	var obj runtime.Object
	var list func(context.Context, metav1.ListOptions) (runtime.Object, error)
	var watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)
	switch kind {
	case "Pod":
		obj = &corev1.Pod{}
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.CoreV1().Pods(ns).List(ctx, o)
		}
		watchFn = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Pods(ns).Watch(ctx, o)
		}
	case "Deployment":
		obj = &appsv1.Deployment{}
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.AppsV1().Deployments(ns).List(ctx, o)
		}
		watchFn = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.AppsV1().Deployments(ns).Watch(ctx, o)
		}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.AppsV1().StatefulSets(ns).List(ctx, o)
		}
		watchFn = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.AppsV1().StatefulSets(ns).Watch(ctx, o)
		}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.AppsV1().DaemonSets(ns).List(ctx, o)
		}
		watchFn = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.AppsV1().DaemonSets(ns).Watch(ctx, o)
		}
	default:
		return
	}
	lw := &kube.ListWatch{ListWatch: cache.ListWatch{ListWithContextFunc: list, WatchFuncWithContext: watchFn}}
	_, _ = watchtools.UntilWithSync(ctx, lw, obj, func(cache.Store) (bool, error) {
		kick()
		return false, nil
	}, func(watch.Event) (bool, error) {
		kick()
		return false, nil
	})
}
