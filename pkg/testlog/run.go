package testlog

import (
	"regexp"
	"strings"
)

// RunRegexp is the -test.run pattern that selects exactly the named
// top-level tests: ^(A|B)$, each name quoted. Without names it matches no
// test.
func RunRegexp(names []string) string {
	if len(names) == 0 {
		return "^$"
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}

// ShardRun is the -test.run pattern of a shard that runs the top-level
// tests names under the user's -test.run pattern (TESTSHIP_RUN, "" for
// all): RunRegexp(names) when the pattern has no subtest levels; else each
// of its alternatives keeps its subtest levels with the top level narrowed
// to the names it matches, so TESTSHIP_RUN=TestA/fast|TestB still runs
// only TestA's fast subtests and all of TestB. names must be tests the
// pattern selects (a shard plan's). An invalid pattern gives RunRegexp(names).
func ShardRun(names []string, pattern string) string {
	alts := SplitPattern(pattern)
	deep := false
	for _, alt := range alts {
		deep = deep || len(alt) > 1
	}
	if !deep {
		return RunRegexp(names)
	}
	var out []string
	for _, alt := range alts {
		re, err := regexp.Compile(alt[0])
		if err != nil {
			return RunRegexp(names)
		}
		var mine []string
		for _, n := range names {
			if re.MatchString(n) {
				mine = append(mine, n)
			}
		}
		if len(mine) == 0 {
			continue
		}
		out = append(out, strings.Join(append([]string{RunRegexp(mine)}, alt[1:]...), "/"))
	}
	if len(out) == 0 {
		return RunRegexp(nil)
	}
	return strings.Join(out, "|")
}

// RunsTop reports whether `go test -run pattern` runs the top-level test
// name (at least in part: a pattern with subtest levels may run only some
// of its subtests). The empty pattern runs every test; an invalid one none.
func RunsTop(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	for _, alt := range SplitPattern(pattern) {
		if ok, err := regexp.MatchString(alt[0], name); err == nil && ok {
			return true
		}
	}
	return false
}

// SplitPattern splits a -test.run pattern the way the testing package
// does: into alternatives at each '|' outside brackets and parentheses,
// and each alternative into its levels (top-level test, subtest, …) at
// each '/' outside them; a backslash escapes the next character.
func SplitPattern(s string) [][]string {
	var alts [][]string
	var levels []string
	brackets, parens := 0, 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '[':
			brackets++
		case ']':
			if brackets--; brackets < 0 { // an unmatched ']' is a literal
				brackets = 0
			}
		case '(':
			if brackets == 0 {
				parens++
			}
		case ')':
			if brackets == 0 {
				parens--
			}
		case '\\':
			i++
		case '/', '|':
			if brackets == 0 && parens == 0 {
				levels = append(levels, s[:i])
				if s[i] == '|' {
					alts = append(alts, levels)
					levels = nil
				}
				s = s[i+1:]
				i = 0
				continue
			}
		}
		i++
	}
	return append(alts, append(levels, s))
}

// ShardArgs rewrites the test binary's arguments for a shard that runs the
// top-level tests names: every -test.run is taken out (its last value,
// which the flag package would use, is the user's pattern) and one
// -test.run ShardRun(names, pattern) is put first. The other arguments
// are kept in order.
func ShardArgs(args, names []string) []string {
	var pattern string
	rest := make([]string, 0, len(args)+2)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "test.run" {
			rest = append(rest, a)
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		pattern = value
	}
	return append([]string{"-test.run", ShardRun(names, pattern)}, rest...)
}
