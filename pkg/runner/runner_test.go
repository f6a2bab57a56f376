package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/jstemmer/go-junit-report/v2/junit"

	"github.com/testship/testship/pkg/config"
)

const secretValue = "s3cr3t-value-never-shown"

func testOptions() Options {
	return Options{
		Namespace:  "ns1",
		Image:      "127.0.0.1:5000/testship/test@sha256:" + strings.Repeat("ab", 32),
		Test:       "./tests/link/a/very/long/package/path/that/goes/on/and/on/beyond/sixty-three/characters",
		Pattern:    "^TestLink$",
		Timeout:    10 * time.Minute,
		Env:        map[string]string{"FOO": "bar"},
		Secrets:    map[string]string{"E2E_TEST_TOKEN": secretValue},
		Resources:  corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
		DoNotEvict: true,
	}
}

func TestEnvFromEnviron(t *testing.T) {
	t.Setenv(config.SecretVars, "MY_PASSWORD")
	plain, secrets := EnvFromEnviron([]string{
		"TEST_FOO=1", "TEST_=x", "HOME=/root", "E2E_TEST_TOKEN=" + secretValue, "MY_PASSWORD=pw", "TESTX=no", "TEST_EQ=a=b",
	})
	if want := map[string]string{"FOO": "1", "EQ": "a=b"}; fmt.Sprint(plain) != fmt.Sprint(want) {
		t.Errorf("plain = %v, want %v", plain, want)
	}
	if want := map[string]string{"E2E_TEST_TOKEN": secretValue, "MY_PASSWORD": "pw"}; fmt.Sprint(secrets) != fmt.Sprint(want) {
		t.Errorf("secrets = %v, want %v", secrets, want)
	}
}

func TestBuildJob(t *testing.T) {
	o := testOptions()
	job := BuildJob(o, "1126-235959-abcd")
	raw, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secretValue)) {
		t.Fatalf("the Job spec contains a secret value: %s", raw)
	}
	spec := job.Spec
	if *spec.BackoffLimit != 0 || spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("backoffLimit %d restartPolicy %s, want 0 and Never", *spec.BackoffLimit, spec.Template.Spec.RestartPolicy)
	}
	if got, want := *spec.ActiveDeadlineSeconds, int64((10*time.Minute + DeadlineMargin).Seconds()); got != want {
		t.Errorf("activeDeadlineSeconds = %d, want %d", got, want)
	}
	if spec.TTLSecondsAfterFinished == nil || *spec.TTLSecondsAfterFinished < 3600 {
		t.Errorf("ttlSecondsAfterFinished = %v, want at least an hour", spec.TTLSecondsAfterFinished)
	}
	for k, v := range job.Labels {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("label %s=%q invalid: %v", k, v, errs)
		}
		if spec.Template.Labels[k] != v {
			t.Errorf("pod label %s = %q, want %q", k, spec.Template.Labels[k], v)
		}
	}
	if job.Labels[LabelImage] != strings.Repeat("ab", 20) {
		t.Errorf("image label = %q", job.Labels[LabelImage])
	}
	if spec.Template.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] != "false" {
		t.Errorf("do-not-evict annotation missing: %v", spec.Template.Annotations)
	}
	c := spec.Template.Spec.Containers[0]
	if got := strings.Join(c.Args, " "); got != "-test.v -test.run ^TestLink$ -test.timeout 10m0s" {
		t.Errorf("args = %q", got)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["FOO"].Value != "bar" || env[config.RemoteFlag].Value != "true" || env[config.RemoteNamespace].Value != "ns1" || env[config.RemoteRunID].Value != "1126-235959-abcd" {
		t.Errorf("env = %v", c.Env)
	}
	tok := env["E2E_TEST_TOKEN"]
	if tok.Value != "" || tok.ValueFrom == nil || tok.ValueFrom.SecretKeyRef.Name != SecretName("1126-235959-abcd") || tok.ValueFrom.SecretKeyRef.Key != "E2E_TEST_TOKEN" {
		t.Errorf("secret env = %+v, want a secretKeyRef", tok)
	}
	envDesc := env[config.RemoteEnvironment]
	if envDesc.ValueFrom == nil || envDesc.ValueFrom.SecretKeyRef.Name != SecretName("1126-235959-abcd") || envDesc.ValueFrom.SecretKeyRef.Key != config.RemoteEnvironment {
		t.Errorf("%s = %+v, want a secretKeyRef into the run's Secret", config.RemoteEnvironment, envDesc)
	}
	if s := BuildSecret(o, "1126-235959-abcd"); string(s.Data["E2E_TEST_TOKEN"]) != secretValue || s.Name != SecretName("1126-235959-abcd") || string(s.Data[config.RemoteEnvironment]) != o.Environment {
		t.Errorf("secret = %+v", s)
	}
	if s := BuildSecret(Options{}, "x"); s == nil || len(s.Data) != 1 {
		t.Errorf("without secret variables the Secret holds only %s: %+v", config.RemoteEnvironment, s)
	}
	if !*spec.Suspend {
		t.Error("the Job is not created suspended")
	}
	ps := spec.Template.Spec
	if ps.ServiceAccountName != IdentityName("1126-235959-abcd") || ps.ServiceAccountName != job.Name {
		t.Errorf("serviceAccountName = %q, want the run's own (%s)", ps.ServiceAccountName, job.Name)
	}
	// the restricted Pod Security Standard
	psc, sc := ps.SecurityContext, c.SecurityContext
	if psc == nil || !*psc.RunAsNonRoot || *psc.RunAsUser != 65532 || *psc.RunAsGroup != 65532 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	if sc == nil || *sc.AllowPrivilegeEscalation || !*sc.RunAsNonRoot || *sc.RunAsUser != 65532 || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext = %+v", sc)
	}
	// a reserved variable never overrides the runner's own
	o.Env = map[string]string{"PATH": "/evil", config.RemoteNamespace: "other", "KUBERNETES_SERVICE_HOST": "1.2.3.4", "TESTSHIP_CHARTS": "a,b"}
	o.Secrets = map[string]string{"HOME": "/x", config.RemoteEnvironment: "{}"}
	counts := map[string]int{}
	for _, e := range BuildJob(o, "r").Spec.Template.Spec.Containers[0].Env {
		counts[e.Name]++
		if e.Name == "PATH" || e.Name == "HOME" || e.Name == "KUBERNETES_SERVICE_HOST" || (e.Name == config.RemoteNamespace && e.Value != "ns1") {
			t.Errorf("reserved variable in the pod: %+v", e)
		}
	}
	for name, n := range counts {
		if n > 1 {
			t.Errorf("%s defined %d times", name, n)
		}
	}
	if counts["TESTSHIP_CHARTS"] != 1 {
		t.Error("TESTSHIP_CHARTS does not pass through")
	}
}

