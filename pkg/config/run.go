package config

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/testship/testship/pkg/testlog"
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

	// A run's pods: shards (each runs its share of the tests) or copies
	// (each runs the same tests), one Indexed Job either way.
	RunShards = Declare(Var{Name: "TESTSHIP_SHARDS", Area: "run",
		Help: "split the tests over this many pods of one Job, balanced by the durations of earlier runs; auto: as many as the recorded durations call for (at most TESTSHIP_SHARDS_MAX)"})
	RunShardsMax = Declare(Var{Name: "TESTSHIP_SHARDS_MAX", Default: "16", Area: "run",
		Help: "the most pods one run may have: bounds TESTSHIP_SHARDS (and auto) and TESTSHIP_PARALLEL"})
	RunParallel = Declare(Var{Name: "TESTSHIP_PARALLEL", Area: "run",
		Help: "run this many copies of the same tests, each pod told its index and the count (TESTSHIP_INDEX, TESTSHIP_COUNT)"})
	RunSyncStart = Declare(Var{Name: testlog.EnvSyncStart, Default: "false", Area: "run",
		Help: "with TESTSHIP_PARALLEL: hold every copy until all are running, then start them together; passed to the pods, where the entrypoint does the holding"})
	RunFailFast = Declare(Var{Name: "TESTSHIP_FAIL_FAST", Default: "false", Area: "run",
		Help: "stop the other pods of a sharded or parallel run as soon as one fails (default: let them finish)"})
	RunSpread = Declare(Var{Name: "TESTSHIP_SPREAD", Default: "soft", Area: "run",
		Help: "spread a run's pods across nodes (topology spread by hostname): soft (prefer), hard (require) or none"})
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
	Pods             Pods
}

// Pods is how many pods a run has and how they run. At most one of Shards
// (above 1, or Auto) and Copies (above 1) is set; neither means one pod.
type Pods struct {
	// Shards is the number of shards asked for (1 when not sharded, 0
	// with Auto); the plan may use fewer when there are fewer tests.
	Shards int
	// Auto: the number of shards comes from the recorded durations.
	Auto bool
	// Max bounds Shards, Auto and Copies (TESTSHIP_SHARDS_MAX).
	Max int
	// Copies is the number of copies of the same tests (1 when not parallel).
	Copies int
	// SyncStart holds the copies until all are running (Copies > 1 only).
	SyncStart bool
	// FailFast stops the other pods when one fails.
	FailFast bool
	// Spread is the topology spread of the pods by hostname.
	Spread Spread
}

// Mode is the pods' mode as the pods are told it (TESTSHIP_POD_MODE).
func (p Pods) Mode() string {
	switch {
	case p.Auto || p.Shards > 1:
		return testlog.ModeShard
	case p.Copies > 1:
		return testlog.ModeCopy
	}
	return testlog.ModeSingle
}

// Spread is how a run's pods spread across nodes (TESTSHIP_SPREAD).
type Spread string

// The spreads: soft is a topology spread constraint by hostname with
// whenUnsatisfiable ScheduleAnyway, hard with DoNotSchedule, none no
// constraint.
const (
	SpreadSoft Spread = "soft"
	SpreadHard Spread = "hard"
	SpreadNone Spread = "none"
)

// Bounds of the run's durations.
const (
	maxRunTimeout = 30 * 24 * time.Hour // a test running a month is a mistake
	maxRunTTL     = 90 * 24 * time.Hour // ttlSecondsAfterFinished is an int32; keep it sane
)

// LoadRun reads and validates the run variables (the run area of Load).
func LoadRun() (Run, error) {
	c := &checker{}
	r := loadRun(c)
	return r, c.err()
}

