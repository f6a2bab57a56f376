package testlog

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Summary counts the tests a run reported, from its `--- PASS/FAIL/SKIP`
// lines (subtests included, by full name).
type Summary struct {
	Passed, Failed, Skipped []string
	// Final is the binary's closing PASS or FAIL line, when seen.
	Final string
	// NoTests is set when the binary said no test matched (-test.run, or
	// a test package built without the build tags its tests need).
	NoTests bool
	// Durations is how long each top-level test (no '/' in its name) took,
	// as its result line says; nil until one is seen.
	Durations map[string]time.Duration
}

// resultLine is a test's result line; the duration, "(1.23s)", is optional
// to the match.
var resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \((?:([0-9]+\.[0-9]+)s\))?`)

// Observe updates the summary with one output line.
func (s *Summary) Observe(line []byte) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 4096 {
		return // a result line is short; do not run the regexp on huge lines
	}
	switch string(line) {
	case "PASS", "FAIL":
		s.Final = string(line)
		return
	case "testing: warning: no tests to run":
		s.NoTests = true
		return
	}
	if !bytes.Contains(line, []byte("--- ")) {
		return // most lines: skip the regexp (a third of the entrypoint's cost per byte)
	}
	m := resultLine.FindSubmatch(line)
	if m == nil {
		return
	}
	result, name := string(m[1]), string(m[2])
	if m[3] != nil && !strings.Contains(name, "/") {
		if secs, err := strconv.ParseFloat(string(m[3]), 64); err == nil {
			if s.Durations == nil {
				s.Durations = map[string]time.Duration{}
			}
			s.Durations[name] = time.Duration(secs * float64(time.Second)).Round(time.Millisecond)
		}
	}
	switch result {
	case "PASS":
		s.Passed = append(s.Passed, name)
	case "FAIL":
		s.Failed = append(s.Failed, name)
	case "SKIP":
		s.Skipped = append(s.Skipped, name)
	}
}

// FailedTop lists the failed tests, leaving out a parent whose subtest is
// listed (TestA/sub failing makes TestA fail too; naming TestA/sub says more).
func (s *Summary) FailedTop() []string {
	var out []string
	for _, name := range s.Failed {
		hasChild := false
		for _, other := range s.Failed {
			if strings.HasPrefix(other, name+"/") {
				hasChild = true
				break
			}
		}
		if !hasChild {
			out = append(out, name)
		}
	}
	return out
}

// Add merges another pod's summary into s (a run of several pods reports
// one summary): the names and durations of both, FAIL over PASS.
func (s *Summary) Add(o Summary) {
	s.Passed = append(s.Passed, o.Passed...)
	s.Failed = append(s.Failed, o.Failed...)
	s.Skipped = append(s.Skipped, o.Skipped...)
	s.NoTests = s.NoTests || o.NoTests
	if s.Final == "" || o.Final == "FAIL" {
		s.Final = o.Final
	}
	for name, d := range o.Durations {
		if s.Durations == nil {
			s.Durations = map[string]time.Duration{}
		}
		s.Durations[name] = d
	}
}
