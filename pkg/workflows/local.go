package workflows

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rhysd/actionlint"
)

// Local runs the run: steps of one job of a workflow on this machine, in
// order, with the environment GitHub's runner would give them: the
// workflow's, job's and step's env with expressions evaluated, and
// $GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_PATH and $GITHUB_STEP_SUMMARY pointing
// at files whose contents reach later steps (steps.<id>.outputs, env, PATH)
// and the Result. Steps that use an action are skipped with a note: they
// prepare a GitHub-hosted machine (checkout, Go, AWS credentials, artifact
// upload), which the local machine either has already or does not need.
//
// It is a test harness, not a runner: it evaluates the subset of the
// expression language workflows here use and fails on anything else, and it
// does not mask secrets in the steps' output.
type Local struct {
	Workflow string // path of the workflow file
	Job      string // job ID
	Dir      string // working directory of the steps (GITHUB_WORKSPACE): the repository root

	Event   string            // github.event_name; default workflow_dispatch
	Inputs  map[string]string // workflow_dispatch inputs; inputs not given take the workflow's defaults
	Vars    map[string]string // the vars context (repository variables)
	Secrets map[string]string // the secrets context
	GitHub  map[string]string // overrides of github context fields (run_id, ref, ...)

	Env []string  // the machine's environment; nil means os.Environ()
	Out io.Writer // the steps' stdout and stderr, and notes; nil means os.Stdout

	// RunnerTemp is $RUNNER_TEMP (runner.temp), kept after the run so its
	// files (reports, kubeconfig) can be checked; empty means a temporary
	// directory removed when Run returns.
	RunnerTemp string
}

// StepResult is what one step did.
type StepResult struct {
	ID, Name string
	Run      string            // the script, expressions substituted; empty for actions
	Outcome  string            // success, failure or skipped
	Note     string            // why a step was skipped
	Outputs  map[string]string // what it wrote to $GITHUB_OUTPUT
	Summary  string            // what it wrote to $GITHUB_STEP_SUMMARY
}

// Result is what a local run of a job did.
type Result struct {
	Steps   []*StepResult
	Summary string            // every step's summary, in order: the job summary
	Env     map[string]string // variables the steps set through $GITHUB_ENV
}

// Step returns the result of the step with the given id, or nil.
func (r *Result) Step(id string) *StepResult {
	for _, s := range r.Steps {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Load parses a workflow file.
func Load(path string) (*actionlint.Workflow, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	w, errs := actionlint.Parse(src)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = fmt.Sprintf("%s:%d:%d: %s", path, e.Line, e.Column, e.Message)
		}
		return nil, fmt.Errorf("workflows: %s", strings.Join(msgs, "; "))
	}
	return w, nil
}

