package workflows

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// MagefilesDir is where the Mage targets live, relative to the repository.
const MagefilesDir = "magefiles"

// Targets lists the Mage targets defined in dir (lower case, as Mage
// matches them: "ci:e2e", "image:push", "bench"): the exported methods of
// each `type X mg.Namespace` and the exported functions.
func Targets(dir string) ([]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("workflows: no Go files in %s", dir)
	}
	namespaces := map[string]bool{}
	var methods [][2]string
	var funcs []string
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("workflows: %w", err)
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, s := range d.Specs {
					ts, ok := s.(*ast.TypeSpec)
					if !ok {
						continue
					}
					if sel, ok := ts.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Namespace" {
						namespaces[ts.Name.Name] = true
					}
				}
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					funcs = append(funcs, d.Name.Name)
					continue
				}
				if len(d.Recv.List) == 1 {
					if id, ok := d.Recv.List[0].Type.(*ast.Ident); ok {
						methods = append(methods, [2]string{id.Name, d.Name.Name})
					}
				}
			}
		}
	}
	var out []string
	for _, f := range funcs {
		out = append(out, strings.ToLower(f))
	}
	for _, m := range methods {
		if namespaces[m[0]] {
			out = append(out, strings.ToLower(m[0]+":"+m[1]))
		}
	}
	sort.Strings(out)
	return out, nil
}

// MageVar is the variable a workflow job sets to the path of its compiled
// Mage targets.
const MageVar = "TESTSHIP_MAGE"

var (
	// compileLine compiles the targets once per job.
	compileLine = regexp.MustCompile(`^go run magefile\.go -compile "\$` + MageVar + `"$`)
	// execLine runs targets with the compiled binary, exec'ed so that its
	// exit code is the step's and the runner's SIGINT reaches it; as root
	// through sudo for the local stack.
	execLine = regexp.MustCompile(`^exec (sudo -E env "PATH=\$PATH" )?"\$` + MageVar + `"((?: [a-zA-Z0-9]+(?::[a-zA-Z0-9]+)?)+)$`)
)

// CheckRun checks one run: script against the contract: it is a single
// command, either the compile of the targets (`go run magefile.go
// -compile "$TESTSHIP_MAGE"`) or `exec "$TESTSHIP_MAGE" <target>...`
// (optionally through `sudo -E env "PATH=$PATH"`) naming known targets.
// It returns what is wrong, or "".
func CheckRun(script string, known map[string]bool) string {
	var cmds []string
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimFunc(l, unicode.IsSpace)
		if l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) != 1 {
		return fmt.Sprintf("a run: step is one Mage target call (exec \"$%s\" <target>), not %d command lines: move the logic into a target in magefiles/", MageVar, len(cmds))
	}
	cmd := cmds[0]
	if compileLine.MatchString(cmd) {
		return ""
	}
	m := execLine.FindStringSubmatch(cmd)
	if m == nil {
		return fmt.Sprintf("run: %q is not a Mage target call: use exec \"$%s\" <target> (compiled once per job with go run magefile.go -compile \"$%s\")", cmd, MageVar, MageVar)
	}
	for _, t := range strings.Fields(m[2]) {
		if !known[strings.ToLower(t)] {
			return fmt.Sprintf("run: %q calls %q, which is not a Mage target in %s/", cmd, t, MagefilesDir)
		}
	}
	return ""
}

func knownTargets(root string) (map[string]bool, error) {
	dir := filepath.Join(root, MagefilesDir)
	if _, err := os.Stat(dir); err != nil {
		return nil, nil // no magefiles: nothing to check the run: steps against
	}
	ts, err := Targets(dir)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, t := range ts {
		known[t] = true
	}
	return known, nil
}
