package runner

import (
	"fmt"
	"strings"
	"time"

	"github.com/testship/testship/pkg/exitcode"
	"github.com/testship/testship/pkg/testlog"
)

// Exit codes, as runner names them; the values live in pkg/exitcode.
const (
	ExitImagePull       = exitcode.ImagePull
	ExitUnschedulable   = exitcode.Unschedulable
	ExitContainerConfig = exitcode.ContainerConfig
	ExitOOMKilled       = exitcode.OOMKilled
	ExitPodLost         = exitcode.PodLost
	ExitDeadline        = exitcode.Deadline
	ExitWaitTimeout     = exitcode.WaitTimeout
	ExitCancelled       = exitcode.Cancelled
	ExitInfra           = exitcode.Infra
)

// Reasons name why a run ended without its test's own exit code.
const (
	ReasonImagePull       = "ImagePull"
	ReasonUnschedulable   = "Unschedulable"
	ReasonContainerConfig = "ContainerConfig"
	ReasonOOMKilled       = "OOMKilled"
	ReasonPodDeleted      = "PodDeleted"
	ReasonEvicted         = "Evicted"
	ReasonDeadline        = "DeadlineExceeded"
	ReasonWaitTimeout     = "WaitTimeout"
	ReasonCancelled       = "Cancelled"
)

// ExitError is a run's non-zero outcome as an error: Mage exits with
// ExitStatus() (it implements mg.ExitStatus).
type ExitError struct {
	Code    int
	Reason  string // "" when the test itself exited with Code
	Message string
}

func (e *ExitError) Error() string { return e.Message }

// ExitStatus is the process exit code.
func (e *ExitError) ExitStatus() int { return e.Code }

// Summary counts the tests a run reported (see testlog.Summary).
type Summary = testlog.Summary

// Result is how a run ended.
type Result struct {
	RunID     string
	Namespace string
	// ExitCode is the test's own exit code, or one of the Exit* codes when
	// Reason is set.
	ExitCode int
	Reason   string
	Message  string
	Summary  Summary
	Duration time.Duration
	// Lines is the number of output lines shown.
	Lines int64
	// Detached is true when the wait returned once the test had started.
	Detached bool
}

// Err returns nil for a passed run and an *ExitError otherwise.
func (r *Result) Err() error {
	if r.Detached || (r.ExitCode == 0 && r.Reason == "") {
		return nil
	}
	msg := r.Message
	if msg == "" {
		msg = r.Line()
	}
	return &ExitError{Code: r.ExitCode, Reason: r.Reason, Message: msg}
}

// Line is the one-line summary printed at the end of a run.
func (r *Result) Line() string {
	var b strings.Builder
	verdict := "PASSED"
	switch {
	case r.Reason != "":
		verdict = "ERROR (" + r.Reason + ")"
	case r.ExitCode != 0:
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "testship: run %s %s: %d passed, %d failed, %d skipped", r.RunID, verdict,
		len(r.Summary.Passed), len(r.Summary.Failed), len(r.Summary.Skipped))
	if f := r.Summary.FailedTop(); len(f) > 0 {
		shown := f
		if len(shown) > 10 {
			shown = shown[:10]
		}
		fmt.Fprintf(&b, " (failed: %s", strings.Join(shown, ", "))
		if len(f) > len(shown) {
			fmt.Fprintf(&b, " and %d more", len(f)-len(shown))
		}
		b.WriteString(")")
	}
	if r.Summary.NoTests {
		b.WriteString(" (WARNING: no test matched: check TESTSHIP_RUN and the test package's build tags)")
	}
	fmt.Fprintf(&b, ", exit code %d, %s", r.ExitCode, r.Duration.Round(100*time.Millisecond))
	if r.Reason != "" && r.Message != "" {
		fmt.Fprintf(&b, ": %s", r.Message)
	}
	return b.String()
}

// Markdown is the run's result as a GitHub job summary.
func (r *Result) Markdown() string {
	var b strings.Builder
	verdict := ":white_check_mark: passed"
	switch {
	case r.Reason != "":
		verdict = ":x: " + r.Reason
	case r.ExitCode != 0:
		verdict = ":x: failed"
	}
	fmt.Fprintf(&b, "### testship run `%s`: %s\n\n", r.RunID, verdict)
	fmt.Fprintf(&b, "| namespace | exit code | passed | failed | skipped | duration |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| `%s` | %d | %d | %d | %d | %s |\n", r.Namespace, r.ExitCode, len(r.Summary.Passed), len(r.Summary.Failed), len(r.Summary.Skipped), r.Duration.Round(100*time.Millisecond))
	if f := r.Summary.FailedTop(); len(f) > 0 {
		b.WriteString("\nFailed tests:\n")
		for _, name := range f {
			fmt.Fprintf(&b, "- `%s`\n", name)
		}
	}
	if r.Message != "" {
		fmt.Fprintf(&b, "\n%s\n", r.Message)
	}
	return b.String()
}
