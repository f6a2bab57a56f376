// Package workflows checks testship's GitHub Actions workflows.
//
// Lint runs actionlint (as a library) plus testship's own policy: actions
// pinned to full commit SHAs with a "# vX.Y.Z" comment, permissions granted
// per job (id-token: write only where AWS OIDC is used), a concurrency
// group, and every run: step a call of a known Mage target (the sequences
// live in Go, in pkg/ci, not in YAML).
package workflows

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/rhysd/actionlint"
)

// Dir is where a repository keeps its workflows.
const Dir = ".github/workflows"

// Files lists the workflow files (*.yml, *.yaml) of the repository at root.
func Files(root string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, Dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("workflows: no *.yml or *.yaml in %s", filepath.Join(root, Dir))
	}
	sort.Strings(files)
	return files, nil
}

// LintOptions tune Lint.
type LintOptions struct {
	// Shellcheck is the shellcheck executable for checking run: scripts.
	// Empty means "shellcheck" when it is on PATH; "-" disables it.
	Shellcheck string
}

// Lint checks the workflow files of the repository at root with actionlint
// and testship's policy rules, printing each finding to out. It returns the
// findings and, when there are any, an error counting them.
func Lint(root string, out io.Writer, opts LintOptions) ([]*actionlint.Error, error) {
	files, err := Files(root)
	if err != nil {
		return nil, err
	}
	shellcheck := opts.Shellcheck
	switch shellcheck {
	case "":
		if p, err := exec.LookPath("shellcheck"); err == nil {
			shellcheck = p
		}
	case "-":
		shellcheck = ""
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	project, err := actionlint.NewProject(abs) // reads .github/actionlint.yaml when present
	if err != nil {
		return nil, fmt.Errorf("workflows: %w", err)
	}
	known, err := knownTargets(root)
	if err != nil {
		return nil, err
	}
	var all []*actionlint.Error
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		l, err := actionlint.NewLinter(out, &actionlint.LinterOptions{
			Color:      actionlint.ColorOptionKindNever,
			Shellcheck: shellcheck,
			WorkingDir: root,
			OnRulesCreated: func(rules []actionlint.Rule) []actionlint.Rule {
				return append(rules, newPolicyRule(src, known))
			},
		})
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(root, f)
		errs, err := l.Lint(rel, src, project)
		if err != nil {
			return nil, fmt.Errorf("workflows: lint %s: %w", rel, err)
		}
		all = append(all, errs...)
	}
	if shellcheck == "" {
		fmt.Fprintln(out, "note: shellcheck not found; run: scripts were not checked with it")
	}
	if len(all) > 0 {
		return all, fmt.Errorf("workflows: %d problem(s) in %s", len(all), filepath.Join(root, Dir))
	}
	fmt.Fprintf(out, "%d workflow file(s) in %s pass actionlint and testship's policy\n", len(files), Dir)
	return nil, nil
}

const policyRuleName = "testship-policy"

// policyRule enforces what actionlint leaves to taste: pinned actions,
// per-job least-privilege permissions and concurrency groups.
type policyRule struct {
	actionlint.RuleBase
	lines []string
	// targets are the known Mage targets (nil: run: steps not checked).
	targets map[string]bool
}

func newPolicyRule(src []byte, targets map[string]bool) *policyRule {
	return &policyRule{
		RuleBase: actionlint.NewRuleBase(policyRuleName, "actions pinned to commit SHAs, permissions per job, concurrency groups, run: steps call Mage targets"),
		lines:    strings.Split(string(src), "\n"),
		targets:  targets,
	}
}

var (
	shaRe = regexp.MustCompile(`^[0-9a-f]{40}$`)
	// the release right after the SHA: uses: owner/repo@<sha> # v1.2.3
	versionNoteRe = regexp.MustCompile(`@[0-9a-f]{40}\s+#\s*v\d+\.\d+\.\d+\s*$`)
)

const oidcAction = "aws-actions/configure-aws-credentials"

