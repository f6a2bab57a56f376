package runner

import (
	"context"
	"errors"
	"fmt"
	"github.com/testship/testship/pkg/kube"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
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
	"k8s.io/utils/ptr"

	"github.com/testship/testship/pkg/testlog"
)

// FollowOptions add Ctrl-C handling to WaitOptions.
type FollowOptions struct {
	WaitOptions
	// LeaveOnInterrupt keeps the run going when ctx is cancelled (Ctrl-C)
	// instead of cancelling it.
	LeaveOnInterrupt bool
	// KeepOnFault keeps the Job, pod and Secret of a run that hit a fault
	// (image pull, unschedulable, ...) for inspection; by default they are
	// deleted, since such a run can never finish.
	KeepOnFault bool
}

// Follow waits for the run like Wait, prints the one-line summary to Log,
// and returns the run's outcome as an error (nil when it passed; an
// *ExitError carrying the exit code otherwise). When ctx is cancelled
// (Ctrl-C) it cancels the run, within Mage's grace period, unless
// LeaveOnInterrupt, and says so either way.
func Follow(ctx context.Context, cs kubernetes.Interface, run *Run, fo FollowOptions) (*Result, error) {
	log := fo.Log
	if log == nil {
		log = io.Discard
	}
	res, err := Wait(ctx, cs, run, fo.WaitOptions)
	if err != nil {
		if ctx.Err() == nil {
			return nil, &ExitError{Code: ExitInfra, Message: err.Error()}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// mage -t (or a caller's deadline): a local wait timeout
			msg := fmt.Sprintf("stopped waiting (deadline); run %s goes on in namespace %s: follow it with `mage run:attach %s`", run.ID, run.Namespace, run.ID)
			fmt.Fprintln(log, "testship: "+msg)
			return nil, &ExitError{Code: ExitWaitTimeout, Reason: ReasonWaitTimeout, Message: msg}
		}
		if fo.LeaveOnInterrupt || fo.Detach {
			msg := fmt.Sprintf("interrupted: run %s goes on in namespace %s; follow it with `mage run:attach %s`, stop it with `mage run:cancel %s`", run.ID, run.Namespace, run.ID, run.ID)
			fmt.Fprintln(log, "testship: "+msg)
			return nil, &ExitError{Code: ExitCancelled, Reason: ReasonCancelled, Message: msg}
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*time.Second)
		defer cancel()
		if cerr := Cancel(cctx, cs, run.Namespace, run.ID, false); cerr != nil {
			msg := fmt.Sprintf("interrupted, and cancelling run %s failed: %v; stop it with `mage run:cancel %s`", run.ID, cerr, run.ID)
			fmt.Fprintln(log, "testship: "+msg)
			return nil, &ExitError{Code: ExitCancelled, Reason: ReasonCancelled, Message: msg}
		}
		msg := fmt.Sprintf("interrupted: cancelled run %s (deleted Job %s/%s and its pods); TESTSHIP_ON_INTERRUPT=leave keeps runs going", run.ID, run.Namespace, JobName(run.ID))
		fmt.Fprintln(log, "testship: "+msg)
		return nil, &ExitError{Code: ExitCancelled, Reason: ReasonCancelled, Message: msg}
	}
	if !res.Detached && res.Reason != ReasonWaitTimeout {
		// Over: the next identical launch starts a new run at once.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := release(rctx, cs, runJob(rctx, cs, run)); err != nil {
			fmt.Fprintf(log, "testship: %v\n", err)
		}
		cancel()
	}
	if res.Detached {
		fmt.Fprintf(log, "testship: run %s started in namespace %s and goes on without us: follow it with `mage run:attach %s`, see it with `mage run:status %s`, stop it with `mage run:cancel %s`\n",
			run.ID, run.Namespace, run.ID, run.ID, run.ID)
		return res, nil
	}
	if res.Reason != "" && res.Reason != ReasonWaitTimeout {
		if fo.KeepOnFault {
			fmt.Fprintf(log, "testship: kept run %s (Job %s/%s) for inspection: `mage run:status %s`\n", run.ID, run.Namespace, JobName(run.ID), run.ID)
		} else {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if err := Cancel(cctx, cs, run.Namespace, run.ID, true); err != nil {
				fmt.Fprintf(log, "testship: could not remove run %s after its fault: %v\n", run.ID, err)
			} else {
				fmt.Fprintf(log, "testship: removed run %s (Job, pod, Secret) after its fault\n", run.ID)
			}
			cancel()
		}
	}
	fmt.Fprintln(log, res.Line())
	return res, res.Err()
}

