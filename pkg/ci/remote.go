package ci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/gha"
	"github.com/testship/testship/pkg/image"
	"github.com/testship/testship/pkg/pipeline"
	"github.com/testship/testship/pkg/runner"
)

// RunRemote is ci:remote: TESTSHIP_MODE remote (push, run, wait), detached
// (push, start, return) or attach (follow TESTSHIP_CI_RUN). The error is
// the run's outcome (its exit code) or why testship could not do its part.
func RunRemote(ctx context.Context, c config.CI) error {
	o, err := pipeline.Load()
	if err != nil {
		return err
	}
	cs, err := o.Kube.Clientset()
	if err != nil {
		return err
	}
	if c.Mode == config.ModeDetached { // one Detach, carried by o.Run
		o.Run.Detach = true
	}
	seq := Remote{
		Detach:         o.Run.Detach,
		CleanupTimeout: 3 * time.Second,
		Log:            o.Log,
		Cleanup: func(ctx context.Context, id, ns string) error {
			return Cleanup(ctx, o.Kube.REST, cs, id, ns, o.Env, o.Log)
		},
		LeftRunning: func(id, ns string) { LeftRunning(o.Log, id, ns) },
	}
	if o.Run.JUnit != "" {
		events := pipeline.EventsPath(o.Run.JUnit)
		// a report left by an earlier run must not be taken for this one's
		os.Remove(o.Run.JUnit)
		os.Remove(events)
		seq.Report = func() { Report(os.Stdout, o.Log, events, o.Image.TestPackage) }
	}
	switch c.Mode {
	case config.ModeAttach:
		seq.Run = func(ctx context.Context, started func(id, ns string)) error {
			job, err := runner.Find(ctx, cs, config.Get(config.EnvNamespace), c.Run)
			if err != nil {
				return err
			}
			_ = gha.SetOutput("run_id", c.Run)
			_ = gha.SetOutput("namespace", job.Namespace)
			started(c.Run, job.Namespace)
			return pipeline.Attach(ctx, cs, o.Run, job.Namespace, c.Run, o.Out, o.Log)
		}
		seq.Report = nil // attach keeps no record of the output
	default:
		seq.Push = func(ctx context.Context) error {
			if o.Run.JobImage != "" {
				return nil // the image to run is given: pipeline.Prepare builds none
			}
			st, err := image.Push(ctx, o.Image, o.Out)
			if err != nil {
				return err
			}
			o.Run.JobImage = st.Test.Pinned()
			_ = gha.AppendSummary(fmt.Sprintf("Test image: `%s`\n", o.Run.JobImage))
			return nil
		}
		seq.Run = func(ctx context.Context, started func(id, ns string)) error {
			ro := o
			ro.Started = started
			return pipeline.Remote(ctx, ro)
		}
	}
	return seq.Execute(ctx)
}

// Cleanup cancels run id in namespace ns (when it still exists) and, unless
// keep keeps a failed run's environment, destroys the environment (only a
// namespace testship created is deleted). Cleanup after a cancelled or
// failed job: the run counts as failed.
func Cleanup(ctx context.Context, rc *rest.Config, cs kubernetes.Interface, id, ns string, env config.Env, log io.Writer) error {
	if ns == "" {
		return fmt.Errorf("ci: no namespace to clean up: set %s (the job's namespace output)", config.EnvNamespace)
	}
	var errs []error
	if id != "" {
		_, err := cs.BatchV1().Jobs(ns).Get(ctx, runner.JobName(id), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			fmt.Fprintf(log, "ci: run %s: no Job left in namespace %s\n", id, ns)
		case err != nil:
			errs = append(errs, fmt.Errorf("find run %s in %s: %w", id, ns, err))
		default:
			if err := runner.Cancel(ctx, cs, ns, id, false); err != nil {
				errs = append(errs, err)
			} else {
				fmt.Fprintf(log, "ci: cancelled run %s in namespace %s\n", id, ns)
			}
		}
	}
	if err := environment.Finish(ctx, rc, env, ns, true, log); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(log, "ci: namespace %s: deletion requested, still under way (the workflow's ci:cleanup step waits for it)\n", ns)
		} else {
			errs = append(errs, fmt.Errorf("destroy the environment in %s: %w", ns, err))
		}
	}
	return errors.Join(errs...)
}

// LeftRunning says on log and in the job summary that run id goes on in
// namespace ns without this job, and how to follow it and remove it.
func LeftRunning(log io.Writer, id, ns string) {
	attach := fmt.Sprintf("ENV_NAMESPACE=%s go run magefile.go run:attach %s", ns, id)
	destroy := fmt.Sprintf("ENV_NAMESPACE=%s go run magefile.go env:destroy", ns)
	fmt.Fprintf(log, "ci: run %s goes on in namespace %s; re-attach: %s\n", id, ns, attach)
	_ = gha.AppendSummary(fmt.Sprintf("\nRun `%s` goes on in namespace `%s` without this job. Re-attach (with a kubeconfig for the cluster), or run the remote-test workflow with mode `attach` and run `%s`:\n\n    %s\n\nRemove its environment afterwards:\n\n    %s\n", id, ns, id, attach, destroy))
}

// Report reads a run's `go test -json` events and writes an error
// annotation for each failed test's t.Error/t.Fatal lines to out (the
// step's output; at most gha.MaxErrorAnnotations) and the table of
// passed/failed/skipped with the slowest tests to the job summary. pkgDir
// is the test package's directory, where the printed file names are.
func Report(out, log io.Writer, events, pkgDir string) {
	f, err := os.Open(events)
	if err != nil {
		fmt.Fprintf(log, "ci: no test report to annotate: %v\n", err)
		return
	}
	defer f.Close()
	rep, err := gha.ParseEvents(f)
	if err != nil {
		fmt.Fprintf(log, "ci: read %s: %v\n", events, err)
		return
	}
	if gha.Enabled() || config.Get(config.GitHubStepSummary) != "" {
		gha.WriteAnnotations(out, rep.Annotations(Locator(pkgDir)))
	}
	_ = gha.AppendSummary(rep.Markdown("Tests", 5))
}

// Locator maps a file name a test printed to its repository-relative path
// in pkgDir (relative to the working directory, the repository's root), or
// "" when no such file is there.
func Locator(pkgDir string) func(string) string {
	return func(file string) string {
		p := filepath.ToSlash(filepath.Clean(filepath.Join(pkgDir, filepath.Base(file))))
		if _, err := os.Stat(p); err != nil || strings.HasPrefix(p, "../") {
			return ""
		}
		return p
	}
}
