package runner

import (
	"context"
	"fmt"
	"io"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/testship/testship/pkg/testlog"
)

// WaitOptions say how to follow a run.
type WaitOptions struct {
	// Out receives the test's output, line by line as it is written; in a
	// multi-pod run each line is prefixed with its pod's index ("[3] ",
	// aligned to the widest index).
	Out io.Writer
	// Log receives testship's own messages (the summary line included).
	Log io.Writer
	// Color colours the index prefixes of a multi-pod run (set it when Out
	// is a terminal).
	Color bool
	// Detach returns as soon as the test container is running (in a
	// multi-pod run: every pod's).
	Detach bool
	// FailFast ends the wait of a multi-pod run at the first pod that
	// fails, instead of waiting for every pod to end.
	FailFast bool
	// Timeout stops waiting locally after this long (0: no limit); the run
	// goes on.
	Timeout time.Duration
	// FromNow shows only output written from now on (attach), instead of
	// the whole output from the start.
	FromNow bool
	// OnLine, when set, also sees every output line, unprefixed, of every
	// pod.
	OnLine func(line []byte)
	// OnPodLine, when set, also sees every output line with its pod's
	// index (0 in a single-pod run): pass Recorder.PodLine for reports.
	OnPodLine func(index int, line []byte)
	// UnschedulableGrace is how long an unschedulable pod may wait for
	// room before the run fails (default 15s).
	UnschedulableGrace time.Duration
}

// Wait follows a run to its end (or until it has started, with Detach):
// it watches the run's pods, streams each pod's output to Out exactly once
// and in order, recognises the faults that keep a test from running, checks
// each pod's output against the entrypoint's record, and returns the run's
// exit code and results. It returns an error only when it cannot follow the
// run at all, or when ctx is done.
//
// A run is one pod, or the N pods of an Indexed Job (N = its completions):
// see decide for when the wait ends and outcome for the exit code.
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	job, err := readJobFacts(ctx, cs, run)
	if err != nil {
		return nil, err
	}
	res := &Result{RunID: run.ID, Namespace: run.Namespace, Count: job.Count, Multi: job.multi()}
	pods := watchPods(ctx, cs, run.Namespace, run.ID, job.Indexed)
	out := newOutput(wo, job.Count, job.multi())
	followers := followerSet{}
	defer followers.stop()

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

	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-pods.done:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("runner: watching the pod of run %s in namespace %s: %w", run.ID, run.Namespace, err)
		case <-timeout:
			followers.stop()
			res.ExitCode, res.Reason = ExitWaitTimeout, ReasonWaitTimeout
			res.Message = fmt.Sprintf("stopped waiting after %s; run %s goes on in namespace %s: follow it with `mage run:attach %s`",
				wo.Timeout, run.ID, run.Namespace, run.ID)
			res.Duration = time.Since(start)
			for _, f := range followers {
				res.Lines += f.resumer.lines
			}
			return res, nil
		case <-grace:
			grace = nil // re-evaluate now that the grace has passed
		case <-pods.changed:
		}
		now := time.Now()
		d := decide(runView{Pods: pods.snapshot(), Job: job, Now: now, Grace: wo.UnschedulableGrace, Detach: wo.Detach, FailFast: wo.FailFast})
		if !d.WakeAt.IsZero() && grace == nil {
			graceTimer = time.NewTimer(d.WakeAt.Sub(now))
			grace = graceTimer.C
		}
		followers.update(ctx, cs, d, func(uid types.UID, index int) *follower {
			return newFollower(run.Namespace, run.ID, pods.pod(uid), index, job.multi(), out, wo.Log, wo.FromNow)
		})
		switch d.Verdict {
		case keepWaiting:
			continue
		case detachNow:
			res.Detached = true
			res.Duration = time.Since(start)
			return res, nil
		}
		followers.drain(d)
		if d.NeedJob {
			// A pod went away: the Job's deadline, or someone deleted it.
			job.Checked = true
			if j, err := cs.BatchV1().Jobs(run.Namespace).Get(context.WithoutCancel(ctx), JobName(run.ID), metav1.GetOptions{}); err == nil {
				job.DeadlinePassed = deadlinePassed(j, time.Now())
				job.ActiveDeadline = deref(j.Spec.ActiveDeadlineSeconds)
			}
			d.Code, d.Reason, d.Message = outcome(d.Indexes, job)
		}
		res.ExitCode, res.Reason, res.Message = d.Code, d.Reason, d.Message
		for _, s := range d.Indexes {
			p := podResult(ctx, cs, run.Namespace, s, followers[s.UID], job.multi(), wo)
			res.addPod(p)
		}
		res.Duration = time.Since(start)
		return res, nil
	}
}

// followerSet is the log followers of a run's pods, by pod UID.
type followerSet map[types.UID]*follower