func TestCheckReserved(t *testing.T) {
	for _, c := range []struct {
		env, secrets map[string]string
		bad          string
	}{
		{env: map[string]string{"PATH": "x"}, bad: "PATH"},
		{env: map[string]string{"HOME": "x"}, bad: "HOME"},
		{env: map[string]string{"HOSTNAME": "x"}, bad: "HOSTNAME"},
		{env: map[string]string{"KUBERNETES_SERVICE_HOST": "x"}, bad: "KUBERNETES_SERVICE_HOST"},
		{env: map[string]string{"TESTSHIP_NAMESPACE": "x"}, bad: "TESTSHIP_NAMESPACE"},
		{secrets: map[string]string{"PATH": secretValue}, bad: "PATH"},
		{secrets: map[string]string{"TESTSHIP_ENVIRONMENT": secretValue}, bad: "TESTSHIP_ENVIRONMENT"},
		{env: map[string]string{"TESTSHIP_CHARTS": "a", "FOO": "1"}, secrets: map[string]string{"E2E_TEST_X": "y"}},
	} {
		cs := newFake()
		o := testOptions()
		o.Env, o.Secrets = c.env, c.secrets
		_, err := Launch(context.Background(), cs, o, io.Discard)
		if c.bad == "" {
			if err != nil {
				t.Errorf("%v %v: %v", c.env, c.secrets, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.bad) || strings.Contains(err.Error(), secretValue) {
			t.Errorf("%v: err %v, want one naming %s (and no value)", c, err, c.bad)
		}
		if n := len(cs.Actions()); n != 0 {
			t.Errorf("%s: %d API requests before refusing, want none", c.bad, n)
		}
	}
	// a tag is refused: the run must be of a digest
	o := testOptions()
	o.Image = "127.0.0.1:5000/testship/test:latest"
	if _, err := Launch(context.Background(), newFake(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Errorf("launch of a tag: %v", err)
	}
}

func TestRunKey(t *testing.T) {
	base := testOptions()
	base.Rules, _ = config.ParseRules("delete:pods")
	key := RunKey(base)
	same := base
	same.Environment = `{"Namespace":"elsewhere"}`
	same.Env = map[string]string{"FOO": "bar"} // a new map, same content
	if RunKey(same) != key {
		t.Error("the environment description or map identity changes the run key")
	}
	same.Image = strings.Replace(base.Image, "/test@", "/test:v1@", 1)
	if RunKey(same) != key {
		t.Errorf("a tag beside the digest changes the run key (%s)", same.Image)
	}
	for name, mut := range map[string]func(o *Options){
		"image":        func(o *Options) { o.Image = strings.Replace(o.Image, "@sha256:ab", "@sha256:cd", 1) },
		"test":         func(o *Options) { o.Test = "other" },
		"pattern":      func(o *Options) { o.Pattern = "^TestOther$" },
		"args":         func(o *Options) { o.Args = []string{"-test.count=2"} },
		"env value":    func(o *Options) { o.Env = map[string]string{"FOO": "baz"} },
		"env name":     func(o *Options) { o.Env = map[string]string{"FOO2": "bar"} },
		"secret value": func(o *Options) { o.Secrets = map[string]string{"E2E_TEST_TOKEN": "other"} },
		"secret name":  func(o *Options) { o.Secrets = map[string]string{"E2E_TEST_OTHER": secretValue} },
		"env to secret": func(o *Options) {
			o.Env, o.Secrets = map[string]string{}, map[string]string{"FOO": "bar", "E2E_TEST_TOKEN": secretValue}
		},
		"rules": func(o *Options) { o.Rules, _ = config.ParseRules("delete:pods;get:secrets@db-password") },
	} {
		o := base
		mut(&o)
		if RunKey(o) == key {
			t.Errorf("a different %s has the same run key", name)
		}
	}
	if strings.Contains(key, secretValue) || len(key) != 32 {
		t.Errorf("run key %q", key)
	}
}

// newFake is a fake clientset that gives created objects a UID and a
// creation time, as the API server does. Pods are left as the tests make
// them: the Wait tests drive a pod by hand, updating the object they
// created (which this reactor would change under them).
func newFake(objs ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	var n atomic.Int64
	cs.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if obj, err := meta.Accessor(a.(k8stesting.CreateAction).GetObject()); err == nil && a.GetResource().Resource != "pods" {
			obj.SetUID(types.UID(fmt.Sprintf("uid-%d", n.Add(1))))
			obj.SetCreationTimestamp(metav1.Now())
		}
		return false, nil, nil
	})
	return cs
}

// ownedByJob checks that obj is owned by (only) the run's Job.
func ownedByJob(t *testing.T, what string, obj metav1.Object, job *batchv1.Job) {
	t.Helper()
	refs := obj.GetOwnerReferences()
	if len(refs) != 1 || refs[0].Kind != "Job" || refs[0].Name != job.Name || refs[0].UID != job.UID || job.UID == "" {
		t.Errorf("%s owners %+v, want the Job %s (%s)", what, refs, job.Name, job.UID)
	}
}

func TestLaunchSequenceAndOwnership(t *testing.T) {
	ctx := context.Background()
	cs := newFake()
	var steps []string
	launchHook = func(s string) error { steps = append(steps, s); return nil }
	defer func() { launchHook = nil }()
	o := testOptions()
	o.Environment = `{"Namespace":"ns1"}`
	o.Rules, _ = config.ParseRules("delete:pods")
	run, err := Launch(ctx, cs, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(steps, ","); got != "checked,job,lease,identity,resumed" {
		t.Errorf("steps %s", got)
	}
	// the order of the writes: Job (suspended), Lease, Secret and identity, resume
	var writes []string
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" || a.GetVerb() == "patch" || a.GetVerb() == "update" || a.GetVerb() == "delete" {
			writes = append(writes, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	if got, want := strings.Join(writes, ", "), "create jobs, create leases, create secrets, create serviceaccounts, create roles, create rolebindings, patch jobs"; got != want {
		t.Errorf("writes:\n got %s\nwant %s", got, want)
	}
	job, err := cs.BatchV1().Jobs("ns1").Get(ctx, run.JobName(), metav1.GetOptions{})
	if err != nil || *job.Spec.Suspend {
		t.Fatalf("job %v, suspended %v", err, job.Spec.Suspend)
	}
	name := IdentityName(run.ID)
	sec, err := cs.CoreV1().Secrets("ns1").Get(ctx, SecretName(run.ID), metav1.GetOptions{})
	if err != nil || string(sec.Data[config.RemoteEnvironment]) != o.Environment {
		t.Fatalf("secret: %v %v", err, sec)
	}
	ownedByJob(t, "Secret", sec, job)
	sa, err := cs.CoreV1().ServiceAccounts("ns1").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ownedByJob(t, "ServiceAccount", sa, job)
	role, err := cs.RbacV1().Roles("ns1").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ownedByJob(t, "Role", role, job)
	rb, err := cs.RbacV1().RoleBindings("ns1").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ownedByJob(t, "RoleBinding", rb, job)
	if rb.RoleRef.Name != name || rb.Subjects[0].Name != name || job.Spec.Template.Spec.ServiceAccountName != name {
		t.Errorf("binding %+v / pod SA %s, want all named %s", rb, job.Spec.Template.Spec.ServiceAccountName, name)
	}
	lease, err := cs.CoordinationV1().Leases("ns1").Get(ctx, LeaseName(o), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ownedByJob(t, "Lease", lease, job)
	for _, obj := range []metav1.Object{sec, sa, role, rb, lease} {
		if obj.GetLabels()[LabelRunID] != run.ID {
			t.Errorf("%s lacks the run label: %v", obj.GetName(), obj.GetLabels())
		}
	}
}

func TestLaunchKilledAtEachStep(t *testing.T) {
	for _, stop := range []string{"checked", "job", "lease", "identity"} {
		t.Run(stop, func(t *testing.T) {
			ctx := context.Background()
			cs := newFake()
			launchHook = func(s string) error {
				if s == stop {
					return fmt.Errorf("killed after %s", s)
				}
				return nil
			}
			defer func() { launchHook = nil }()
			if _, err := Launch(ctx, cs, testOptions(), io.Discard); err == nil {
				t.Fatal("the hook did not stop the launch")
			}
			if stop == "checked" {
				if len(cs.Actions()) != 0 {
					t.Errorf("requests before the Job: %v", cs.Actions())
				}
				return
			}
			// everything there is owned by the (only) Job, which is suspended
			jobs, _ := cs.BatchV1().Jobs("ns1").List(ctx, metav1.ListOptions{})
			if len(jobs.Items) != 1 || !*jobs.Items[0].Spec.Suspend {
				t.Fatalf("jobs %+v", jobs.Items)
			}
			job := &jobs.Items[0]
			var objs []metav1.Object
			ss, _ := cs.CoreV1().Secrets("ns1").List(ctx, metav1.ListOptions{})
			for i := range ss.Items {
				objs = append(objs, &ss.Items[i])
			}
			sas, _ := cs.CoreV1().ServiceAccounts("ns1").List(ctx, metav1.ListOptions{})
			for i := range sas.Items {
				objs = append(objs, &sas.Items[i])
			}
			rs, _ := cs.RbacV1().Roles("ns1").List(ctx, metav1.ListOptions{})
			for i := range rs.Items {
				objs = append(objs, &rs.Items[i])
			}
			rbs, _ := cs.RbacV1().RoleBindings("ns1").List(ctx, metav1.ListOptions{})
			for i := range rbs.Items {
				objs = append(objs, &rbs.Items[i])
			}
			ls, _ := cs.CoordinationV1().Leases("ns1").List(ctx, metav1.ListOptions{})
			for i := range ls.Items {
				objs = append(objs, &ls.Items[i])
			}
			want := map[string]int{"job": 0, "lease": 1, "identity": 5}[stop]
			if len(objs) != want {
				t.Errorf("%d objects besides the Job, want %d", len(objs), want)
			}
			for _, obj := range objs {
				ownedByJob(t, obj.GetName(), obj, job)
			}
		})
	}
}

func TestClaimTakesOverAtOnce(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	// a Lease naming a run whose Job is gone (cancelled, or its TTL passed)
	cs := newFake(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeaseName(o), Namespace: "ns1"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("gone"), AcquireTime: ptr.To(metav1.NewMicroTime(time.Now()))},
	})
	run, err := Launch(ctx, cs, o, io.Discard)
	if err != nil || run.Attached {
		t.Fatalf("launch over a run whose Job is gone: %+v %v", run, err)
	}
	// a suspended Job past the setup grace: its launcher died
	stale := BuildJob(o, "stale")
	stale.CreationTimestamp = metav1.NewTime(time.Now().Add(-setupGrace - time.Second))
	lease, _ := cs.CoordinationV1().Leases("ns1").Get(ctx, LeaseName(o), metav1.GetOptions{})
	lease.Spec.HolderIdentity = ptr.To("stale")
	cs.CoordinationV1().Leases("ns1").Update(ctx, lease, metav1.UpdateOptions{})
	cs.BatchV1().Jobs("ns1").Delete(ctx, run.JobName(), metav1.DeleteOptions{})
	cs.Tracker().Add(stale)
	run2, err := Launch(ctx, cs, o, io.Discard)
	if err != nil || run2.Attached {
		t.Fatalf("launch over a stale suspended run: %+v %v", run2, err)
	}
	// a fresh suspended Job is being set up: attach, and our own Job goes
	setup := BuildJob(o, "setup")
	setup.CreationTimestamp = metav1.Now()
	cs.Tracker().Add(setup)
	lease, _ = cs.CoordinationV1().Leases("ns1").Get(ctx, LeaseName(o), metav1.GetOptions{})
	lease.Spec.HolderIdentity = ptr.To("setup")
	cs.CoordinationV1().Leases("ns1").Update(ctx, lease, metav1.UpdateOptions{})
	before, _ := cs.BatchV1().Jobs("ns1").List(ctx, metav1.ListOptions{})
	run3, err := Launch(ctx, cs, o, io.Discard)
	if err != nil || !run3.Attached || run3.ID != "setup" {
		t.Fatalf("launch while an identical run is set up: %+v %v", run3, err)
	}
	after, _ := cs.BatchV1().Jobs("ns1").List(ctx, metav1.ListOptions{})
	if len(after.Items) != len(before.Items) {
		t.Errorf("the attaching launch left its own Job: %d Jobs, was %d", len(after.Items), len(before.Items))
	}
}

func TestCancelReleasesClaim(t *testing.T) {
	ctx := context.Background()
	cs := newFake()
	o := testOptions()
	first, err := Launch(ctx, cs, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := Cancel(ctx, cs, "ns1", first.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases("ns1").Get(ctx, LeaseName(o), metav1.GetOptions{}); err == nil {
		t.Error("the cancelled run's Lease is still there")
	}
	second, err := Launch(ctx, cs, o, io.Discard)
	if err != nil || second.Attached || second.ID == first.ID {
		t.Fatalf("launch right after cancel: %+v %v", second, err)
	}
	// release leaves a Lease another run holds alone
	job, _ := cs.BatchV1().Jobs("ns1").Get(ctx, second.JobName(), metav1.GetOptions{})
	other := job.DeepCopy()
	other.Labels[LabelRunID] = "someone-else"
	if err := release(ctx, cs, other); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases("ns1").Get(ctx, LeaseName(o), metav1.GetOptions{}); err != nil {
		t.Errorf("release removed another run's Lease: %v", err)
	}
}

func TestLaunchRefusesForeignIdentity(t *testing.T) {
	ctx := context.Background()
	o := testOptions()
	o.RunID = "0101-000000-beef"
	foreign := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: IdentityName(o.RunID), Namespace: "ns1"}}
	cs := newFake(foreign)
	_, err := Launch(ctx, cs, o, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ServiceAccount ns1/"+IdentityName(o.RunID)) || !strings.Contains(err.Error(), "not reusing") {
		t.Fatalf("launch over a foreign ServiceAccount: %v", err)
	}
	if jobs, _ := cs.BatchV1().Jobs("ns1").List(ctx, metav1.ListOptions{}); len(jobs.Items) != 0 {
		t.Errorf("the failed launch left its Job")
	}
}

func TestListShowsExpiry(t *testing.T) {
	ctx := context.Background()
	exp := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	cs := newFake(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1", Annotations: map[string]string{AnnotationExpiresAt: exp.Format(time.RFC3339)}}},
	)
	o := testOptions()
	if _, err := Launch(ctx, cs, o, io.Discard); err != nil {
		t.Fatal(err)
	}
	o.Namespace = "ns2"
	if _, err := Launch(ctx, cs, o, io.Discard); err != nil {
		t.Fatal(err)
	}
	runs, err := List(ctx, cs, "")
	if err != nil || len(runs) != 2 {
		t.Fatal(runs, err)
	}
	var buf bytes.Buffer
	PrintList(&buf, runs)
	for _, r := range runs {
		if (r.Namespace == "ns1") != r.Expires.Equal(exp) {
			t.Errorf("run in %s expires %v", r.Namespace, r.Expires)
		}
	}
	if !strings.Contains(buf.String(), "EXPIRES") || !strings.Contains(buf.String(), "2026-11-28T15:00:00Z") {
		t.Errorf("list:\n%s", buf.String())
	}
}

func TestRBACHasNoWildcards(t *testing.T) {
	rules, err := config.ParseRules("delete:pods;patch,update:deployments/scale.apps")
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.Rules = rules
	sa, role, rb := BuildRBAC(o, "r1")
	if sa.Namespace != "ns1" || role.Namespace != "ns1" || rb.Namespace != "ns1" || rb.RoleRef.Kind != "Role" {
		t.Fatalf("RBAC not namespaced: %v %v %v", sa.Namespace, role.Namespace, rb.RoleRef)
	}
	if sa.Name != JobName("r1") || role.Name != sa.Name || rb.Name != sa.Name || rb.RoleRef.Name != sa.Name || rb.Subjects[0].Name != sa.Name {
		t.Errorf("identity not the run's own: %s %s %s -> %s, %+v", sa.Name, role.Name, rb.Name, rb.RoleRef.Name, rb.Subjects)
	}
	for i, r := range role.Rules {
		for _, res := range r.Resources {
			if res == "secrets" && len(r.ResourceNames) == 0 {
				t.Errorf("the run's Role reads Secrets: %+v", r)
			}
		}
		if i < len(baseRules) && strings.Join(r.Verbs, ",") != "get,list,watch" {
			t.Errorf("a base rule is not read-only: %+v", r)
		}
	}
	if len(role.Rules) != len(baseRules)+len(rules) {
		t.Errorf("%d rules, want the %d base rules and the %d extra", len(role.Rules), len(baseRules), len(rules))
	}
	var sawDelete bool
	for _, r := range role.Rules {
		for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups} {
			for _, v := range list {
				if strings.Contains(v, "*") {
					t.Errorf("wildcard in rule %+v", r)
				}
			}
		}
		for _, v := range r.Verbs {
			if v == "delete" && r.Resources[0] == "pods" {
				sawDelete = true
			}
		}
	}
	if !sawDelete {
		t.Error("extra rule missing")
	}
	for _, bad := range []string{"*:pods", "get:*", "get", "escalate:roles.rbac.authorization.k8s.io"} {
		if _, err := config.ParseRules(bad); err == nil {
			t.Errorf("ParseRules(%q) accepted", bad)
		}
	}
}

// stamp formats a log line the way the kubelet does with timestamps=true.
func stamp(ts time.Time, text string) string {
	return ts.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " " + text + "\n"
}

func TestResumeDropsWhatWasShown(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 23, 0, 0, 500, time.UTC)
	t1 := t0.Add(time.Millisecond)
	t2 := t0.Add(2 * time.Second)
	// Three lines share t1: a resume after the second must skip exactly two.
	all := []string{stamp(t0, "a"), stamp(t1, "b"), stamp(t1, "b"), stamp(t1, "c"), stamp(t2, "d")}
	var got []string
	r := &lineResumer{emit: func(l []byte) { got = append(got, string(l)) }}
	// first stream breaks in the middle of the fourth line
	first := strings.Join(all[:3], "") + all[3][:10]
	if err := r.read(&brokenReader{data: first}, false); err == nil {
		t.Fatal("broken stream read without error")
	}
	if r.since() == nil || !r.since().Time.Equal(t1) {
		t.Fatalf("since = %v, want %v", r.since(), t1)
	}
	// The API server truncates sinceTime to the second: the new stream
	// repeats everything from t0's second on.
	if err := r.read(strings.NewReader(strings.Join(all, "")), false); err != nil {
		t.Fatal(err)
	}
	// A final stream after the container ended repeats the last line only.
	if err := r.read(strings.NewReader(all[4]+t2.Add(time.Millisecond).Format(time.RFC3339Nano)+" e"), true); err != nil {
		t.Fatal(err)
	}
	want := []string{"a\n", "b\n", "b\n", "c\n", "d\n", "e"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if r.lines != 6 {
		t.Errorf("lines counted %d, want 6", r.lines)
	}
}

func TestResumeLongLines(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	big := strings.Repeat("0123456789", 300000) // 3 MB, far past any buffer
	var got []string
	r := &lineResumer{emit: func(l []byte) { got = append(got, string(l)) }}
	in := stamp(t0, "x") + stamp(t0.Add(time.Microsecond), big) + stamp(t0.Add(2*time.Microsecond), "y")
	if err := r.read(strings.NewReader(in), false); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1] != big+"\n" || got[2] != "y\n" {
		t.Fatalf("got %d lines, long line intact: %v", len(got), len(got) > 1 && got[1] == big+"\n")
	}
	// A continuation without a timestamp while resuming belongs to a line
	// already shown.
	if err := r.read(strings.NewReader("rest of an old long line\n"+stamp(t0.Add(3*time.Microsecond), "z")), false); err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1] != "z\n" || len(got) != 4 {
		t.Errorf("after resume: %q", got[3:])
	}
}

