package workflows

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// repoRoot is the repository root, two levels above this package.
const repoRoot = "../.."

// The project's own workflows pass actionlint (with shellcheck when it is
// installed) and the policy rules. .ci/run runs this through go test.
func TestRepositoryWorkflowsPassLint(t *testing.T) {
	var out bytes.Buffer
	errs, err := Lint(repoRoot, &out, LintOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(errs) != 0 {
		t.Fatalf("%d findings:\n%s", len(errs), out.String())
	}
	files, _ := Files(repoRoot)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if got := strings.Join(names, ","); got != "ci.yml,remote-test.yml" {
		t.Fatalf("workflow files = %s, want ci.yml,remote-test.yml", got)
	}
}

const badWorkflow = `name: bad
on: push
permissions:
  contents: write
jobs:
  tag:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
  nocomment:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1
  oidc:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c # v6.2.3
        with:
          role-to-assume: arn:aws:iam::123456789012:role/x
          aws-region: eu-west-1
      - uses: docker://alpine:3
`

func TestPolicyFindsProblems(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{".git", Dir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, Dir, "bad.yml"), []byte(badWorkflow), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	errs, err := Lint(root, &out, LintOptions{Shellcheck: "-"})
	if err == nil {
		t.Fatal("want an error for a workflow breaking the policy")
	}
	var policy []string
	for _, e := range errs {
		if e.Kind == policyRuleName {
			policy = append(policy, e.Message)
		}
	}
	all := strings.Join(policy, "\n")
	for _, want := range []string{
		"top-level permissions must not grant write access",
		`job "tag" has no concurrency group`,
		`job "tag" must declare its permissions`,
		`pin "actions/checkout@v4" to a full 40-character commit SHA`,
		`say which release "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1" is`,
		`job "nocomment" grants id-token: write but does not use aws-actions/configure-aws-credentials`,
		`job "oidc" uses aws-actions/configure-aws-credentials and needs id-token: write`,
		`pin "docker://alpine:3" to an image digest`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no finding %q among:\n%s", want, all)
		}
	}
	if len(policy) != 10 { // two jobs without concurrency besides "tag"
		t.Errorf("%d policy findings, want 10:\n%s", len(policy), all)
	}
	if !strings.Contains(out.String(), "bad.yml:") {
		t.Errorf("findings were not printed with the file name:\n%s", out.String())
	}
}

// Every run: step of the project's workflows calls a Mage target that
// exists in magefiles/ (or compiles them), through the compiled binary.
func TestRunStepsCallKnownTargets(t *testing.T) {
	known, err := knownTargets(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ci:e2e", "ci:remote", "ci:cleanup", "ci:vet", "ci:kubeconfig", "test:all", "test:unit", "lint:workflows", "image:push", "run:remote", "bench"} {
		if !known[want] {
			t.Errorf("Targets(magefiles) lacks %s", want)
		}
	}
	files, err := Files(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, errs := actionlint.Parse(src)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs[0])
		}
		for id, j := range w.Jobs {
			for i, s := range j.Steps {
				run, ok := s.Exec.(*actionlint.ExecRun)
				if !ok {
					continue
				}
				if msg := CheckRun(run.Run.Value, known); msg != "" {
					t.Errorf("%s job %s step %d: %s", filepath.Base(f), id, i+1, msg)
				}
				if m := execLine.FindStringSubmatch(strings.TrimSpace(run.Run.Value)); m != nil {
					for _, t := range strings.Fields(m[2]) {
						calls[filepath.Base(f)+" "+t] = true
					}
				}
			}
		}
	}
	// the sequences the workflows are built on
	for _, want := range []string{"ci.yml ci:e2e", "ci.yml test:unit", "remote-test.yml ci:remote", "remote-test.yml ci:cleanup"} {
		if !calls[want] {
			t.Errorf("no step calls %s", want)
		}
	}
}

func TestCheckRun(t *testing.T) {
	known := map[string]bool{"ci:e2e": true, "test:unit": true, "bench": true}
	for script, want := range map[string]string{
		`exec "$TESTSHIP_MAGE" ci:e2e`:                                  "",
		`exec "$TESTSHIP_MAGE" CI:E2e test:unit`:                        "",
		"# a comment\nexec \"$TESTSHIP_MAGE\" bench\n":                  "",
		`exec sudo -E env "PATH=$PATH" "$TESTSHIP_MAGE" ci:e2e`:         "",
		`go run magefile.go -compile "$TESTSHIP_MAGE"`:                  "",
		`exec "$TESTSHIP_MAGE" ci:nope`:                                 `calls "ci:nope", which is not a Mage target`,
		`go run magefile.go test:unit`:                                  "is not a Mage target call",
		`"$TESTSHIP_MAGE" ci:e2e`:                                       "is not a Mage target call",
		"exec \"$TESTSHIP_MAGE\" ci:e2e\nexec \"$TESTSHIP_MAGE\" bench": "not 2 command lines",
		"":                                  "not 0 command lines",
		`echo hi >> "$GITHUB_STEP_SUMMARY"`: "is not a Mage target call",
	} {
		got := CheckRun(script, known)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("CheckRun(%q) = %q, want %q", script, got, want)
		}
	}
}

func TestTargets(t *testing.T) {
	dir := t.TempDir()
	src := `//go:build mage

package main

import "github.com/magefile/mage/mg"

type CI mg.Namespace

func (CI) E2e() error     { return nil }
func (CI) helper() error  { return nil }
func Bench() error        { return nil }
func private() error      { return nil }

type other struct{}

func (other) Up() error { return nil }
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Targets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "bench,ci:e2e" {
		t.Errorf("Targets = %v, want [bench ci:e2e]", got)
	}
}

// A SHA pin needs its release as the line's own comment; the release
// somewhere else on the line, or a comment that is not a version, is not
// enough.
func TestVersionNote(t *testing.T) {
	const sha = "3d3c42e5aac5ba805825da76410c181273ba90b1"
	for line, want := range map[string]bool{
		"uses: actions/checkout@" + sha + " # v7.0.1":         true,
		"uses: actions/checkout@" + sha + " #v7.0.1":          true,
		"uses: actions/checkout@" + sha + " # latest":         false,
		"uses: actions/checkout@" + sha + " # v7":             false,
		"uses: actions/checkout@" + sha + " # v7.0.1 was bad": false,
		"uses: actions/checkout@" + sha:                       false,
	} {
		if got := versionNoteRe.MatchString(line); got != want {
			t.Errorf("%q: version note found = %v, want %v", line, got, want)
		}
	}
}
