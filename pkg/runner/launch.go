package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/testship/testship/pkg/testlog"
)

// Run is a launched (or found) remote run.
type Run struct {
	ID        string
	Namespace string
	Job       *batchv1.Job
	// Attached is true when Launch found the same test already running and
	// returned that run instead of starting a new one.
	Attached bool
	// Pods is the number of pods of the run (1 for a single-pod run, the
	// Indexed Job's completions otherwise) and Mode their mode
	// (testlog.ModeSingle, ModeShard or ModeCopy).
	Pods int
	Mode string
}

// JobName is the name of the run's Job.
func (r *Run) JobName() string { return JobName(r.ID) }

// Launch steps, in order; launchHook is called after each.
const (
	stepChecked  = "checked"  // options checked, nothing created
	stepJob      = "job"      // the suspended Job exists
	stepLease    = "lease"    // the run key's Lease names this run
	stepIdentity = "identity" // Secret, ServiceAccount, Role, RoleBinding exist
	stepResumed  = "resumed"  // the Job runs
)

// launchHook, when set (by this package's tests), is called after each
// launch step; an error from it stops Launch there without any clean-up,
// as a kill of the launching process would.
var launchHook func(step string) error

// Launch starts the remote run described by o, or returns the identical run
// already going in the namespace (same RunKey) unless o.NewRun.
//
// Nothing it creates can outlive the run: it creates the run's Job
// suspended, then claims the run key's Lease, and creates the run's Secret,
// ServiceAccount, Role and RoleBinding, each owned by the Job from the
// moment it exists, then resumes the Job. Wherever it stops, deleting the
// Job removes everything. It writes what it did to out, naming forwarded
// variables but never values.
func Launch(ctx context.Context, cs kubernetes.Interface, o Options, out io.Writer) (*Run, error) {
	if out == nil {
		out = io.Discard
	}
	if o.Namespace == "" || o.Image == "" {
		return nil, fmt.Errorf("runner: launch needs a namespace and an image (got namespace %q, image %q)", o.Namespace, o.Image)
	}
	if !strings.Contains(o.Image, "@sha256:") {
		return nil, fmt.Errorf("runner: the test image %q is not pinned by digest; resolve it to registry/repository@sha256:... first (imageref.Resolve)", o.Image)
	}
	if err := CheckReserved(o); err != nil {
		return nil, err
	}
	if err := CheckPods(o); err != nil {
		return nil, err
	}
	id := o.RunID
	if id == "" {
		id = NewRunID()
	}
	if err := step(stepChecked); err != nil {
		return nil, err
	}
	jobs := cs.BatchV1().Jobs(o.Namespace)
	job, err := jobs.Create(ctx, BuildJob(o, id), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("runner: create Job %s/%s: %w", o.Namespace, JobName(id), err)
	}
	if err := step(stepJob); err != nil {
		return nil, err
	}
	// From here on a failure deletes the Job, and with it what it owns.
	abandon := func(err error) (*Run, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		bg := metav1.DeletePropagationBackground
		_ = jobs.Delete(dctx, job.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &job.UID}})
		return nil, err
	}
	if !o.NewRun {
		holder, err := claim(ctx, cs, o, id, job)
		if err != nil {
			return abandon(err)
		}
		if holder != id {
			held, err := jobs.Get(ctx, JobName(holder), metav1.GetOptions{})
			if err != nil {
				return abandon(fmt.Errorf("runner: read Job %s/%s of run %s: %w", o.Namespace, JobName(holder), holder, err))
			}
			_, _ = abandon(nil)
			fmt.Fprintf(out, "testship: run %s of the same test, image, variables and rules is still running in namespace %s: attaching to it (TESTSHIP_NEW_RUN=true starts another)\n", holder, o.Namespace)
			run := RunOf(held)
			run.ID, run.Attached = holder, true
			return run, nil
		}
		if err := step(stepLease); err != nil {
			return nil, err
		}
	}
	if err := createIdentity(ctx, cs, o, id, job); err != nil {
		return abandon(err)
	}
	if err := step(stepIdentity); err != nil {
		return nil, err
	}
	resumed, err := jobs.Patch(ctx, job.Name, types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{})
	if err != nil {
		return abandon(fmt.Errorf("runner: start Job %s/%s: %w", o.Namespace, JobName(id), err))
	}
	job = resumed
	if err := step(stepResumed); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "testship: started run %s: Job %s/%s, image %s%s%s\n", id, o.Namespace, job.Name, o.Image, patternNote(o.Pattern), podsNote(o))
	if len(o.Env) > 0 {
		fmt.Fprintf(out, "testship: forwarded variables: %s\n", strings.Join(sortedKeys(o.Env), ", "))
	}
	if len(o.Secrets) > 0 {
		fmt.Fprintf(out, "testship: secret variables (values in Secret %s): %s\n", SecretName(id), strings.Join(sortedKeys(o.Secrets), ", "))
	}
	run := RunOf(job)
	run.ID = id
	return run, nil
}

