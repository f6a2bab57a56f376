package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Environment variables of the environment step (env:deploy, env:status,
// env:destroy, and testenv in tests).
var (
	EnvNamespace = Declare(Var{Name: "ENV_NAMESPACE", Area: "env",
		Help: "namespace of the test environment; generated from owner and branch (or CI run) when unset"})
	EnvCharts = Declare(Var{Name: "TESTSHIP_CHARTS", Default: "link", Area: "env",
		Help: "charts of the environment, comma-separated: NAME (from charts/NAME), NAME=./dir, NAME=oci://host/repo/chart:version or NAME=https://repo.example.com#chart@version"})
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
}

var releaseName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ParseCharts parses a TESTSHIP_CHARTS value.
func ParseCharts(s string) ([]ChartRef, error) {
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
			return nil, &Error{Name: EnvCharts, Value: s, Want: fmt.Sprintf("chart names of lower-case letters, digits and '-' (at most 53), not %q", name)}
		}
		if seen[name] {
			return nil, &Error{Name: EnvCharts, Value: s, Want: fmt.Sprintf("each chart once (%q is twice)", name)}
		}
		seen[name] = true
		out = append(out, ChartRef{Name: name, Source: src})
	}
	if len(out) == 0 {
		return nil, &Error{Name: EnvCharts, Value: s, Want: "at least one chart, e.g. link"}
	}
	return out, nil
}

// ValidNamespace checks a namespace name.
func ValidNamespace(ns string) error {
	if len(ns) > 63 || !dnsLabel.MatchString(ns) {
		return &Error{Name: EnvNamespace, Value: ns, Want: "a DNS label: lower-case letters, digits and '-', at most 63, starting and ending alphanumeric"}
	}
	return nil
}

// LoadEnv reads and validates the environment step's variables.
func LoadEnv() (Env, error) {
	var e Env
	var err error
	e.Namespace = Get(EnvNamespace)
	if e.Namespace != "" {
		if err := ValidNamespace(e.Namespace); err != nil {
			return e, err
		}
	}
	if e.Charts, err = ParseCharts(Get(EnvCharts)); err != nil {
		return e, err
	}
	if e.LocalCharts, err = Bool(EnvLocalCharts); err != nil {
		return e, err
	}
	e.ChartsDir = Get(EnvChartsDir)
	if e.Keep, err = ParseKeep(Get(EnvKeep)); err != nil {
		return e, err
	}
	if e.Timeout, err = Duration(EnvTimeout); err != nil {
		return e, err
	}
	if e.Timeout == 0 {
		return e, &Error{Name: EnvTimeout, Value: Get(EnvTimeout), Want: "a positive Go duration such as 90s or 5m"}
	}
	e.Set = Get(EnvSet)
	if e.Failed, err = Bool(EnvFailed); err != nil {
		return e, err
	}
	return e, nil
}

// ImageVar is the variable that overrides the image of a chart:
// TESTSHIP_IMAGE_<NAME> with NAME upper-cased and '-' as '_'.
func ImageVar(chart string) string {
	return "TESTSHIP_IMAGE_" + strings.ToUpper(strings.ReplaceAll(chart, "-", "_"))
}