// runJob returns the run's Job as it is now, or what Launch saw when it
// cannot be read.
func runJob(ctx context.Context, cs kubernetes.Interface, run *Run) *batchv1.Job {
	if job, err := cs.BatchV1().Jobs(run.Namespace).Get(ctx, JobName(run.ID), metav1.GetOptions{}); err == nil {
		return job
	}
	return run.Job
}

// Cancel stops a run: it deletes its Job in the foreground (its pods
// (all of them in a multi-pod run), the Secret, Lease, ServiceAccount, Role and RoleBinding go with it) and
// releases the run's claim on its run key at once, so that an identical
// launch right after starts a new run. With wait, it returns once they are
// gone.
func Cancel(ctx context.Context, cs kubernetes.Interface, namespace, id string, wait bool) error {
	job, err := cs.BatchV1().Jobs(namespace).Get(ctx, JobName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("runner: no run %s in namespace %s", id, namespace)
	}
	if err != nil {
		return fmt.Errorf("runner: read Job %s/%s: %w", namespace, JobName(id), err)
	}
	fg := metav1.DeletePropagationForeground
	err = cs.BatchV1().Jobs(namespace).Delete(ctx, JobName(id), metav1.DeleteOptions{PropagationPolicy: &fg, Preconditions: &metav1.Preconditions{UID: &job.UID}})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("runner: no run %s in namespace %s", id, namespace)
	}
	if err != nil {
		return fmt.Errorf("runner: delete Job %s/%s: %w", namespace, JobName(id), err)
	}
	if err := release(ctx, cs, job); err != nil {
		return err
	}
	// The Secret is owned by the Job, but delete it now rather than when
	// the garbage collector gets to it.
	_ = cs.CoreV1().Secrets(namespace).Delete(ctx, SecretName(id), metav1.DeleteOptions{})
	if !wait {
		return nil
	}
	// Foreground deletion removes the Job last, after its pods: its
	// Deleted event means everything is gone.
	name := JobName(id)
	lw := &kube.ListWatch{ListWatch: cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = "metadata.name=" + name
			return cs.BatchV1().Jobs(namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = "metadata.name=" + name
			return cs.BatchV1().Jobs(namespace).Watch(ctx, o)
		},
	}}
	_, err = watchtools.UntilWithSync(ctx, lw, &batchv1.Job{}, func(store cache.Store) (bool, error) {
		_, exists, err := store.GetByKey(namespace + "/" + name)
		return !exists, err
	}, func(ev watch.Event) (bool, error) { return ev.Type == watch.Deleted, nil })
	if err != nil {
		return fmt.Errorf("runner: wait for run %s to be gone: %w", id, err)
	}
	return nil
}

// Info describes a run for run:list and run:status.
type Info struct {
	ID, Namespace, Test, Image, Pattern string
	State                               string // Pending, Running, Succeeded, Failed, or a fault reason
	Created                             time.Time
	ExitCode                            *int
	Reason, Message                     string
	// Pod is the pod of a single-pod run.
	Pod string
	// Pods is the number of pods of the run and Mode their mode
	// (testlog.Mode*). For a multi-pod run, Counts sums up the pods'
	// states ("3/4 succeeded, 1 failed (index 2)") and Indexes describes
	// each pod, in index order; ExitCode, Reason and Message are those of
	// the first failed index (Message naming it).
	Pods    int
	Mode    string
	Counts  string
	Indexes []IndexInfo
	// Expires is when the run's environment (its namespace) expires, from
	// the namespace's testship.dev/expires-at; zero when unknown.
	Expires time.Time
}

// IndexInfo describes one pod of a multi-pod run.
type IndexInfo struct {
	Index           int
	Pod             string // empty when the pod is gone
	State           string // Pending, Running, Succeeded, Failed, Stopped (by the Job's failure)
	ExitCode        *int
	Reason, Message string
}

// AnnotationExpiresAt on a namespace testship created says when its
// environment expires (RFC 3339).
const AnnotationExpiresAt = "testship.dev/expires-at"

// namespaceExpiry reads a namespace's expiry; zero when it has none or
// cannot be read (a user may list Jobs without reading namespaces).
func namespaceExpiry(ctx context.Context, cs kubernetes.Interface, namespace string) time.Time {
	ns, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, ns.Annotations[AnnotationExpiresAt])
	if err != nil {
		return time.Time{}
	}
	return t
}