type brokenReader struct{ data string }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.data == "" {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func TestSummary(t *testing.T) {
	var s Summary
	for _, l := range strings.Split(`=== RUN   TestA
--- PASS: TestA (0.00s)
=== RUN   TestB
=== RUN   TestB/sub_one
    --- FAIL: TestB/sub_one (0.01s)
    --- SKIP: TestB/skipped (0.00s)
--- FAIL: TestB (0.01s)
    x_test.go:3: --- PASS: not a result line (
--- FAIL: TestC (1.50s)
FAIL`, "\n") {
		s.Observe([]byte(l + "\n"))
	}
	if fmt.Sprintf("%v %v %v %v", s.Passed, s.Failed, s.Skipped, s.Final) != "[TestA] [TestB/sub_one TestB TestC] [TestB/skipped] FAIL" {
		t.Errorf("summary = %v %v %v %v", s.Passed, s.Failed, s.Skipped, s.Final)
	}
	if got := s.FailedTop(); fmt.Sprint(got) != "[TestB/sub_one TestC]" {
		t.Errorf("FailedTop = %v", got)
	}
	r := &Result{RunID: "r1", ExitCode: 1, Summary: s, Duration: 1500 * time.Millisecond}
	line := r.Line()
	for _, want := range []string{"run r1 FAILED", "1 passed, 3 failed, 1 skipped", "failed: TestB/sub_one, TestC", "exit code 1", "1.5s"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary line %q lacks %q", line, want)
		}
	}
	var ee *ExitError
	if err := r.Err(); err == nil || !asExit(err, &ee) || ee.ExitStatus() != 1 {
		t.Errorf("Err() = %v", err)
	}
	if (&Result{}).Err() != nil {
		t.Error("a passed run is an error")
	}
}

