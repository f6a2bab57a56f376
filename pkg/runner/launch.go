package runner

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Run is a launched (or found) remote run.
type Run struct {
	ID        string
	Namespace string
	Job       *batchv1.Job
	// Attached is true when Launch found the same test already running and
	// returned that run instead of starting a new one.
	Attached bool
}

// JobName is the name of the run's Job.
func (r *Run) JobName() string { return JobName(r.ID) }

// Launch starts the remote run described by o, or returns the identical run
// already going in the namespace (same image, test and pattern) unless
// o.NewRun. It ensures the runner's ServiceAccount, Role and RoleBinding,
// creates the Secret (when there are secret variables) and the Job, and
// writes what it did to out, naming forwarded variables but never values.
func Launch(ctx context.Context, cs kubernetes.Interface, o Options, out io.Writer) (*Run, error) {
	if out == nil {
		out = io.Discard
	}
	if o.Namespace == "" || o.Image == "" {
		return nil, fmt.Errorf("runner: launch needs a namespace and an image (got namespace %q, image %q)", o.Namespace, o.Image)
	}
	id := o.RunID
	if id == "" {
		id = NewRunID()
	}
	if !o.NewRun {
		holder, err := claim(ctx, cs, o, id)
		if err != nil {
			return nil, err
		}
		if holder != id {
			fmt.Fprintf(out, "testship: run %s of the same test and image is still running in namespace %s: attaching to it (TESTSHIP_NEW_RUN=true starts another)\n", holder, o.Namespace)
			job, err := waitForJob(ctx, cs, o.Namespace, holder)
			if err != nil {
				return nil, err
			}
			return &Run{ID: holder, Namespace: o.Namespace, Job: job, Attached: true}, nil
		}
	}
	if err := EnsureRBAC(ctx, cs, o.Namespace, o.Rules); err != nil {
		return nil, err
	}
	secret := BuildSecret(o, id)
	if secret != nil {
		if _, err := cs.CoreV1().Secrets(o.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("runner: create Secret %s/%s for the secret variables %s: %w", o.Namespace, secret.Name, strings.Join(sortedKeys(o.Secrets), ", "), redactErr(err))
		}
	}
	job, err := cs.BatchV1().Jobs(o.Namespace).Create(ctx, BuildJob(o, id), metav1.CreateOptions{})
	if err != nil {
		if secret != nil {
			_ = cs.CoreV1().Secrets(o.Namespace).Delete(context.WithoutCancel(ctx), secret.Name, metav1.DeleteOptions{})
		}
		return nil, fmt.Errorf("runner: create Job %s/%s: %w", o.Namespace, JobName(id), err)
	}
	if secret != nil {
		// The Secret goes when the Job goes (TTL, cancel, namespace delete).
		patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":%q,"uid":%q}]}}`, job.Name, job.UID)
		if _, err := cs.CoreV1().Secrets(o.Namespace).Patch(ctx, secret.Name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			return nil, fmt.Errorf("runner: set owner of Secret %s/%s: %w", o.Namespace, secret.Name, redactErr(err))
		}
	}
	fmt.Fprintf(out, "testship: started run %s: Job %s/%s, image %s%s\n", id, o.Namespace, job.Name, o.Image, patternNote(o.Pattern))
	if len(o.Env) > 0 {
		fmt.Fprintf(out, "testship: forwarded variables: %s\n", strings.Join(sortedKeys(o.Env), ", "))
	}
	if len(o.Secrets) > 0 {
		fmt.Fprintf(out, "testship: secret variables (values in Secret %s): %s\n", SecretName(id), strings.Join(sortedKeys(o.Secrets), ", "))
	}
	return &Run{ID: id, Namespace: o.Namespace, Job: job}, nil
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

// LeaseName is the Lease that records which run of a run key (same
// image, test and pattern) is current in a namespace.
func LeaseName(o Options) string { return "testship-run-" + RunKey(o)[:20] }

// startGrace is how long a claimed run may take to create its Job before
// another launch takes over.
const startGrace = time.Minute

// claim makes run id the current run of o's run key unless another run of
// that key is still going; it returns the current run's id. A Lease makes
// this safe against launches racing each other: the API server accepts one
// create, or one update of a given version.
func claim(ctx context.Context, cs kubernetes.Interface, o Options, id string) (string, error) {
	leases := cs.CoordinationV1().Leases(o.Namespace)
	name := LeaseName(o)
	for attempt := 0; attempt < 10; attempt++ {
		now := metav1.NewMicroTime(time.Now())
		cur, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			lease := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: map[string]string{
					LabelManagedBy: ManagedBy, LabelComponent: Component, LabelKey: RunKey(o)}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, AcquireTime: &now},
			}
			_, err := leases.Create(ctx, lease, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("runner: create Lease %s/%s: %w", o.Namespace, name, err)
			}
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("runner: read Lease %s/%s: %w", o.Namespace, name, err)
		}
		if holder := ptrString(cur.Spec.HolderIdentity); holder != "" && holder != id {
			busy, err := runBusy(ctx, cs, o.Namespace, holder, cur.Spec.AcquireTime)
			if err != nil {
				return "", err
			}
			if busy {
				return holder, nil
			}
		}
		cur.Spec.HolderIdentity, cur.Spec.AcquireTime = &id, &now
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("runner: update Lease %s/%s: %w", o.Namespace, name, err)
		}
		return id, nil
	}
	return "", fmt.Errorf("runner: Lease %s/%s keeps changing under us; retry, or set TESTSHIP_NEW_RUN=true", o.Namespace, name)
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// runBusy reports whether run id is still going: its Job exists, is not
// finished and its test has not ended; or it was claimed moments ago and
// its Job is being created.
func runBusy(ctx context.Context, cs kubernetes.Interface, ns, id string, acquired *metav1.MicroTime) (bool, error) {
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, JobName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return acquired != nil && time.Since(acquired.Time) < startGrace, nil
	}
	if err != nil {
		return false, fmt.Errorf("runner: read Job %s/%s: %w", ns, JobName(id), err)
	}
	if job.DeletionTimestamp != nil || jobFinished(job) {
		return false, nil
	}
	ended, err := testEnded(ctx, cs, ns, id)
	return !ended, err
}

