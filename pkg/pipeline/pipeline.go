// Package pipeline is the whole of run:remote, run:detached and run:local:
// images → environment → remote run (or `go test` here), then the
// environment kept or destroyed per KEEP_ENVIRONMENTS. The Mage targets
// only load the configuration (Load), call Remote, or Prepare and GoTest,
// and turn the error into an exit code (Exit).
//
// The in-test form (testenv) does not use this package: it runs inside
// every test binary, which must not link the image pipeline (Docker and
// registry clients), and it deploys, keeps and destroys through the
// test's own lifecycle; both forms share pkg/runner (Launch, Follow).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/term"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/gha"
	"github.com/testship/testship/pkg/image"
	"github.com/testship/testship/pkg/imageref"
	"github.com/testship/testship/pkg/kube"
	"github.com/testship/testship/pkg/runner"
	"github.com/testship/testship/pkg/shard"
	"github.com/testship/testship/pkg/testlog"
	"k8s.io/client-go/kubernetes"
)

// Options is the validated configuration of one pipeline run.
type Options struct {
	Run   config.Run
	Env   config.Env
	Image config.Image
	Kube  *kube.Config
	// Started, when set, is called with the run's id and namespace as soon
	// as the run has been launched (pkg/ci records them for its cleanup).
	Started func(id, namespace string)
	// Out gets progress and the test's output (standard output); Log gets
	// the runner's messages (standard error).
	Out, Log io.Writer
}

// Load runs the validation pass of run:remote, run:detached and run:local
// (config.ForRun: every problem of the run, environment, image and
// cluster variables at once), then loads the cluster's configuration, with
// output to the process's standard output and error.
func Load() (Options, error) {
	o := Options{Out: os.Stdout, Log: os.Stderr}
	cfg, err := config.Load(config.ForRun...)
	if err != nil {
		return o, err
	}
	o.Run, o.Env, o.Image = cfg.Run, cfg.Env, cfg.Image
	o.Kube, err = kube.Load()
	return o, err
}

// Prepare pushes the images (a no-op when they are up to date; none at all
// with ENV_JOB_IMAGE set) and deploys the environment with the pushed
// images (a no-op when it is up to date).
func Prepare(ctx context.Context, o Options) (*environment.Environment, error) {
	if _, err := push(ctx, o); err != nil {
		return nil, err
	}
	return deploy(ctx, o)
}

// push pushes the images unless ENV_JOB_IMAGE names the test image, and
// returns the test image to run: ENV_JOB_IMAGE as given, or the pushed
// test image by digest.
func push(ctx context.Context, o Options) (string, error) {
	if o.Run.JobImage != "" {
		fmt.Fprintf(o.Out, "testship: test image %s (%s): not building images\n", o.Run.JobImage, config.RunJobImage)
		return o.Run.JobImage, nil
	}
	st, err := image.Push(ctx, o.Image, o.Out)
	if err != nil {
		return "", err
	}
	return st.Test.Pinned(), nil
}

// deploy deploys the environment with the images of the state file (a
// no-op when it is up to date).
func deploy(ctx context.Context, o Options) (*environment.Environment, error) {
	eo, err := environment.OptionsFromConfig(o.Env, o.Image.StateDir, "local")
	if err != nil {
		return nil, err
	}
	eo.Out = o.Out
	return environment.Deploy(ctx, o.Kube.REST, eo)
}

