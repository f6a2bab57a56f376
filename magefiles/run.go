//go:build mage

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/magefile/mage/mg"
	"k8s.io/client-go/kubernetes"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/gha"
	"github.com/testship/testship/pkg/image"
	"github.com/testship/testship/pkg/kube"
	"github.com/testship/testship/pkg/runner"
)

// Run runs the tests in the cluster (the remote runner) or here, and manages remote runs.
type Run mg.Namespace

// Remote pushes the images, deploys the environment, runs the test image as a Job in the cluster and waits for it.
//
// Exits with the remote test's own exit code (0, 1 for a failed test, 2 for
// a panic, TestMain's code) or a documented fault code (81-89). With
// ENV_JOB_IMAGE set, runs that test image and builds none. Runs all
// tests, or those matching TESTSHIP_RUN. Running it again while the same
// test from the same image is running attaches instead of starting another
// (TESTSHIP_NEW_RUN=true starts another). Ctrl-C cancels the run unless
// TESTSHIP_ON_INTERRUPT=leave. Afterwards KEEP_ENVIRONMENTS decides whether
// the environment stays. Run `mage vars` for every variable.
func (Run) Remote(ctx context.Context) error {
	return exitCode(runRemote(ctx, false))
}

// Detached is run:remote that returns once the test is running, printing the run id and how to follow it.
//
// The run (and its environment) go on without the caller: follow it with
// run:attach, stop it with run:cancel, remove the environment with
// env:destroy.
func (Run) Detached(ctx context.Context) error {
	return exitCode(runRemote(ctx, true))
}

// Local runs the tests here with `go test` against the same deployed environment (through port-forwards).
//
// Deploys like run:remote, then runs `go test -v -count=1 -tags
// TESTSHIP_TEST_TAGS [-run TESTSHIP_RUN] TESTSHIP_TEST_PACKAGE` with
// ENV_NAMESPACE set to the environment's namespace, and exits with go
// test's exit code.
func (Run) Local(ctx context.Context) error {
	rc, env, err := prepare(ctx)
	if err != nil {
		return exitCode(err)
	}
	args := []string{"test", "-v", "-count=1", "-timeout", rc.Timeout.String()}
	if tags := config.Get(config.TestTags); tags != "" {
		args = append(args, "-tags", tags)
	}
	if rc.Pattern != "" {
		args = append(args, "-run", rc.Pattern)
	}
	args = append(args, config.Get(config.TestPackage))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), config.EnvNamespace+"="+env.Namespace, config.RunJobImage+"=", runner.EnvRemote+"=")
	fmt.Printf("testship: go %v (ENV_NAMESPACE=%s)\n", args, env.Namespace)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return mg.Fatalf(ee.ExitCode(), "go test exited with code %d", ee.ExitCode())
	}
	return err
}

// Attach follows a run's output (from now; TESTSHIP_FROM_START=true from its start) to its end and exits with its exit code.
//
// On a finished run it prints the run's whole output and exits with its
// code. The run is looked up in ENV_NAMESPACE, or in every namespace.
func (Run) Attach(ctx context.Context, id string) error {
	rc, err := config.LoadRun()
	if err != nil {
		return exitCode(err)
	}
	cs, err := clientset()
	if err != nil {
		return exitCode(err)
	}
	job, err := runner.Find(ctx, cs, config.Get(config.EnvNamespace), id)
	if err != nil {
		return exitCode(err)
	}
	run := runner.RunOf(job)
	info, err := runner.Status(ctx, cs, run.Namespace, id)
	if err != nil {
		return exitCode(err)
	}
	running := info.State == "Running" || info.State == "Pending"
	fmt.Fprintf(os.Stderr, "testship: attaching to run %s in namespace %s (%s)\n", id, run.Namespace, info.State)
	_, err = runner.Follow(ctx, cs, run, runner.FollowOptions{
		WaitOptions: runner.WaitOptions{
			Out: os.Stdout, Log: os.Stderr, Timeout: rc.WaitTimeout,
			FromNow: running && !rc.FromStart,
		},
		// Ctrl-C while attached leaves the run alone unless asked
		LeaveOnInterrupt: true,
		KeepOnFault:      true,
	})
	return exitCode(err)
}

// Logs prints the whole output of a run, running or finished, without following it.
func (Run) Logs(ctx context.Context, id string) error {
	cs, err := clientset()
	if err != nil {
		return exitCode(err)
	}
	job, err := runner.Find(ctx, cs, config.Get(config.EnvNamespace), id)
	if err != nil {
		return exitCode(err)
	}
	return exitCode(runner.Logs(ctx, cs, job.Namespace, id, os.Stdout))
}

// Status shows one run's state, exit code, and the reason when it is stuck or failed.
func (Run) Status(ctx context.Context, id string) error {
	cs, err := clientset()
	if err != nil {
		return exitCode(err)
	}
	info, err := runner.Status(ctx, cs, config.Get(config.EnvNamespace), id)
	if err != nil {
		return exitCode(err)
	}
	runner.PrintStatus(os.Stdout, info)
	return nil
}

// Cancel stops a run: deletes its Job, pod and Secret, and says what was stopped.
func (Run) Cancel(ctx context.Context, id string) error {
	cs, err := clientset()
	if err != nil {
		return exitCode(err)
	}
	job, err := runner.Find(ctx, cs, config.Get(config.EnvNamespace), id)
	if err != nil {
		return exitCode(err)
	}
	if err := runner.Cancel(ctx, cs, job.Namespace, id, true); err != nil {
		return exitCode(err)
	}
	fmt.Printf("cancelled run %s: deleted Job %s/%s, its pod and Secret\n", id, job.Namespace, job.Name)
	return nil
}

