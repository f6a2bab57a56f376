// Package environment deploys a test's environment (its Helm charts) into a
// namespace with the Helm v3 SDK and client-go, reports its status, connects
// to an environment already deployed, and destroys it.
//
// Deploy is the `upgrade --install` idiom: Helm's History decides between
// Install and Upgrade. A release whose chart and values did not change since
// the last deployed revision is left alone ("up to date", no new revision).
// Readiness is awaited with client-go watches, not Helm's polling.
package environment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/kube"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// LabelDigest is the Helm release label holding Digest of what was
// deployed; releases deployed before the testship.dev domain carry
// LegacyLabelDigest instead. Either, or LabelManagedBy=ManagedBy, marks a
// release as testship's (DeployedByTestship).
const (
	LabelDigest       = "testship.dev/digest"
	LegacyLabelDigest = "testship.io/digest"
)

// Options says what to deploy where.
type Options struct {
	// Namespace to deploy into; "" generates one from Origin.
	Namespace string
	// Charts to deploy, in order; each is a release of the same name.
	Charts []config.ChartRef
	// LocalCharts reads charts/<name> from ChartsDir on disk instead of the
	// embedded copies.
	LocalCharts bool
	ChartsDir   string
	// Images maps a chart name to the image it gets as value "image".
	Images map[string]string
	// Set is extra values in Helm --set syntax whose first key is the chart.
	Set string
	// Values are extra values per chart, winning over Set.
	Values map[string]map[string]any
	// Timeout bounds the wait for each chart's workloads.
	Timeout time.Duration
	// Origin labels the namespace (owner, commit, trigger).
	Origin Origin
	// Out receives progress lines; nil discards them.
	Out io.Writer
	// Debug receives Helm's debug log; nil discards it.
	Debug io.Writer
	// Safety: whether an existing namespace testship did not create may be
	// used, the Pod Security level of a namespace testship creates ("" is
	// restricted), and the environment's time to live (0 is DefaultTTL).
	Safety config.EnvSafety
}

// DefaultTTL is how long an environment lives after its last deploy when
// Options.Safety.TTL is not set (ENV_TTL's default).
const DefaultTTL = 6 * time.Hour

// Environment is a deployed environment. Its JSON form is what the
// launcher hands the remote copy of a test (TESTSHIP_ENVIRONMENT, read by
// FromDescription), so that the copy needs no access to Helm's release
// records.
type Environment struct {
	Namespace        string `json:"namespace"`
	NamespaceCreated bool   `json:"namespaceCreated,omitempty"` // this deploy created the namespace
	// Managed: testship created the namespace (its marker label), so
	// env:destroy and env:prune may delete it.
	Managed  bool      `json:"managed"`
	Releases []Release `json:"releases"`
}

// Release is one chart's release.
type Release struct {
	Name         string `json:"name"`
	Chart        string `json:"chart"`
	ChartVersion string `json:"chartVersion"`
	Source       string `json:"source,omitempty"` // where the chart came from
	Revision     int    `json:"revision"`
	Status       string `json:"status"`
	Digest       string `json:"digest"`
	UpToDate     bool   `json:"upToDate,omitempty"` // no new revision was made
	// Services of the release, with their ports, as the API server has them.
	Services []Service `json:"services,omitempty"`
	// Values are the values testship supplied (image, ENV_SET, options),
	// not the chart's defaults.
	Values    map[string]any  `json:"values,omitempty"`
	Workloads []WorkloadState `json:"workloads,omitempty"`
}

