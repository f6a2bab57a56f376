package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"helm.sh/helm/v3/pkg/strvals"
)

// Environment variables of the environment step (env:deploy, env:status,
// env:destroy, and testenv in tests).
var (
	EnvNamespace = Declare(Var{Name: "ENV_NAMESPACE", Area: "env",
		Help: "namespace of the test environment; generated from owner and branch (or CI run) when unset"})
	EnvCharts = Declare(Var{Name: "TESTSHIP_CHARTS", Default: "link", Area: "env",
		Help: "charts of the environment, comma-separated: NAME (from charts/NAME), NAME=./dir, NAME=oci://host/repo/chart:version or NAME=https://repo.example.com#chart@version; none: a namespace only, no chart"})
	EnvLocalCharts = Declare(Var{Name: "LOCAL_CHARTS", Default: "false", Area: "env",
		Help: "true: read charts from TESTSHIP_CHARTS_DIR on disk instead of the copies embedded in the binary"})
	EnvChartsDir = Declare(Var{Name: "TESTSHIP_CHARTS_DIR", Default: "charts", Area: "env",
		Help: "directory holding the charts when LOCAL_CHARTS=true (relative paths are looked up from the working directory upwards)"})
	EnvKeep = Declare(Var{Name: "KEEP_ENVIRONMENTS", Default: "never", Area: "env",
		Help: "when to keep the environment after a test (and for env:destroy): never, onfail or always"})
	EnvTimeout = Declare(Var{Name: "ENV_TIMEOUT", Default: "5m", Area: "env",
		Help: "how long env:deploy waits for each chart's workloads to become ready"})
	EnvSet = Declare(Var{Name: "ENV_SET", Area: "env",
		Help: "extra chart values in Helm --set syntax, first key the chart: link.message=hi,link.replicas=3"})
	EnvFailed = Declare(Var{Name: "ENV_FAILED", Default: "false", Area: "env",
		Help: "true tells env:destroy that the test failed, so KEEP_ENVIRONMENTS=onfail keeps the environment"})
	EnvImage = Declare(Var{Name: "TESTSHIP_IMAGE_<CHART>", Area: "env",
		Help: "image for chart <CHART> (upper case, - as _), overriding the image pipeline's state file; passed as value image"})
)

// Keep says when an environment is kept instead of destroyed.
type Keep string

const (
	KeepNever  Keep = "never"
	KeepOnFail Keep = "onfail"
	KeepAlways Keep = "always"
)

// ParseKeep parses a KEEP_ENVIRONMENTS value: never, onfail (also on_failure,
// on-fail, onfailure) or always, in any case; empty means never.
func ParseKeep(s string) (Keep, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "never", "false", "no":
		return KeepNever, nil
	case "onfail", "on_fail", "on-fail", "on_failure", "on-failure", "onfailure":
		return KeepOnFail, nil
	case "always", "true", "yes":
		return KeepAlways, nil
	}
	return "", &Error{Name: EnvKeep, Value: s, Want: "never, onfail (or on_failure) or always"}
}

// Keeps reports whether an environment is kept given whether the test failed.
func (k Keep) Keeps(failed bool) bool {
	return k == KeepAlways || (k == KeepOnFail && failed)
}

// ChartRef names one chart of the environment: the release Name and where
// the chart comes from (Source "" means charts/<Name>).
type ChartRef struct {
	Name   string
	Source string
}

// Env is the validated configuration of the environment step.
type Env struct {
	Namespace   string // "" means generate
	Charts      []ChartRef
	LocalCharts bool
	ChartsDir   string
	Keep        Keep
	Timeout     time.Duration
	Set         string // Helm --set syntax, first key the chart
	Failed      bool
	// Images maps a chart name to its TESTSHIP_IMAGE_<CHART> (only those
	// set), which wins over the image pipeline's state file.
	Images map[string]string
	// Safety: namespaces testship may use, their Pod Security level, when
	// environments expire, whether env:prune deletes.
	Safety EnvSafety
}

var releaseName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// NoCharts is the TESTSHIP_CHARTS value for an environment that is a
// namespace only, with no Helm release.
const NoCharts = "none"