// Find returns the Job of run id, searching every namespace the user can
// list when namespace is empty.
func Find(ctx context.Context, cs kubernetes.Interface, namespace, id string) (*batchv1.Job, error) {
	if namespace != "" {
		job, err := cs.BatchV1().Jobs(namespace).Get(ctx, JobName(id), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("runner: no run %s in namespace %s (finished runs are kept for TESTSHIP_RUN_TTL)", id, namespace)
		}
		return job, err
	}
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy, LabelRunID: id}).String()
	jobs, err := cs.BatchV1().Jobs("").List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("runner: look for run %s in all namespaces: %w (set ENV_NAMESPACE to look in one)", id, err)
	}
	if len(jobs.Items) == 0 {
		return nil, fmt.Errorf("runner: no run %s in any namespace (finished runs are kept for TESTSHIP_RUN_TTL)", id)
	}
	return &jobs.Items[0], nil
}

// RunOf returns the Run of a Job, with its pod count and mode: an
// Indexed Job's completions and its testship.dev/pod-mode annotation; 1
// and testlog.ModeSingle for any other.
func RunOf(job *batchv1.Job) *Run {
	r := &Run{ID: job.Labels[LabelRunID], Namespace: job.Namespace, Job: job, Pods: 1, Mode: testlog.ModeSingle}
	if ptr.Deref(job.Spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion {
		if n := int(ptr.Deref(job.Spec.Completions, 1)); n > 1 {
			r.Pods, r.Mode = n, job.Annotations[AnnotationPodMode]
		}
	}
	return r
}

// List describes the runs in a namespace (all namespaces when empty),
// newest first.
func List(ctx context.Context, cs kubernetes.Interface, namespace string) ([]Info, error) {
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy, LabelComponent: Component}).String()
	jobs, err := cs.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("runner: list runs: %w", err)
	}
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("runner: list runs' pods: %w", err)
	}
	byRun := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		k := p.Namespace + "/" + p.Labels[LabelRunID]
		byRun[k] = append(byRun[k], p)
	}
	var out []Info
	expiry := map[string]time.Time{}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		info := describe(j, byRun[j.Namespace+"/"+j.Labels[LabelRunID]])
		exp, seen := expiry[j.Namespace]
		if !seen {
			exp = namespaceExpiry(ctx, cs, j.Namespace)
			expiry[j.Namespace] = exp
		}
		info.Expires = exp
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Status describes one run.
func Status(ctx context.Context, cs kubernetes.Interface, namespace, id string) (*Info, error) {
	job, err := Find(ctx, cs, namespace, id)
	if err != nil {
		return nil, err
	}
	pods, err := cs.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{LabelRunID: id}).String()})
	if err != nil {
		return nil, fmt.Errorf("runner: read the pods of run %s: %w", id, err)
	}
	info := describe(job, pods.Items)
	info.Expires = namespaceExpiry(ctx, cs, job.Namespace)
	return &info, nil
}

// describe makes an Info of a run's Job and pods.
func describe(j *batchv1.Job, pods []corev1.Pod) Info {
	run := RunOf(j)
	info := Info{
		ID: j.Labels[LabelRunID], Namespace: j.Namespace,
		Test: j.Annotations[AnnotationTest], Image: j.Annotations[AnnotationImage], Pattern: j.Annotations[AnnotationPattern],
		Created: j.CreationTimestamp.Time, State: "Pending",
		Pods: run.Pods, Mode: run.Mode,
	}
	if run.Pods > 1 {
		describeIndexes(&info, j, pods)
		return info
	}
	var pod *corev1.Pod
	if len(pods) > 0 {
		pod = &pods[0]
	}
	if pod != nil {
		info.Pod = pod.Name
		ii := describePod(pod)
		info.State, info.ExitCode, info.Reason, info.Message = ii.State, ii.ExitCode, ii.Reason, ii.Message
	}
	if c := jobCondition(j, batchv1.JobFailed, batchv1.JobFailureTarget); c != nil && info.Reason == "" && info.ExitCode == nil {
		info.State, info.Reason, info.Message = "Failed", c.Reason, c.Message
	}
	if pod == nil && info.Reason == "" {
		if c := jobCondition(j, batchv1.JobComplete); c != nil {
			info.State = "Succeeded"
		}
	}
	return info
}

// describePod tells a pod's state (Pending, Running, Succeeded, Failed),
// its test's exit code once it ended, and the fault that keeps it from
// running or why it waits to be scheduled.
func describePod(pod *corev1.Pod) IndexInfo {
	ii := IndexInfo{Pod: pod.Name, State: "Pending"}
	f := classify(pod, false, time.Now(), 15*time.Second)
	switch {
	case f.reason != "":
		ii.State, ii.Reason, ii.Message = "Failed", f.reason, f.message
	case f.done:
		ii.State = "Succeeded"
		if f.exitCode != 0 {
			ii.State = "Failed"
		}
		code := f.exitCode
		ii.ExitCode = &code
	case f.started:
		ii.State = "Running"
	default:
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				ii.Reason, ii.Message = c.Reason, c.Message
			}
		}
	}
	return ii
}

