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

// Counts are a run's (or one pod's) test results.
type Counts struct {
	Passed, Failed, Skipped int
	// FailedTests names the failed tests (Summary.FailedTop); MoreFailed
	// says the pod's record had no room for all of them.
	FailedTests []string
	MoreFailed  bool
	// NoTests: the binary said no test matched.
	NoTests bool
}

// countsOf counts what a Summary saw.
func countsOf(s Summary) Counts {
	return Counts{Passed: len(s.Passed), Failed: len(s.Failed), Skipped: len(s.Skipped), FailedTests: s.FailedTop(), NoTests: s.NoTests}
}

// countsOfRecord takes the counts from an entrypoint's record.
func countsOfRecord(rec testlog.Record, s Summary) Counts {
	return Counts{Passed: rec.Pass, Failed: rec.Fail, Skipped: rec.Skip, FailedTests: rec.Failed, MoreFailed: rec.Truncated, NoTests: s.NoTests}
}

// PodResult is how one pod of a run ended (a multi-pod run has one per
// completion index; a single-pod run one, index 0).
type PodResult struct {
	Index int
	Pod   string // "" when no pod was seen for the index
	// ExitCode is the test's exit code (the record's when there is one),
	// or one of the Exit* codes when Reason is set; -1 when the pod had
	// not ended when the wait did (FailFast, Detach).
	ExitCode int
	Reason   string
	Message  string
	// Summary is what the received output says; Counts are the pod's
	// results: the record's when there is one (it does not depend on the
	// log reaching the runner), else Summary's.
	Summary Summary
	Counts  Counts
	// Record is the entrypoint's termination record (nil: none, e.g. a
	// base image without testship's entrypoint).
	Record *testlog.Record
	// Lines is the number of output lines received.
	Lines int64
	// Verified: the received output matches the record line for line and
	// byte for byte. LostLines is how many of the record's lines never
	// arrived, Mismatch what Verify said when they differ otherwise.
	Verified  bool
	LostLines int64
	Mismatch  string
}

// Result is how a run ended.
type Result struct {
	RunID     string
	Namespace string
	// ExitCode is the run's exit code: 0 when every pod passed, else the
	// highest test exit code, or one of the Exit* codes when Reason is
	// set (a fault of any pod: Message names the pod and index).
	ExitCode int
	Reason   string
	Message  string
	// Summary is what the received output says, all pods together.
	Summary  Summary
	Duration time.Duration
	// Lines is the number of output lines shown.
	Lines int64
	// Detached is true when the wait returned once the test had started.
	Detached bool
	// Count is the number of pods (completion indexes) of the run; Multi
	// is true for an Indexed Job of more than one pod (shards or copies).
	Count int
	Multi bool
	// Pods is each index's result, by index (empty when detached).
	Pods []PodResult
}