func asExit(err error, target **ExitError) bool {
	e, ok := err.(*ExitError)
	*target = e
	return ok
}

func pod(mut func(p *corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: "reg/img:tag",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName}}},
	}
	mut(p)
	return p
}

func TestClassify(t *testing.T) {
	now := time.Now()
	cs := func(p *corev1.Pod) *corev1.ContainerState { return &p.Status.ContainerStatuses[0].State }
	cases := []struct {
		name    string
		pod     *corev1.Pod
		deleted bool
		code    int
		exit    int
		msg     string
	}{
		{"exit 3", pod(func(p *corev1.Pod) { cs(p).Terminated = &corev1.ContainerStateTerminated{ExitCode: 3} }), false, 0, 3, ""},
		{"exit 0", pod(func(p *corev1.Pod) { cs(p).Terminated = &corev1.ContainerStateTerminated{ExitCode: 0} }), false, 0, 0, ""},
		{"pull", pod(func(p *corev1.Pod) {
			cs(p).Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "manifest unknown"}
		}), false, ExitImagePull, 0, "image reg/img:tag cannot be pulled (ErrImagePull): manifest unknown"},
		{"backoff", pod(func(p *corev1.Pod) { cs(p).Waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"} }), false, ExitImagePull, 0, "ImagePullBackOff"},
		{"config", pod(func(p *corev1.Pod) {
			cs(p).Waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: `secret "x" not found`}
		}), false, ExitContainerConfig, 0, `secret "x" not found`},
		{"oom", pod(func(p *corev1.Pod) {
			cs(p).Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}
		}), false, ExitOOMKilled, 137, "memory limit (64Mi)"},
		{"deleted", pod(func(p *corev1.Pod) { cs(p).Running = &corev1.ContainerStateRunning{} }), true, ExitPodLost, 0, "deleted"},
		{"evicted", pod(func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "low on memory"
		}), false, ExitPodLost, 0, "evicted: low on memory"},
		{"unschedulable", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = nil
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
				Message: "0/1 nodes are available: 1 Insufficient memory.", LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}}
		}), false, ExitUnschedulable, 0, "Insufficient memory"},
		{"unschedulable within grace", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = nil
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
				LastTransitionTime: metav1.NewTime(now)}}
		}), false, 0, 0, ""},
	}
	for _, c := range cases {
		f := classify(c.pod, c.deleted, now, 15*time.Second)
		if f.code != c.code || f.exitCode != c.exit || !strings.Contains(f.message, c.msg) {
			t.Errorf("%s: code %d exit %d message %q; want %d %d %q", c.name, f.code, f.exitCode, f.message, c.code, c.exit, c.msg)
		}
	}
	f := classify(cases[len(cases)-1].pod, false, now, 15*time.Second)
	if f.waitUntil.IsZero() {
		t.Error("no grace deadline for a fresh unschedulable pod")
	}
}

