package runner

import (
	"context"
	"sync"

	"github.com/testship/testship/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// podWatcher watches a run's pods (by the run-id label) and publishes the
// latest state of each, keyed by pod UID, with its completion index.
// UntilWithSync lists, then watches, and re-lists when a watch breaks; its
// condition never ends it, it only publishes.
type podWatcher struct {
	mu    sync.Mutex
	pods  map[types.UID]*podView
	order []types.UID // first seen first

	// changed gets a signal (coalesced) after every event.
	changed chan struct{}
	// done gets the watch's error when it ends.
	done chan error
}

// watchPods starts watching the pods of run id in namespace ns until ctx
// is done. indexed says whether pods carry a completion index; in a
// single-pod run every pod is index 0.
func watchPods(ctx context.Context, cs kubernetes.Interface, ns, id string, indexed bool) *podWatcher {
	w := &podWatcher{pods: map[types.UID]*podView{}, changed: make(chan struct{}, 1), done: make(chan error, 1)}
	sel := labels.SelectorFromSet(labels.Set{LabelRunID: id}).String()
	lw := &kube.ListWatch{ListWatch: cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return cs.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return cs.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}}
	go func() {
		_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
			if pod, ok := ev.Object.(*corev1.Pod); ok {
				w.publish(pod, ev.Type == watch.Deleted, indexed)
			}
			return false, nil
		})
		w.done <- err
	}()
	return w
}

func (w *podWatcher) publish(pod *corev1.Pod, deleted, indexed bool) {
	index := 0
	if indexed {
		i, ok := PodIndex(pod)
		if !ok {
			return // not a pod of the Job's indexes
		}
		index = i
	}
	w.mu.Lock()
	v, seen := w.pods[pod.UID]
	if !seen {
		v = &podView{}
		w.pods[pod.UID] = v
		w.order = append(w.order, pod.UID)
	}
	// A deleted pod stays deleted (a late update does not revive it).
	*v = podView{Pod: pod, Deleted: deleted || v.Deleted, Index: index}
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// snapshot returns every pod seen, first seen first.
func (w *podWatcher) snapshot() []podView {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]podView, 0, len(w.order))
	for _, uid := range w.order {
		out = append(out, *w.pods[uid])
	}
	return out
}

// pod returns the latest state of the pod with uid.
func (w *podWatcher) pod(uid types.UID) *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.pods[uid]; ok {
		return v.Pod
	}
	return nil
}
