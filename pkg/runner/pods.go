package runner

import (
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// PodIndex is a pod's index in its run: the Indexed Job's completion index
// (label or annotation batch.kubernetes.io/job-completion-index), 0 for
// the pod of a single-pod run; ok is false when the pod carries an index
// that is not a number.
func PodIndex(pod *corev1.Pod) (i int, ok bool) {
	v, set := pod.Labels[batchv1.JobCompletionIndexAnnotation]
	if !set {
		v, set = pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	}
	if !set {
		return 0, true
	}
	i, err := strconv.Atoi(v)
	return i, err == nil && i >= 0
}

// PodsByIndex picks the current pod of each index among a run's pods: of
// several with one index (a replacement), the newest. Pods without a
// valid index, or with one ≥ n, are left out.
func PodsByIndex(pods []corev1.Pod, n int) map[int]*corev1.Pod {
	out := map[int]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		idx, ok := PodIndex(p)
		if !ok || idx >= n {
			continue
		}
		if cur, seen := out[idx]; !seen || cur.CreationTimestamp.Before(&p.CreationTimestamp) {
			out[idx] = p
		}
	}
	return out
}

// indexSet parses an Indexed Job's status.completedIndexes or
// failedIndexes ("1,3-5,7").
func indexSet(s string) map[int]bool {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := a; i <= b && i-a < 100000; i++ {
			out[i] = true
		}
	}
	return out
}

// joinInts writes indexes as "0, 2, 5".
func joinInts(xs []int) string {
	sort.Ints(xs)
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