// Run runs the job's steps. After a failed step, only steps whose if: asks
// for it (always(), failure()) run, as on GitHub. The error names the first
// step that failed; the Result is returned either way.
func (l *Local) Run(ctx context.Context) (*Result, error) {
	w, err := Load(l.Workflow)
	if err != nil {
		return nil, err
	}
	job, ok := w.Jobs[strings.ToLower(l.Job)]
	if !ok {
		return nil, fmt.Errorf("workflows: %s has no job %q", l.Workflow, l.Job)
	}
	out := l.Out
	if out == nil {
		out = os.Stdout
	}
	dir, err := filepath.Abs(l.Dir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "testship-local-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	runnerTemp := l.RunnerTemp
	if runnerTemp == "" {
		runnerTemp = filepath.Join(tmp, "runner-temp")
		if err := os.Mkdir(runnerTemp, 0o755); err != nil {
			return nil, err
		}
	} else if runnerTemp, err = filepath.Abs(runnerTemp); err != nil {
		return nil, err
	}

	event := l.Event
	if event == "" {
		event = "workflow_dispatch"
	}
	inputs, err := l.inputs(w, event)
	if err != nil {
		return nil, err
	}
	gh := map[string]string{
		"event_name":  event,
		"run_id":      strconv.FormatInt(time.Now().Unix(), 10),
		"run_number":  "1",
		"run_attempt": "1",
		"workflow":    workflowName(w, l.Workflow),
		"job":         l.Job,
		"ref":         "refs/heads/local",
		"ref_name":    "local",
		"sha":         "0000000000000000000000000000000000000000",
		"repository":  "local/" + filepath.Base(dir),
		"actor":       "local",
		"workspace":   dir,
		"server_url":  "https://github.com",
	}
	if sha := gitOutput(dir, "rev-parse", "HEAD"); sha != "" {
		gh["sha"] = sha
	}
	if branch := gitOutput(dir, "rev-parse", "--abbrev-ref", "HEAD"); branch != "" && branch != "HEAD" {
		gh["ref"], gh["ref_name"] = "refs/heads/"+branch, branch
	}
	for k, v := range l.GitHub {
		gh[k] = v
	}
	steps := object{}
	ev := &evaluator{contexts: object{
		"github":  stringsObject(gh),
		"inputs":  stringsObject(inputs),
		"vars":    stringsObject(l.Vars),
		"secrets": stringsObject(l.Secrets),
		"runner":  stringsObject(map[string]string{"os": "Linux", "arch": runnerArch(), "temp": runnerTemp, "name": "local"}),
		"steps":   steps,
		"env":     object{},
		"job":     object{"status": "success"},
	}}

	// Environment layers, lowest precedence first: the machine, what steps
	// wrote to $GITHUB_ENV, the workflow's env, the job's env, the step's env.
	machine := l.Env
	if machine == nil {
		machine = os.Environ()
	}
	ghEnv := map[string]string{}
	var extraPath []string
	wfEnv, err := evalEnv(ev, w.Env, nil)
	if err != nil {
		return nil, fmt.Errorf("workflows: workflow env: %w", err)
	}
	jobEnv, err := evalEnv(ev, job.Env, wfEnv)
	if err != nil {
		return nil, fmt.Errorf("workflows: job %s env: %w", l.Job, err)
	}
	ev.contexts["env"] = stringsObject(merge(ghEnv, wfEnv, jobEnv))
	if job.If != nil {
		run, err := ev.condition(job.If.Value)
		if err != nil {
			return nil, fmt.Errorf("workflows: job %s if: %w", l.Job, err)
		}
		if !run {
			fmt.Fprintf(out, "job %s skipped: if: %s is false\n", l.Job, job.If.Value)
			return &Result{Env: ghEnv}, nil
		}
	}

	res := &Result{Env: ghEnv}
	var firstErr error
	for i, s := range job.Steps {
		sr := &StepResult{ID: str(s.ID), Name: stepName(s, i)}
		res.Steps = append(res.Steps, sr)
		ev.contexts["env"] = stringsObject(merge(ghEnv, wfEnv, jobEnv))
		stepEnv, err := evalEnv(ev, s.Env, merge(ghEnv, wfEnv, jobEnv))
		if err != nil {
			return res, fmt.Errorf("workflows: step %q env: %w", sr.Name, err)
		}
		env := merge(ghEnv, wfEnv, jobEnv, stepEnv)
		ev.contexts["env"] = stringsObject(env)

		run, err := ev.condition(str(s.If))
		if err != nil {
			return res, fmt.Errorf("workflows: step %q if: %w", sr.Name, err)
		}
		if !run {
			sr.Outcome, sr.Note = "skipped", "if: "+str(s.If)+" is false"
			fmt.Fprintf(out, "── %s: skipped (%s)\n", sr.Name, sr.Note)
			l.record(steps, sr)
			continue
		}
		exe, ok := s.Exec.(*actionlint.ExecRun)
		if !ok {
			uses := ""
			if a, ok := s.Exec.(*actionlint.ExecAction); ok && a.Uses != nil {
				uses = a.Uses.Value
			}
			sr.Outcome, sr.Note = "skipped", "uses: "+uses+" is an action; actions do not run locally"
			fmt.Fprintf(out, "── %s: skipped (%s)\n", sr.Name, sr.Note)
			l.record(steps, sr)
			continue
		}

		script, err := ev.interpolate(exe.Run.Value)
		if err != nil {
			return res, fmt.Errorf("workflows: step %q run: %w", sr.Name, err)
		}
		sr.Run = script
		stepDir := filepath.Join(tmp, fmt.Sprintf("step-%d", i))
		if err := os.Mkdir(stepDir, 0o755); err != nil {
			return res, err
		}
		files := map[string]string{}
		for _, name := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"} {
			files[name] = filepath.Join(stepDir, strings.ToLower(name))
			if err := os.WriteFile(files[name], nil, 0o644); err != nil {
				return res, err
			}
		}
		vars := map[string]string{
			"CI": "true", "GITHUB_ACTIONS": "true",
			"GITHUB_WORKSPACE": dir, "GITHUB_EVENT_NAME": event, "GITHUB_JOB": l.Job,
			"GITHUB_RUN_ID": gh["run_id"], "GITHUB_RUN_NUMBER": gh["run_number"], "GITHUB_RUN_ATTEMPT": gh["run_attempt"],
			"GITHUB_WORKFLOW": gh["workflow"], "GITHUB_REF": gh["ref"], "GITHUB_REF_NAME": gh["ref_name"],
			"GITHUB_SHA": gh["sha"], "GITHUB_REPOSITORY": gh["repository"], "GITHUB_ACTOR": gh["actor"],
			"GITHUB_SERVER_URL": gh["server_url"], "GITHUB_ACTION": sr.ID,
			"RUNNER_OS": "Linux", "RUNNER_ARCH": runnerArch(), "RUNNER_TEMP": runnerTemp,
		}
		for k, v := range files {
			vars[k] = v
		}
		environ := buildEnviron(machine, extraPath, env, vars)

		shell := str(exe.Shell)
		if shell == "" && job.Defaults != nil && job.Defaults.Run != nil {
			shell = str(job.Defaults.Run.Shell)
		}
		if shell == "" && w.Defaults != nil && w.Defaults.Run != nil {
			shell = str(w.Defaults.Run.Shell)
		}
		workDir := dir
		if wd := str(exe.WorkingDirectory); wd != "" {
			if workDir, err = ev.interpolate(wd); err != nil {
				return res, err
			}
			if !filepath.IsAbs(workDir) {
				workDir = filepath.Join(dir, workDir)
			}
		}
		fmt.Fprintf(out, "── %s\n", sr.Name)
		runErr := runScript(ctx, stepCtxTimeout(s), shell, script, stepDir, workDir, environ, out)

		if sr.Outputs, err = parseFileCommands(files["GITHUB_OUTPUT"]); err != nil {
			return res, fmt.Errorf("workflows: step %q: $GITHUB_OUTPUT: %w", sr.Name, err)
		}
		set, err := parseFileCommands(files["GITHUB_ENV"])
		if err != nil {
			return res, fmt.Errorf("workflows: step %q: $GITHUB_ENV: %w", sr.Name, err)
		}
		for k, v := range set {
			ghEnv[k] = v
		}
		if b, err := os.ReadFile(files["GITHUB_PATH"]); err == nil {
			for _, p := range strings.Split(string(b), "\n") {
				if p = strings.TrimSpace(p); p != "" {
					extraPath = append([]string{p}, extraPath...)
				}
			}
		}
		if b, err := os.ReadFile(files["GITHUB_STEP_SUMMARY"]); err == nil {
			sr.Summary = string(b)
			res.Summary += sr.Summary
		}
		sr.Outcome = "success"
		if runErr != nil {
			sr.Outcome = "failure"
			if cont := s.ContinueOnError; cont == nil || !cont.Value {
				ev.failed = true
				ev.contexts["job"] = object{"status": "failure"}
				if firstErr == nil {
					firstErr = fmt.Errorf("workflows: step %q failed: %w", sr.Name, runErr)
				}
			}
			fmt.Fprintf(out, "── %s: failed: %v\n", sr.Name, runErr)
		}
		l.record(steps, sr)
	}
	return res, firstErr
}

