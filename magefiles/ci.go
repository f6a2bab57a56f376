//go:build mage

package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"
	"k8s.io/client-go/kubernetes"

	"github.com/testship/testship/pkg/ci"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/kube"
	"github.com/testship/testship/pkg/pipeline"
)

// CI holds the sequences the workflows (and .ci/run, and test:all) run: each workflow step calls one of these.
type CI mg.Namespace

// Vet builds the module and vets it (plain, e2e and mage build tags).
func (CI) Vet(ctx context.Context) error {
	return ci.Vet(ctx, os.Stdout)
}

// E2e brings up the local stack, pushes the images, runs the end-to-end tests and takes the stack down (always).
//
// When a step fails, the stack's logs are copied to TESTSHIP_STACK_LOGS
// first. TESTSHIP_KEEP_STACK=true leaves the stack running.
func (CI) E2e(ctx context.Context) error {
	seq, err := e2eSequence()
	if err != nil {
		return err
	}
	return seq.Execute(ctx)
}

// Remote pushes the images and runs the test in the cluster (TESTSHIP_MODE remote: wait; detached: return once it runs; attach: follow TESTSHIP_CI_RUN).
//
// The run's id and namespace go to $GITHUB_OUTPUT as soon as it starts;
// failed tests become annotations and the job summary gets a table of
// passed/failed/skipped and the slowest tests (from TESTSHIP_JUNIT's
// events). On SIGINT (a cancelled job) the run is cancelled and the
// environment destroyed per KEEP_ENVIRONMENTS; exit code 88. A run that
// outlives TESTSHIP_WAIT_TIMEOUT goes on (exit 87) and the summary says
// how to re-attach. Exits with the run's exit code.
func (CI) Remote(ctx context.Context) error {
	cfg, err := config.Load(config.ForCIRemote...)
	if err != nil {
		return pipeline.Exit(err)
	}
	return pipeline.Exit(ci.RunRemote(ctx, cfg.CI))
}

// Cleanup cancels run TESTSHIP_CI_RUN in ENV_NAMESPACE and destroys the environment per KEEP_ENVIRONMENTS (the run counts as failed).
//
// The workflow's last step after a cancelled or failed job, fed with the
// run step's run_id and namespace outputs.
func (CI) Cleanup(ctx context.Context) error {
	cfg, err := config.Load(config.ForCICleanup...)
	if err != nil {
		return pipeline.Exit(err)
	}
	c, e := cfg.CI, cfg.Env
	kc, err := kube.Load()
	if err != nil {
		return pipeline.Exit(err)
	}
	cs, err := kubernetes.NewForConfig(kc.REST)
	if err != nil {
		return pipeline.Exit(err)
	}
	return pipeline.Exit(ci.Cleanup(ctx, kc.REST, cs, c.Run, e.Namespace, e, os.Stdout))
}

// Kubeconfig writes the kubeconfig of TESTSHIP_EKS_CLUSTER (aws eks update-kubeconfig) and exports KUBECONFIG to the job's later steps.
//
// Without TESTSHIP_EKS_CLUSTER it keeps KUBECONFIG (a self-hosted runner's).
func (CI) Kubeconfig(ctx context.Context) error {
	cfg, err := config.Load(config.ForCICleanup...)
	if err != nil {
		return err
	}
	c := cfg.CI
	if c.Cluster == "" {
		return nil
	}
	return ci.Kubeconfig(ctx, c.Cluster, filepath.Join(c.KubeconfigDir, "kubeconfig"), os.Stdout)
}

// e2eSequence is ci:e2e's steps: dev:up, image:push, test:e2e, (logs), dev:down.
func e2eSequence() (ci.E2E, error) {
	cfg, err := config.Load(config.ForCIStack...)
	if err != nil {
		return ci.E2E{}, err
	}
	c, d := cfg.CI, cfg.Dev
	return ci.E2E{
		Up:    ci.Step{Name: "dev:up", Run: Dev{}.Up},
		Push:  ci.Step{Name: "image:push", Run: Image{}.Push},
		Tests: ci.Step{Name: "test:e2e", Run: Test{}.E2e},
		Logs: ci.Step{Name: "collect the stack's logs", Run: func(context.Context) error {
			return ci.CopyLogs(filepath.Join(d.Dir, "logs"), c.StackLogs, os.Stdout)
		}},
		Down:      ci.Step{Name: "dev:down", Run: Dev{}.Down},
		KeepStack: c.KeepStack,
		Log:       os.Stdout,
	}, nil
}
