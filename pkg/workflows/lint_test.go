package workflows

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// The remote-test workflow keeps the contract README and the other targets
// rely on: its inputs, the variables they become, and the image reference
// travelling from the push step to the run steps through $GITHUB_OUTPUT.
func TestRemoteTestWorkflowContract(t *testing.T) {
	w, err := Load(filepath.Join(repoRoot, Dir, "remote-test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	job := w.Jobs["remote-test"]
	if job == nil {
		t.Fatal("no job remote-test")
	}
	env := map[string]string{}
	for _, v := range job.Env.Vars {
		env[v.Name.Value] = v.Value.Value
	}
	for name, want := range map[string]string{
		"TESTSHIP_RUN":      "inputs.run",
		"ENV_NAMESPACE":     "inputs.namespace",
		"KEEP_ENVIRONMENTS": "inputs.keep",
		"TESTSHIP_TIMEOUT":  "inputs.timeout",
		"TESTSHIP_MODE":     "inputs.mode",
		"TESTSHIP_REGISTRY": "vars.TESTSHIP_REGISTRY",
	} {
		if !strings.Contains(env[name], want) {
			t.Errorf("job env %s = %q, want it from %s", name, env[name], want)
		}
	}
	var runs []string
	pushed := 0
	for _, s := range job.Steps {
		if s.Env != nil {
			if v, ok := s.Env.Vars["env_job_image"]; ok {
				if v.Value.Value != "${{ steps.push.outputs.test_image }}" {
					t.Errorf("step %q: ENV_JOB_IMAGE = %q, want the push step's test_image output", stepName(s, 0), v.Value.Value)
				}
				pushed++
			}
		}
		if str(s.ID) != "" {
			runs = append(runs, str(s.ID))
		}
	}
	if got := strings.Join(runs, ","); got != "push,remote,detached" {
		t.Errorf("step ids = %s, want push,remote,detached", got)
	}
	if pushed != 2 {
		t.Errorf("%d steps get ENV_JOB_IMAGE, want 2 (remote and detached)", pushed)
	}
}