// inputs returns the inputs context: for workflow_dispatch the given inputs
// over the workflow's defaults, checked against the declared inputs.
func (l *Local) inputs(w *actionlint.Workflow, event string) (map[string]string, error) {
	var decl map[string]*actionlint.DispatchInput
	for _, e := range w.On {
		if d, ok := e.(*actionlint.WorkflowDispatchEvent); ok {
			decl = d.Inputs
		}
	}
	out := map[string]string{}
	if event != "workflow_dispatch" {
		if len(l.Inputs) > 0 {
			return nil, fmt.Errorf("workflows: inputs are only given to workflow_dispatch runs, not %s", event)
		}
		return out, nil
	}
	if decl == nil {
		return nil, fmt.Errorf("workflows: %s has no workflow_dispatch trigger", l.Workflow)
	}
	for k, in := range decl {
		out[k] = str(in.Default)
	}
	for k, v := range l.Inputs {
		in, ok := decl[strings.ToLower(k)]
		if !ok {
			return nil, fmt.Errorf("workflows: %s declares no input %q", l.Workflow, k)
		}
		if len(in.Options) > 0 {
			valid := false
			var opts []string
			for _, o := range in.Options {
				opts = append(opts, o.Value)
				valid = valid || o.Value == v
			}
			if !valid {
				return nil, fmt.Errorf("workflows: input %s=%q: want one of %s", k, v, strings.Join(opts, ", "))
			}
		}
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

func (l *Local) record(steps object, sr *StepResult) {
	if sr.ID == "" {
		return
	}
	outputs := object{}
	for k, v := range sr.Outputs {
		outputs[k] = v
	}
	steps[sr.ID] = object{"outputs": outputs, "outcome": sr.Outcome, "conclusion": sr.Outcome}
}

// evalEnv evaluates an env: block with the env context set to ctxEnv.
func evalEnv(ev *evaluator, e *actionlint.Env, ctxEnv map[string]string) (map[string]string, error) {
	out := map[string]string{}
	if e == nil {
		return out, nil
	}
	if e.Expression != nil {
		return nil, fmt.Errorf("env: %s: an expression as the whole env is not supported by the local runner", e.Expression.Value)
	}
	saved := ev.contexts["env"]
	ev.contexts["env"] = stringsObject(ctxEnv)
	defer func() { ev.contexts["env"] = saved }()
	for _, v := range e.Vars {
		val, err := ev.interpolate(str(v.Value))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.Name.Value, err)
		}
		out[v.Name.Value] = val
	}
	return out, nil
}

