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

func TestSecretsRedacted(t *testing.T) {
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "out"), filepath.Join(dir, "sum")
	t.Setenv("GITHUB_OUTPUT", out)
	t.Setenv("GITHUB_STEP_SUMMARY", sum)
	t.Setenv("E2E_TEST_TOKEN", "hunter2-token")
	t.Setenv("DB_PASS", "s3cr3t-pw")
	t.Setenv("TESTSHIP_SECRET_VARS", "DB_PASS")
	if err := SetOutput("msg", "token hunter2-token, pw s3cr3t-pw"); err != nil {
		t.Fatal(err)
	}
	if err := AppendSummary("failed with s3cr3t-pw and https://bob:pa55word@example.com/x"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{out, sum} {
		b, _ := os.ReadFile(f)
		for _, secret := range []string{"hunter2-token", "s3cr3t-pw", "pa55word"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds secret %q: %q", f, secret, b)
			}
		}
		if !strings.Contains(string(b), "<redacted>") {
			t.Errorf("%s: no <redacted>: %q", f, b)
		}
	}
}