// describeIndexes describes a multi-pod run as one: each index from its
// pod (or, when the pod is gone, from the Job's completed and failed
// indexes), the counts, and a state that stays Running (or Pending)
// until every index has ended. The run failed when any index failed,
// with the first failed index's exit code and reason; a Job that failed
// as a whole (deadline, fail-fast) is Failed even with pods still ending.
func describeIndexes(info *Info, j *batchv1.Job, pods []corev1.Pod) {
	n := info.Pods
	byIndex := PodsByIndex(pods, n)
	completed, failed := indexSet(j.Status.CompletedIndexes), indexSet(ptr.Deref(j.Status.FailedIndexes, ""))
	var succ, running, pending int
	var failedIdx []int
	first := -1 // the first failed index
	for i := 0; i < n; i++ {
		ii := IndexInfo{Index: i, State: "Pending"}
		if p := byIndex[i]; p != nil {
			ii = describePod(p)
			ii.Index = i
		}
		if ii.State == "Pending" || ii.State == "Running" {
			// the pod is gone or not yet terminated: the Job may know more
			switch {
			case completed[i]:
				ii.State = "Succeeded"
			case failed[i] && ii.Reason == "":
				ii.State = "Failed"
			}
		}
		switch ii.State {
		case "Succeeded":
			succ++
		case "Failed":
			failedIdx = append(failedIdx, i)
		case "Running":
			running++
		default:
			pending++
		}
		info.Indexes = append(info.Indexes, ii)
		if ii.State == "Failed" && first < 0 {
			first = i
		}
	}
	// A Job that failed as a whole (fail-fast, deadline) stops the indexes
	// still going: they will not end by themselves.
	jobFailed := jobCondition(j, batchv1.JobFailed, batchv1.JobFailureTarget)
	stopped := 0
	if jobFailed != nil {
		for k := range info.Indexes {
			if ii := &info.Indexes[k]; ii.State == "Pending" || ii.State == "Running" {
				ii.State = "Stopped"
				stopped++
			}
		}
		running, pending = 0, 0
	}
	counts := []string{fmt.Sprintf("%d/%d succeeded", succ, n)}
	if len(failedIdx) > 0 {
		word := "index"
		if len(failedIdx) > 1 {
			word = "indexes"
		}
		counts = append(counts, fmt.Sprintf("%d failed (%s %s)", len(failedIdx), word, joinInts(failedIdx)))
	}
	if running > 0 {
		counts = append(counts, fmt.Sprintf("%d running", running))
	}
	if pending > 0 {
		counts = append(counts, fmt.Sprintf("%d pending", pending))
	}
	if stopped > 0 {
		counts = append(counts, fmt.Sprintf("%d stopped", stopped))
	}
	info.Counts = strings.Join(counts, ", ")
	if first >= 0 {
		ii := info.Indexes[first]
		info.ExitCode = ii.ExitCode
		if ii.Reason != "" {
			info.Reason, info.Message = ii.Reason, fmt.Sprintf("index %d: %s", ii.Index, ii.Message)
		}
	}
	switch {
	case running > 0 || (pending > 0 && (succ > 0 || len(failedIdx) > 0)):
		info.State = "Running"
	case pending > 0:
		info.State = "Pending"
		for _, ii := range info.Indexes {
			if ii.Reason != "" && info.Reason == "" {
				info.Reason, info.Message = ii.Reason, fmt.Sprintf("index %d: %s", ii.Index, ii.Message)
			}
		}
	case succ == n:
		info.State = "Succeeded"
		info.ExitCode = ptr.To(0)
	default:
		info.State = "Failed"
	}
	if c := jobFailed; c != nil {
		info.State = "Failed"
		if info.Reason == "" {
			info.Reason, info.Message = c.Reason, c.Message
		}
	} else if jobCondition(j, batchv1.JobComplete) != nil {
		info.State = "Succeeded"
	}
}

// podsWord describes a run's pods for run:list: "1", "4 shards", "3 copies".
func podsWord(r Info) string {
	switch {
	case r.Pods <= 1:
		return "1"
	case r.Mode == testlog.ModeCopy:
		return fmt.Sprintf("%d copies", r.Pods)
	case r.Mode == testlog.ModeShard:
		return fmt.Sprintf("%d shards", r.Pods)
	}
	return fmt.Sprintf("%d pods", r.Pods)
}