func merge(layers ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range layers {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// buildEnviron layers env over the machine's environment, then the runner's
// own variables, and prepends $GITHUB_PATH entries to PATH.
func buildEnviron(machine, extraPath []string, env, runner map[string]string) []string {
	m := map[string]string{}
	for _, kv := range machine {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	for k, v := range env {
		m[k] = v
	}
	for k, v := range runner {
		m[k] = v
	}
	if len(extraPath) > 0 {
		m["PATH"] = strings.Join(append(append([]string{}, extraPath...), m["PATH"]), string(os.PathListSeparator))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

func stepCtxTimeout(s *actionlint.Step) time.Duration {
	if s.TimeoutMinutes == nil {
		return 0
	}
	return time.Duration(s.TimeoutMinutes.Value * float64(time.Minute))
}

// runScript runs a step's script the way GitHub's runner does on Linux: with
// no shell: given, `bash -e {0}`; shell: bash, `bash --noprofile --norc -eo
// pipefail {0}`; shell: sh, `sh -e {0}`. The script runs in a process group
// of its own; on cancellation the group gets SIGINT, then SIGKILL.
func runScript(ctx context.Context, timeout time.Duration, shell, script, tmp, dir string, environ []string, out io.Writer) error {
	var argv []string
	switch shell {
	case "":
		argv = []string{"bash", "-e", "{0}"}
	case "bash":
		argv = []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"}
	case "sh":
		argv = []string{"sh", "-e", "{0}"}
	default:
		if !strings.Contains(shell, "{0}") {
			return fmt.Errorf("shell %q is not supported by the local runner", shell)
		}
		argv = strings.Fields(shell)
	}
	path := filepath.Join(tmp, "script.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		return err
	}
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "{0}", path)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, environ, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers of the step
	}
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// parseFileCommands reads a $GITHUB_OUTPUT or $GITHUB_ENV file: name=value
// lines and name<<DELIMITER ... DELIMITER blocks.
func parseFileCommands(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		eq := strings.Index(text, "=")
		heredoc := strings.Index(text, "<<")
		if heredoc >= 0 && (eq < 0 || heredoc < eq) {
			name, delim := text[:heredoc], text[heredoc+2:]
			if name == "" || delim == "" {
				return nil, fmt.Errorf("line %d: %q: want name<<DELIMITER", line, text)
			}
			var body []string
			closed := false
			for sc.Scan() {
				line++
				l := strings.TrimSuffix(sc.Text(), "\r")
				if l == delim {
					closed = true
					break
				}
				body = append(body, l)
			}
			if !closed {
				return nil, fmt.Errorf("line %d: %s: delimiter %q never closes", line, name, delim)
			}
			out[name] = strings.Join(body, "\n")
			continue
		}
		if eq <= 0 {
			return nil, fmt.Errorf("line %d: %q: want name=value or name<<DELIMITER", line, text)
		}
		out[text[:eq]] = text[eq+1:]
	}
	return out, sc.Err()
}

func str(s *actionlint.String) string {
	if s == nil {
		return ""
	}
	return s.Value
}

func stepName(s *actionlint.Step, i int) string {
	if s.Name != nil {
		return s.Name.Value
	}
	if s.ID != nil {
		return s.ID.Value
	}
	switch e := s.Exec.(type) {
	case *actionlint.ExecRun:
		first, _, _ := strings.Cut(strings.TrimSpace(str(e.Run)), "\n")
		return "Run " + first
	case *actionlint.ExecAction:
		return "Run " + str(e.Uses)
	}
	return fmt.Sprintf("step %d", i+1)
}

func workflowName(w *actionlint.Workflow, path string) string {
	if w.Name != nil {
		return w.Name.Value
	}
	return filepath.Base(path)
}

// gitOutput runs git in dir and returns its trimmed output, "" on failure.
func gitOutput(dir string, args ...string) string {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func runnerArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "X64"
	case "arm64":
		return "ARM64"
	case "386":
		return "X86"
	case "arm":
		return "ARM"
	}
	return strings.ToUpper(runtime.GOARCH)
}
