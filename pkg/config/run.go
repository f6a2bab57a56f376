package config

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Variables of the remote runner (area "run").
var (
	RunPattern = Declare(Var{Name: "TESTSHIP_RUN", Area: "run",
		Help: "which tests the remote runner runs: a go test -run pattern (empty: all tests in the test binary)"})
	RunTimeout = Declare(Var{Name: "TESTSHIP_TIMEOUT", Default: "30m", Area: "run",
		Help: "the test binary's -test.timeout; the Job's activeDeadlineSeconds is this plus 5m"})
	RunWaitTimeout = Declare(Var{Name: "TESTSHIP_WAIT_TIMEOUT", Area: "run",
		Help: "stop waiting locally after this long (e.g. 20m), leaving the run going; empty: wait to the end"})
	RunNew = Declare(Var{Name: "TESTSHIP_NEW_RUN", Default: "false", Area: "run",
		Help: "start a new run even when the same test from the same image is already running in the namespace (default: attach to it)"})
	RunDetach = Declare(Var{Name: "DETACH_RUNNER", Default: "false", Area: "run",
		Help: "in-test form: return as soon as the remote test has started instead of waiting for it"})
	RunJobImage = Declare(Var{Name: "ENV_JOB_IMAGE", Area: "run",
		Help: "in-test form: the test image to run remotely; when set, env.Run() launches the remote runner for this test and the local copy returns"})
	RunOnInterrupt = Declare(Var{Name: "TESTSHIP_ON_INTERRUPT", Default: "cancel", Area: "run",
		Help: "Ctrl-C while waiting: cancel (delete the remote run) or leave (keep it running and print how to re-attach)"})
	RunCPURequest = Declare(Var{Name: "TESTSHIP_CPU_REQUEST", Default: "100m", Area: "run",
		Help: "CPU request of the remote test container"})
	RunMemoryRequest = Declare(Var{Name: "TESTSHIP_MEMORY_REQUEST", Default: "64Mi", Area: "run",
		Help: "memory request of the remote test container"})
	RunCPULimit = Declare(Var{Name: "TESTSHIP_CPU_LIMIT", Area: "run",
		Help: "CPU limit of the remote test container (empty: none)"})
	RunMemoryLimit = Declare(Var{Name: "TESTSHIP_MEMORY_LIMIT", Default: "1Gi", Area: "run",
		Help: "memory limit of the remote test container (empty: none)"})
	RunNodeSelector = Declare(Var{Name: "TESTSHIP_NODE_SELECTOR", Area: "run",
		Help: "node selector of the remote test pod: key=value,key=value"})
	RunTolerations = Declare(Var{Name: "TESTSHIP_TOLERATIONS", Area: "run",
		Help: "tolerations of the remote test pod: key[=value]:Effect,... (Effect NoSchedule, PreferNoSchedule or NoExecute)"})
	RunDoNotEvict = Declare(Var{Name: "TESTSHIP_DO_NOT_EVICT", Default: "true", Area: "run",
		Help: "annotate the remote test pod cluster-autoscaler.kubernetes.io/safe-to-evict=false"})
	RunTTL = Declare(Var{Name: "TESTSHIP_RUN_TTL", Default: "24h", Area: "run",
		Help: "how long a finished run's Job, pod and logs stay in the cluster (ttlSecondsAfterFinished)"})
	RunRules = Declare(Var{Name: "TESTSHIP_RUNNER_RULES", Area: "run",
		Help: "extra namespaced rights for the remote test: verb,verb:resource,resource[.group];... e.g. delete:pods;patch:deployments.apps"})
	RunJUnit = Declare(Var{Name: "TESTSHIP_JUNIT", Area: "run",
		Help: "write a JUnit XML report of the remote test to this path"})
	RunFromStart = Declare(Var{Name: "TESTSHIP_FROM_START", Default: "false", Area: "run",
		Help: "run:attach shows the run's output from its start instead of from now"})
)

// Run is the validated configuration of a remote run.
type Run struct {
	Pattern          string
	Timeout          time.Duration
	WaitTimeout      time.Duration
	NewRun           bool
	Detach           bool
	JobImage         string
	LeaveOnInterrupt bool
	Resources        corev1.ResourceRequirements
	NodeSelector     map[string]string
	Tolerations      []corev1.Toleration
	DoNotEvict       bool
	TTL              time.Duration
	Rules            []rbacv1.PolicyRule
	JUnit            string
	FromStart        bool
}