// Remote prepares (Prepare), runs the test image as a Job in the
// environment's namespace and follows it (to its end, or until it has
// started when detached), writes the reports (TESTSHIP_JUNIT) and the
// GitHub Actions outputs and summary, and then keeps or destroys the
// environment per KEEP_ENVIRONMENTS. The error is the run's outcome
// (*runner.ExitError) or why testship could not do its part.
func Remote(ctx context.Context, o Options) error {
	ref, err := push(ctx, o)
	if err != nil {
		return err
	}
	// The test image is pinned once, before anything is deployed: the run
	// is of that digest (a tag from CI or a user is resolved to the digest
	// the registry serves now), and an image that cannot be resolved stops
	// here.
	testImage, err := imageref.Resolve(ctx, ref)
	if err != nil && o.Run.JobImage != "" {
		return fmt.Errorf("%s=%s: %w", config.RunJobImage, ref, err)
	} else if err != nil {
		return fmt.Errorf("the pushed test image %s: %w", ref, err)
	}
	// The shards are planned before anything is deployed: a TESTSHIP_RUN
	// that selects no test stops here, listing the tests there are.
	split, err := planShards(ctx, o)
	if err != nil {
		return err
	}
	env, err := deploy(ctx, o)
	if err != nil {
		return err
	}
	cs, err := o.Kube.Clientset()
	if err != nil {
		return err
	}
	ro := runner.NewOptions(o.Run, env.Namespace, testImage, o.Image.TestPackage)
	if split != nil {
		ro.SetShardPlan(split.Plan)
	}
	// The remote copy learns the environment from this description, not
	// from Helm's release records (its identity reads no Secrets).
	desc, err := env.Describe()
	if err != nil {
		return fmt.Errorf("describe the environment for the remote runner: %w", err)
	}
	ro.Environment = string(desc)
	run, err := runner.Launch(ctx, cs, ro, o.Log)
	if err != nil {
		return err
	}
	// Outputs as soon as the run exists, so that a later step (ci:cleanup
	// after a cancelled job) can find it even when this process is killed.
	_ = gha.SetOutput("run_id", run.ID)
	_ = gha.SetOutput("namespace", run.Namespace)
	if o.Started != nil {
		o.Started(run.ID, run.Namespace)
	}
	// One Detach: DETACH_RUNNER, or run:detached / TESTSHIP_MODE=detached
	// setting o.Run.Detach.
	detach := o.Run.Detach
	fo := runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: o.Out, Log: o.Log, Color: colorful(o.Out)}}
	fo.FromConfig(o.Run, o.Env.Keep)
	var rec *runner.Recorder
	if o.Run.JUnit != "" && !detach {
		if rec, err = runner.NewRecorder(); err != nil {
			return err
		}
		defer rec.Close()
		fo.OnPodLine = rec.PodLine
	}
	if detach { // the environment lives at least as long as the detached run may
		if xerr := environment.KeepUntil(ctx, cs, env.Namespace, runner.Deadline(o.Run.Timeout)); xerr != nil {
			fmt.Fprintf(o.Log, "testship: %v\n", xerr)
		}
	}
	res, err := runner.Follow(ctx, cs, run, fo)
	if rec != nil && res != nil && !res.Detached {
		WriteReports(o.Log, rec, o.Run.JUnit, ro.Test, res)
	}
	if res != nil && !res.Detached && len(res.Summary.Durations) > 0 {
		// The next sharded run of this package balances by these.
		if derr := shard.RecordDurations(o.Image.StateDir, shardKey(o.Image), res.Summary.Durations); derr != nil {
			fmt.Fprintf(o.Log, "testship: record the tests' durations: %v\n", derr)
		}
	}
	// In GitHub Actions: the exit code and the job summary.
	if res != nil && !res.Detached {
		_ = gha.SetOutput("exit_code", strconv.Itoa(res.ExitCode))
		_ = gha.AppendSummary(res.Markdown())
	}
	if After(detach, res, ctx.Err() != nil) == Leave {
		// The run goes on (or was just cancelled within Mage's grace
		// period): its environment stays until env:destroy.
		return err
	}
	if derr := environment.Finish(context.WithoutCancel(ctx), o.Kube.REST, o.Env, env.Namespace, err != nil, o.Log); derr != nil {
		fmt.Fprintf(o.Log, "testship: destroy the environment in namespace %s: %v\n", env.Namespace, derr)
	}
	return err
}

// shardKey names the test package's durations history.
func shardKey(c config.Image) string { return shard.Key(c.TestPackage, c.TestTags) }

// planShards plans a sharded run (TESTSHIP_SHARDS): the tests a binary of
// the test package for this machine lists under TESTSHIP_RUN, split by
// their recorded durations; nil when the run is not sharded. It says how
// it split them on o.Log.
func planShards(ctx context.Context, o Options) (*shard.Split, error) {
	if o.Run.Pods.Mode() != testlog.ModeShard {
		return nil, nil
	}
	bin, err := image.HostTestBinary(ctx, o.Image)
	if err != nil {
		return nil, err
	}
	split, err := shard.Prepare(ctx, bin, o.Run.Pattern, o.Run.Pods, o.Image.StateDir, shardKey(o.Image))
	if err != nil {
		return nil, err
	}
	for _, n := range split.Notes {
		fmt.Fprintf(o.Log, "testship: shards: %s\n", n)
	}
	return split, nil
}

// colorful reports whether the run's output goes to a terminal, where the
// pods' index prefixes are coloured.
func colorful(w io.Writer) bool {
	_, isTerm := term.GetFdInfo(w)
	return isTerm && !config.InActions()
}

// Outcome is what happens to the environment after a remote run.
type Outcome int

const (
	// Finish: keep or destroy it as KEEP_ENVIRONMENTS says
	// (environment.Finish, the one keep-or-destroy decision).
	Finish Outcome = iota
	// Leave it without a word: the run goes on (detached, local wait
	// timeout) or was interrupted.
	Leave
)

