package gha

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// TestResult is one test's (or subtest's) outcome in a `go test -json`
// event stream.
type TestResult struct {
	Name    string
	Action  string // pass, fail or skip
	Elapsed time.Duration
	// Output is what the test printed, its own lines only (a subtest's are
	// its own).
	Output []string
}

// TestReport is what a `go test -json` event stream (test2json) says
// about the tests, in the order they finished.
type TestReport struct {
	Tests []*TestResult
}

type event struct {
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

// ParseEvents reads `go test -json` events (one JSON object a line, as
// `go tool test2json` writes them). Lines that are not JSON are skipped.
func ParseEvents(r io.Reader) (*TestReport, error) {
	rep := &TestReport{}
	output := map[string][]string{}
	// test2json leaves Elapsed out unless it timed the test itself; the
	// binary's own "--- PASS: TestX (1.25s)" lines have it.
	elapsed := map[string]time.Duration{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "output":
			line := strings.TrimRight(ev.Output, "\r\n")
			if m := resultLine.FindStringSubmatch(line); m != nil {
				if d, err := time.ParseDuration(m[2] + "s"); err == nil {
					elapsed[m[1]] = d
				}
				continue
			}
			output[ev.Test] = append(output[ev.Test], line)
		case "pass", "fail", "skip":
			d := time.Duration(ev.Elapsed * float64(time.Second))
			if d == 0 {
				d = elapsed[ev.Test]
			}
			rep.Tests = append(rep.Tests, &TestResult{Name: ev.Test, Action: ev.Action, Elapsed: d, Output: output[ev.Test]})
			delete(output, ev.Test)
		}
	}
	return rep, sc.Err()
}

// Count returns how many tests (subtests included) passed, failed and
// were skipped.
func (r *TestReport) Count() (passed, failed, skipped int) {
	for _, t := range r.Tests {
		switch t.Action {
		case "pass":
			passed++
		case "fail":
			failed++
		case "skip":
			skipped++
		}
	}
	return
}

// Failed lists the failed tests, leaving out a parent whose subtest failed.
func (r *TestReport) Failed() []*TestResult {
	var out []*TestResult
	for _, t := range r.Tests {
		if t.Action != "fail" {
			continue
		}
		parent := false
		for _, o := range r.Tests {
			if o.Action == "fail" && strings.HasPrefix(o.Name, t.Name+"/") {
				parent = true
				break
			}
		}
		if !parent {
			out = append(out, t)
		}
	}
	return out
}

// Slowest returns the n slowest tests, slowest first.
func (r *TestReport) Slowest(n int) []*TestResult {
	s := append([]*TestResult(nil), r.Tests...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Elapsed > s[j].Elapsed })
	if len(s) > n {
		s = s[:n]
	}
	return s
}

var resultLine = regexp.MustCompile(`^\s*--- (?:PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

// logLine is what t.Error, t.Fatal and t.Log print: "    file_test.go:42: message".
var logLine = regexp.MustCompile(`^(\s+)([\w.\-/]+\.go):(\d+): (.*)$`)

// Annotations turns each failed test's t.Error/t.Fatal lines into error
// annotations (continuation lines, indented deeper, join the message).
// locate maps the file name the test printed (a base name, or a path
// with -trimpath) to a repository-relative path, or "" when unknown. A
// failed test with no such line (a panic, a timeout) gets one annotation
// naming the test with the end of its output.
func (r *TestReport) Annotations(locate func(file string) string) []Annotation {
	var anns []Annotation
	for _, t := range r.Failed() {
		n := len(anns)
		var cur *Annotation
		indent := 0
		for _, line := range t.Output {
			if m := logLine.FindStringSubmatch(line); m != nil {
				var ln int
				fmt.Sscan(m[3], &ln)
				file := m[2]
				if locate != nil {
					file = locate(file)
				}
				if file == "" {
					ln = 0
				}
				anns = append(anns, Annotation{File: file, Line: ln, Title: t.Name, Message: m[4]})
				cur, indent = &anns[len(anns)-1], len(m[1])
				continue
			}
			trimmed := strings.TrimLeft(line, " \t")
			if cur != nil && len(line)-len(trimmed) > indent && trimmed != "" {
				cur.Message += "\n" + trimmed
				continue
			}
			cur = nil
		}
		if len(anns) == n {
			anns = append(anns, Annotation{Title: t.Name, Message: t.Name + " failed:\n" + tail(t.Output, 20)})
		}
	}
	return anns
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Markdown is the report as a job summary: a table of passed, failed and
// skipped tests, the failed tests, and the slowest tests.
func (r *TestReport) Markdown(title string, slowest int) string {
	var b strings.Builder
	p, f, s := r.Count()
	fmt.Fprintf(&b, "### %s\n\n| passed | failed | skipped |\n|---:|---:|---:|\n| %d | %d | %d |\n\n", title, p, f, s)
	if failed := r.Failed(); len(failed) > 0 {
		b.WriteString("**Failed:**\n\n")
		for _, t := range failed {
			fmt.Fprintf(&b, "- `%s` (%s)\n", t.Name, t.Elapsed.Round(time.Millisecond))
		}
		b.WriteString("\n")
	}
	if sl := r.Slowest(slowest); len(sl) > 0 {
		fmt.Fprintf(&b, "Slowest tests:\n\n| test | result | time |\n|---|---|---:|\n")
		for _, t := range sl {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", t.Name, t.Action, t.Elapsed.Round(time.Millisecond))
		}
		b.WriteString("\n")
	}
	return b.String()
}