// podsNote describes a multi-pod run for the start message.
func podsNote(o Options) string {
	n := o.PodCount()
	if n == 1 {
		return ""
	}
	what := fmt.Sprintf(", %d shards", n)
	if o.PodMode() == testlog.ModeCopy {
		what = fmt.Sprintf(", %d copies", n)
	}
	if o.SyncStart {
		what += " starting together"
	}
	if o.FailFast {
		what += ", fail-fast"
	}
	return what
}

func step(name string) error {
	if launchHook == nil {
		return nil
	}
	return launchHook(name)
}

// ownerRef makes an object owned by the run's Job: it is deleted with it,
// and a foreground deletion of the Job ends only once it is gone.
func ownerRef(job *batchv1.Job) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, BlockOwnerDeletion: ptr.To(true)}}
}

// ownedBy reports whether an object's owner is the Job.
func ownedBy(m metav1.Object, job *batchv1.Job) bool {
	for _, r := range m.GetOwnerReferences() {
		if r.UID == job.UID {
			return true
		}
	}
	return false
}

// createIdentity creates the run's Secret, ServiceAccount, Role and
// RoleBinding, owned by its Job. An object of the same name that is not
// this run's is an error: it is never reused.
func createIdentity(ctx context.Context, cs kubernetes.Interface, o Options, id string, job *batchv1.Job) error {
	ns := o.Namespace
	secret := BuildSecret(o, id)
	sa, role, rb := BuildRBAC(o, id)
	for _, m := range []*metav1.ObjectMeta{&secret.ObjectMeta, &sa.ObjectMeta, &role.ObjectMeta, &rb.ObjectMeta} {
		m.OwnerReferences = ownerRef(job)
	}
	exists := func(kind, name string, get func() (metav1.Object, error)) error {
		cur, err := get()
		if err == nil && ownedBy(cur, job) {
			return nil
		}
		return fmt.Errorf("runner: a %s %s/%s that is not run %s's already exists; not reusing it (remove it, or start a new run)", kind, ns, name, id)
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if err := exists("Secret", secret.Name, func() (metav1.Object, error) {
			return cs.CoreV1().Secrets(ns).Get(ctx, secret.Name, metav1.GetOptions{})
		}); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("runner: create Secret %s/%s for the environment and the secret variables %s: %w", ns, secret.Name, strings.Join(sortedKeys(o.Secrets), ", "), redactErr(err))
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if err := exists("ServiceAccount", sa.Name, func() (metav1.Object, error) {
			return cs.CoreV1().ServiceAccounts(ns).Get(ctx, sa.Name, metav1.GetOptions{})
		}); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("runner: create ServiceAccount %s/%s: %w", ns, sa.Name, err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if err := exists("Role", role.Name, func() (metav1.Object, error) { return cs.RbacV1().Roles(ns).Get(ctx, role.Name, metav1.GetOptions{}) }); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("runner: create Role %s/%s (the runner's rights, TESTSHIP_RUNNER_RULES): %w", ns, role.Name, err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		if err := exists("RoleBinding", rb.Name, func() (metav1.Object, error) {
			return cs.RbacV1().RoleBindings(ns).Get(ctx, rb.Name, metav1.GetOptions{})
		}); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("runner: create RoleBinding %s/%s: %w", ns, rb.Name, err)
	}
	return nil
}

func patternNote(p string) string {
	if p == "" {
		return ", all tests"
	}
	return ", -test.run " + p
}

// redactErr drops the API server's echo of a request body from an error, so
// that a Secret's data can never reach a log through it.
func redactErr(err error) error {
	if status, ok := err.(apierrors.APIStatus); ok {
		s := status.Status()
		return fmt.Errorf("%s (HTTP %d)", s.Reason, s.Code)
	}
	return err
}

// LeaseName is the Lease that records which run of a run key is current
// in a namespace.
func LeaseName(o Options) string { return leaseName(RunKey(o)) }

func leaseName(key string) string {
	if len(key) > 20 {
		key = key[:20]
	}
	return "testship-run-" + key
}

// errLeaseContended is a claim that lost a race for the Lease (created,
// changed or removed by another launch meanwhile): claim tries again.
var errLeaseContended = errors.New("runner: the run-key Lease changed meanwhile")

// claimBackoff spaces the claim's retries when launches race.
var claimBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5}

// setupGrace is how long a run's Job may stay suspended (being set up by
// its launcher) and still count as busy; a launcher killed mid-setup leaves
// a suspended Job that is taken over after it.
const setupGrace = 30 * time.Second

// claim makes run id (whose suspended Job is job) the current run of o's
// run key unless another run of that key is still going; it returns the
// current run's id. The Lease is owned by the claiming run's Job, so it
// goes with it. A Lease makes this safe against launches racing each
// other: the API server accepts one create, or one update of a given
// version.
func claim(ctx context.Context, cs kubernetes.Interface, o Options, id string, job *batchv1.Job) (string, error) {
	leases := cs.CoordinationV1().Leases(o.Namespace)
	key := RunKey(o)
	name := leaseName(key)
	var current string
	err := retry.OnError(claimBackoff, func(err error) bool { return errors.Is(err, errLeaseContended) }, func() error {
		now := metav1.NewMicroTime(time.Now())
		cur, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			lease := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace, OwnerReferences: ownerRef(job), Labels: map[string]string{
					LabelManagedBy: ManagedBy, LabelComponent: Component, LabelKey: key, LabelRunID: id}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, AcquireTime: &now},
			}
			_, err := leases.Create(ctx, lease, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return errLeaseContended
			}
			if err != nil {
				return fmt.Errorf("runner: create Lease %s/%s: %w", o.Namespace, name, err)
			}
			current = id
			return nil
		}
		if err != nil {
			return fmt.Errorf("runner: read Lease %s/%s: %w", o.Namespace, name, err)
		}
		if holder := ptrString(cur.Spec.HolderIdentity); holder != "" && holder != id {
			busy, err := runBusy(ctx, cs, o.Namespace, holder)
			if err != nil {
				return err
			}
			if busy {
				current = holder
				return nil
			}
		}
		cur.Spec.HolderIdentity, cur.Spec.AcquireTime = &id, &now
		cur.OwnerReferences = ownerRef(job)
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		cur.Labels[LabelRunID] = id
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return errLeaseContended // changed or removed (its Job's deletion) meanwhile
		}
		if err != nil {
			return fmt.Errorf("runner: update Lease %s/%s: %w", o.Namespace, name, err)
		}
		current = id
		return nil
	})
	if errors.Is(err, errLeaseContended) {
		return "", fmt.Errorf("runner: Lease %s/%s keeps changing under us; retry, or set TESTSHIP_NEW_RUN=true", o.Namespace, name)
	}
	return current, err
}

