package workflows

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rhysd/actionlint"
)

// The subset of GitHub Actions expressions the local runner evaluates:
// context lookups (inputs.x, steps.id.outputs.y, env.X, ...), literals,
// ! == != < <= > >= && ||, and the status functions. Anything else is an
// error, so a workflow that needs more fails loudly instead of running with a
// wrong value.

// object is a context or a nested object of one; keys compare
// case-insensitively, as in GitHub Actions.
type object map[string]any

func (o object) get(key string) (any, bool) {
	if v, ok := o[key]; ok {
		return v, true
	}
	for k, v := range o {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func stringsObject(m map[string]string) object {
	o := object{}
	for k, v := range m {
		o[k] = v
	}
	return o
}

// evaluator holds the contexts and the job's status for status functions.
type evaluator struct {
	contexts object
	failed   bool // an earlier step failed
}

// interpolate replaces every ${{ expr }} in s with the expression's value.
func (ev *evaluator) interpolate(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("unterminated ${{ in %q", s)
		}
		v, err := ev.eval(s[i+3 : i+j])
		if err != nil {
			return "", err
		}
		b.WriteString(s[:i])
		b.WriteString(toString(v))
		s = s[i+j+2:]
	}
}

// condition evaluates a step's if: (with or without ${{ }}). An empty
// condition is success(), and a condition that calls no status function is
// implicitly success() && (condition), as on GitHub.
func (ev *evaluator) condition(cond string) (bool, error) {
	cond = strings.TrimSpace(cond)
	if strings.HasPrefix(cond, "${{") && strings.HasSuffix(cond, "}}") && strings.Count(cond, "${{") == 1 {
		cond = strings.TrimSpace(cond[3 : len(cond)-2])
	}
	if cond == "" {
		cond = "success()"
	}
	node, err := parseExpr(cond)
	if err != nil {
		return false, err
	}
	if !callsStatusFunc(node) && ev.failed {
		return false, nil
	}
	v, err := ev.evalNode(node)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

func parseExpr(src string) (actionlint.ExprNode, error) {
	node, perr := actionlint.NewExprParser().Parse(actionlint.NewExprLexer(src + "}}"))
	if perr != nil {
		return nil, fmt.Errorf("expression %q: %s", src, perr.Message)
	}
	return node, nil
}

func callsStatusFunc(n actionlint.ExprNode) bool {
	found := false
	actionlint.VisitExprNode(n, func(node, _ actionlint.ExprNode, entering bool) {
		if f, ok := node.(*actionlint.FuncCallNode); ok && entering {
			switch strings.ToLower(f.Callee) {
			case "success", "failure", "always", "cancelled":
				found = true
			}
		}
	})
	return found
}

func (ev *evaluator) eval(src string) (any, error) {
	node, err := parseExpr(strings.TrimSpace(src))
	if err != nil {
		return nil, err
	}
	v, err := ev.evalNode(node)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", strings.TrimSpace(src), err)
	}
	return v, nil
}

func (ev *evaluator) evalNode(n actionlint.ExprNode) (any, error) {
	switch n := n.(type) {
	case *actionlint.NullNode:
		return nil, nil
	case *actionlint.BoolNode:
		return n.Value, nil
	case *actionlint.IntNode:
		return float64(n.Value), nil
	case *actionlint.FloatNode:
		return n.Value, nil
	case *actionlint.StringNode:
		return n.Value, nil
	case *actionlint.VariableNode:
		v, ok := ev.contexts.get(n.Name)
		if !ok {
			return nil, fmt.Errorf("context %q is not available in the local runner", n.Name)
		}
		return v, nil
	case *actionlint.ObjectDerefNode:
		recv, err := ev.evalNode(n.Receiver)
		if err != nil {
			return nil, err
		}
		return deref(recv, n.Property), nil
	case *actionlint.IndexAccessNode:
		recv, err := ev.evalNode(n.Operand)
		if err != nil {
			return nil, err
		}
		idx, err := ev.evalNode(n.Index)
		if err != nil {
			return nil, err
		}
		return deref(recv, toString(idx)), nil
	case *actionlint.NotOpNode:
		v, err := ev.evalNode(n.Operand)
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	case *actionlint.LogicalOpNode:
		l, err := ev.evalNode(n.Left)
		if err != nil {
			return nil, err
		}
		// && and || return an operand, not a bool, and short-circuit.
		if n.Kind == actionlint.LogicalOpNodeKindAnd && !truthy(l) || n.Kind == actionlint.LogicalOpNodeKindOr && truthy(l) {
			return l, nil
		}
		return ev.evalNode(n.Right)
	case *actionlint.CompareOpNode:
		l, err := ev.evalNode(n.Left)
		if err != nil {
			return nil, err
		}
		r, err := ev.evalNode(n.Right)
		if err != nil {
			return nil, err
		}
		return compare(n.Kind, l, r), nil
	case *actionlint.FuncCallNode:
		if len(n.Args) > 0 {
			return nil, fmt.Errorf("function %s(...) is not supported by the local runner", n.Callee)
		}
		switch strings.ToLower(n.Callee) {
		case "success":
			return !ev.failed, nil
		case "failure":
			return ev.failed, nil
		case "always":
			return true, nil
		case "cancelled":
			return false, nil
		}
		return nil, fmt.Errorf("function %s() is not supported by the local runner", n.Callee)
	}
	return nil, fmt.Errorf("%T is not supported by the local runner", n)
}

func deref(recv any, key string) any {
	if o, ok := recv.(object); ok {
		v, _ := o.get(key)
		return v
	}
	return nil // property of a non-object is null, as on GitHub
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case float64:
		return v != 0 && !math.IsNaN(v)
	case string:
		return v != ""
	}
	return true // objects
}

func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

func toNumber(v any) float64 {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		if v {
			return 1
		}
		return 0
	case float64:
		return v
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	return math.NaN()
}

// compare follows GitHub's rules: strings compare ignoring case; values of
// different types are compared as numbers.
func compare(kind actionlint.CompareOpNodeKind, l, r any) bool {
	ls, lok := l.(string)
	rs, rok := r.(string)
	var c int
	switch {
	case lok && rok:
		c = strings.Compare(strings.ToLower(ls), strings.ToLower(rs))
	default:
		ln, rn := toNumber(l), toNumber(r)
		if math.IsNaN(ln) || math.IsNaN(rn) {
			return kind == actionlint.CompareOpNodeKindNotEq
		}
		switch {
		case ln < rn:
			c = -1
		case ln > rn:
			c = 1
		}
	}
	switch kind {
	case actionlint.CompareOpNodeKindLess:
		return c < 0
	case actionlint.CompareOpNodeKindLessEq:
		return c <= 0
	case actionlint.CompareOpNodeKindGreater:
		return c > 0
	case actionlint.CompareOpNodeKindGreaterEq:
		return c >= 0
	case actionlint.CompareOpNodeKindEq:
		return c == 0
	case actionlint.CompareOpNodeKindNotEq:
		return c != 0
	}
	return false
}
