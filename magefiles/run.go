//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"
	"k8s.io/client-go/kubernetes"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/kube"
	"github.com/testship/testship/pkg/pipeline"
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
// the environment stays.
//
// TESTSHIP_SHARDS=N (or auto) splits the tests over N pods of one Indexed
// Job, balanced by the durations recorded from earlier runs;
// TESTSHIP_PARALLEL=N runs N copies of the same tests (TESTSHIP_SYNC_START
// starts them together). Each pod's output is prefixed with its index, the
// run ends with one summary and one exit code, and TESTSHIP_FAIL_FAST
// stops the others at the first failure. Run `mage vars` for every
// variable.
func (Run) Remote(ctx context.Context) error {
	return runRemote(ctx, false)
}

// Detached is run:remote that returns once the test is running, printing the run id and how to follow it.
//
// The run (and its environment) go on without the caller: follow it with
// run:attach, stop it with run:cancel, remove the environment with
// env:destroy.
func (Run) Detached(ctx context.Context) error {
	return runRemote(ctx, true)
}

// Local runs the tests here with `go test` against the same deployed environment (through port-forwards).
//
// Deploys like run:remote, then runs `go test -v -count=1 -tags
// TESTSHIP_TEST_TAGS [-run TESTSHIP_RUN] TESTSHIP_TEST_PACKAGE` with
// ENV_NAMESPACE set to the environment's namespace, and exits with go
// test's exit code.
func (Run) Local(ctx context.Context) error {
	o, err := pipeline.Load()
	if err != nil {
		return exitCode(err)
	}
	env, err := pipeline.Prepare(ctx, o)
	if err != nil {
		return exitCode(err)
	}
	// go test's own exit code; a go test that could not start exits 1
	return pipeline.GoTest(ctx, o, env.Namespace)
}

// Attach follows a run's output (from now; TESTSHIP_FROM_START=true from its start) to its end and exits with its exit code.
//
// On a finished run it prints the run's whole output and exits with its
// code. The run is looked up in ENV_NAMESPACE, or in every namespace.
func (Run) Attach(ctx context.Context, id string) error {
	cfg, cs, err := runsSetup()
	if err != nil {
		return exitCode(err)
	}
	return exitCode(pipeline.Attach(ctx, cs, cfg.Run, cfg.Env.Namespace, id, os.Stdout, os.Stderr))
}

// Logs prints the whole output of a run, running or finished, without following it.
func (Run) Logs(ctx context.Context, id string) error {
	cfg, cs, err := runsSetup()
	if err != nil {
		return exitCode(err)
	}
	job, err := runner.Find(ctx, cs, cfg.Env.Namespace, id)
	if err != nil {
		return exitCode(err)
	}
	return exitCode(runner.Logs(ctx, cs, job.Namespace, id, os.Stdout))
}

// Status shows one run's state, exit code, and the reason when it is stuck or failed.
func (Run) Status(ctx context.Context, id string) error {
	cfg, cs, err := runsSetup()
	if err != nil {
		return exitCode(err)
	}
	info, err := runner.Status(ctx, cs, cfg.Env.Namespace, id)
	if err != nil {
		return exitCode(err)
	}
	runner.PrintStatus(os.Stdout, info)
	return nil
}

// Cancel stops a run: deletes its Job, pod and Secret, and says what was stopped.
func (Run) Cancel(ctx context.Context, id string) error {
	cfg, cs, err := runsSetup()
	if err != nil {
		return exitCode(err)
	}
	job, err := runner.Find(ctx, cs, cfg.Env.Namespace, id)
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
	cfg, cs, err := runsSetup()
	if err != nil {
		return exitCode(err)
	}
	runs, err := runner.List(ctx, cs, cfg.Env.Namespace)
	if err != nil {
		return exitCode(err)
	}
	runner.PrintList(os.Stdout, runs)
	return nil
}

func runRemote(ctx context.Context, detach bool) error {
	o, err := pipeline.Load()
	if err != nil {
		return exitCode(err)
	}
	if detach { // run:detached; run:remote detaches with DETACH_RUNNER=true
		o.Run.Detach = true
	}
	return exitCode(pipeline.Remote(ctx, o))
}

// runsSetup runs the validation pass of the targets that manage runs
// (attach, logs, status, list, cancel) and connects to the cluster.
func runsSetup() (*config.Config, kubernetes.Interface, error) {
	cfg, err := config.Load(config.ForRuns...)
	if err != nil {
		return nil, nil, err
	}
	kc, err := kube.Load()
	if err != nil {
		return nil, nil, err
	}
	cs, err := kc.Clientset()
	return cfg, cs, err
}

// exitCode gives every failure an exit code: the run's own, or 89 when
// testship itself could not do its part.
func exitCode(err error) error { return pipeline.Exit(err) }
