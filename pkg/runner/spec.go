// Package runner runs a Go test binary in a Kubernetes cluster as a Job (the
// remote runner), follows it to the end and reports its exit code.
//
// A run is one Job of one pod, or an Indexed Job of several (shards that
// split the tests, or copies that each run them all), each pod one
// container: testship's entrypoint (testlog.EntrypointPath), which runs the
// `go test -c` binary with -test.v, -test.run and -test.timeout. The pod
// gets the caller's TEST_* variables with the prefix removed, the secrets
// through a Kubernetes Secret, and its own ServiceAccount whose namespaced
// Role lets the in-test library find the environment (and read no Secret).
// Everything a run creates is owned by its Job.
package runner

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/testship/testship/pkg/kube"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/testlog"
)

// Labels and annotations testship puts on what it creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "testship"
	LabelComponent = "app.kubernetes.io/component"
	Component      = "remote-runner"
	LabelRunID     = "testship.dev/run-id"
	LabelTest      = "testship.dev/test"
	LabelImage     = "testship.dev/image"
	LabelKey       = "testship.dev/run-key"

	AnnotationImage   = "testship.dev/image"
	AnnotationPattern = "testship.dev/run-pattern"
	AnnotationTest    = "testship.dev/test"
	AnnotationEnv     = "testship.dev/forwarded-env"
	AnnotationSecrets = "testship.dev/secret-env"
	// AnnotationPodMode on a run's Job is its pods' mode (testlog.Mode*).
	AnnotationPodMode = "testship.dev/pod-mode"

	// ContainerName is the name of the test container in the pod.
	ContainerName = "test"
	// RunAsUser is the uid (and gid) the test runs as: the base image's
	// non-root user.
	RunAsUser = 65532

	// DeadlineMargin is added to the test timeout for the Job's
	// activeDeadlineSeconds, so that the test binary's own timeout (which
	// prints the stuck goroutines) fires first.
	DeadlineMargin = 5 * time.Minute
)

// Deadline is when a run launched now with test timeout timeout ends at
// the latest: its Job's activeDeadlineSeconds.
func Deadline(timeout time.Duration) time.Time { return time.Now().Add(timeout + DeadlineMargin) }

// Options describe one remote run.
type Options struct {
	Namespace string
	// Image is the test image, pinned (registry/repo@sha256:...; see
	// pkg/imageref): Launch refuses a tag.
	Image string
	// Test names what is tested (e.g. the package, "./tests/link"); it
	// labels the run and, with Image and Pattern, identifies it for attach.
	Test string
	// Pattern is the -test.run pattern; empty runs every test.
	Pattern string
	// Timeout is the test binary's -test.timeout.
	Timeout time.Duration
	// Args are extra arguments to the test binary.
	Args []string
	// Env is passed to the test in plain form (already without the TEST_
	// prefix); Secrets go through a Kubernetes Secret. Names only are ever
	// printed.
	Env     map[string]string
	Secrets map[string]string
	// Environment is an opaque (JSON) description of the deployed
	// environment, handed to the remote copy as TESTSHIP_ENVIRONMENT
	// through the run's Secret, so that it needs no Helm release records.
	// It is not part of the run key.
	Environment string

	Resources    corev1.ResourceRequirements
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	DoNotEvict   bool
	// TTL is ttlSecondsAfterFinished; 0 means 24h.
	TTL time.Duration
	// Rules extend the run's Role (validated by config.ParseRules).
	Rules []rbacv1.PolicyRule
	// NewRun starts a new run even when an identical one is running.
	NewRun bool
	// RunID is the id of the new run; empty generates one.
	RunID string

	// Pods is the number of pods of the run: 0 or 1 is a single-pod run;
	// more is one Indexed Job of that many pods (completions = parallelism
	// = Pods), each told its index, the count and Mode (testlog.Env*).
	Pods int
	// Mode says what the pods of a multi-pod run do: testlog.ModeShard
	// (each runs its index's share of the tests, ShardPlan) or
	// testlog.ModeCopy (each runs the same tests). A single-pod run is
	// testlog.ModeSingle whatever Mode says.
	Mode string
	// ShardPlan holds, per index, the top-level test names the shard runs
	// (Mode shard: one entry per pod, none empty, no test twice).
	ShardPlan [][]string
	// SyncStart holds every pod's test until all Pods pods are running
	// (the entrypoint watches the Job's status.ready; the run's Role then
	// reads its own Job).
	SyncStart bool
	// FailFast ends the whole run at the first failed index; by default a
	// failing shard or copy does not stop the others.
	FailFast bool
	// Spread places a multi-pod run's pods on distinct nodes by
	// kubernetes.io/hostname: SpreadSoft (the default when empty),
	// SpreadHard or SpreadNone.
	Spread config.Spread
	// Command replaces the container's command, [testlog.EntrypointPath]
	// (testship's entrypoint, which runs testlog.TestBinaryPath with the
	// arguments and leaves the output record as the termination message).
	// For images without the entrypoint, e.g. [testlog.TestBinaryPath];
	// it counts in the run key.
	Command []string
}

