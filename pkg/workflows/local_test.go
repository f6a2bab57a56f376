package workflows

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const localWorkflow = `name: demo
on:
  workflow_dispatch:
    inputs:
      who:
        type: string
        default: world
      mode:
        type: choice
        options: [a, b]
        default: a
env:
  LEVEL: workflow
  WF_ONLY: wf
jobs:
  demo:
    runs-on: ubuntu-latest
    env:
      LEVEL: job
      WHO: ${{ inputs.who }}
      MODE: ${{ inputs.mode || 'a' }}
      REGION: ${{ vars.REGION || 'none' }}
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
      - name: produce
        id: produce
        run: |
          echo "greeting=hello $WHO" >> "$GITHUB_OUTPUT"
          printf 'multi<<EOF\nline 1\nline 2\nEOF\n' >> "$GITHUB_OUTPUT"
          echo "FROM_ENV_FILE=set by produce" >> "$GITHUB_ENV"
          mkdir -p "$RUNNER_TEMP/bin"
          printf '#!/bin/sh\necho tool ran\n' > "$RUNNER_TEMP/bin/demo-tool"
          chmod +x "$RUNNER_TEMP/bin/demo-tool"
          echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
          echo "## produced" >> "$GITHUB_STEP_SUMMARY"
      - name: consume
        id: consume
        env:
          LEVEL: step
          GREETING: ${{ steps.produce.outputs.greeting }}
        run: |
          {
            echo "level=$LEVEL wf=$WF_ONLY who=$WHO mode=$MODE region=$REGION"
            echo "greeting=$GREETING"
            echo "from_env_file=$FROM_ENV_FILE"
            echo "tool=$(demo-tool)"
            echo "actions=$GITHUB_ACTIONS"
            echo "inline=${{ steps.produce.outputs.multi }}" | tr '\n' '|'
            echo
          } >> "$GITHUB_OUTPUT"
          echo "consumed" >> "$GITHUB_STEP_SUMMARY"
      - name: only in mode b
        id: onlyb
        if: env.MODE == 'b'
        run: echo "ran=yes" >> "$GITHUB_OUTPUT"
      - name: fail
        id: fail
        run: exit 3
      - name: after failure, skipped
        id: skipped
        run: echo "ran=yes" >> "$GITHUB_OUTPUT"
      - name: after failure, always
        id: always
        if: ${{ always() }}
        run: echo "ran=yes status=${{ job.status }}" >> "$GITHUB_OUTPUT"
`

func TestLocalRunsStepsInOrder(t *testing.T) {
	dir := t.TempDir()
	wf := filepath.Join(dir, "demo.yml")
	if err := os.WriteFile(wf, []byte(localWorkflow), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	l := &Local{
		Workflow: wf, Job: "demo", Dir: dir,
		Inputs: map[string]string{"who": "testship"},
		Vars:   map[string]string{"REGION": "eu-west-1"},
		Env:    []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LEVEL=machine"},
		Out:    &log,
	}
	res, err := l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `step "fail" failed`) {
		t.Fatalf("err = %v, want the fail step's failure\n%s", err, log.String())
	}
	outcomes := []string{}
	for _, s := range res.Steps {
		outcomes = append(outcomes, s.Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "skipped,success,success,skipped,failure,skipped,success" {
		t.Errorf("outcomes = %s\n%s", got, log.String())
	}
	if n := res.Steps[0].Note; !strings.Contains(n, "actions/checkout@") || !strings.Contains(log.String(), "actions do not run locally") {
		t.Errorf("the action step was not skipped with a note: %q", n)
	}
	p := res.Step("produce").Outputs
	if p["greeting"] != "hello testship" || p["multi"] != "line 1\nline 2" {
		t.Errorf("produce outputs = %q", p)
	}
	c := res.Step("consume").Outputs
	for k, want := range map[string]string{
		"level":         "step wf=wf who=testship mode=a region=eu-west-1",
		"greeting":      "hello testship",
		"from_env_file": "set by produce",
		"tool":          "tool ran",
		"actions":       "true",
		"inline":        "line 1|line 2|",
	} {
		if c[k] != want {
			t.Errorf("consume output %s = %q, want %q", k, c[k], want)
		}
	}
	if res.Step("onlyb").Note == "" || res.Step("skipped").Outputs != nil {
		t.Errorf("steps that should not run ran: %+v %+v", res.Step("onlyb"), res.Step("skipped"))
	}
	if got := res.Step("always").Outputs["ran"]; got != "yes status=failure" {
		t.Errorf("always() step output = %q", got)
	}
	if res.Summary != "## produced\nconsumed\n" {
		t.Errorf("summary = %q", res.Summary)
	}
	if res.Env["FROM_ENV_FILE"] != "set by produce" {
		t.Errorf("Result.Env = %q", res.Env)
	}
}

func TestLocalRejectsBadInputs(t *testing.T) {
	dir := t.TempDir()
	wf := filepath.Join(dir, "demo.yml")
	if err := os.WriteFile(wf, []byte(localWorkflow), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range []map[string]string{{"nope": "x"}, {"mode": "c"}} {
		l := &Local{Workflow: wf, Job: "demo", Dir: dir, Inputs: in, Out: &bytes.Buffer{}}
		if _, err := l.Run(context.Background()); err == nil {
			t.Errorf("inputs %v: want an error", in)
		}
	}
	l := &Local{Workflow: wf, Job: "nojob", Dir: dir, Out: &bytes.Buffer{}}
	if _, err := l.Run(context.Background()); err == nil || !strings.Contains(err.Error(), `no job "nojob"`) {
		t.Errorf("missing job: err = %v", err)
	}
}

func TestExpressions(t *testing.T) {
	ev := &evaluator{contexts: object{
		"inputs": object{"run": "", "mode": "Detached"},
		"vars":   object{"REGION": "eu-west-1"},
		"steps":  object{"push": object{"outputs": object{"test_image": "r/t:1"}}},
		"env":    object{"N": "3"},
	}}
	for expr, want := range map[string]string{
		"inputs.run || 'all'":              "all",
		"inputs.mode == 'detached'":        "true", // strings compare ignoring case
		"inputs.mode != 'remote'":          "true",
		"vars.region":                      "eu-west-1", // contexts ignore case
		"vars.MISSING":                     "",
		"steps.push.outputs.test_image":    "r/t:1",
		"steps['push'].outputs.test_image": "r/t:1",
		"env.N == 3 && 'yes' || 'no'":      "yes",
		"env.N > 4":                        "false",
		"!cancelled() && success()":        "true",
		"null":                             "",
	} {
		v, err := ev.eval(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if got := toString(v); got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
	for _, bad := range []string{"matrix.os", "format('{0}', 1)", "inputs.run ==", "hashFiles('go.sum')"} {
		if _, err := ev.eval(bad); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
	s, err := ev.interpolate("image=${{ steps.push.outputs.test_image }} run=${{ inputs.run || '.' }}")
	if err != nil || s != "image=r/t:1 run=." {
		t.Errorf("interpolate = %q, %v", s, err)
	}
	for cond, want := range map[string]bool{"": true, "${{ false }}": false, "always()": true, "failure()": false} {
		if got, err := ev.condition(cond); err != nil || got != want {
			t.Errorf("condition %q = %v, %v; want %v", cond, got, err, want)
		}
	}
	ev.failed = true
	for cond, want := range map[string]bool{"": false, "env.N == 3": false, "always()": true, "failure()": true, "!cancelled()": true} {
		if got, err := ev.condition(cond); err != nil || got != want {
			t.Errorf("after a failure, condition %q = %v, %v; want %v", cond, got, err, want)
		}
	}
}