// waitForJob returns run id's Job, waiting (watching) for its creation
// when the run was claimed a moment ago.
func waitForJob(ctx context.Context, cs kubernetes.Interface, ns, id string) (*batchv1.Job, error) {
	name := JobName(id)
	if job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err == nil || !apierrors.IsNotFound(err) {
		return job, err
	}
	wctx, cancel := context.WithTimeout(ctx, startGrace)
	defer cancel()
	lw := &listWatch{ListWatch: cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = "metadata.name=" + name
			return cs.BatchV1().Jobs(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = "metadata.name=" + name
			return cs.BatchV1().Jobs(ns).Watch(ctx, o)
		},
	}}
	var job *batchv1.Job
	_, err := watchtools.UntilWithSync(wctx, lw, &batchv1.Job{}, func(store cache.Store) (bool, error) {
		obj, exists, err := store.GetByKey(ns + "/" + name)
		if exists {
			job = obj.(*batchv1.Job)
		}
		return exists, err
	}, func(ev watch.Event) (bool, error) {
		j, ok := ev.Object.(*batchv1.Job)
		if ok {
			job = j
		}
		return ok, nil
	})
	if err != nil {
		return nil, fmt.Errorf("runner: run %s was claimed but its Job %s/%s did not appear: %w", id, ns, name, err)
	}
	return job, nil
}

// testEnded reports whether the run's test container has terminated.
func testEnded(ctx context.Context, cs kubernetes.Interface, ns, id string) (bool, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{LabelRunID: id}).String()})
	if err != nil {
		return false, fmt.Errorf("runner: read the pod of run %s: %w", id, err)
	}
	for i := range pods.Items {
		f := classify(&pods.Items[i], false, time.Now(), time.Hour)
		if !f.done && !f.lost && f.reason == "" {
			return false, nil
		}
	}
	return len(pods.Items) > 0, nil
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

// EnsureRBAC creates or updates the runner's ServiceAccount, Role and
// RoleBinding in the namespace. It makes no request that changes anything
// when they are already as wanted.
func EnsureRBAC(ctx context.Context, cs kubernetes.Interface, namespace string, extra []rbacv1.PolicyRule) error {
	sa, role, rb := BuildRBAC(namespace, extra)
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("runner: create ServiceAccount %s/%s: %w", namespace, sa.Name, err)
	}
	cur, err := cs.RbacV1().Roles(namespace).Get(ctx, role.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := cs.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("runner: create Role %s/%s: %w", namespace, role.Name, err)
		}
	case err != nil:
		return fmt.Errorf("runner: read Role %s/%s: %w", namespace, role.Name, err)
	case !equality.Semantic.DeepEqual(cur.Rules, role.Rules):
		cur.Rules = role.Rules
		if _, err := cs.RbacV1().Roles(namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("runner: update Role %s/%s: %w", namespace, role.Name, err)
		}
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("runner: create RoleBinding %s/%s: %w", namespace, rb.Name, err)
	}
	return nil
}