// update starts a follower (made by newF) for each pod decide says to
// follow, and tells those of ended pods to settle their logs and end.
func (fs followerSet) update(ctx context.Context, cs kubernetes.Interface, d decision, newF func(uid types.UID, index int) *follower) {
	for _, uid := range d.Follow {
		if fs[uid] != nil {
			continue
		}
		for _, s := range d.Indexes {
			if s.UID == uid {
				f := newF(uid, s.Index)
				f.start(ctx, cs)
				fs[uid] = f
			}
		}
	}
	for _, s := range d.Indexes {
		if f := fs[s.UID]; f != nil && s.Ended {
			f.markTerminated()
		}
	}
}

// drain waits for the followers of ended pods to deliver what their logs
// still hold, and stops those of pods still running (FailFast).
func (fs followerSet) drain(d decision) {
	for _, s := range d.Indexes {
		if f := fs[s.UID]; f != nil && !s.Ended {
			f.stop()
		}
	}
	for _, f := range fs {
		f.wait()
	}
}

// stop stops every follower (at once: nothing is settled).
func (fs followerSet) stop() {
	for _, f := range fs {
		f.stop()
	}
}

// addPod adds a pod's result to the run's.
func (r *Result) addPod(p PodResult) {
	r.Pods = append(r.Pods, p)
	r.Lines += p.Lines
	r.Summary.Add(p.Summary)
}

// readJobFacts reads how many pods the run has from its Job: an Indexed
// Job has spec.completions pods, any other Job one. It uses the Job the
// Run carries (Launch, Find and RunOf set it), else reads it once.
func readJobFacts(ctx context.Context, cs kubernetes.Interface, run *Run) (jobFacts, error) {
	job := run.Job
	if job == nil {
		var err error
		job, err = cs.BatchV1().Jobs(run.Namespace).Get(ctx, JobName(run.ID), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return jobFacts{Count: 1}, nil // gone already: its pods say the rest
		}
		if err != nil {
			return jobFacts{}, fmt.Errorf("runner: read Job %s/%s of run %s: %w", run.Namespace, JobName(run.ID), run.ID, err)
		}
	}
	return jobFactsOf(job), nil
}

// jobFactsOf reads a Job's shape.
func jobFactsOf(job *batchv1.Job) jobFacts {
	f := jobFacts{Count: 1}
	if job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion {
		f.Indexed = true
		if job.Spec.Completions != nil && *job.Spec.Completions > 0 {
			f.Count = int(*job.Spec.Completions)
		}
	}
	return f
}

// podResult makes one index's result once its follower has ended, and
// verifies the pod's output against the entrypoint's record: a mismatch
// makes it read the log once more (the runtime may still have been
// copying the tail), then it reports the exact loss and takes the results
// from the record.
func podResult(ctx context.Context, cs kubernetes.Interface, ns string, s indexState, f *follower, multi bool, wo WaitOptions) PodResult {
	p := PodResult{Index: s.Index, Pod: s.Pod, ExitCode: -1, Reason: s.Reason, Message: s.Message, Record: s.Record}
	switch {
	case s.Reason != "":
		p.ExitCode = s.Code
	case s.Ended:
		p.ExitCode = s.ExitCode
	}
	if f != nil {
		who := "pod " + s.Pod
		if multi {
			who = fmt.Sprintf("pod %s (index %d)", s.Pod, s.Index)
		}
		if s.Record != nil && s.Done && !wo.FromNow {
			diff := s.Record.Verify(f.counter)
			if diff != "" && !(f.resumer.lastTS.IsZero() && f.resumer.lines > 0) {
				// Read again: the log may have grown since it settled. (A
				// log without timestamps cannot be resumed: not again.)
				if err := settleLogs(ctx, cs, ns, s.Pod, f.resumer); err == nil {
					diff = s.Record.Verify(f.counter)
				}
			}
			if diff == "" {
				p.Verified = true
				if multi {
					fmt.Fprintf(wo.Log, "testship: %s: output verified: %d lines\n", who, f.counter.Lines())
				} else {
					fmt.Fprintf(wo.Log, "testship: output verified: %d lines\n", f.counter.Lines())
				}
			} else {
				p.Mismatch = diff
				if lost := s.Record.Lines - f.counter.Lines(); lost > 0 {
					p.LostLines = lost
				}
				fmt.Fprintf(wo.Log, "testship: WARNING: %s: %s; the container runtime dropped output before it reached the log (see the README's known limits): the results are the pod's own record (exit code %d, %d passed, %d failed, %d skipped)\n",
					who, diff, s.Record.Exit, s.Record.Pass, s.Record.Fail, s.Record.Skip)
			}
		}
		p.Lines = f.resumer.lines
		p.Summary = f.summary
	}
	if s.Record != nil {
		p.Counts = countsOfRecord(*s.Record, p.Summary)
	} else {
		p.Counts = countsOf(p.Summary)
	}
	return p
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
			if t.Reason == "StartError" || t.Reason == "ContainerCannotRun" {
				// The runtime could not start the command (no entrypoint
				// in an image that did not come from testship's base).
				f.code, f.reason = ExitContainerConfig, ReasonContainerConfig
				f.message = fmt.Sprintf("the test container could not start (%s, exit code %d): %s; an image not built on testship's base lacks %s", t.Reason, t.ExitCode, t.Message, testlog.EntrypointPath)
			}
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