func loadRun(c *checker) Run {
	var r Run
	var err error
	r.Pattern = Get(RunPattern)
	checkPattern(c, r.Pattern)
	r.Timeout = c.duration(RunTimeout, time.Second, maxRunTimeout)
	r.WaitTimeout = c.duration(RunWaitTimeout, time.Second, maxRunTimeout)
	r.NewRun = c.bool(RunNew)
	r.Detach = c.bool(RunDetach)
	r.JobImage = Get(RunJobImage)
	if r.JobImage != "" {
		if _, err := name.ParseReference(r.JobImage); err != nil || strings.HasPrefix(r.JobImage, "-") {
			c.bad(RunJobImage, r.JobImage, "", "an image reference such as 127.0.0.1:5000/testship/test@sha256:<digest> (the test_image output of image:push)")
		}
	}
	switch v := strings.ToLower(Get(RunOnInterrupt)); v {
	case "cancel", "":
	case "leave":
		r.LeaveOnInterrupt = true
	default:
		c.bad(RunOnInterrupt, v, "", "cancel or leave")
	}
	r.Resources = loadResources(c)
	r.NodeSelector, err = ParseNodeSelector(Get(RunNodeSelector))
	c.add(RunNodeSelector, err)
	r.Tolerations, err = ParseTolerations(Get(RunTolerations))
	c.add(RunTolerations, err)
	r.DoNotEvict = c.bool(RunDoNotEvict)
	r.TTL = c.duration(RunTTL, time.Minute, maxRunTTL)
	r.Rules, err = ParseRules(Get(RunRules))
	c.add(RunRules, err)
	r.JUnit = Get(RunJUnit)
	if r.JUnit != "" {
		if st, err := os.Stat(r.JUnit); err == nil && st.IsDir() {
			c.bad(RunJUnit, r.JUnit, "it is a directory", "a file path such as reports/junit.xml (the .json events go next to it)")
		} else if strings.HasPrefix(r.JUnit, "-") {
			c.bad(RunJUnit, r.JUnit, "", "a file path such as reports/junit.xml")
		}
	}
	r.FromStart = c.bool(RunFromStart)
	r.Pods = loadPods(c)
	checkForwarded(c, os.Environ())
	return r
}

// MaxPods bounds TESTSHIP_SHARDS_MAX: an Indexed Job can have more, a
// test run on more pods than this is a mistake.
const MaxPods = 1000

// loadPods reads the shards or copies of a run. Inside the remote pod
// (TESTSHIP_REMOTE) only the values are checked: the Job sets
// TESTSHIP_SYNC_START there without TESTSHIP_PARALLEL, which is reserved.
func loadPods(c *checker) Pods {
	p := Pods{Shards: 1, Copies: 1, Max: 16}
	if n, err := Int(RunShardsMax, 1, MaxPods); err != nil {
		c.bad(RunShardsMax, Get(RunShardsMax), "", fmt.Sprintf("a whole number from 1 to %d, the most pods one run may have", MaxPods))
	} else {
		p.Max = int(n)
	}
	// count reads a number of pods: unset or wrong is 1.
	count := func(name, want string) int {
		val := Get(name)
		if val == "" {
			return 1
		}
		v, err := strconv.Atoi(val)
		switch {
		case err != nil || v < 1:
			c.bad(name, val, "not a positive whole number", want)
			return 1
		case v > p.Max:
			c.bad(name, val, fmt.Sprintf("above the maximum TESTSHIP_SHARDS_MAX=%d", p.Max),
				fmt.Sprintf("a whole number from 1 to %d (or a higher TESTSHIP_SHARDS_MAX)", p.Max))
			return 1
		}
		return v
	}
	if strings.EqualFold(Get(RunShards), "auto") {
		p.Auto, p.Shards = true, 0
	} else {
		p.Shards = count(RunShards, fmt.Sprintf("a whole number from 1 to %d (TESTSHIP_SHARDS_MAX), or auto", p.Max))
	}
	p.Copies = count(RunParallel, fmt.Sprintf("a whole number from 1 to %d (TESTSHIP_SHARDS_MAX)", p.Max))
	if (p.Auto || p.Shards > 1) && p.Copies > 1 {
		c.bad(RunParallel, Get(RunParallel), fmt.Sprintf("TESTSHIP_SHARDS=%s is set too", Get(RunShards)),
			"either shards (TESTSHIP_SHARDS: each pod runs its share of the tests) or copies (TESTSHIP_PARALLEL: each pod runs them all), not both")
	}
	p.SyncStart = c.bool(RunSyncStart)
	if p.SyncStart && p.Copies < 2 && !IsRemote() {
		c.bad(RunSyncStart, Get(RunSyncStart), "it needs copies, and TESTSHIP_PARALLEL is "+strconv.Quote(Get(RunParallel)),
			"false, or TESTSHIP_PARALLEL set to 2 or more")
	}
	p.FailFast = c.bool(RunFailFast)
	switch v := Spread(strings.ToLower(Get(RunSpread))); v {
	case SpreadSoft, SpreadHard, SpreadNone:
		p.Spread = v
	default:
		c.bad(RunSpread, Get(RunSpread), "", "soft (prefer other nodes), hard (require other nodes) or none")
		p.Spread = SpreadSoft
	}
	return p
}