// Topology spread of a multi-pod run's pods over nodes (Options.Spread):
// the values of TESTSHIP_SPREAD.
const (
	SpreadSoft = config.SpreadSoft // ScheduleAnyway: spread when there is room
	SpreadHard = config.SpreadHard // DoNotSchedule: at most one pod more on any node
	SpreadNone = config.SpreadNone // no constraint
)

// MaxPods bounds Options.Pods (the Indexed Job's completions).
const MaxPods = config.MaxPods

// PodCount is the number of pods of the run (at least 1).
func (o Options) PodCount() int {
	if o.Pods < 1 {
		return 1
	}
	return o.Pods
}

// PodMode is the pods' mode (testlog.EnvMode): testlog.ModeSingle for a
// single-pod run, else Mode.
func (o Options) PodMode() string {
	if o.PodCount() == 1 {
		return testlog.ModeSingle
	}
	return o.Mode
}

// CheckPods returns an error naming what is wrong with the multi-pod
// options (count, mode, shard plan, spread) and what would be right.
func CheckPods(o Options) error {
	if o.Pods < 0 || o.Pods > MaxPods {
		return fmt.Errorf("runner: %d pods: want 1 to %d", o.Pods, MaxPods)
	}
	switch o.Spread {
	case "", SpreadSoft, SpreadHard, SpreadNone:
	default:
		return fmt.Errorf("runner: spread %q: want %s (the default), %s or %s", o.Spread, SpreadSoft, SpreadHard, SpreadNone)
	}
	if o.PodCount() == 1 {
		return nil
	}
	switch o.Mode {
	case testlog.ModeCopy:
		if len(o.ShardPlan) > 0 {
			return fmt.Errorf("runner: a shard plan for a run of %d copies: copies run the same tests (mode %s takes a plan)", o.Pods, testlog.ModeShard)
		}
	case testlog.ModeShard:
		if len(o.ShardPlan) != o.Pods {
			return fmt.Errorf("runner: a shard plan of %d shards for %d pods: want one list of tests per pod", len(o.ShardPlan), o.Pods)
		}
		seen := map[string]int{}
		for i, tests := range o.ShardPlan {
			if len(tests) == 0 {
				return fmt.Errorf("runner: shard %d of %d has no tests: run fewer shards", i, o.Pods)
			}
			for _, name := range tests {
				if j, dup := seen[name]; dup {
					return fmt.Errorf("runner: test %s is in shards %d and %d: every test runs in exactly one shard", name, j, i)
				}
				seen[name] = i
			}
		}
	default:
		return fmt.Errorf("runner: pod mode %q for a run of %d pods: want %s (split the tests) or %s (run them in every pod)", o.Mode, o.Pods, testlog.ModeShard, testlog.ModeCopy)
	}
	return nil
}

// FromConfig fills the options the run variables decide.
func (o *Options) FromConfig(c config.Run) {
	o.Pattern = c.Pattern
	o.Timeout = c.Timeout
	o.Resources = c.Resources
	o.NodeSelector = c.NodeSelector
	o.Tolerations = c.Tolerations
	o.DoNotEvict = c.DoNotEvict
	o.TTL = c.TTL
	o.Rules = c.Rules
	o.NewRun = c.NewRun
	o.setPods(c.Pods)
}

// EnvFromEnviron splits an environment (os.Environ form) into what the
// remote test gets: plain holds every TEST_* variable with the prefix
// removed (TEST_FOO=1 becomes FOO=1); secrets holds every secret variable
// (E2E_TEST_* and those named in TESTSHIP_SECRET_VARS) under its own name.
// A TEST_* variable that is itself secret goes with the secrets.
// TESTSHIP_CHARTS passes as it is, so that the remote copy connects to the
// same charts.
func EnvFromEnviron(environ []string) (plain, secrets map[string]string) {
	plain, secrets = map[string]string{}, map[string]string{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		switch {
		case config.IsSecret(name):
			secrets[name] = val
		case strings.HasPrefix(name, config.ForwardPrefix) && len(name) > len(config.ForwardPrefix):
			plain[strings.TrimPrefix(name, config.ForwardPrefix)] = val
		case passThrough[name]:
			if _, set := plain[name]; !set {
				plain[name] = val
			}
		}
	}
	return plain, secrets
}