func TestLaunchAttachesToRunningRun(t *testing.T) {
	ctx := context.Background()
	cs := newFake()
	o := testOptions()
	var out bytes.Buffer
	first, err := Launch(ctx, cs, o, &out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), secretValue) || !strings.Contains(out.String(), "E2E_TEST_TOKEN") {
		t.Errorf("launch output must name secrets, never show them:\n%s", out.String())
	}
	second, err := Launch(ctx, cs, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Attached || second.ID != first.ID {
		t.Errorf("second launch: attached %v id %s, want attach to %s", second.Attached, second.ID, first.ID)
	}
	o2 := o
	o2.NewRun = true
	third, err := Launch(ctx, cs, o2, io.Discard)
	if err != nil || third.Attached || third.ID == first.ID {
		t.Fatalf("forced new run: %+v %v", third, err)
	}
	// once finished, a launch starts a new run
	for _, r := range []*Run{first, third} {
		job, _ := cs.BatchV1().Jobs("ns1").Get(ctx, r.JobName(), metav1.GetOptions{})
		job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		if _, err := cs.BatchV1().Jobs("ns1").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fourth, err := Launch(ctx, cs, o, io.Discard)
	if err != nil || fourth.Attached {
		t.Fatalf("launch after finish: %+v %v", fourth, err)
	}
	sec, err := cs.CoreV1().Secrets("ns1").Get(ctx, SecretName(first.ID), metav1.GetOptions{})
	if err != nil || len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Kind != "Job" {
		t.Errorf("secret owner: %+v %v", sec, err)
	}
}

func TestJUnitReport(t *testing.T) {
	raw, err := os.ReadFile("testdata/report.txt") // `-test.v` output of the probe's TestPass and TestReport
	if err != nil {
		t.Fatal(err)
	}
	rec, err := NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	for _, l := range strings.SplitAfter(string(raw), "\n") {
		if l != "" {
			rec.Line([]byte(l))
		}
	}
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := rec.WriteJUnit(path, "probe", &Result{ExitCode: 1, Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var suites junit.Testsuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatal(err)
	}
	if len(suites.Suites) != 1 {
		t.Fatalf("%d suites:\n%s", len(suites.Suites), data)
	}
	s := suites.Suites[0]
	cases := map[string]junit.Testcase{}
	for _, c := range s.Testcases {
		cases[c.Name] = c
	}
	check := func(name string, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %s\n%s", name, what, data)
		}
	}
	for _, name := range []string{"TestPass", "TestReport", "TestReport/pass", "TestReport/fail", "TestReport/skip", "TestReport/group/par0", "TestReport/group/par1", "TestReport/group/par2"} {
		_, ok := cases[name]
		check(name, ok, "missing")
	}
	check("TestReport/fail", cases["TestReport/fail"].Failure != nil && strings.Contains(cases["TestReport/fail"].Failure.Data, "report: failing subtest"), "no failure with its output")
	check("TestReport/skip", cases["TestReport/skip"].Skipped != nil, "not skipped")
	check("TestReport/pass", cases["TestReport/pass"].Failure == nil && cases["TestReport/pass"].Skipped == nil, "not passed")
	check("TestReport/group/par0", cases["TestReport/group/par0"].Time == "0.300", "duration "+cases["TestReport/group/par0"].Time)
	check("TestReport/group/par2", cases["TestReport/group/par2"].Time == "0.100", "duration "+cases["TestReport/group/par2"].Time)
	check("suite", s.Failures == 2 && s.Skipped == 1, fmt.Sprintf("failures %d skipped %d", s.Failures, s.Skipped))
}

func TestWaitWithFakeCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		name   string
		status corev1.ContainerState
		code   int
		reason string
	}{
		{"exit 3", corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}, 3, ""},
		{"image pull", corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}, ExitImagePull, ReasonImagePull},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := newFake()
			run, err := Launch(ctx, cs, testOptions(), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: run.JobName() + "-x", Namespace: "ns1", Labels: run.Job.Spec.Template.Labels},
				Spec:       run.Job.Spec.Template.Spec,
				Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName}}},
			}
			if _, err := cs.CoreV1().Pods("ns1").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			go func() {
				time.Sleep(100 * time.Millisecond) // after the watch started
				p.Status.ContainerStatuses[0].State = c.status
				cs.CoreV1().Pods("ns1").UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}()
			var out bytes.Buffer
			res, err := Wait(ctx, cs, run, WaitOptions{Out: &out})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != c.code || res.Reason != c.reason {
				t.Errorf("exit %d reason %q, want %d %q (%s)", res.ExitCode, res.Reason, c.code, c.reason, res.Message)
			}
			if c.reason == "" && out.String() != "fake logs\n" {
				t.Errorf("output %q, want the fake clientset's log", out.String())
			}
		})
	}
}