// ParseCharts parses a TESTSHIP_CHARTS value: NAME (charts/NAME),
// NAME=./dir or archive, NAME=oci://host/repo/chart[:version|@version],
// NAME=https://repo#chart[@version]; "none" is no chart at all.
func ParseCharts(s string) ([]ChartRef, error) {
	if strings.EqualFold(strings.TrimSpace(s), NoCharts) {
		return nil, nil
	}
	c := &checker{}
	var out []ChartRef
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, src, _ := strings.Cut(item, "=")
		name, src = strings.TrimSpace(name), strings.TrimSpace(src)
		if !releaseName.MatchString(name) || len(name) > 53 {
			c.bad(EnvCharts, s, fmt.Sprintf("chart name %q", name), "chart names of lower-case letters, digits and '-' (at most 53)")
			continue
		}
		if seen[name] {
			c.bad(EnvCharts, s, fmt.Sprintf("chart %q is named twice", name), "each chart once")
			continue
		}
		seen[name] = true
		if detail := checkChartSource(src); detail != "" {
			c.bad(EnvCharts, s, fmt.Sprintf("chart %s: %s", name, detail),
				"NAME, NAME=./dir, NAME=oci://host/repo/chart[:version] or NAME=https://repo.example.com#chart@version per chart, or none")
			continue
		}
		out = append(out, ChartRef{Name: name, Source: src})
	}
	if len(out) == 0 && len(c.problems) == 0 {
		c.bad(EnvCharts, s, "", "at least one chart, e.g. link, or none for a namespace without charts")
	}
	return out, c.err()
}

var ociRef = regexp.MustCompile(`^oci://[^/\s]+(/[^/\s]+)+$`)

// checkChartSource says what is wrong with a chart source, or "".
func checkChartSource(src string) string {
	switch {
	case src == "":
		return ""
	case strings.HasPrefix(src, "oci://"):
		if !ociRef.MatchString(src) {
			return fmt.Sprintf("%q needs a host and a repository path after oci://", src)
		}
		// The reference (without a version given as @version) must parse.
		ref := strings.TrimPrefix(src, "oci://")
		if i := strings.LastIndex(ref, "@"); i > strings.LastIndex(ref, "/") {
			ref = ref[:i]
		}
		if _, err := name.ParseReference(ref); err != nil {
			return fmt.Sprintf("%q is not a valid OCI reference", src)
		}
		return ""
	case strings.HasPrefix(src, "https://"), strings.HasPrefix(src, "http://"):
		repo, chart, ok := strings.Cut(src, "#")
		if u, err := url.Parse(repo); err != nil || u.Host == "" {
			return fmt.Sprintf("%q has no repository host", src)
		}
		if ch, _, _ := strings.Cut(chart, "@"); !ok || ch == "" {
			return fmt.Sprintf("%q names no chart: write https://repo.example.com#chart@version", src)
		}
		return ""
	case strings.Contains(src, "://"):
		return fmt.Sprintf("%q: only oci://, https:// and http:// sources are supported", src)
	case strings.HasPrefix(src, "-"):
		return fmt.Sprintf("%q starts with '-'", src)
	}
	// A path on disk, looked up from the working directory upwards like
	// the environment step does; not checked inside the remote pod, which
	// connects to the environment and loads no chart.
	if IsRemote() {
		return ""
	}
	if !existsUp(src) {
		wd, _ := os.Getwd()
		return fmt.Sprintf("%s does not exist (looked up from %s and its parents)", src, wd)
	}
	return ""
}

