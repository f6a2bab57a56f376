package testlog

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

func TestSplitPattern(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", `[[]]`},
		{"TestA", `[[TestA]]`},
		{"TestA/sub", `[[TestA sub]]`},
		{"TestA/sub|TestB", `[[TestA sub] [TestB]]`},
		{"Test(A|B)/x", `[[Test(A|B) x]]`},
		{`Test[/|]x`, `[[Test[/|]x]]`},
		{`a\/b|c`, `[[a\/b] [c]]`},
		{"]TestA|B", `[[]TestA] [B]]`},
	} {
		if got := fmt.Sprint(SplitPattern(tc.in)); got != tc.want {
			t.Errorf("SplitPattern(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestRunRegexp(t *testing.T) {
	re := regexp.MustCompile(RunRegexp([]string{"TestA", "TestB", "ExampleC_d"}))
	for name, want := range map[string]bool{"TestA": true, "TestB": true, "ExampleC_d": true, "TestAB": false, "XTestA": false, "TestC": false} {
		if re.MatchString(name) != want {
			t.Errorf("%s matches %s: %v, want %v", re, name, !want, want)
		}
	}
	if got := RunRegexp([]string{"Test.x"}); got != `^(Test\.x)$` {
		t.Errorf("names are not quoted: %s", got)
	}
	if re := regexp.MustCompile(RunRegexp(nil)); re.MatchString("TestA") {
		t.Errorf("no names matches a test: %s", re)
	}
}

func TestShardRun(t *testing.T) {
	names := []string{"TestA", "TestB"}
	for _, tc := range []struct{ pattern, want string }{
		{"", `^(TestA|TestB)$`},
		{"Test", `^(TestA|TestB)$`},
		{"TestA|TestB", `^(TestA|TestB)$`},
		{"Test/fast", `^(TestA|TestB)$/fast`},
		{"TestA/fast|TestB", `^(TestA)$/fast|^(TestB)$`},
		{"TestA/x/y|TestC/z", `^(TestA)$/x/y`},
		{"TestC/z", `^$`},
		{"(/x", `^(TestA|TestB)$`},
	} {
		if got := ShardRun(names, tc.pattern); got != tc.want {
			t.Errorf("ShardRun(%v, %q) = %s, want %s", names, tc.pattern, got, tc.want)
		}
	}
}

func TestRunsTop(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"", "TestA", true},
		{".", "TestA", true},
		{"A", "TestA", true},
		{"^A", "TestA", false},
		{"TestA/sub", "TestA", true},
		{"TestA/sub", "TestB", false},
		{"TestA/sub|TestB", "TestB", true},
		{"Test(A|B)/x", "TestB", true},
		{"(", "TestA", false},
	} {
		if got := RunsTop(tc.pattern, tc.name); got != tc.want {
			t.Errorf("RunsTop(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestSummaryDurations(t *testing.T) {
	var s Summary
	for _, l := range []string{
		"=== RUN   TestA", "--- PASS: TestA (1.23s)",
		"=== RUN   TestB", "    --- FAIL: TestB/sub (0.50s)", "--- FAIL: TestB (0.51s)",
		"--- SKIP: TestC (0.00s)", "--- PASS: ExampleD (0.00s)",
		"    link_test.go:12: --- PASS: TestFake (9s) is not a result line",
		"--- PASS: TestE (", "FAIL",
	} {
		s.Observe([]byte(l + "\n"))
	}
	want := map[string]time.Duration{"TestA": 1230 * time.Millisecond, "TestB": 510 * time.Millisecond, "TestC": 0, "ExampleD": 0}
	if fmt.Sprint(s.Durations) != fmt.Sprint(want) {
		t.Errorf("Durations = %v, want %v", s.Durations, want)
	}
	// The counts are as before: a result line without a duration counts.
	if len(s.Passed) != 3 || len(s.Failed) != 2 || len(s.Skipped) != 1 {
		t.Errorf("%+v", s)
	}
}

func TestShardArgs(t *testing.T) {
	names := []string{"TestA", "TestB"}
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{"-test.run", "^(TestA|TestB)$"}},
		{[]string{"-test.v", "-test.run", "Test/fast", "-test.timeout", "30m"},
			[]string{"-test.run", "^(TestA|TestB)$/fast", "-test.v", "-test.timeout", "30m"}},
		{[]string{"-test.run=TestA/x", "--test.run", "TestB/y", "-test.v"}, // the last one counts
			[]string{"-test.run", "^(TestB)$/y", "-test.v"}},
		{[]string{"-test.v", "--", "-test.run", "X"}, []string{"-test.run", "^(TestA|TestB)$", "-test.v", "--", "-test.run", "X"}},
		{[]string{"-test.runx", "y"}, []string{"-test.run", "^(TestA|TestB)$", "-test.runx", "y"}},
	} {
		if got := ShardArgs(tc.in, names); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ShardArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