// Service is one Service of a release.
type Service struct {
	Name  string        `json:"name"`
	Ports []ServicePort `json:"ports,omitempty"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name       string `json:"name,omitempty"`
	Port       int32  `json:"port"`
	Protocol   string `json:"protocol"`
	TargetPort string `json:"targetPort,omitempty"`
}

// Service returns the named Service of the release, or nil.
func (r *Release) Service(name string) *Service {
	for i := range r.Services {
		if r.Services[i].Name == name {
			return &r.Services[i]
		}
	}
	return nil
}

// Release returns the named release, or nil.
func (e *Environment) Release(name string) *Release {
	for i := range e.Releases {
		if e.Releases[i].Name == name {
			return &e.Releases[i]
		}
	}
	return nil
}

// Deploy installs or upgrades every chart into the namespace and waits for
// their workloads to be ready.
func Deploy(ctx context.Context, rc *rest.Config, o Options) (*Environment, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.ChartsDir == "" {
		o.ChartsDir = "charts"
	}
	ns := o.Namespace
	if ns == "" {
		ns = GenerateNamespace(o.Origin)
	}
	if err := CheckNamespace(ns); err != nil {
		return nil, err
	}
	ttl := o.Safety.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	podSecurity := o.Safety.PodSecurity
	if podSecurity == "" {
		podSecurity = config.PodSecurityRestricted
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	// Load every chart and its values first: a bad chart or value fails the
	// deploy before anything in the cluster changes.
	var plans []plan
	for _, ref := range o.Charts {
		ch, src, err := loadChart(ref, o.LocalCharts, o.ChartsDir)
		if err != nil {
			return nil, err
		}
		vals, err := chartValues(ref.Name, o.Images[ref.Name], o.Set, o.Values[ref.Name])
		if err != nil {
			return nil, err
		}
		if img, ok := ch.Values["image"]; ok && img == "" && vals["image"] == nil {
			return nil, fmt.Errorf("chart %s needs an image (value image) and none is known: run `mage image:push` "+
				"(it records app %q in .testship/images.json) or set %s", ref.Name, ref.Name, config.ImageVar(ref.Name))
		}
		plans = append(plans, plan{name: ref.Name, chart: ch, source: src, vals: vals, digest: Digest(ch, vals)})
	}

	env := &Environment{Namespace: ns}
	now := time.Now()
	policy := nsPolicy{useExisting: o.Safety.UseExistingNamespace, podSecurity: podSecurity, ttl: ttl, now: now}
	env.NamespaceCreated, env.Managed, err = ensureNamespace(ctx, cs, ns, o.Origin, policy)
	if err != nil {
		return nil, err
	}
	expires := now.Add(ttl).UTC().Format(time.RFC3339)
	switch {
	case env.NamespaceCreated:
		fmt.Fprintf(out, "namespace %s: created (owner %s, commit %s, trigger %s, pod security %s, expires %s)\n",
			ns, o.Origin.Owner, short(o.Origin.Commit), o.Origin.Trigger, podSecurity, expires)
	case env.Managed:
		fmt.Fprintf(out, "namespace %s: exists (testship's; expires no earlier than %s)\n", ns, expires)
	default:
		fmt.Fprintf(out, "namespace %s: exists, not created by testship (ENV_USE_EXISTING_NAMESPACE=true): testship will not delete it\n", ns)
	}
	if len(plans) == 0 {
		fmt.Fprintf(out, "no charts (TESTSHIP_CHARTS=%s): the environment is the namespace alone\n", config.NoCharts)
	}
	for _, p := range plans {
		r, err := deployOne(ctx, target{rc: rc, cs: cs, ns: ns, out: out}, p, o)
		if r != nil {
			env.Releases = append(env.Releases, *r)
		}
		if err != nil {
			return env, err
		}
	}
	return env, nil
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// helmConfig returns Helm's action configuration for a namespace, with
// release records in Secrets.
func helmConfig(rc *rest.Config, ns string, debug io.Writer) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	log := func(string, ...any) {}
	if debug != nil {
		log = func(f string, a ...any) { fmt.Fprintf(debug, "helm: "+f+"\n", a...) }
	}
	if err := cfg.Init(kube.NewGetter(rc, ns), ns, "secrets", log); err != nil {
		return nil, fmt.Errorf("helm in namespace %s: %w", ns, err)
	}
	return cfg, nil
}

// lastRelease returns the newest revision of a release, nil when it has
// never been installed.
func lastRelease(cfg *action.Configuration, name string) (*release.Release, error) {
	h := action.NewHistory(cfg)
	rels, err := h.Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(rels) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].Version < rels[j].Version })
	return rels[len(rels)-1], nil
}

// Decision is what Deploy does with one release.
type Decision int

const (
	Install Decision = iota
	Upgrade
	UpToDate
	Pending // a pending operation blocks the release
)

func (d Decision) String() string {
	return [...]string{"install", "upgrade", "up to date", "pending"}[d]
}

// Decide is the pure core of Deploy's choice for one release: install when
// there is none (or only an uninstalled one), up to date when the last
// revision is deployed with the same digest, blocked while an operation is
// pending, otherwise upgrade.
func Decide(last *release.Release, digest string) Decision {
	if last == nil || last.Info == nil || last.Info.Status == release.StatusUninstalled {
		return Install
	}
	if last.Info.Status.IsPending() {
		return Pending
	}
	if last.Info.Status == release.StatusDeployed && (last.Labels[LabelDigest] == digest || last.Labels[LegacyLabelDigest] == digest) {
		return UpToDate
	}
	return Upgrade
}

// StalePending reports whether a pending release was left by a run that is
// gone: its operation started longer ago than the timeout plus a margin, so
// any live run would have finished or failed it by now.
func StalePending(last *release.Release, now time.Time, timeout time.Duration) bool {
	if last == nil || last.Info == nil || !last.Info.Status.IsPending() {
		return false
	}
	return now.Sub(last.Info.LastDeployed.Time) > timeout+time.Minute
}

// plan is one chart to deploy, loaded and with its values, before anything
// in the cluster changes.
type plan struct {
	name   string // the release (the chart's name in TESTSHIP_CHARTS)
	chart  *chart.Chart
	source string // where the chart came from
	vals   map[string]any
	digest string // Digest of chart and values
}

// target is where Deploy deploys: the cluster, the namespace, and where
// progress goes.
type target struct {
	rc  *rest.Config
	cs  kubernetes.Interface
	ns  string
	out io.Writer
}

// deployOne installs, upgrades or leaves (up to date) one release and
// waits for its workloads; o gives the timeout and Helm's debug log.
func deployOne(ctx context.Context, t target, p plan, o Options) (*Release, error) {
	name, ns := p.name, t.ns
	cfg, err := helmConfig(t.rc, ns, o.Debug)
	if err != nil {
		return nil, err
	}
	last, err := lastRelease(cfg, name)
	if err != nil {
		return nil, fmt.Errorf("chart %s: history of release %s in %s: %w", name, name, ns, err)
	}
	r := &Release{Name: name, Chart: p.chart.Name(), ChartVersion: p.chart.Metadata.Version, Source: p.source, Digest: p.digest, Values: p.vals}
	if last != nil && !DeployedByTestship(last) {
		return r, fmt.Errorf("chart %s: namespace %s already holds a release %s that testship did not deploy (no label %s=%s): "+
			"refusing to take it over; choose another ENV_NAMESPACE or rename the chart in TESTSHIP_CHARTS", name, ns, name, LabelManagedBy, ManagedBy)
	}

	decision := Decide(last, p.digest)
	if decision == Pending {
		if !StalePending(last, time.Now(), o.Timeout) {
			since := time.Since(last.Info.LastDeployed.Time).Round(time.Second)
			return r, fmt.Errorf("chart %s: release %s in namespace %s is %s (revision %d, started %s ago): "+
				"another deploy is in progress, or a killed run left it so. Wait for the other deploy; "+
				"if none is running, it is recovered automatically once older than ENV_TIMEOUT+1m (%s), "+
				"or run `mage env:destroy` (ENV_NAMESPACE=%s) to start afresh",
				name, name, ns, last.Info.Status, last.Version, since, o.Timeout+time.Minute, ns)
		}
		// A stale pending record only blocks Helm; mark it failed so the
		// upgrade below (or install, for a first revision) can go ahead.
		fmt.Fprintf(t.out, "%s: release was left %s by a run that is gone (revision %d, %s ago): marking it failed and redeploying\n",
			name, last.Info.Status, last.Version, time.Since(last.Info.LastDeployed.Time).Round(time.Second))
		last.SetStatus(release.StatusFailed, "marked failed by testship: left pending by an interrupted run")
		if err := cfg.Releases.Update(last); err != nil {
			return r, fmt.Errorf("chart %s: recover pending release: %w", name, err)
		}
		decision = Upgrade
	}

	labels := map[string]string{LabelDigest: p.digest, LabelManagedBy: ManagedBy}
	var rel *release.Release
	switch decision {
	case UpToDate:
		rel = last
		r.UpToDate = true
	case Install:
		in := action.NewInstall(cfg)
		in.Namespace, in.ReleaseName = ns, name
		in.Labels = labels
		in.Timeout = o.Timeout
		in.Description = "testship deploy"
		rel, err = in.RunWithContext(ctx, p.chart, p.vals)
	case Upgrade:
		up := action.NewUpgrade(cfg)
		up.Namespace = ns
		up.Labels = labels
		up.Timeout = o.Timeout
		up.ResetValues = true
		up.MaxHistory = 10
		up.Description = "testship deploy"
		rel, err = up.RunWithContext(ctx, name, p.chart, p.vals)
	}
	if err != nil {
		return r, &condensed{fmt.Sprintf("chart %s: %s release %s in namespace %s: %s", name, decision, name, ns, condense(err.Error())), err}
	}
	r.Revision, r.Status = rel.Version, rel.Info.Status.String()

	ws := workloads(rel.Manifest)
	states, werr := waitReady(ctx, t.cs, ns, name, ws, services(rel.Manifest), o.Timeout)
	r.Workloads = states
	if werr == nil {
		if r.Services, werr = serviceInfo(ctx, t.cs, ns, services(rel.Manifest)); werr != nil {
			werr = fmt.Errorf("chart %s: %w", name, werr)
		}
	}
	if werr != nil {
		if !r.UpToDate && !errors.Is(werr, context.Canceled) {
			// Record the failure where `env:status` and the next deploy see
			// it; the next deploy then upgrades even with the same inputs.
			rel.SetStatus(release.StatusFailed, truncate(werr.Error(), 500))
			if uerr := cfg.Releases.Update(rel); uerr == nil {
				r.Status = rel.Info.Status.String()
			}
		}
		return r, werr
	}
	switch {
	case r.UpToDate:
		fmt.Fprintf(t.out, "%s: up to date (revision %d, chart %s-%s from %s), %s\n", name, r.Revision, r.Chart, r.ChartVersion, p.source, readySummary(states))
	default:
		fmt.Fprintf(t.out, "%s: %sed revision %d (chart %s-%s from %s), %s\n", name, strings.TrimSuffix(decision.String(), "e"), r.Revision, r.Chart, r.ChartVersion, p.source, readySummary(states))
	}
	return r, nil
}

func readySummary(states []WorkloadState) string {
	if len(states) == 0 {
		return "no workloads to wait for"
	}
	var parts []string
	for _, s := range states {
		parts = append(parts, fmt.Sprintf("%s %d/%d ready", s.Workload, s.Ready, s.Want))
	}
	return strings.Join(parts, ", ")
}

// longQuoted matches quoted strings long enough to be a dumped object:
// Helm quotes whole patches in API errors, burying the reason.
var longQuoted = regexp.MustCompile(`"(?:[^"\\]|\\.){160,}"`)

func condense(s string) string { return longQuoted.ReplaceAllString(s, `"<object elided>"`) }

// condensed keeps the original error for errors.Is/As with a shorter text.
type condensed struct {
	msg string
	err error
}

func (c *condensed) Error() string { return c.msg }
func (c *condensed) Unwrap() error { return c.err }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// serviceInfo reads the named Services and their ports from the API.
func serviceInfo(ctx context.Context, cs kubernetes.Interface, ns string, names []string) ([]Service, error) {
	var out []Service
	for _, name := range names {
		svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("Service %s in namespace %s: %w", name, ns, err)
		}
		s := Service{Name: name}
		for _, p := range svc.Spec.Ports {
			sp := ServicePort{Name: p.Name, Port: p.Port, Protocol: string(protocol(p.Protocol))}
			if p.TargetPort.String() != "0" {
				sp.TargetPort = p.TargetPort.String()
			}
			s.Ports = append(s.Ports, sp)
		}
		out = append(out, s)
	}
	return out, nil
}
