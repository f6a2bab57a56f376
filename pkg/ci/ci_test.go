package ci

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/testship/testship/pkg/runner"
)

// recorder stubs steps and records the order they ran in.
type recorder struct{ calls []string }

func (r *recorder) step(name string, err error) Step {
	return Step{Name: name, Run: func(ctx context.Context) error {
		r.calls = append(r.calls, name)
		return err
	}}
}

func TestE2EOrder(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name      string
		failAt    string
		keepStack bool
		after     bool
		want      []string
		wantErr   string
	}{
		{name: "all pass", want: []string{"up", "push", "tests", "down"}},
		{name: "test:all's extra test before down", after: true, want: []string{"up", "push", "tests", "downstatusup", "down"}},
		{name: "tests fail: logs, then down", failAt: "tests", want: []string{"up", "push", "tests", "logs", "down"}, wantErr: "tests: boom"},
		{name: "tests fail: no extra test", failAt: "tests", after: true, want: []string{"up", "push", "tests", "logs", "down"}, wantErr: "tests: boom"},
		{name: "push fails: no tests", failAt: "push", want: []string{"up", "push", "logs", "down"}, wantErr: "push: boom"},
		{name: "up fails: still down", failAt: "up", want: []string{"up", "logs", "down"}, wantErr: "up: boom"},
		{name: "extra test fails", failAt: "downstatusup", after: true, want: []string{"up", "push", "tests", "downstatusup", "logs", "down"}, wantErr: "downstatusup: boom"},
		{name: "down fails: its error", failAt: "down", want: []string{"up", "push", "tests", "down"}, wantErr: "down: boom"},
		{name: "keep the stack", keepStack: true, want: []string{"up", "push", "tests"}},
		{name: "keep the stack, failed", keepStack: true, failAt: "tests", want: []string{"up", "push", "tests", "logs"}, wantErr: "tests: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{}
			errOf := func(n string) error {
				if n == c.failAt {
					return boom
				}
				return nil
			}
			s := E2E{
				Up: r.step("up", errOf("up")), Push: r.step("push", errOf("push")), Tests: r.step("tests", errOf("tests")),
				Logs: r.step("logs", nil), Down: r.step("down", errOf("down")), KeepStack: c.keepStack, Log: &bytes.Buffer{},
			}
			if c.after {
				s.After = []Step{r.step("downstatusup", errOf("downstatusup"))}
			}
			err := s.Execute(context.Background())
			if !reflect.DeepEqual(r.calls, c.want) {
				t.Errorf("steps = %v, want %v", r.calls, c.want)
			}
			if got := errString(err); got != c.wantErr {
				t.Errorf("error = %q, want %q", got, c.wantErr)
			}
		})
	}
}

func TestE2EDownRunsAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var downCtxErr error = errors.New("down not called")
	s := E2E{
		Up:    Step{Name: "up", Run: func(context.Context) error { return nil }},
		Tests: Step{Name: "tests", Run: func(context.Context) error { cancel(); return context.Canceled }},
		Down:  Step{Name: "down", Run: func(ctx context.Context) error { downCtxErr = ctx.Err(); return nil }},
	}
	if err := s.Execute(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want the tests' context.Canceled", err)
	}
	if downCtxErr != nil {
		t.Errorf("down ran with a done context (%v) or not at all: it must run to its end after an interrupt", downCtxErr)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// remoteStub is a Remote whose steps record what ran, with what.
func remoteStub(calls *[]string, runErr error, launch bool, interrupt context.CancelFunc) Remote {
	return Remote{
		Push: func(ctx context.Context) error { *calls = append(*calls, "push"); return nil },
		Run: func(ctx context.Context, started func(id, ns string)) error {
			*calls = append(*calls, "run")
			if launch {
				started("r1", "ts-ci")
				*calls = append(*calls, "started")
			}
			if interrupt != nil {
				interrupt()
			}
			return runErr
		},
		Report: func() { *calls = append(*calls, "report") },
		Cleanup: func(ctx context.Context, id, ns string) error {
			if ctx.Err() != nil {
				*calls = append(*calls, "cleanup with a done context")
			}
			*calls = append(*calls, "cleanup "+id+" "+ns)
			return nil
		},
		LeftRunning: func(id, ns string) { *calls = append(*calls, "left "+id+" "+ns) },
		Log:         &bytes.Buffer{},
	}
}

func TestRemoteOrder(t *testing.T) {
	failed := &runner.ExitError{Code: 1}
	cancelled := &runner.ExitError{Code: runner.ExitCancelled, Reason: runner.ReasonCancelled}
	waitTimeout := &runner.ExitError{Code: runner.ExitWaitTimeout, Reason: runner.ReasonWaitTimeout}
	for _, c := range []struct {
		name      string
		detach    bool
		runErr    error
		launch    bool
		interrupt bool
		want      []string
	}{
		{name: "passed", launch: true, want: []string{"push", "run", "started", "report"}},
		{name: "failed: reported, the pipeline keeps or destroys", runErr: failed, launch: true, want: []string{"push", "run", "started", "report"}},
		{name: "interrupted: cleanup after the report", runErr: cancelled, launch: true, interrupt: true, want: []string{"push", "run", "started", "report", "cleanup r1 ts-ci"}},
		{name: "interrupted before launch: nothing to clean", runErr: context.Canceled, interrupt: true, want: []string{"push", "run", "report"}},
		{name: "wait timed out: left running, named", runErr: waitTimeout, launch: true, want: []string{"push", "run", "started", "report", "left r1 ts-ci"}},
		{name: "detached: no report, left running", detach: true, launch: true, want: []string{"push", "run", "started", "left r1 ts-ci"}},
		{name: "detached, failed to start", detach: true, runErr: failed, launch: true, want: []string{"push", "run", "started"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls []string
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var interrupt context.CancelFunc
			if c.interrupt {
				interrupt = cancel
			}
			s := remoteStub(&calls, c.runErr, c.launch, interrupt)
			s.Detach = c.detach
			err := s.Execute(ctx)
			if !reflect.DeepEqual(calls, c.want) {
				t.Errorf("steps = %q, want %q", calls, c.want)
			}
			if err != c.runErr {
				t.Errorf("error = %v, want the run's %v (its exit code is the step's)", err, c.runErr)
			}
		})
	}
}

func TestRemotePushFailsNothingRuns(t *testing.T) {
	var calls []string
	s := remoteStub(&calls, nil, true, nil)
	boom := errors.New("registry down")
	s.Push = func(context.Context) error { calls = append(calls, "push"); return boom }
	if err := s.Execute(context.Background()); err != boom {
		t.Errorf("error = %v, want %v", err, boom)
	}
	if want := []string{"push"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("steps = %q, want %q", calls, want)
	}
}