// passThrough are testship's own variables the remote copy needs as they
// are: which charts make the environment it connects to.
var passThrough = map[string]bool{"TESTSHIP_CHARTS": true}

// EnvFromProcess is EnvFromEnviron(os.Environ()).
func EnvFromProcess() (plain, secrets map[string]string) { return EnvFromEnviron(os.Environ()) }

// NewRunID returns a fresh run id: the UTC time and 4 random hex digits,
// short enough for object names and sortable by start.
func NewRunID() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("0102-150405") + "-" + hex.EncodeToString(b[:])
}

// JobName is the name of a run's Job (and prefix of its pod).
func JobName(runID string) string { return "testship-" + runID }

// SecretName is the name of a run's Secret.
func SecretName(runID string) string { return "testship-" + runID + "-env" }

// imageLabel is the label value naming an image: its digest's hex (first
// 40 digits) when pinned, otherwise a hash of the reference.
func imageLabel(image string) string {
	if _, dig, ok := strings.Cut(image, "@sha256:"); ok && len(dig) >= 40 {
		return dig[:40]
	}
	return kube.LabelValue(image)
}

// RunKey identifies a launch: runs with equal keys attach to each other.
// It covers the image (by digest), the test, the pattern, the arguments,
// the forwarded variables' names and values, the secrets, the extra
// rules and what the pods run (count, mode, shard plan, synchronised
// start, fail-fast, command; not the spread), so only a truly identical launch attaches; values enter only
// through a hash. The environment description does not count: the same
// test against a redeployed environment is the same run.
func RunKey(o Options) string {
	h := sha256.New()
	field := func(s string) {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	field(imageIdentity(o.Image))
	field(o.Test)
	field(o.Pattern)
	field(strings.Join(o.Args, "\x00"))
	for _, m := range []map[string]string{o.Env, o.Secrets} {
		keys := sortedKeys(m)
		field(strings.Join(keys, ","))
		for _, k := range keys {
			field(m[k])
		}
	}
	rules, _ := json.Marshal(o.Rules)
	field(string(rules))
	// What the pods run: absent for a plain single-pod run, so its key is
	// what it always was.
	if o.PodCount() > 1 || o.SyncStart || o.FailFast || len(o.Command) > 0 {
		plan, _ := json.Marshal(o.shardPlan())
		field(fmt.Sprintf("pods=%d mode=%s sync=%t failfast=%t", o.PodCount(), o.PodMode(), o.SyncStart, o.FailFast))
		field(string(plan))
		field(strings.Join(o.Command, "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// imageIdentity is what identifies an image for the run key: its
// repository and digest, whatever tag the reference also names
// (repo:tag@sha256:... and repo@sha256:... are one image).
func imageIdentity(image string) string {
	repo, dig, ok := strings.Cut(image, "@")
	if !ok {
		return image
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + "@" + dig
}

// CheckReserved returns an error naming every forwarded or secret variable
// of o that would override a reserved one (Reserved); the pass-through
// TESTSHIP_CHARTS may be forwarded.
func CheckReserved(o Options) error {
	var bad []string
	for _, k := range sortedKeys(o.Env) {
		if config.Reserved(k) && !passThrough[k] {
			bad = append(bad, k+" (forwarded as TEST_"+k+")")
		}
	}
	for _, k := range sortedKeys(o.Secrets) {
		if config.Reserved(k) {
			bad = append(bad, k+" (secret)")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("runner: the remote test's variables %s would override what the pod needs (see config.Reserved: TESTSHIP_*, KUBERNETES_*, PATH, HOME, ...; TESTSHIP_ALLOW_VARS frees the Go runtime's): rename them", strings.Join(bad, ", "))
	}
	return nil
}

// Labels identifying a run, on its Job, pod and Secret.
func runLabels(o Options, runID string) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedBy,
		LabelComponent: Component,
		LabelRunID:     runID,
		LabelTest:      kube.LabelValue(o.Test),
		LabelImage:     imageLabel(o.Image),
		LabelKey:       RunKey(o),
	}
}

// Args returns the test binary's arguments.
func (o Options) args() []string {
	args := []string{"-test.v"}
	if o.Pattern != "" {
		args = append(args, "-test.run", o.Pattern)
	}
	if o.Timeout > 0 {
		args = append(args, "-test.timeout", o.Timeout.String())
	}
	return append(args, o.Args...)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// BuildJob returns the run's Job, suspended: Launch resumes it once the
// run's Secret and identity exist. Secret values are not in it: each secret
// variable, and TESTSHIP_ENVIRONMENT, is a secretKeyRef into
// SecretName(runID). A forwarded or secret variable that is Reserved is left
// out (Launch refuses such options before this). The pod passes the
// restricted Pod Security Standard. A single-pod run is a NonIndexed Job
// of one completion and no retry; a multi-pod run (o.Pods > 1) an Indexed
// one (see indexed).
func BuildJob(o Options, runID string) *batchv1.Job {
	labels := runLabels(o, runID)
	ttl := o.TTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	annotations := map[string]string{
		AnnotationImage:   o.Image,
		AnnotationPattern: o.Pattern,
		AnnotationTest:    o.Test,
		AnnotationEnv:     strings.Join(sortedKeys(o.Env), ","),
		AnnotationSecrets: strings.Join(sortedKeys(o.Secrets), ","),
		AnnotationPodMode: o.PodMode(),
	}
	podAnnotations := map[string]string{}
	if o.DoNotEvict {
		podAnnotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] = "false"
	}

	fromSecret := func(name string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: SecretName(runID)},
				Key:                  name,
			},
		}}
	}
	env := []corev1.EnvVar{
		{Name: config.RemoteFlag, Value: "true"},
		{Name: config.RemoteNamespace, Value: o.Namespace},
		{Name: config.RemoteRunID, Value: runID},
		fromSecret(config.RemoteEnvironment),
	}
	env = append(env, podEnv(o, runID)...)
	for _, k := range sortedKeys(o.Env) {
		if config.Reserved(k) && !passThrough[k] {
			continue // where and how it runs is not the caller's to say
		}
		env = append(env, corev1.EnvVar{Name: k, Value: o.Env[k]})
	}
	for _, k := range sortedKeys(o.Secrets) {
		if config.Reserved(k) {
			continue
		}
		env = append(env, fromSecret(k))
	}

	var deadline *int64
	if o.Timeout > 0 {
		deadline = ptr.To(int64((o.Timeout + DeadlineMargin).Seconds()))
	}
	command := o.Command
	if len(command) == 0 {
		command = []string{testlog.EntrypointPath}
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        JobName(runID),
			Namespace:   o.Namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: batchv1.JobSpec{
			Suspend:                 ptr.To(true),
			BackoffLimit:            ptr.To(int32(0)),
			Completions:             ptr.To(int32(1)),
			Parallelism:             ptr.To(int32(1)),
			ActiveDeadlineSeconds:   deadline,
			TTLSecondsAfterFinished: ptr.To(int32(ttl.Seconds())),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					ServiceAccountName:            IdentityName(runID),
					AutomountServiceAccountToken:  ptr.To(true),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To(int64(10)),
					NodeSelector:                  o.NodeSelector,
					Tolerations:                   o.Tolerations,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To(int64(RunAsUser)),
						RunAsGroup:     ptr.To(int64(RunAsUser)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:                     ContainerName,
						Image:                    o.Image,
						ImagePullPolicy:          corev1.PullIfNotPresent,
						Command:                  command,
						Args:                     o.args(),
						Env:                      env,
						Resources:                o.Resources,
						TerminationMessagePolicy: corev1.TerminationMessageReadFile,
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             ptr.To(true),
							RunAsUser:                ptr.To(int64(RunAsUser)),
							RunAsGroup:               ptr.To(int64(RunAsUser)),
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
					}},
				},
			},
		},
	}
	if n := o.PodCount(); n > 1 {
		indexed(&job.Spec, o, labels)
	}
	return job
}

