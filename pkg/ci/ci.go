// Package ci holds the sequences behind the CI targets, so that the order
// of the steps lives in Go (and is unit-tested with the steps stubbed)
// rather than in workflow YAML:
//
//   - E2E (ci:e2e, and test:all around it): stack up, images pushed,
//     end-to-end tests, the stack's logs collected when a step failed, the
//     stack down whatever happened;
//   - Remote (ci:remote): images pushed, then the run waited for (or
//     detached, or attached to), its failures annotated and summarised;
//     interrupted (a cancelled or timed-out job), the run is cancelled and
//     the environment destroyed per KEEP_ENVIRONMENTS.
package ci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/testship/testship/pkg/runner"
)

// Step is one named step of a sequence.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

func (s Step) run(ctx context.Context, log io.Writer) error {
	if s.Run == nil {
		return nil
	}
	fmt.Fprintf(log, "ci: %s\n", s.Name)
	if err := s.Run(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	return nil
}

// E2E is the end-to-end sequence on the local stack.
type E2E struct {
	// Up brings the stack up, Push pushes the images the tests deploy,
	// Tests runs the end-to-end tests.
	Up, Push, Tests Step
	// After are more steps on the stack once Tests passed (test:all: the
	// stack's own down/status/up test).
	After []Step
	// Logs collects the stack's logs when a step failed.
	Logs Step
	// Down takes the stack down, always (once Up was tried), unless
	// KeepStack.
	Down      Step
	KeepStack bool
	Log       io.Writer
}

// Execute runs the sequence and returns the first step's error (Down's only
// when nothing else failed). Logs and Down run even when ctx is done.
func (s E2E) Execute(ctx context.Context) (err error) {
	log := s.Log
	if log == nil {
		log = io.Discard
	}
	defer func() {
		after := context.WithoutCancel(ctx)
		if err != nil {
			if lerr := s.Logs.run(after, log); lerr != nil {
				fmt.Fprintf(log, "ci: %v\n", lerr)
			}
		}
		if s.KeepStack {
			fmt.Fprintf(log, "ci: leaving the stack running (TESTSHIP_KEEP_STACK)\n")
			return
		}
		if derr := s.Down.run(after, log); derr != nil {
			if err == nil {
				err = derr
			} else {
				fmt.Fprintf(log, "ci: %v\n", derr)
			}
		}
	}()
	for _, st := range append([]Step{s.Up, s.Push, s.Tests}, s.After...) {
		if err := st.run(ctx, log); err != nil {
			return err
		}
	}
	return nil
}

// Remote is the sequence of ci:remote.
type Remote struct {
	// Push pushes the images (nil: nothing to push, e.g. attach mode).
	Push func(ctx context.Context) error
	// Run launches and follows the run (to its end, until it has
	// started when Detach, or until the local wait timeout), calling
	// started with the run's id and namespace as soon as it exists.
	Run func(ctx context.Context, started func(id, namespace string)) error
	// Report annotates the failed tests and writes the job summary from
	// the run's reports (waited runs only).
	Report func()
	// Cleanup cancels the run and destroys its environment per
	// KEEP_ENVIRONMENTS; called when ctx ended (SIGINT: a cancelled or
	// timed-out job) once the run existed.
	Cleanup func(ctx context.Context, id, namespace string) error
	// CleanupTimeout bounds Cleanup after an interrupt (Mage gives a
	// target 5 s after SIGINT); the workflow's ci:cleanup step finishes
	// what is left.
	CleanupTimeout time.Duration
	// LeftRunning says where a run that goes on without this process is
	// (detached, or the local wait timed out) and how to re-attach.
	LeftRunning func(id, namespace string)
	Detach      bool
	Log         io.Writer
}

// Execute runs the sequence and returns Run's error (the run's exit code).
func (s Remote) Execute(ctx context.Context) error {
	log := s.Log
	if log == nil {
		log = io.Discard
	}
	if s.Push != nil {
		if err := s.Push(ctx); err != nil {
			return err
		}
	}
	var id, ns string
	err := s.Run(ctx, func(i, n string) { id, ns = i, n })
	if !s.Detach && s.Report != nil {
		s.Report()
	}
	switch {
	case ctx.Err() != nil:
		if id == "" || s.Cleanup == nil {
			break
		}
		timeout := s.CleanupTimeout
		if timeout <= 0 {
			timeout = 3 * time.Second
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if cerr := s.Cleanup(cctx, id, ns); cerr != nil {
			fmt.Fprintf(log, "ci: cleanup of run %s in namespace %s: %v\n", id, ns, cerr)
		}
	case id != "" && ((s.Detach && err == nil) || waitTimedOut(err)):
		if s.LeftRunning != nil {
			s.LeftRunning(id, ns)
		}
	}
	return err
}

func waitTimedOut(err error) bool {
	var ee *runner.ExitError
	return errors.As(err, &ee) && ee.Code == runner.ExitWaitTimeout
}
