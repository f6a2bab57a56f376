package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/kube"
	"github.com/testship/testship/pkg/runner"
)

// The three modes of Env.Run, each with a fake clientset and a recording
// backend in place of Helm, the runner's Launch/Follow and the destroy:
// local (deploys), handing over to the remote runner (ENV_JOB_IMAGE) and
// inside the remote pod (TESTSHIP_REMOTE=true: connects, deploys nothing).

const testImage = "127.0.0.1:5000/testship/test@sha256:1111111111111111111111111111111111111111111111111111111111111111"

// recTB is the test an Env under test belongs to: it records errors,
// fatal errors (ending the goroutine like t.Fatal) and cleanups, so that a
// failure of the Env's test can be asserted without failing this one.
type recTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	errs     []string
	fatal    bool
	cleanups []func()
}

func (r *recTB) Name() string { return r.name }
func (r *recTB) Helper()      {}
func (r *recTB) Errorf(f string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(f, a...))
}
func (r *recTB) Fatalf(f string, a ...any) {
	r.Errorf(f, a...)
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs) > 0
}
func (r *recTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// run calls body as the Env's test (on its own goroutine, so a Fatalf ends
// only body), then its cleanups, last registered first, as testing does.
func (r *recTB) run(body func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		body()
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// fakeCluster is the backend of the Env under test: a fake clientset, and
// the deploys, destroys, launches and follows it was asked for.
type fakeCluster struct {
	cs       *fake.Clientset
	deploys  []environment.Options
	finishes []finishCall
	launches []runner.Options
	follows  []runner.FollowOptions
	result   *runner.Result
	err      error
}

type finishCall struct {
	ns     string
	keep   config.Keep
	failed bool
}

func (f *fakeCluster) backend() backend {
	return backend{
		kube: func() (*kube.Config, kubernetes.Interface, error) {
			return &kube.Config{REST: &rest.Config{Host: "https://127.0.0.1:1"}}, f.cs, nil
		},
		deploy: func(_ context.Context, _ *rest.Config, o environment.Options) (*environment.Environment, error) {
			f.deploys = append(f.deploys, o)
			env := &environment.Environment{Namespace: o.Namespace, NamespaceCreated: true, Managed: true}
			for _, c := range o.Charts {
				env.Releases = append(env.Releases, environment.Release{Name: c.Name, Status: "deployed",
					Values: map[string]any{"image": o.Images[c.Name]}})
			}
			return env, nil
		},
		finish: func(_ context.Context, _ *rest.Config, c config.Env, ns string, failed bool, _ io.Writer) error {
			f.finishes = append(f.finishes, finishCall{ns, c.Keep, failed})
			return nil
		},
		launch: func(_ context.Context, _ kubernetes.Interface, o runner.Options, _ io.Writer) (*runner.Run, error) {
			f.launches = append(f.launches, o)
			return &runner.Run{ID: "r1", Namespace: o.Namespace}, nil
		},
		follow: func(_ context.Context, _ kubernetes.Interface, _ *runner.Run, fo runner.FollowOptions) (*runner.Result, error) {
			f.follows = append(f.follows, fo)
			return f.result, f.err
		},
	}
}

// setenv gives every variable the Env reads a known value: the given
// ones, the others empty.
func setenv(t *testing.T, vars map[string]string) {
	for _, k := range []string{config.RunJobImage, config.RunDetach, config.RunPattern, config.RemoteFlag, config.RemoteNamespace,
		config.RemoteEnvironment, config.EnvNamespace, config.EnvCharts, config.EnvKeep, config.EnvSet, config.EnvLocalCharts,
		config.StateDir, "TESTSHIP_IMAGE_LINK", config.Kubeconfig} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// stateDir writes an image pipeline state file recording app link.
func stateDir(t *testing.T) string {
	dir := t.TempDir()
	st := `{"apps":{"link":{"name":"link","ref":"127.0.0.1:5000/testship/link:abc","digest":"sha256:` + strings.Repeat("2", 64) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "images.json"), []byte(st), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newEnv(tb testing.TB, f *fakeCluster, opts ...Option) *Env {
	return New(tb, append([]Option{func(e *Env) { e.be = f.backend() }}, opts...)...)
}

func TestRunLocalDeploys(t *testing.T) {
	dir := stateDir(t)
	for _, c := range []struct {
		name       string
		keep       string
		failTest   bool
		opts       []Option
		wantImage  string
		wantFailed bool
	}{
		{name: "state file image, destroyed", keep: "never", wantImage: "127.0.0.1:5000/testship/link@sha256:" + strings.Repeat("2", 64)},
		{name: "Image option wins, kept on failure", keep: "onfail", failTest: true, wantFailed: true,
			opts: []Option{Image("link", "reg.example.com/link:v2"), Values("link", map[string]any{"replicas": 3})}, wantImage: "reg.example.com/link:v2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setenv(t, map[string]string{config.EnvNamespace: "ts-unit", config.EnvCharts: "link", config.EnvKeep: c.keep, config.StateDir: dir})
			f := &fakeCluster{cs: fake.NewClientset()}
			tb := &recTB{TB: t, name: "TestLocal"}
			var e *Env
			tb.run(func() {
				e = newEnv(tb, f, c.opts...)
				e.Run()
				e.Run() // once only
				if c.failTest {
					tb.Errorf("the test failed")
				}
			})
			if tb.fatal || (len(tb.errs) > 0) != c.failTest {
				t.Fatalf("errors: %q", tb.errs)
			}
			if e.WillUseRemoteRunner() {
				t.Error("WillUseRemoteRunner is true without ENV_JOB_IMAGE")
			}
			if len(f.deploys) != 1 {
				t.Fatalf("%d deploys, want 1", len(f.deploys))
			}
			o := f.deploys[0]
			if o.Namespace != "ts-unit" || len(o.Charts) != 1 || o.Charts[0].Name != "link" || o.Origin.Trigger == "local" {
				t.Errorf("deploy options: namespace %q, charts %v, trigger %q", o.Namespace, o.Charts, o.Origin.Trigger)
			}
			if o.Images["link"] != c.wantImage {
				t.Errorf("image of link = %q, want %q", o.Images["link"], c.wantImage)
			}
			if c.opts != nil && o.Values["link"]["replicas"] != 3 {
				t.Errorf("values = %v", o.Values)
			}
			if e.Namespace() != "ts-unit" || e.Environment() == nil || e.Environment().Release("link") == nil {
				t.Errorf("namespace %q, environment %+v", e.Namespace(), e.Environment())
			}
			if len(f.launches) != 0 {
				t.Errorf("launched %d remote runs locally", len(f.launches))
			}
			if want := []finishCall{{"ts-unit", config.Keep(c.keep), c.wantFailed}}; fmt.Sprint(f.finishes) != fmt.Sprint(want) {
				t.Errorf("after the test: %v, want %v (environment.Finish once, with the test's outcome)", f.finishes, want)
			}
		})
	}
}

func TestRunHandsOverToRemoteRunner(t *testing.T) {
	for _, c := range []struct {
		name     string
		detach   bool
		result   *runner.Result
		err      error
		wantErr  string
		wantKeep config.Keep
	}{
		{name: "passed", result: &runner.Result{ExitCode: 0}, wantKeep: config.KeepNever},
		{name: "failed", result: &runner.Result{ExitCode: 1}, err: &runner.ExitError{Code: 1, Message: "exit 1"},
			wantErr: "exit code 1", wantKeep: config.KeepNever},
		{name: "runner fault", err: errors.New("pod never started"), wantErr: "pod never started", wantKeep: config.KeepNever},
		{name: "detached keeps the environment", detach: true, result: &runner.Result{Detached: true}, wantKeep: config.KeepAlways},
	} {
		t.Run(c.name, func(t *testing.T) {
			setenv(t, map[string]string{config.RunJobImage: testImage, config.EnvNamespace: "ts-hand", config.EnvCharts: "link",
				config.RunDetach: fmt.Sprint(c.detach), config.StateDir: t.TempDir()})
			f := &fakeCluster{cs: fake.NewClientset(), result: c.result, err: c.err}
			tb := &recTB{TB: t, name: "TestLink/sub"}
			var e *Env
			tb.run(func() {
				e = newEnv(tb, f)
				e.Run()
			})
			if !e.WillUseRemoteRunner() {
				t.Fatalf("WillUseRemoteRunner is false with ENV_JOB_IMAGE set (errors %q)", tb.errs)
			}
			switch {
			case c.wantErr == "" && len(tb.errs) > 0:
				t.Errorf("errors: %q", tb.errs)
			case c.wantErr != "" && (len(tb.errs) != 1 || !strings.Contains(tb.errs[0], c.wantErr)):
				t.Errorf("errors %q, want one saying %q", tb.errs, c.wantErr)
			}
			if len(f.deploys) != 1 || len(f.launches) != 1 || len(f.follows) != 1 {
				t.Fatalf("%d deploys, %d launches, %d follows; want one each", len(f.deploys), len(f.launches), len(f.follows))
			}
			o := f.launches[0]
			if o.Image != testImage || o.Namespace != "ts-hand" || o.Pattern != "^TestLink$/^sub$" {
				t.Errorf("launch: image %q, namespace %q, pattern %q", o.Image, o.Namespace, o.Pattern)
			}
			var desc environment.Environment
			if err := json.Unmarshal([]byte(o.Environment), &desc); err != nil || desc.Namespace != "ts-hand" || desc.Release("link") == nil {
				t.Errorf("the environment handed to the remote copy: %q (%v)", o.Environment, err)
			}
			if f.follows[0].Detach != c.detach {
				t.Errorf("follow detach = %v, want %v", f.follows[0].Detach, c.detach)
			}
			if len(f.finishes) != 1 || f.finishes[0].keep != c.wantKeep {
				t.Errorf("after the test: %v, want one Finish with KEEP_ENVIRONMENTS=%s", f.finishes, c.wantKeep)
			}
		})
	}
}

func TestRunInRemotePodConnects(t *testing.T) {
	desc := `{"namespace":"ts-pod","managed":true,"releases":[{"name":"link","status":"deployed","services":[{"name":"link","ports":[{"port":80,"protocol":"TCP"}]}]}]}`
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "link", Namespace: "ts-pod"}}
	for _, c := range []struct {
		name    string
		objects []kruntime.Object
		wantErr string
	}{
		{name: "connected", objects: []kruntime.Object{svc}},
		{name: "Service missing", wantErr: "Service link does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// ENV_JOB_IMAGE reaches the pod too: inside it, it must not hand over again.
			setenv(t, map[string]string{config.RemoteFlag: "true", config.RemoteNamespace: "ts-pod", config.RemoteEnvironment: desc,
				config.EnvCharts: "link", config.RunJobImage: testImage})
			f := &fakeCluster{cs: fake.NewClientset(c.objects...)}
			tb := &recTB{TB: t, name: "TestLink"}
			var e *Env
			var url string
			tb.run(func() {
				e = newEnv(tb, f)
				e.Run()
				url = e.ServiceURL("link", 80)
			})
			if len(f.deploys)+len(f.launches)+len(f.finishes) != 0 {
				t.Errorf("in the remote pod: %d deploys, %d launches, %d destroys; want none", len(f.deploys), len(f.launches), len(f.finishes))
			}
			if e.WillUseRemoteRunner() {
				t.Error("WillUseRemoteRunner is true in the remote pod")
			}
			if c.wantErr != "" {
				if !tb.fatal || len(tb.errs) != 1 || !strings.Contains(tb.errs[0], c.wantErr) {
					t.Errorf("errors %q, want a fatal one saying %q", tb.errs, c.wantErr)
				}
				return
			}
			if len(tb.errs) > 0 {
				t.Fatalf("errors: %q", tb.errs)
			}
			if e.Namespace() != "ts-pod" || e.Environment().Release("link") == nil {
				t.Errorf("namespace %q, environment %+v", e.Namespace(), e.Environment())
			}
			if url != "http://link.ts-pod.svc.cluster.local:80" {
				t.Errorf("ServiceURL = %q, want the Service's cluster DNS name", url)
			}
		})
	}
}

func TestNewRejectsARemotePodWithoutNamespace(t *testing.T) {
	setenv(t, map[string]string{config.RemoteFlag: "true", config.EnvCharts: "link"})
	tb := &recTB{TB: t, name: "TestLink"}
	tb.run(func() { New(tb) })
	if !tb.fatal || len(tb.errs) != 1 || !strings.Contains(tb.errs[0], config.RemoteNamespace) {
		t.Errorf("errors %q, want one fatal naming %s", tb.errs, config.RemoteNamespace)
	}
}