// Totals are the run's test results: the pods' Counts added up (from
// Summary when there are no pod results).
func (r *Result) Totals() Counts {
	if len(r.Pods) == 0 {
		return countsOf(r.Summary)
	}
	var t Counts
	for _, p := range r.Pods {
		t.Passed += p.Counts.Passed
		t.Failed += p.Counts.Failed
		t.Skipped += p.Counts.Skipped
		t.MoreFailed = t.MoreFailed || p.Counts.MoreFailed
		t.NoTests = t.NoTests || p.Counts.NoTests
		for _, name := range p.Counts.FailedTests {
			if r.Multi {
				name = fmt.Sprintf("%s [%d]", name, p.Index)
			}
			t.FailedTests = append(t.FailedTests, name)
		}
	}
	return t
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

// verdict words a run's (or pod's) end.
func verdictOf(code int, reason string) string {
	switch {
	case reason != "":
		return "ERROR (" + reason + ")"
	case code < 0:
		return "NOT ENDED"
	case code != 0:
		return "FAILED"
	}
	return "PASSED"
}

// Line is the one-line summary printed at the end of a run: totals, the
// failed tests' names (with their index in a multi-pod run) and, for a
// multi-pod run, each pod's totals.
func (r *Result) Line() string {
	var b strings.Builder
	t := r.Totals()
	fmt.Fprintf(&b, "testship: run %s %s: %d passed, %d failed, %d skipped", r.RunID, verdictOf(r.ExitCode, r.Reason),
		t.Passed, t.Failed, t.Skipped)
	if f := t.FailedTests; len(f) > 0 {
		shown := f
		if len(shown) > 10 {
			shown = shown[:10]
		}
		fmt.Fprintf(&b, " (failed: %s", strings.Join(shown, ", "))
		if len(f) > len(shown) {
			fmt.Fprintf(&b, " and %d more", len(f)-len(shown))
		} else if t.MoreFailed {
			b.WriteString(" and more")
		}
		b.WriteString(")")
	}
	if t.NoTests {
		b.WriteString(" (WARNING: no test matched: check TESTSHIP_RUN and the test package's build tags)")
	}
	fmt.Fprintf(&b, ", exit code %d, %s", r.ExitCode, r.Duration.Round(100*time.Millisecond))
	if r.Multi && len(r.Pods) > 0 {
		var parts []string
		for _, p := range r.Pods {
			parts = append(parts, fmt.Sprintf("[%d] %s %d/%d/%d", p.Index, podWord(p), p.Counts.Passed, p.Counts.Failed, p.Counts.Skipped))
		}
		fmt.Fprintf(&b, "; per pod (passed/failed/skipped): %s", strings.Join(parts, ", "))
	}
	if r.Reason != "" && r.Message != "" {
		fmt.Fprintf(&b, ": %s", r.Message)
	}
	return b.String()
}

// podWord is a pod's verdict in a few characters.
func podWord(p PodResult) string {
	switch {
	case p.Reason != "":
		return p.Reason
	case p.ExitCode < 0:
		return "not ended"
	case p.ExitCode != 0:
		return fmt.Sprintf("exit %d", p.ExitCode)
	}
	return "ok"
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
	t := r.Totals()
	fmt.Fprintf(&b, "### testship run `%s`: %s\n\n", r.RunID, verdict)
	fmt.Fprintf(&b, "| namespace | exit code | passed | failed | skipped | duration |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| `%s` | %d | %d | %d | %d | %s |\n", r.Namespace, r.ExitCode, t.Passed, t.Failed, t.Skipped, r.Duration.Round(100*time.Millisecond))
	if r.Multi && len(r.Pods) > 0 {
		b.WriteString("\n| index | pod | result | passed | failed | skipped | output |\n|---|---|---|---|---|---|---|\n")
		for _, p := range r.Pods {
			fmt.Fprintf(&b, "| %d | `%s` | %s | %d | %d | %d | %s |\n", p.Index, p.Pod, podWord(p), p.Counts.Passed, p.Counts.Failed, p.Counts.Skipped, p.outputWord())
		}
	}
	if f := t.FailedTests; len(f) > 0 {
		b.WriteString("\nFailed tests:\n")
		for _, name := range f {
			fmt.Fprintf(&b, "- `%s`\n", name)
		}
		if t.MoreFailed {
			b.WriteString("- and more (see the output)\n")
		}
	}
	if r.Message != "" {
		fmt.Fprintf(&b, "\n%s\n", r.Message)
	}
	return b.String()
}

// outputWord says whether a pod's output was verified.
func (p PodResult) outputWord() string {
	switch {
	case p.Record == nil:
		return fmt.Sprintf("%d lines", p.Lines)
	case p.Verified:
		return fmt.Sprintf("%d lines, verified", p.Lines)
	case p.LostLines > 0:
		return fmt.Sprintf("%d of %d lines lost", p.LostLines, p.Record.Lines)
	}
	return "not verified: " + p.Mismatch
}