// indexed makes spec the Indexed Job of a multi-pod run: n completions
// run at once, one pod per index. Each index has its own backoff limit
// of 0, so one failing shard or copy does not stop the others (a global
// backoffLimit of 0 would); with FailFast, maxFailedIndexes 0 ends the
// Job, and its other pods, at the first failed index. A replacement pod
// (none is made with a per-index limit of 0) would start only once the
// one it replaces has terminated. The pods spread over nodes as o.Spread
// says, counted by the run's label.
func indexed(spec *batchv1.JobSpec, o Options, labels map[string]string) {
	n := int32(o.PodCount())
	spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	spec.Completions, spec.Parallelism = ptr.To(n), ptr.To(n)
	spec.BackoffLimit = nil // with backoffLimitPerIndex, the API server's default: no global limit
	spec.BackoffLimitPerIndex = ptr.To(int32(0))
	if o.FailFast {
		spec.MaxFailedIndexes = ptr.To(int32(0))
	}
	spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
	var when corev1.UnsatisfiableConstraintAction
	switch o.Spread {
	case SpreadNone:
		return
	case SpreadHard:
		when = corev1.DoNotSchedule
	default:
		when = corev1.ScheduleAnyway
	}
	spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       corev1.LabelHostname,
		WhenUnsatisfiable: when,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{LabelRunID: labels[LabelRunID]}},
	}}
}