// LoadRun reads and validates the run variables.
func LoadRun() (Run, error) {
	var r Run
	var err error
	r.Pattern = Get(RunPattern)
	if r.Timeout, err = Duration(RunTimeout); err != nil {
		return r, err
	}
	if r.Timeout == 0 {
		return r, &Error{Name: RunTimeout, Value: Get(RunTimeout), Want: "a positive Go duration such as 30m"}
	}
	if r.WaitTimeout, err = Duration(RunWaitTimeout); err != nil {
		return r, err
	}
	if r.NewRun, err = Bool(RunNew); err != nil {
		return r, err
	}
	if r.Detach, err = Bool(RunDetach); err != nil {
		return r, err
	}
	r.JobImage = Get(RunJobImage)
	switch v := strings.ToLower(Get(RunOnInterrupt)); v {
	case "cancel", "":
	case "leave":
		r.LeaveOnInterrupt = true
	default:
		return r, &Error{Name: RunOnInterrupt, Value: v, Want: "cancel or leave"}
	}
	r.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, q := range []struct {
		name string
		list corev1.ResourceList
		res  corev1.ResourceName
	}{
		{RunCPURequest, r.Resources.Requests, corev1.ResourceCPU},
		{RunMemoryRequest, r.Resources.Requests, corev1.ResourceMemory},
		{RunCPULimit, r.Resources.Limits, corev1.ResourceCPU},
		{RunMemoryLimit, r.Resources.Limits, corev1.ResourceMemory},
	} {
		val := Get(q.name)
		if val == "" {
			continue
		}
		qty, perr := resource.ParseQuantity(val)
		if perr != nil || qty.Sign() <= 0 {
			return r, &Error{Name: q.name, Value: val, Want: "a positive Kubernetes quantity such as 500m, 2, 256Mi or 1Gi"}
		}
		q.list[q.res] = qty
	}
	if r.NodeSelector, err = ParseNodeSelector(Get(RunNodeSelector)); err != nil {
		return r, err
	}
	if r.Tolerations, err = ParseTolerations(Get(RunTolerations)); err != nil {
		return r, err
	}
	if r.DoNotEvict, err = Bool(RunDoNotEvict); err != nil {
		return r, err
	}
	if r.TTL, err = Duration(RunTTL); err != nil {
		return r, err
	}
	if r.Rules, err = ParseRules(Get(RunRules)); err != nil {
		return r, err
	}
	r.JUnit = Get(RunJUnit)
	if r.FromStart, err = Bool(RunFromStart); err != nil {
		return r, err
	}
	return r, nil
}

// ParseNodeSelector parses key=value,key=value.
func ParseNodeSelector(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			return nil, &Error{Name: RunNodeSelector, Value: s, Want: "key=value pairs separated by commas, each a valid label, e.g. kubernetes.io/arch=amd64"}
		}
		out[k] = v
	}
	return out, nil
}

// ParseTolerations parses key[=value]:Effect,...
func ParseTolerations(s string) ([]corev1.Toleration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	bad := &Error{Name: RunTolerations, Value: s, Want: "key[=value]:Effect separated by commas, Effect one of NoSchedule, PreferNoSchedule, NoExecute"}
	var out []corev1.Toleration
	for _, item := range strings.Split(s, ",") {
		kv, effect, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			return nil, bad
		}
		t := corev1.Toleration{Effect: corev1.TaintEffect(effect), Operator: corev1.TolerationOpExists}
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, bad
		}
		k, v, hasValue := strings.Cut(kv, "=")
		if k == "" || len(validation.IsQualifiedName(k)) > 0 {
			return nil, bad
		}
		t.Key = k
		if hasValue {
			t.Operator, t.Value = corev1.TolerationOpEqual, v
		}
		out = append(out, t)
	}
	return out, nil
}

// allowedVerbs are the verbs TESTSHIP_RUNNER_RULES accepts; "*" never.
var allowedVerbs = map[string]bool{"get": true, "list": true, "watch": true, "create": true, "update": true, "patch": true, "delete": true, "deletecollection": true}

// ParseRules parses verb,verb:resource,resource[.group];...
func ParseRules(s string) ([]rbacv1.PolicyRule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []rbacv1.PolicyRule
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		verbs, resources, ok := strings.Cut(item, ":")
		if !ok {
			return nil, &Error{Name: RunRules, Value: s, Want: "verb,verb:resource,resource[.group] separated by ';', e.g. delete:pods;patch:deployments.apps"}
		}
		byGroup := map[string][]string{}
		var groups []string
		for _, res := range strings.Split(resources, ",") {
			res = strings.TrimSpace(res)
			name, group, _ := strings.Cut(res, ".")
			if name == "" || strings.Contains(res, "*") {
				return nil, &Error{Name: RunRules, Value: s, Want: fmt.Sprintf("named resources, not %q: wildcards are not allowed", res)}
			}
			if _, seen := byGroup[group]; !seen {
				groups = append(groups, group)
			}
			byGroup[group] = append(byGroup[group], name)
		}
		var vs []string
		for _, v := range strings.Split(verbs, ",") {
			v = strings.ToLower(strings.TrimSpace(v))
			if !allowedVerbs[v] {
				return nil, &Error{Name: RunRules, Value: s, Want: fmt.Sprintf("verbs among get, list, watch, create, update, patch, delete, deletecollection, not %q", v)}
			}
			vs = append(vs, v)
		}
		for _, g := range groups {
			out = append(out, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: byGroup[g], Verbs: vs})
		}
	}
	return out, nil
}