// List shows the runs in ENV_NAMESPACE (or every namespace you can see): id, test, image, state, age, result.
func (Run) List(ctx context.Context) error {
	cs, err := clientset()
	if err != nil {
		return exitCode(err)
	}
	runs, err := runner.List(ctx, cs, config.Get(config.EnvNamespace))
	if err != nil {
		return exitCode(err)
	}
	runner.PrintList(os.Stdout, runs)
	return nil
}

// prepare validates the configuration, pushes the images (no-op when up to
// date) and deploys the environment (no-op when up to date).
func prepare(ctx context.Context) (config.Run, *environment.Environment, error) {
	rc, err := config.LoadRun()
	if err != nil {
		return rc, nil, err
	}
	ec, err := config.LoadEnv()
	if err != nil {
		return rc, nil, err
	}
	ic, err := config.LoadImage()
	if err != nil {
		return rc, nil, err
	}
	kc, err := kube.Load()
	if err != nil {
		return rc, nil, err
	}
	if rc.JobImage == "" {
		if _, err := image.Push(ctx, ic, os.Stdout); err != nil {
			return rc, nil, err
		}
	} else {
		fmt.Printf("testship: test image %s (ENV_JOB_IMAGE): not building images\n", rc.JobImage)
	}
	built, err := environment.StateImages(config.Get(config.StateDir))
	if err != nil {
		return rc, nil, err
	}
	o := environment.FromConfig(ec, environment.DetectOrigin("local"))
	o.Images = environment.ResolveImages(ec.Charts, built)
	o.Out = os.Stdout
	env, err := environment.Deploy(ctx, kc.REST, o)
	return rc, env, err
}

func runRemote(ctx context.Context, detach bool) error {
	rc, env, err := prepare(ctx)
	if err != nil {
		return err
	}
	testImage := rc.JobImage
	if testImage == "" {
		state, err := image.LoadState(config.Get(config.StateDir))
		if err != nil {
			return err
		}
		testImage = state.Test.Pinned()
	}
	kc, err := kube.Load()
	if err != nil {
		return err
	}
	cs, err := kc.Clientset()
	if err != nil {
		return err
	}
	ec, _ := config.LoadEnv()
	opts := runner.Options{Namespace: env.Namespace, Image: testImage, Test: config.Get(config.TestPackage)}
	opts.FromConfig(rc)
	opts.Env, opts.Secrets = runner.EnvFromProcess()
	run, err := runner.Launch(ctx, cs, opts, os.Stderr)
	if err != nil {
		return err
	}
	wo := runner.WaitOptions{Out: os.Stdout, Log: os.Stderr, Detach: detach || rc.Detach, Timeout: rc.WaitTimeout}
	var rec *runner.Recorder
	if rc.JUnit != "" && !wo.Detach {
		if rec, err = runner.NewRecorder(); err != nil {
			return err
		}
		defer rec.Close()
		wo.OnLine = rec.Line
	}
	res, err := runner.Follow(ctx, cs, run, runner.FollowOptions{
		WaitOptions:      wo,
		LeaveOnInterrupt: rc.LeaveOnInterrupt,
		KeepOnFault:      ec.Keep != config.KeepNever,
	})
	if rec != nil && res != nil && !res.Detached {
		writeReports(rec, rc.JUnit, opts.Test, res)
	}
	// In GitHub Actions: step outputs and the job summary.
	_ = gha.SetOutput("run_id", run.ID)
	_ = gha.SetOutput("namespace", run.Namespace)
	if res != nil && !res.Detached {
		_ = gha.SetOutput("exit_code", strconv.Itoa(res.ExitCode))
		_ = gha.AppendSummary(res.Markdown())
	}
	if detach || rc.Detach || (res != nil && res.Reason == runner.ReasonWaitTimeout) || ctx.Err() != nil {
		// The run goes on (or was just cancelled within Mage's grace
		// period): its environment stays until env:destroy.
		return err
	}
	failed := err != nil
	if ec.Keep.Keeps(failed) {
		fmt.Fprintf(os.Stderr, "testship: keeping the environment in namespace %s (KEEP_ENVIRONMENTS=%s); remove it with ENV_NAMESPACE=%s mage env:destroy\n", env.Namespace, ec.Keep, env.Namespace)
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ec.Timeout)
	defer cancel()
	if derr := environment.Destroy(dctx, kc.REST, env.Namespace, ec.Timeout, os.Stderr); derr != nil {
		fmt.Fprintf(os.Stderr, "testship: destroy the environment in namespace %s: %v\n", env.Namespace, derr)
	}
	return err
}

// writeReports writes the JUnit XML report and, next to it, the `go test
// -json` events (NAME.json for NAME.xml).
func writeReports(rec *runner.Recorder, path, pkg string, res *runner.Result) {
	if err := rec.WriteJUnit(path, pkg, res); err != nil {
		fmt.Fprintf(os.Stderr, "testship: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "testship: JUnit report written to %s\n", path)
	}
	events := strings.TrimSuffix(path, filepath.Ext(path)) + ".json"
	if err := rec.WriteJSON(events, pkg, res); err != nil {
		fmt.Fprintf(os.Stderr, "testship: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "testship: go test -json events written to %s\n", events)
	}
}

func clientset() (kubernetes.Interface, error) {
	kc, err := kube.Load()
	if err != nil {
		return nil, err
	}
	return kc.Clientset()
}

// exitCode gives every failure an exit code: the run's own, or 89 when
// testship itself could not do its part (so it never looks like a test's
// exit code 1).
func exitCode(err error) error {
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
