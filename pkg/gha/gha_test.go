package gha

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSetOutputAndSummary(t *testing.T) {
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "out"), filepath.Join(dir, "sum")
	t.Setenv("GITHUB_OUTPUT", out)
	t.Setenv("GITHUB_STEP_SUMMARY", sum)

	if err := SetOutput("test_image", "r/t:1"); err != nil {
		t.Fatal(err)
	}
	if err := SetOutput("log", "a\nb"); err != nil {
		t.Fatal(err)
	}
	if err := SetOutput("bad=name", "x"); err == nil {
		t.Fatal("want an error for a name with '='")
	}
	if err := AppendSummary("# done"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	got := string(b)
	if !strings.HasPrefix(got, "test_image=r/t:1\nlog<<ghadelim_") || !strings.Contains(got, "\na\nb\nghadelim_") {
		t.Fatalf("GITHUB_OUTPUT = %q", got)
	}
	if b, _ := os.ReadFile(sum); string(b) != "# done\n" {
		t.Fatalf("summary = %q", b)
	}
}

func TestNoopOutsideActions(t *testing.T) {
	t.Setenv("GITHUB_OUTPUT", "")
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	if err := SetOutput("a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := AppendSummary("x"); err != nil {
		t.Fatal(err)
	}
}