// loadResources reads the test container's requests and limits; a request
// must not exceed its limit.
func loadResources(c *checker) corev1.ResourceRequirements {
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, q := range []struct {
		name string
		list corev1.ResourceList
		res  corev1.ResourceName
	}{
		{RunCPURequest, res.Requests, corev1.ResourceCPU},
		{RunMemoryRequest, res.Requests, corev1.ResourceMemory},
		{RunCPULimit, res.Limits, corev1.ResourceCPU},
		{RunMemoryLimit, res.Limits, corev1.ResourceMemory},
	} {
		val := Get(q.name)
		if val == "" {
			continue
		}
		qty, err := resource.ParseQuantity(val)
		if err != nil || qty.Sign() <= 0 {
			c.bad(q.name, val, "", "a positive Kubernetes quantity such as 500m, 2, 256Mi or 1Gi")
			continue
		}
		q.list[q.res] = qty
	}
	for _, p := range []struct {
		req, lim string
		res      corev1.ResourceName
	}{{RunCPURequest, RunCPULimit, corev1.ResourceCPU}, {RunMemoryRequest, RunMemoryLimit, corev1.ResourceMemory}} {
		req, okr := res.Requests[p.res]
		lim, okl := res.Limits[p.res]
		if okr && okl && req.Cmp(lim) > 0 {
			c.bad(p.req, Get(p.req), fmt.Sprintf("the request is above the limit %s=%s", p.lim, Get(p.lim)),
				fmt.Sprintf("a request at most %s (or a higher %s)", p.lim, p.lim))
		}
	}
	return res
}

// checkPattern checks TESTSHIP_RUN: go test splits it on '/' (outside
// brackets and parentheses), and each part must compile as a regexp.
func checkPattern(c *checker, pattern string) {
	if pattern == "" {
		return
	}
	if strings.HasPrefix(pattern, "-") {
		c.bad(RunPattern, pattern, "", "a go test -run pattern such as ^TestLink$ or TestLink/sub")
		return
	}
	for _, alt := range testlog.SplitPattern(pattern) {
		for _, part := range alt {
			if _, err := regexp.Compile(part); err != nil {
				c.bad(RunPattern, pattern, err.Error(), "a go test -run pattern such as ^TestLink$ or TestLink/sub, each part between '/' (and '|') a Go regular expression")
				return
			}
		}
	}
}

// ParseNodeSelector parses key=value,key=value; each key once.
func ParseNodeSelector(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	want := "key=value pairs separated by commas, each key once and a valid label, e.g. kubernetes.io/arch=amd64"
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		k, v, ok := strings.Cut(kv, "=")
		if !ok || len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			return nil, &Error{Name: RunNodeSelector, Value: s, Detail: "pair " + quote(kv), Want: want}
		}
		if _, dup := out[k]; dup {
			return nil, &Error{Name: RunNodeSelector, Value: s, Detail: "key " + quote(k) + " is given twice", Want: want}
		}
		out[k] = v
	}
	return out, nil
}

// ParseTolerations parses key[=value]:Effect,... strictly: no spaces inside
// an item, key and value valid label parts.
func ParseTolerations(s string) ([]corev1.Toleration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	bad := func(item string) error {
		return &Error{Name: RunTolerations, Value: s, Detail: "toleration " + quote(item),
			Want: "key[=value]:Effect separated by commas, without spaces, Effect one of NoSchedule, PreferNoSchedule, NoExecute"}
	}
	var out []corev1.Toleration
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		kv, effect, ok := strings.Cut(item, ":")
		if !ok || strings.ContainsAny(item, " \t") {
			return nil, bad(item)
		}
		t := corev1.Toleration{Effect: corev1.TaintEffect(effect), Operator: corev1.TolerationOpExists}
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, bad(item)
		}
		k, v, hasValue := strings.Cut(kv, "=")
		if k == "" || len(validation.IsQualifiedName(k)) > 0 || (hasValue && len(validation.IsValidLabelValue(v)) > 0) {
			return nil, bad(item)
		}
		t.Key = k
		if hasValue {
			t.Operator, t.Value = corev1.TolerationOpEqual, v
		}
		out = append(out, t)
	}
	return out, nil
}