func (r *policyRule) VisitWorkflowPre(w *actionlint.Workflow) error {
	if p := w.Permissions; p == nil {
		r.Error(&actionlint.Pos{Line: 1, Col: 1}, `set top-level "permissions: {}" (or read-only) and grant what each job needs in the job`)
	} else if grantsWrite(p) {
		r.Error(p.Pos, "top-level permissions must not grant write access (id-token included): grant it in the job that needs it")
	}
	if w.Concurrency == nil {
		for _, j := range w.Jobs {
			if j.Concurrency == nil {
				r.Errorf(j.Pos, "job %q has no concurrency group and neither has the workflow: runs of the same tests on the same branch could collide", j.ID.Value)
			}
		}
	}
	return nil
}

func grantsWrite(p *actionlint.Permissions) bool {
	if p.All != nil {
		return p.All.Value == "write-all"
	}
	for _, s := range p.Scopes {
		if s.Value != nil && s.Value.Value == "write" {
			return true
		}
	}
	return false
}

func (r *policyRule) VisitJobPre(j *actionlint.Job) error {
	if j.WorkflowCall != nil {
		return nil // a reusable workflow's jobs declare their own
	}
	usesOIDC := false
	for _, s := range j.Steps {
		if a, ok := s.Exec.(*actionlint.ExecAction); ok && a.Uses != nil && actionName(a.Uses.Value) == oidcAction {
			usesOIDC = true
		}
	}
	if j.Permissions == nil {
		r.Errorf(j.Pos, "job %q must declare its permissions (e.g. contents: read)", j.ID.Value)
		return nil
	}
	if j.Permissions.All != nil {
		r.Errorf(j.Permissions.Pos, "job %q: grant permissions scope by scope, not %q", j.ID.Value, j.Permissions.All.Value)
		return nil
	}
	idToken := ""
	if s, ok := j.Permissions.Scopes["id-token"]; ok && s.Value != nil {
		idToken = s.Value.Value
	}
	switch {
	case idToken == "write" && !usesOIDC:
		r.Errorf(j.Permissions.Pos, "job %q grants id-token: write but does not use %s: remove it", j.ID.Value, oidcAction)
	case idToken != "write" && usesOIDC:
		r.Errorf(j.Permissions.Pos, "job %q uses %s and needs id-token: write", j.ID.Value, oidcAction)
	}
	return nil
}

func (r *policyRule) VisitStep(s *actionlint.Step) error {
	if run, ok := s.Exec.(*actionlint.ExecRun); ok && r.targets != nil && run.Run != nil {
		if msg := CheckRun(run.Run.Value, r.targets); msg != "" {
			r.Error(run.Run.Pos, msg)
		}
		return nil
	}
	a, ok := s.Exec.(*actionlint.ExecAction)
	if !ok || a.Uses == nil || a.Uses.ContainsExpression() {
		return nil
	}
	uses := a.Uses.Value
	switch {
	case strings.HasPrefix(uses, "./"):
		return nil // in this repository, pinned by the checkout itself
	case strings.HasPrefix(uses, "docker://"):
		if !strings.Contains(uses, "@sha256:") {
			r.Errorf(a.Uses.Pos, "pin %q to an image digest (@sha256:...)", uses)
		}
		return nil
	}
	_, ref, _ := strings.Cut(uses, "@")
	if !shaRe.MatchString(ref) {
		r.Errorf(a.Uses.Pos, "pin %q to a full 40-character commit SHA, with the release in a comment: %s@<sha> # vX.Y.Z", uses, actionName(uses))
		return nil
	}
	if line := a.Uses.Pos.Line - 1; line >= 0 && line < len(r.lines) && !versionNoteRe.MatchString(r.lines[line]) {
		r.Errorf(a.Uses.Pos, "say which release %q is: end the line with its version, e.g. %s # v1.2.3 (Dependabot keeps it current)", uses, uses)
	}
	return nil
}

// actionName is owner/repo of a uses: value (without path and ref).
func actionName(uses string) string {
	name, _, _ := strings.Cut(uses, "@")
	parts := strings.SplitN(name, "/", 3)
	if len(parts) < 2 {
		return name
	}
	return strings.ToLower(parts[0] + "/" + parts[1])
}