// PrintList writes runs as a table.
func PrintList(w io.Writer, runs []Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tNAMESPACE\tTEST\tIMAGE\tPODS\tSTATE\tAGE\tRESULT\tEXPIRES")
	for _, r := range runs {
		result := "-"
		if r.ExitCode != nil {
			result = fmt.Sprintf("exit %d", *r.ExitCode)
		}
		if r.Reason != "" {
			result = r.Reason
		}
		if r.Counts != "" {
			result = r.Counts
			if r.Reason != "" {
				result += " (" + r.Reason + ")"
			}
		}
		test := r.Test
		if r.Pattern != "" {
			test += " -run " + r.Pattern
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Namespace, test, shortImage(r.Image), podsWord(r), r.State, time.Since(r.Created).Round(time.Second), result, expires(r.Expires))
	}
	tw.Flush()
}

// PrintStatus writes one run's state and, when stuck or failed, why.
func PrintStatus(w io.Writer, r *Info) {
	fmt.Fprintf(w, "run:       %s\nnamespace: %s\ntest:      %s\nimage:     %s\nstate:     %s\n", r.ID, r.Namespace, r.Test, r.Image, r.State)
	if r.Pattern != "" {
		fmt.Fprintf(w, "pattern:   %s\n", r.Pattern)
	}
	if r.Pod != "" {
		fmt.Fprintf(w, "pod:       %s\n", r.Pod)
	}
	if r.Pods > 1 {
		fmt.Fprintf(w, "pods:      %s: %s\n", podsWord(*r), r.Counts)
		for _, ii := range r.Indexes {
			fmt.Fprintf(w, "  %s%s %s", IndexPrefix(ii.Index, r.Pods), orDash(ii.Pod), ii.State)
			if ii.ExitCode != nil {
				fmt.Fprintf(w, " (exit %d)", *ii.ExitCode)
			}
			if ii.Reason != "" {
				fmt.Fprintf(w, " %s: %s", ii.Reason, ii.Message)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "age:       %s\n", time.Since(r.Created).Round(time.Second))
	fmt.Fprintf(w, "expires:   %s\n", expires(r.Expires))
	if r.ExitCode != nil {
		fmt.Fprintf(w, "exit code: %d\n", *r.ExitCode)
	}
	if r.Reason != "" {
		fmt.Fprintf(w, "reason:    %s: %s\n", r.Reason, r.Message)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// expires shows an environment's expiry, or - when unknown.
func expires(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func shortImage(ref string) string {
	if name, dig, ok := strings.Cut(ref, "@sha256:"); ok && len(dig) > 12 {
		return name + "@sha256:" + dig[:12]
	}
	return ref
}

// Logs writes the whole output of a run so far, running or finished,
// without following it. Of a multi-pod run it writes each pod's output in
// turn, in index order, every line prefixed with the pod's index
// (IndexPrefix); an index whose pod is gone gets a line saying so.
func Logs(ctx context.Context, cs kubernetes.Interface, namespace, id string, out io.Writer) error {
	sel := labels.SelectorFromSet(labels.Set{LabelRunID: id}).String()
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("runner: find the pods of run %s: %w", id, err)
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("runner: run %s in namespace %s has no pod (not started yet, or cancelled)", id, namespace)
	}
	n := 1
	if job, err := cs.BatchV1().Jobs(namespace).Get(ctx, JobName(id), metav1.GetOptions{}); err == nil {
		n = RunOf(job).Pods
	} else {
		for i := range pods.Items { // the Job cannot be read: go by the pods
			if idx, ok := PodIndex(&pods.Items[i]); ok && idx >= n {
				n = idx + 1
			}
		}
	}
	byIndex := PodsByIndex(pods.Items, n)
	for i := 0; i < n; i++ {
		prefix := ""
		if n > 1 {
			prefix = IndexPrefix(i, n)
		}
		pod := byIndex[i]
		if pod == nil {
			if n > 1 {
				fmt.Fprintf(out, "%s(no pod: not started yet, or gone)\n", prefix)
			}
			continue
		}
		r := &lineResumer{emit: func(line []byte) {
			io.WriteString(out, prefix)
			out.Write(line)
			if len(line) == 0 || line[len(line)-1] != '\n' {
				out.Write([]byte{'\n'})
			}
		}}
		if err := streamLogs(ctx, cs, namespace, pod.Name, false, true, r); err != nil {
			return fmt.Errorf("runner: read the output of run %s (pod %s): %w", id, pod.Name, err)
		}
	}
	return nil
}