// podEnv is what tells the entrypoint and the test where the pod stands
// in its run (testlog.Env*): its index (the completion index, through the
// downward API, in a multi-pod run; 0 otherwise), the count, the mode, the
// shard plan, the synchronised start and the Job's name.
func podEnv(o Options, runID string) []corev1.EnvVar {
	index := corev1.EnvVar{Name: testlog.EnvIndex, Value: "0"}
	if o.PodCount() > 1 {
		index = corev1.EnvVar{Name: testlog.EnvIndex, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']",
		}}}
	}
	env := []corev1.EnvVar{
		index,
		{Name: testlog.EnvCount, Value: strconv.Itoa(o.PodCount())},
		{Name: testlog.EnvMode, Value: o.PodMode()},
		{Name: testlog.EnvJobName, Value: JobName(runID)},
	}
	if plan := o.shardPlan(); plan != nil {
		raw, _ := json.Marshal(plan)
		env = append(env, corev1.EnvVar{Name: testlog.EnvShardPlan, Value: string(raw)})
	}
	if o.SyncStart {
		env = append(env, corev1.EnvVar{Name: testlog.EnvSyncStart, Value: "true"})
	}
	return env
}

// shardPlan is the plan the pods get: o.ShardPlan in a multi-pod shard
// run, nil otherwise.
func (o Options) shardPlan() [][]string {
	if o.PodMode() != testlog.ModeShard {
		return nil
	}
	return o.ShardPlan
}

// BuildSecret returns the Secret holding the run's secret variables and
// the environment description (key TESTSHIP_ENVIRONMENT, always present).
func BuildSecret(o Options, runID string) *corev1.Secret {
	data := map[string][]byte{config.RemoteEnvironment: []byte(o.Environment)}
	for k, v := range o.Secrets {
		if !config.Reserved(k) {
			data[k] = []byte(v)
		}
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      SecretName(runID),
			Namespace: o.Namespace,
			Labels:    runLabels(o, runID),
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// baseRules is what the in-test library needs to find and use the
// environment: read workloads, pods, their logs, services and endpoints
// (port URLs), configmaps and events. No Secrets: the environment's
// description comes in TESTSHIP_ENVIRONMENT instead of Helm's release
// records, and other runs' Secrets stay out of reach.
var baseRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods", "pods/log", "services", "endpoints", "configmaps", "events"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "replicasets", "daemonsets"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get", "list", "watch"}},
}

// syncStartRule lets a run with a synchronised start read its own Job
// (the entrypoint watches its status.ready, with a field selector on its
// name) and no other.
func syncStartRule(runID string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{batchv1.GroupName}, Resources: []string{"jobs"}, ResourceNames: []string{JobName(runID)}, Verbs: []string{"get", "list", "watch"}}
}

// IdentityName is the name of a run's ServiceAccount, Role and
// RoleBinding: its Job's.
func IdentityName(runID string) string { return JobName(runID) }

// BuildRBAC returns the run's own ServiceAccount, Role and RoleBinding:
// namespaced read rights (baseRules), read access to its own Job with
// o.SyncStart, plus o.Rules. Launch makes them owned
// by the run's Job.
func BuildRBAC(o Options, runID string) (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	name := IdentityName(runID)
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: runLabels(o, runID)}
	}
	rules := append([]rbacv1.PolicyRule{}, baseRules...)
	if o.SyncStart {
		rules = append(rules, syncStartRule(runID))
	}
	rules = append(rules, o.Rules...)
	sa := &corev1.ServiceAccount{ObjectMeta: meta(), AutomountServiceAccountToken: ptr.To(false)}
	role := &rbacv1.Role{ObjectMeta: meta(), Rules: rules}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: meta(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: o.Namespace}},
	}
	return sa, role, rb
}
