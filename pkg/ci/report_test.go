package ci

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocator(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join("tests", "link"), 0o755)
	os.WriteFile(filepath.Join("tests", "link", "link_test.go"), nil, 0o644)
	loc := Locator("./tests/link")
	for in, want := range map[string]string{
		"link_test.go":                   "tests/link/link_test.go",
		"/build/tests/link/link_test.go": "tests/link/link_test.go",
		"other_test.go":                  "",
	} {
		if got := loc(in); got != want {
			t.Errorf("Locator(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Locator("../elsewhere")("x.go"); got != "" {
		t.Errorf("a file outside the repository: %q, want none", got)
	}
}

func TestReportWritesAnnotationsAndSummary(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "junit.json")
	os.WriteFile(events, []byte(`{"Action":"run","Test":"TestA"}
{"Action":"output","Test":"TestA","Output":"    a_test.go:7: bad\n"}
{"Action":"output","Test":"TestA","Output":"--- FAIL: TestA (0.20s)\n"}
{"Action":"fail","Test":"TestA"}
{"Action":"pass","Test":"TestB","Elapsed":1.5}
`), 0o644)
	summary := filepath.Join(dir, "summary")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	var out, log bytes.Buffer
	Report(&out, &log, events, dir)
	if got := out.String(); got != "::error title=TestA::bad\n" {
		t.Errorf("annotations = %q (a_test.go is not in the package dir: no file)", got)
	}
	s, _ := os.ReadFile(summary)
	for _, want := range []string{"| 1 | 1 | 0 |", "| `TestB` | pass | 1.5s |", "| `TestA` | fail | 200ms |"} {
		if !strings.Contains(string(s), want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	out.Reset()
	Report(&out, &log, filepath.Join(dir, "missing.json"), dir)
	if out.Len() != 0 || !strings.Contains(log.String(), "no test report") {
		t.Errorf("a missing report: out %q, log %q", out.String(), log.String())
	}
}
