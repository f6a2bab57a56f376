package entrypoint

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/testship/testship/pkg/testlog"
)

// EnvJobCompletionIndex is set by Kubernetes on the pods of an Indexed Job;
// the index falls back to it when TESTSHIP_INDEX is not set.
const EnvJobCompletionIndex = "JOB_COMPLETION_INDEX"

// Pod is the pod's place in its run, from the variables the Job sets.
type Pod struct {
	Mode  string // testlog.ModeSingle, ModeShard or ModeCopy
	Index int
	Count int
	// IndexFromJob: the index came from JOB_COMPLETION_INDEX, so the
	// binary is given TESTSHIP_INDEX too.
	IndexFromJob bool
	Shard        []string // ModeShard: this index's top-level tests
	Sync         bool
	Job          string
}

// readPod reads and checks the pod variables; an error names the variable,
// its value and what would be right.
func readPod(getenv func(string) string) (Pod, error) {
	p := Pod{Mode: getenv(testlog.EnvMode), Count: 1}
	switch p.Mode {
	case "":
		p.Mode = testlog.ModeSingle
	case testlog.ModeSingle, testlog.ModeShard, testlog.ModeCopy:
	default:
		return p, fmt.Errorf("%s=%q: want %s, %s or %s", testlog.EnvMode, p.Mode, testlog.ModeSingle, testlog.ModeShard, testlog.ModeCopy)
	}
	if v := getenv(testlog.EnvCount); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, fmt.Errorf("%s=%q: want a positive integer", testlog.EnvCount, v)
		}
		p.Count = n
	}
	name, v := testlog.EnvIndex, getenv(testlog.EnvIndex)
	if v == "" {
		name, v = EnvJobCompletionIndex, getenv(EnvJobCompletionIndex)
		p.IndexFromJob = v != ""
	}
	if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n >= p.Count {
			return p, fmt.Errorf("%s=%q: want an integer from 0 to %s-1 (%d)", name, v, testlog.EnvCount, p.Count-1)
		}
		p.Index = n
	}
	switch s := getenv(testlog.EnvSyncStart); s {
	case "", "false":
	case "true":
		p.Sync = true
	default:
		return p, fmt.Errorf("%s=%q: want true or false", testlog.EnvSyncStart, s)
	}
	p.Job = getenv(testlog.EnvJobName)
	if p.Sync && p.Count > 1 && p.Job == "" {
		return p, fmt.Errorf("%s=true needs %s (the run's Job), which is not set", testlog.EnvSyncStart, testlog.EnvJobName)
	}
	if p.Mode != testlog.ModeShard {
		return p, nil
	}
	raw := getenv(testlog.EnvShardPlan)
	var plan [][]string
	if err := json.Unmarshal([]byte(raw), &plan); err != nil {
		return p, fmt.Errorf("%s=%s: want a JSON array with one array of test names per index: %v", testlog.EnvShardPlan, short(raw), err)
	}
	if len(plan) != p.Count {
		return p, fmt.Errorf("%s has %d shards but %s=%d: want one array per pod", testlog.EnvShardPlan, len(plan), testlog.EnvCount, p.Count)
	}
	for _, n := range plan[p.Index] {
		if n == "" || strings.ContainsAny(n, " \t\n/") {
			return p, fmt.Errorf("%s: shard %d names %q: want top-level test names", testlog.EnvShardPlan, p.Index, n)
		}
	}
	p.Shard = plan[p.Index]
	return p, nil
}

func short(s string) string {
	if len(s) > 200 {
		return strconv.Quote(s[:200]) + "…"
	}
	return strconv.Quote(s)
}

// ShardArgs returns args with -test.run selecting exactly the named
// top-level tests: `^(A|B)$`, each name regexp-quoted. Any -test.run in
// args is replaced (the shard plan already respects it); the subtest part
// of the last one (after its first top-level `/`) is kept, so
// TESTSHIP_RUN=TestA/fast still runs only TestA's fast subtests.
func ShardArgs(args []string, tests []string) []string {
	var out []string
	rest := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		flagName, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || flagName != "test.run" {
			out = append(out, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				continue
			}
			i++
			val = args[i]
		}
		rest = ""
		if parts := splitRegexp(val); len(parts) > 1 {
			rest = "/" + strings.Join(parts[1:], "/")
		}
	}
	quoted := make([]string, len(tests))
	for i, t := range tests {
		quoted[i] = regexp.QuoteMeta(t)
	}
	return append(out, "-test.run=^("+strings.Join(quoted, "|")+")$"+rest)
}

// splitRegexp splits a -test.run pattern at its top-level slashes, as the
// testing package does (not inside [] or (), nor an escaped slash).
func splitRegexp(s string) []string {
	var out []string
	depth, class, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case class:
			class = c != ']'
		case c == '[':
			class = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '/' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