func TestFollowDeadlineLeavesRunGoing(t *testing.T) {
	cs := newFake()
	run, err := Launch(context.Background(), cs, testOptions(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var log bytes.Buffer
	_, err = Follow(ctx, cs, run, FollowOptions{WaitOptions: WaitOptions{Log: &log}})
	var ee *ExitError
	if !asExit(err, &ee) || ee.Code != ExitWaitTimeout || !strings.Contains(log.String(), "mage run:attach "+run.ID) {
		t.Fatalf("err %v, log %q", err, log.String())
	}
	if _, err := cs.BatchV1().Jobs("ns1").Get(context.Background(), run.JobName(), metav1.GetOptions{}); err != nil {
		t.Errorf("the run was removed on a wait deadline: %v", err)
	}
}

func TestNoTestsWarnsAndMarkdown(t *testing.T) {
	var s Summary
	s.Observe([]byte("testing: warning: no tests to run\n"))
	s.Observe([]byte("PASS\n"))
	r := &Result{RunID: "r1", Namespace: "ns", Summary: s}
	if !strings.Contains(r.Line(), "WARNING: no test matched") {
		t.Errorf("no warning: %s", r.Line())
	}
	r = &Result{RunID: "r2", Namespace: "ns", ExitCode: 1, Summary: Summary{Failed: []string{"TestA"}}}
	md := r.Markdown()
	for _, want := range []string{"`r2`", ":x: failed", "- `TestA`", "| `ns` | 1 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestConcurrentLaunchesMakeOneRun(t *testing.T) {
	ctx := context.Background()
	cs := newFake()
	o := testOptions()
	o.Secrets = nil
	ids := make(chan string, 8)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := Launch(ctx, cs, o, io.Discard)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- r.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	jobs, _ := cs.BatchV1().Jobs("ns1").List(ctx, metav1.ListOptions{})
	if len(seen) != 1 || len(jobs.Items) != 1 {
		t.Errorf("8 concurrent launches: %d run ids, %d Jobs; want 1 and 1", len(seen), len(jobs.Items))
	}
}

func TestWaitTimeoutLeavesRunGoing(t *testing.T) {
	cs := newFake()
	run, err := Launch(context.Background(), cs, testOptions(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	res, err := Follow(context.Background(), cs, run, FollowOptions{WaitOptions: WaitOptions{Log: &log, Timeout: 200 * time.Millisecond}})
	var ee *ExitError
	if !asExit(err, &ee) || ee.Code != ExitWaitTimeout || res.Reason != ReasonWaitTimeout || !strings.Contains(ee.Message, "mage run:attach "+run.ID) {
		t.Fatalf("err %v res %+v", err, res)
	}
	if _, err := cs.BatchV1().Jobs("ns1").Get(context.Background(), run.JobName(), metav1.GetOptions{}); err != nil {
		t.Errorf("the run was removed on a wait timeout: %v", err)
	}
}

// A resumed stream that no longer starts with the last line shown (the
// kubelet rotated the log meanwhile) is reported as a gap.
func TestLineResumerReportsGap(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Millisecond), t0.Add(5*time.Second)
	var got []string
	var gaps [][2]time.Time
	r := &lineResumer{emit: func(l []byte) { got = append(got, string(l)) },
		gap: func(from, to time.Time) { gaps = append(gaps, [2]time.Time{from, to}) }}
	if err := r.read(&brokenReader{data: stamp(t0, "a") + stamp(t1, "b")}, false); err == nil {
		t.Fatal("broken stream read without error")
	}
	// The complete log would repeat b (at t1) first; this one starts later.
	if err := r.read(strings.NewReader(stamp(t2, "z")), true); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != "a\nb\nz\n" {
		t.Fatalf("lines %q", got)
	}
	if len(gaps) != 1 || !gaps[0][0].Equal(t1) || !gaps[0][1].Equal(t2) {
		t.Fatalf("gaps %v, want one from t1 to t2", gaps)
	}
	// A resume that repeats the last line is no gap.
	gaps = nil
	r2 := &lineResumer{emit: func([]byte) {}, gap: func(from, to time.Time) { gaps = append(gaps, [2]time.Time{from, to}) }}
	r2.read(&brokenReader{data: stamp(t0, "a") + stamp(t1, "b")}, false)
	r2.read(strings.NewReader(stamp(t1, "b")+stamp(t2, "c")), true)
	if len(gaps) != 0 {
		t.Fatalf("gap reported for a complete resume: %v", gaps)
	}
}

// A finished run releases its claim: the next identical launch is a new
// run, with no wait.
func TestFinishedRunReleasesClaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newFake()
	o := testOptions()
	run, err := Launch(ctx, cs, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: run.JobName() + "-x", Namespace: "ns1", Labels: run.Job.Spec.Template.Labels},
		Spec:       run.Job.Spec.Template.Spec,
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}},
	}
	if _, err := cs.CoreV1().Pods("ns1").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases("ns1").Get(ctx, LeaseName(o), metav1.GetOptions{}); err != nil {
		t.Fatalf("no claim while the run goes: %v", err)
	}
	if res, err := Follow(ctx, cs, run, FollowOptions{}); err != nil || res.ExitCode != 0 {
		t.Fatalf("follow: %+v %v", res, err)
	}
	if _, err := cs.CoordinationV1().Leases("ns1").Get(ctx, LeaseName(o), metav1.GetOptions{}); err == nil {
		t.Error("the finished run's Lease is still there")
	}
}