func (a Outcome) String() string {
	if a == Leave {
		return "leave"
	}
	return "finish"
}

// After decides whether the environment is finished (kept or destroyed
// by environment.Finish) or left alone after a remote run: detached is
// whether the caller detached, res the run's result (nil when following
// failed or was interrupted), interrupted whether the caller's context
// ended.
func After(detach bool, res *runner.Result, interrupted bool) Outcome {
	if detach || (res != nil && res.Reason == runner.ReasonWaitTimeout) || interrupted {
		return Leave
	}
	return Finish
}

// EventsPath is where the `go test -json` events go next to the JUnit
// report at junit: NAME.json for NAME.xml.
func EventsPath(junit string) string {
	return strings.TrimSuffix(junit, filepath.Ext(junit)) + ".json"
}

// WriteReports writes the JUnit XML report to path and, at EventsPath,
// the `go test -json` events, saying on log what it wrote or why not.
func WriteReports(log io.Writer, rec *runner.Recorder, path, pkg string, res *runner.Result) {
	if err := rec.WriteJUnit(path, pkg, res); err != nil {
		fmt.Fprintf(log, "testship: %v\n", err)
	} else {
		fmt.Fprintf(log, "testship: JUnit report written to %s\n", path)
	}
	events := EventsPath(path)
	if err := rec.WriteJSON(events, pkg, res); err != nil {
		fmt.Fprintf(log, "testship: %v\n", err)
	} else {
		fmt.Fprintf(log, "testship: go test -json events written to %s\n", events)
	}
}

// GoTestArgs are the arguments of the `go test` that run:local runs.
func GoTestArgs(timeout, tags, pattern, pkg string) []string {
	args := []string{"test", "-v", "-count=1", "-timeout", timeout}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if pattern != "" {
		args = append(args, "-run", pattern)
	}
	return append(args, pkg)
}

// GoTest runs the tests here with `go test` against the environment in
// namespace (ENV_NAMESPACE set to it; ENV_JOB_IMAGE and TESTSHIP_REMOTE
// cleared so the test neither hands itself to the remote runner nor
// thinks it is one). A non-zero exit of go test is an *runner.ExitError
// with go test's code; a go test that could not start is its plain error.
func GoTest(ctx context.Context, o Options, namespace string) error {
	args := GoTestArgs(o.Run.Timeout.String(), o.Image.TestTags, o.Run.Pattern, o.Image.TestPackage)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = o.Out, o.Log
	cmd.Env = append(os.Environ(), config.EnvNamespace+"="+namespace, config.RunJobImage+"=", config.RemoteFlag+"=")
	fmt.Fprintf(o.Out, "testship: go %v (ENV_NAMESPACE=%s)\n", args, namespace)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &runner.ExitError{Code: ee.ExitCode(), Message: fmt.Sprintf("go test exited with code %d", ee.ExitCode())}
	}
	return err
}

// Exit gives every failure an exit code: the run's own (an error with an
// ExitStatus, such as *runner.ExitError, passes through), or
// runner.ExitInfra (89) when testship itself could not do its part, so
// that it never looks like a test's exit code 1.
func Exit(err error) error {
	if err == nil {
		return nil
	}
	var ee *runner.ExitError
	if errors.As(err, &ee) {
		return ee
	}
	var st interface{ ExitStatus() int }
	if errors.As(err, &st) {
		return err
	}
	return &runner.ExitError{Code: runner.ExitInfra, Message: err.Error()}
}

// Attach follows run id (looked up in namespace, or in every namespace
// when empty) to its end: from now, or from its start with
// TESTSHIP_FROM_START=true or when it has already finished. Ctrl-C leaves
// the run alone, and a run that hit a fault is kept for inspection.
func Attach(ctx context.Context, cs kubernetes.Interface, rc config.Run, namespace, id string, out, log io.Writer) error {
	job, err := runner.Find(ctx, cs, namespace, id)
	if err != nil {
		return err
	}
	run := runner.RunOf(job)
	info, err := runner.Status(ctx, cs, run.Namespace, id)
	if err != nil {
		return err
	}
	running := info.State == "Running" || info.State == "Pending"
	fmt.Fprintf(log, "testship: attaching to run %s in namespace %s (%s)\n", id, run.Namespace, info.State)
	_, err = runner.Follow(ctx, cs, run, runner.FollowOptions{
		WaitOptions: runner.WaitOptions{
			Out: out, Log: log, Timeout: rc.WaitTimeout,
			FromNow: running && !rc.FromStart,
		},
		// Ctrl-C while attached leaves the run alone unless asked
		LeaveOnInterrupt: true,
		KeepOnFault:      true,
	})
	return err
}
