package runner

import (
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// PodsByIndex picks the current pod of each index among a run's pods: of
// several with one index (a replacement), the newest. Pods without a
// valid index, or with one ≥ n, are left out; a pod without any index (a
// single-pod run) is index 0.
func PodsByIndex(pods []corev1.Pod, n int) map[int]*corev1.Pod {
	out := map[int]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		idx, ok := PodIndex(p)
		if !ok && !hasIndex(p) {
			idx, ok = 0, true // a single-pod run's pod has no index
		}
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

// hasIndex reports whether a pod carries a completion index at all.
func hasIndex(p *corev1.Pod) bool {
	_, a := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	_, l := p.Labels[batchv1.JobCompletionIndexAnnotation]
	return a || l
}
