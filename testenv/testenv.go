// Package testenv is what an integration test calls to get its environment:
//
//	func TestLink(t *testing.T) {
//		env := testenv.New(t)
//		env.Run()
//		if env.WillUseRemoteRunner() {
//			return
//		}
//		base := env.ServiceURL("link", 80)
//		...
//	}
//
// Run deploys the environment's charts (the same library as `mage
// env:deploy`), or, in the remote runner's pod (TESTSHIP_REMOTE=true,
// TESTSHIP_NAMESPACE=<ns>, TESTSHIP_ENVIRONMENT=<what the launcher
// deployed>), connects to the environment already deployed there and
// deploys nothing, reading no Secret; or hands the whole test to the remote runner,
// after which WillUseRemoteRunner is true and the test returns.
//
// Configuration comes from the same variables as env:deploy (TESTSHIP_CHARTS,
// ENV_NAMESPACE, KEEP_ENVIRONMENTS, ENV_TIMEOUT, LOCAL_CHARTS, ENV_SET,
// TESTSHIP_IMAGE_<CHART>); options given to New win over them.
package testenv

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/kube"
	"github.com/testship/testship/pkg/runner"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Env is a test's environment.
//
// For testenv/remote.go (the remote runner's side): e.t is the test, e.cfg
// the configuration, e.images the chart images; e.kubeConfig() loads the
// cluster; e.deploy() deploys (once) and registers the KEEP_ENVIRONMENTS
// cleanup; e.namespace is set by deploy.
type Env struct {
	t   testing.TB
	ctx context.Context

	cfg    config.Env
	run    config.Run    // ENV_JOB_IMAGE, DETACH_RUNNER, ... (read once, by New)
	pod    config.Remote // TESTSHIP_REMOTE, TESTSHIP_NAMESPACE, TESTSHIP_ENVIRONMENT
	images map[string]string
	values map[string]map[string]any

	kc        *kube.Config
	cs        kubernetes.Interface
	namespace string
	env       *environment.Environment

	ran       bool
	remote    bool // the remote runner ran the test
	connected bool // this process is the remote runner

	cleanupSet bool

	mu       sync.Mutex
	forwards map[string]*kube.Forward

	be backend
}

// backend is what Env calls in the cluster; the unit tests replace it
// (a fake clientset, recorded deploys and launches).
type backend struct {
	kube   func() (*kube.Config, kubernetes.Interface, error)
	deploy func(context.Context, *rest.Config, environment.Options) (*environment.Environment, error)
	finish func(ctx context.Context, rc *rest.Config, c config.Env, ns string, failed bool, out io.Writer) error
	launch func(context.Context, kubernetes.Interface, runner.Options, io.Writer) (*runner.Run, error)
	follow func(context.Context, kubernetes.Interface, *runner.Run, runner.FollowOptions) (*runner.Result, error)
}

var cluster = backend{
	kube: func() (*kube.Config, kubernetes.Interface, error) {
		kc, err := kube.Load()
		if err != nil {
			return nil, nil, err
		}
		cs, err := kc.Clientset()
		return kc, cs, err
	},
	deploy: environment.Deploy,
	finish: environment.Finish,
	launch: runner.Launch,
	follow: runner.Follow,
}

// Option changes how New sets up the environment.
type Option func(*Env)

// Charts sets the environment's charts (default TESTSHIP_CHARTS, "link").
// Each is NAME or NAME=source as in TESTSHIP_CHARTS.
func Charts(charts ...string) Option {
	return func(e *Env) {
		refs, err := config.ParseCharts(strings.Join(charts, ","))
		if err != nil {
			e.t.Fatalf("testenv.Charts: %v", err)
		}
		e.cfg.Charts = refs
	}
}

// Namespace sets the namespace (default ENV_NAMESPACE, else generated).
func Namespace(ns string) Option {
	return func(e *Env) {
		if err := config.ValidNamespace(ns); err != nil {
			e.t.Fatalf("testenv.Namespace: %v", err)
		}
		e.cfg.Namespace = ns
	}
}

// Values adds values for one chart, winning over ENV_SET.
func Values(chart string, vals map[string]any) Option {
	return func(e *Env) { e.values[chart] = vals }
}

