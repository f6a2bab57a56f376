package runner

import (
	"context"
	"fmt"
	"github.com/testship/testship/pkg/kube"
	"io"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// WaitOptions say how to follow a run.
type WaitOptions struct {
	// Out receives the test's output, line by line as it is written.
	Out io.Writer
	// Log receives testship's own messages (the summary line included).
	Log io.Writer
	// Detach returns as soon as the test container is running.
	Detach bool
	// Timeout stops waiting locally after this long (0: no limit); the run
	// goes on.
	Timeout time.Duration
	// FromNow shows only output written from now on (attach), instead of
	// the whole output from the start.
	FromNow bool
	// OnLine, when set, also sees every output line (reports).
	OnLine func(line []byte)
	// UnschedulableGrace is how long an unschedulable pod may wait for
	// room before the run fails (default 15s).
	UnschedulableGrace time.Duration
}

// podState is what the pod watch last saw.
type podState struct {
	pod     *corev1.Pod
	deleted bool
}

// Wait follows a run to its end (or until it has started, with Detach):
// it watches the run's pod, streams the test's output to Out exactly once
// and in order, recognises the faults that keep a test from running and
// returns the test's exit code and summary. It returns an error only when
// it cannot follow the run at all, or when ctx is done.
func Wait(ctx context.Context, cs kubernetes.Interface, run *Run, wo WaitOptions) (*Result, error) {
	if wo.Out == nil {
		wo.Out = io.Discard
	}
	if wo.Log == nil {
		wo.Log = io.Discard
	}
	if wo.UnschedulableGrace == 0 {
		wo.UnschedulableGrace = 15 * time.Second
	}
	start := time.Now()
	res := &Result{RunID: run.ID, Namespace: run.Namespace}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The pod watch: UntilWithSync lists, then watches, and re-lists when a
	// watch breaks; its condition never ends it, it only publishes.
	var mu sync.Mutex
	var cur podState
	changed := make(chan struct{}, 1)
	watchDone := make(chan error, 1)
	sel := labels.SelectorFromSet(labels.Set{LabelRunID: run.ID}).String()
	lw := &kube.ListWatch{ListWatch: cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return cs.CoreV1().Pods(run.Namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return cs.CoreV1().Pods(run.Namespace).Watch(ctx, o)
		},
	}}
	go func() {
		_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				return false, nil
			}
			mu.Lock()
			if cur.pod == nil || cur.pod.UID == pod.UID || cur.deleted {
				cur = podState{pod: pod, deleted: ev.Type == watch.Deleted}
			}
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
			return false, nil
		})
		watchDone <- err
	}()
	snapshot := func() podState { mu.Lock(); defer mu.Unlock(); return cur }

	// The log stream, started once the container has started.
	resumer := &lineResumer{emit: func(line []byte) {
		wo.Out.Write(line)
		if len(line) == 0 || line[len(line)-1] != '\n' {
			wo.Out.Write([]byte{'\n'})
		}
		res.Summary.Observe(line)
		if wo.OnLine != nil {
			wo.OnLine(line)
		}
	}, gap: func(from, to time.Time) {
		if wo.Log != nil {
			fmt.Fprintf(wo.Log, "testship: WARNING: output written between %s and %s is lost: the log stream broke and the kubelet no longer has those lines (it rotated the container log; raise the kubelet's containerLogMaxSize)\n",
				from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
		}
	}}
	if wo.FromNow {
		resumer.lastTS = time.Now()
	}
	var logsStarted bool
	logsDone := make(chan error, 1)
	terminated := make(chan struct{})
	var terminatedOnce sync.Once
	markTerminated := func() { terminatedOnce.Do(func() { close(terminated) }) }

	followLogs := func(podName string) {
		isTerminated := func() bool {
			select {
			case <-terminated:
				return true
			default:
				return false
			}
		}
		broken := 0
		for {
			final := isTerminated()
			seen := resumer.lines
			var err error
			if final {
				err = settleLogs(ctx, cs, run.Namespace, podName, resumer)
			} else {
				err = streamLogs(ctx, cs, run.Namespace, podName, true, false, resumer)
			}
			switch {
			case ctx.Err() != nil:
				logsDone <- ctx.Err()
				return
			case err == nil && final:
				logsDone <- nil
				return
			case apierrors.IsNotFound(err):
				logsDone <- nil // the pod is gone: what was shown is all there is
				return
			case err != nil:
				// A broken stream: resume at once (after a short pause when
				// it keeps breaking, e.g. while the kubelet restarts).
				if resumer.lines > seen {
					broken = 0 // it made progress
				}
				broken++
				fmt.Fprintf(wo.Log, "testship: log stream of run %s broke (%v); resuming after line %d\n", run.ID, err, resumer.lines)
				if broken > 3 {
					select {
					case <-time.After(500 * time.Millisecond):
					case <-ctx.Done():
						logsDone <- ctx.Err()
						return
					}
				}
				continue
			}
			broken = 0
			// The stream ended: the container exited, or the connection broke.
			// Wait for the pod watch to say which (a broken stream is resumed
			// after a second at most).
			select {
			case <-terminated:
			case <-time.After(time.Second):
			case <-ctx.Done():
				logsDone <- ctx.Err()
				return
			}
		}
	}

	var timeout <-chan time.Time
	if wo.Timeout > 0 {
		t := time.NewTimer(wo.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var graceTimer *time.Timer
	var grace <-chan time.Time
	defer func() {
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()

	finish := func(code int, reason, msg string) (*Result, error) {
		res.ExitCode, res.Reason, res.Message = code, reason, msg
		res.Duration = time.Since(start)
		res.Lines = resumer.lines
		return res, nil
	}
	// drain waits for the log stream to deliver what it still can.
	drain := func() {
		markTerminated()
		if logsStarted {
			<-logsDone
			logsStarted = false
		}
	}

	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-watchDone:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("runner: watching the pod of run %s in namespace %s: %w", run.ID, run.Namespace, err)
		case <-timeout:
			return finish(ExitWaitTimeout, ReasonWaitTimeout, fmt.Sprintf(
				"stopped waiting after %s; run %s goes on in namespace %s: follow it with `mage run:attach %s`",
				wo.Timeout, run.ID, run.Namespace, run.ID))
		case <-grace:
			grace = nil // re-evaluate now that the grace has passed
		case <-changed:
		}
		st := snapshot()
		if st.pod == nil {
			continue
		}
		now := time.Now()
		f := classify(st.pod, st.deleted, now, wo.UnschedulableGrace)
		if f.waitUntil.After(now) && grace == nil {
			graceTimer = time.NewTimer(f.waitUntil.Sub(now))
			grace = graceTimer.C
		}
		if f.started && !logsStarted && !(wo.Detach && !f.done) {
			logsStarted = true
			go followLogs(st.pod.Name)
		}
		if wo.Detach && f.started && !f.done && f.reason == "" {
			res.Detached = true
			res.Duration = time.Since(start)
			return res, nil
		}
		if f.reason != "" || f.done {
			drain()
			if f.lost || (f.done && st.pod.DeletionTimestamp != nil && f.exitCode != 0) {
				// The pod went away: the Job's deadline, or someone deleted it.
				if job, err := cs.BatchV1().Jobs(run.Namespace).Get(context.WithoutCancel(ctx), JobName(run.ID), metav1.GetOptions{}); err == nil {
					if deadlinePassed(job, time.Now()) {
						return finish(ExitDeadline, ReasonDeadline, fmt.Sprintf("the Job's deadline (activeDeadlineSeconds %d) passed before the test ended: raise TESTSHIP_TIMEOUT", deref(job.Spec.ActiveDeadlineSeconds)))
					}
				}
				if f.reason == "" {
					f.code, f.reason, f.message = ExitPodLost, ReasonPodDeleted, fmt.Sprintf("pod %s was deleted while the test ran (container exit code %d)", st.pod.Name, f.exitCode)
				}
			}
			if f.reason != "" {
				return finish(f.code, f.reason, f.message)
			}
			return finish(f.exitCode, "", "")
		}
	}
}

// deadlinePassed reports whether the Job failed for its activeDeadlineSeconds
// (by its condition, or by the clock when the condition is not written yet).
func deadlinePassed(job *batchv1.Job, now time.Time) bool {
	if c := jobCondition(job, batchv1.JobFailed, batchv1.JobFailureTarget); c != nil {
		return c.Reason == batchv1.JobReasonDeadlineExceeded
	}
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil {
		return false
	}
	return now.Sub(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func jobCondition(j *batchv1.Job, types ...batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		for _, t := range types {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return c
			}
		}
	}
	return nil
}

// podFacts is what classify makes of a pod.
type podFacts struct {
	started  bool // the test container is (or was) running
	done     bool // the test container terminated: exitCode is its code
	exitCode int
	lost     bool // the pod is gone or going
	// a fault: the run cannot reach its end
	code    int
	reason  string
	message string
	// waitUntil is when a pending condition (unschedulable) turns into a
	// fault unless it changes first
	waitUntil time.Time
}

// classify reads a pod's status: whether the test started or ended, and the
// named fault when it cannot run.
func classify(pod *corev1.Pod, deleted bool, now time.Time, grace time.Duration) podFacts {
	var f podFacts
	var cs *corev1.ContainerStatus
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == ContainerName {
			cs = &pod.Status.ContainerStatuses[i]
		}
	}
	var limit string
	for _, c := range pod.Spec.Containers {
		if c.Name == ContainerName {
			if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
				limit = q.String()
			}
		}
	}
	image := ""
	if len(pod.Spec.Containers) > 0 {
		image = pod.Spec.Containers[0].Image
	}
	if cs != nil {
		switch {
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			f.started, f.done, f.exitCode = true, true, int(t.ExitCode)
			if t.Reason == "OOMKilled" {
				if limit == "" {
					limit = "none set (the node ran out of memory)"
				}
				f.code, f.reason = ExitOOMKilled, ReasonOOMKilled
				f.message = fmt.Sprintf("the test was killed for going past its memory limit (%s): raise TESTSHIP_MEMORY_LIMIT", limit)
			}
		case cs.State.Running != nil:
			f.started = true
		case cs.State.Waiting != nil:
			w := cs.State.Waiting
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "SignatureValidationFailed":
				f.code, f.reason = ExitImagePull, ReasonImagePull
				f.message = fmt.Sprintf("image %s cannot be pulled (%s): %s", image, w.Reason, w.Message)
			case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
				f.code, f.reason = ExitContainerConfig, ReasonContainerConfig
				f.message = fmt.Sprintf("the test container cannot be created (%s): %s", w.Reason, w.Message)
			}
		}
	}
	if pod.Status.Reason == "Evicted" && !f.done {
		f.lost = true
		f.code, f.reason = ExitPodLost, ReasonEvicted
		f.message = fmt.Sprintf("pod %s was evicted: %s", pod.Name, pod.Status.Message)
	}
	if (deleted || pod.DeletionTimestamp != nil) && !f.done && f.reason == "" {
		f.lost = true
		if deleted || f.started {
			f.code, f.reason = ExitPodLost, ReasonPodDeleted
			f.message = fmt.Sprintf("pod %s was deleted before the test ended", pod.Name)
		}
	}
	if pod.Status.Phase == corev1.PodFailed && !f.done && f.reason == "" {
		f.lost = true
		f.code, f.reason = ExitPodLost, ReasonEvicted
		f.message = fmt.Sprintf("pod %s failed before the test ended: %s %s", pod.Name, pod.Status.Reason, pod.Status.Message)
	}
	if f.reason == "" && !f.started {
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				since := c.LastTransitionTime.Time
				if since.IsZero() || since.After(now) {
					since = now
				}
				if now.Sub(since) >= grace {
					f.code, f.reason = ExitUnschedulable, ReasonUnschedulable
					f.message = fmt.Sprintf("pod %s cannot be scheduled: %s", pod.Name, c.Message)
				} else {
					f.waitUntil = since.Add(grace)
				}
			}
		}
	}
	return f
}