// release deletes the Lease of a run's key if it still names the run, so
// that the next identical launch starts at once. job is the run's Job.
func release(ctx context.Context, cs kubernetes.Interface, job *batchv1.Job) error {
	if job == nil || job.Labels[LabelKey] == "" {
		return nil
	}
	id, name := job.Labels[LabelRunID], leaseName(job.Labels[LabelKey])
	leases := cs.CoordinationV1().Leases(job.Namespace)
	cur, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runner: read Lease %s/%s: %w", job.Namespace, name, err)
	}
	if ptrString(cur.Spec.HolderIdentity) != id {
		return nil // another run holds it now
	}
	err = leases.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("runner: release Lease %s/%s: %w", job.Namespace, name, err)
	}
	return nil
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// runBusy reports whether run id is still going: its Job exists, is not
// being deleted or finished, and its test has not ended; a suspended Job
// counts only while younger than setupGrace (its launcher is setting it
// up).
func runBusy(ctx context.Context, cs kubernetes.Interface, ns, id string) (bool, error) {
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, JobName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("runner: read Job %s/%s: %w", ns, JobName(id), err)
	}
	if job.DeletionTimestamp != nil || jobFinished(job) {
		return false, nil
	}
	if ptr.Deref(job.Spec.Suspend, false) {
		return time.Since(job.CreationTimestamp.Time) < setupGrace, nil
	}
	ended, err := testEnded(ctx, cs, ns, id, RunOf(job).Pods)
	return !ended, err
}

// testEnded reports whether the test containers of all the run's pods
// (count of them, one per index) have terminated.
func testEnded(ctx context.Context, cs kubernetes.Interface, ns, id string, count int) (bool, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{LabelRunID: id}).String()})
	if err != nil {
		return false, fmt.Errorf("runner: read the pods of run %s: %w", id, err)
	}
	for i := range pods.Items {
		f := classify(&pods.Items[i], false, time.Now(), time.Hour)
		if !f.done && !f.lost && f.reason == "" {
			return false, nil
		}
	}
	return len(pods.Items) >= max(count, 1), nil
}

// jobFinished reports whether the Job has a Complete or Failed condition
// (or the terminal-pending ones that precede them).
func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobFailed, batchv1.JobFailureTarget, batchv1.JobSuccessCriteriaMet:
			return true
		}
	}
	return false
}