// Image sets the image of one chart (value "image").
func Image(chart, ref string) Option {
	return func(e *Env) { e.images[chart] = ref }
}

// Timeout bounds the wait for readiness (default ENV_TIMEOUT).
func Timeout(d time.Duration) Option {
	return func(e *Env) { e.cfg.Timeout = d }
}

// Keep sets when the environment is kept after the test (default
// KEEP_ENVIRONMENTS).
func Keep(k config.Keep) Option {
	return func(e *Env) { e.cfg.Keep = k }
}

// New prepares the environment of test t from the configuration and options.
// It contacts nothing; Run does.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	// The validation pass of the in-test form: environment, run and
	// remote-pod variables (image paths do not exist in the test's
	// directory nor in the remote pod).
	c, err := config.Load(config.ForTest...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &Env{t: t, ctx: ctx, cfg: c.Env, run: c.Run, pod: c.Remote, images: map[string]string{}, values: map[string]map[string]any{},
		forwards: map[string]*kube.Forward{}, be: cluster}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Run gets the environment ready: it hands the test to the remote runner
// when that is configured, connects when this process is the remote runner,
// and otherwise deploys (idempotent: an environment that is up to date is
// only checked for readiness). Failures end the test.
func (e *Env) Run() {
	e.t.Helper()
	if e.ran {
		return
	}
	e.ran = true
	if e.runRemote() {
		e.remote = true
		return
	}
	if e.pod.Enabled {
		e.connect()
		return
	}
	if err := e.deploy(); err != nil {
		e.t.Fatalf("testenv: %v", err)
	}
}

// IsRemote reports whether this process is the remote runner's copy of the
// test (TESTSHIP_REMOTE=true, set on the remote runner's Job).
func IsRemote() bool { return config.IsRemote() }

// WillUseRemoteRunner reports whether the remote runner ran (or is running)
// this test, in which case this copy must return without testing anything.
func (e *Env) WillUseRemoteRunner() bool { return e.remote }

// Pod says which pod of its run this copy of the test is: index 0 to
// count-1 of count (TESTSHIP_INDEX, TESTSHIP_COUNT, set by the remote
// runner's Job); 0 and 1 outside a run of several pods. A test run as
// copies (TESTSHIP_PARALLEL) splits its work, or its expectations, by
// them.
func (e *Env) Pod() (index, count int) { return e.pod.Index, max(e.pod.Count, 1) }

// Namespace is the environment's namespace (after Run).
func (e *Env) Namespace() string { return e.namespace }

// Kube returns a client for the cluster.
func (e *Env) Kube() kubernetes.Interface {
	e.t.Helper()
	e.kubeConfig()
	return e.cs
}

// RESTConfig returns the cluster's client configuration.
func (e *Env) RESTConfig() *rest.Config {
	e.t.Helper()
	return e.kubeConfig().REST
}

// Context is canceled when the test ends.
func (e *Env) Context() context.Context { return e.ctx }

// Environment describes what Run deployed or connected to.
func (e *Env) Environment() *environment.Environment { return e.env }

func (e *Env) kubeConfig() *kube.Config {
	e.t.Helper()
	if e.kc == nil {
		kc, cs, err := e.be.kube()
		if err != nil {
			e.t.Fatalf("testenv: %v", err)
		}
		e.kc, e.cs = kc, cs
	}
	return e.kc
}

// inCluster reports whether Service DNS names and pod IPs are reachable
// from this process.
func (e *Env) inCluster() bool { return e.connected || e.kubeConfig().InCluster() }

func (e *Env) connect() {
	e.t.Helper()
	ns := e.pod.Namespace // set and valid: config.Load checked it
	names := environment.ChartNames(e.cfg.Charts)
	e.kubeConfig()
	env, err := environment.Connect(e.ctx, e.cs, ns, names, []byte(e.pod.Environment))
	if err != nil {
		e.t.Fatalf("testenv: %v", err)
	}
	e.env, e.namespace, e.connected = env, ns, true
	e.t.Logf("testenv: connected to environment in namespace %s (%s)", ns, strings.Join(names, ", "))
}

// deploy deploys the environment once and registers its cleanup.
func (e *Env) deploy() error {
	if e.env != nil {
		return nil
	}
	kc := e.kubeConfig()
	// The state file's directory: the image area is not loaded here (its
	// paths do not exist in the test's directory), only this one value.
	o, err := environment.OptionsFromConfig(e.cfg, config.Get(config.StateDir), "go-test")
	if err != nil {
		return err
	}
	for k, v := range e.images {
		o.Images[k] = v
	}
	o.Values = e.values
	o.Out = logWriter{e.t}
	start := time.Now()
	env, err := e.be.deploy(e.ctx, kc.REST, o)
	if env != nil {
		e.namespace = env.Namespace
		e.registerCleanup()
	}
	if err != nil {
		return err
	}
	e.env = env
	e.t.Logf("testenv: environment ready in namespace %s after %s", env.Namespace, time.Since(start).Round(time.Millisecond))
	return nil
}

func (e *Env) registerCleanup() {
	if e.cleanupSet || e.namespace == "" {
		return
	}
	e.cleanupSet = true
	ns, cfg := e.namespace, e.cfg
	e.t.Cleanup(func() {
		if err := e.be.finish(context.Background(), e.kc.REST, cfg, ns, e.t.Failed(), logWriter{e.t}); err != nil {
			e.t.Errorf("testenv: destroy environment: %v", err)
		}
	})
}

// ServiceURL returns the base URL of a Service's port: in the cluster
// http://<service>.<namespace>.svc.cluster.local:<port>, elsewhere a
// port-forward to a ready pod behind it at http://127.0.0.1:<local port>
// (closed when the test ends). In the cluster, a client should retry a
// refused connection for a few seconds (RetryDialTransport): kube-proxy may
// not have programmed the Service's IP yet when the deploy returns.
func (e *Env) ServiceURL(service string, port int) string {
	e.t.Helper()
	e.mustRun()
	if e.inCluster() {
		return fmt.Sprintf("http://%s.%s.svc.cluster.local:%d", service, e.namespace, port)
	}
	f := e.forward("svc/"+service, port, func() (*kube.Forward, error) {
		return kube.PortForwardService(e.ctx, e.kc.REST, e.namespace, service, port)
	})
	return "http://" + f.Addr()
}

// PodURLs returns one base URL per ready pod matching the label selector, at
// the pod's port: the pod IP in the cluster, a port-forward elsewhere. It
// fails the test when no pod is ready.
func (e *Env) PodURLs(selector string, port int) []string {
	e.t.Helper()
	e.mustRun()
	pods, err := kube.ReadyPods(e.ctx, e.Kube(), e.namespace, selector)
	if err != nil {
		e.t.Fatalf("testenv: pods %q in %s: %v", selector, e.namespace, err)
	}
	if len(pods) == 0 {
		e.t.Fatalf("testenv: no ready pod matches %q in namespace %s", selector, e.namespace)
	}
	var urls []string
	for _, p := range pods {
		if e.inCluster() {
			urls = append(urls, fmt.Sprintf("http://%s:%d", p.Status.PodIP, port))
			continue
		}
		name := p.Name
		f := e.forward("pod/"+name, port, func() (*kube.Forward, error) {
			return kube.PortForwardPod(e.ctx, e.kc.REST, e.namespace, name, port)
		})
		urls = append(urls, "http://"+f.Addr())
	}
	return urls
}

func (e *Env) forward(target string, port int, open func() (*kube.Forward, error)) *kube.Forward {
	e.t.Helper()
	key := fmt.Sprintf("%s:%d", target, port)
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.forwards[key]; f != nil {
		return f
	}
	f, err := open()
	if err != nil {
		e.t.Fatalf("testenv: port-forward to %s port %d in %s: %v", target, port, e.namespace, err)
	}
	e.forwards[key] = f
	e.t.Cleanup(f.Close)
	return f
}

func (e *Env) mustRun() {
	e.t.Helper()
	if !e.ran {
		e.t.Fatalf("testenv: call Run before using the environment")
	}
	if e.remote {
		e.t.Fatalf("testenv: the remote runner runs this test; return when WillUseRemoteRunner() is true")
	}
}

// logWriter sends progress lines to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