// existsUp reports whether p exists, as is when absolute, else relative to
// the working directory or one of its parents.
func existsUp(p string) bool {
	if filepath.IsAbs(p) {
		_, err := os.Stat(p)
		return err == nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, p)); err == nil {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// ValidNamespace checks a namespace name: a DNS label, not kube-*.
func ValidNamespace(ns string) error {
	if len(ns) > 63 || !dnsLabel.MatchString(ns) {
		return &Error{Name: EnvNamespace, Value: ns, Want: "a DNS label: lower-case letters, digits and '-', at most 63, starting and ending alphanumeric"}
	}
	if strings.HasPrefix(ns, "kube-") {
		return &Error{Name: EnvNamespace, Value: ns, Detail: "kube-* namespaces belong to Kubernetes itself and testship deletes what it deploys",
			Want: "a namespace of your own, or unset to generate one"}
	}
	return nil
}

// LoadEnv reads and validates the environment step's variables (the env
// area of Load).
func LoadEnv() (Env, error) {
	c := &checker{}
	e := loadEnv(c)
	return e, c.err()
}

func loadEnv(c *checker) Env {
	var e Env
	var err error
	e.Namespace = Get(EnvNamespace)
	if e.Namespace != "" {
		c.add(EnvNamespace, ValidNamespace(e.Namespace))
	}
	e.Charts, err = ParseCharts(Get(EnvCharts))
	c.add(EnvCharts, err)
	chartsOK := err == nil
	e.LocalCharts = c.bool(EnvLocalCharts)
	e.Safety = loadEnvSafety(c)
	e.ChartsDir = Get(EnvChartsDir)
	if e.LocalCharts && !IsRemote() && !existsUp(e.ChartsDir) {
		wd, _ := os.Getwd()
		c.bad(EnvChartsDir, e.ChartsDir, "with LOCAL_CHARTS=true it must exist (looked up from "+wd+" and its parents)", "the directory holding the charts, such as charts")
	}
	e.Keep, err = ParseKeep(Get(EnvKeep))
	c.add(EnvKeep, err)
	e.Timeout = c.duration(EnvTimeout, time.Second, 24*time.Hour)
	e.Set = Get(EnvSet)
	e.Failed = c.bool(EnvFailed)
	if !chartsOK {
		return e // the checks below against the charts would only repeat it
	}
	checkSet(c, e.Set, e.Charts)
	e.Images = loadImageVars(c, e.Charts)
	return e
}

func chartNames(charts []ChartRef) string {
	if len(charts) == 0 {
		return "none (TESTSHIP_CHARTS=none)"
	}
	var names []string
	for _, ch := range charts {
		names = append(names, ch.Name)
	}
	return strings.Join(names, ", ")
}

func hasChart(charts []ChartRef, name string) bool {
	for _, ch := range charts {
		if ch.Name == name {
			return true
		}
	}
	return false
}

// checkSet checks ENV_SET: Helm --set syntax, each first key a chart of
// TESTSHIP_CHARTS with keys below it.
func checkSet(c *checker, set string, charts []ChartRef) {
	if set == "" {
		return
	}
	want := "Helm --set syntax, first key a chart of TESTSHIP_CHARTS (" + chartNames(charts) + "), e.g. link.message=hi,link.replicas=3"
	all := map[string]any{}
	if err := strvals.ParseInto(set, all); err != nil {
		c.bad(EnvSet, set, err.Error(), want)
		return
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !hasChart(charts, k) {
			c.bad(EnvSet, set, fmt.Sprintf("%q is not a chart of TESTSHIP_CHARTS", k), want)
		} else if _, ok := all[k].(map[string]any); !ok {
			c.bad(EnvSet, set, fmt.Sprintf("%q needs keys below the chart name", k), want)
		}
	}
}

const imageVarPrefix = "TESTSHIP_IMAGE_"

// loadImageVars reads and checks every set TESTSHIP_IMAGE_<CHART>: it names
// a chart of TESTSHIP_CHARTS and holds an image reference. It returns the
// non-empty ones by chart name.
func loadImageVars(c *checker, charts []ChartRef) map[string]string {
	out := map[string]string{}
	for _, n := range imageVarNames() {
		val := strings.TrimSpace(os.Getenv(n))
		known := false
		for _, ch := range charts {
			known = known || ImageVar(ch.Name) == n
		}
		if !known {
			var want []string
			for _, ch := range charts {
				want = append(want, ImageVar(ch.Name))
			}
			if len(want) == 0 {
				want = []string{"none (no chart in TESTSHIP_CHARTS)"}
			}
			c.bad(n, val, "it names no chart of TESTSHIP_CHARTS ("+chartNames(charts)+")", "one of "+strings.Join(want, ", ")+", or unset")
			continue
		}
		if val == "" {
			continue
		}
		if _, err := name.ParseReference(val); err != nil {
			c.bad(n, val, "", "an image reference such as 127.0.0.1:5000/testship/link:v1 or …@sha256:<digest>")
			continue
		}
		for _, ch := range charts {
			if ImageVar(ch.Name) == n {
				out[ch.Name] = val
			}
		}
	}
	return out
}

// ImageVar is the variable that overrides the image of a chart:
// TESTSHIP_IMAGE_<NAME> with NAME upper-cased and '-' as '_'.
func ImageVar(chart string) string {
	return "TESTSHIP_IMAGE_" + strings.ToUpper(strings.ReplaceAll(chart, "-", "_"))
}
