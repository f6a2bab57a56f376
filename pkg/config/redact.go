package config

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
)

// One rule decides what is secret, everywhere (mage config, errors, job
// summaries, GitHub outputs): every E2E_TEST_* variable, every variable
// named in TESTSHIP_SECRET_VARS, every variable declared Secret, and the
// password of credentials inside a URL (user:password@host).

// IsSecret reports whether the named variable's value must never be shown.
func IsSecret(name string) bool {
	if strings.HasPrefix(name, SecretPrefix) || vars[name].Secret {
		return true
	}
	for _, s := range strings.Split(Get(SecretVars), ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// SecretNames lists the names of set variables that are secret.
func SecretNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "" && IsSecret(name) && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// urlCreds matches the password of scheme://user:password@, and
// bareCreds that of a value that starts with user:password@host (a
// registry written with credentials).
var (
	urlCreds  = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s/@]+)@`)
	bareCreds = regexp.MustCompile(`^([^\s:/@]+:)([^\s/@]+)@`)
)

// Redacted stands for a secret value.
const Redacted = "<redacted>"

// RedactURL replaces the password of credentials inside a URL:
// scheme://user:pass@host becomes scheme://user:<redacted>@host.
func RedactURL(s string) string {
	return urlCreds.ReplaceAllString(s, "${1}"+Redacted+"@")
}

// isHostVar reports whether a variable holds a registry host, where
// user:pass@host (no scheme) is credentials.
func isHostVar(name string) bool { return strings.HasSuffix(name, "REGISTRY") }

// redactValue is RedactURL, and for a registry variable also the
// password of user:pass@host.
func redactValue(name, s string) string {
	s = RedactURL(s)
	if isHostVar(name) {
		s = bareCreds.ReplaceAllString(s, "${1}"+Redacted+"@")
	}
	return s
}

// SecretValues returns the current secret values of at least 4 characters
// (shorter ones would redact ordinary words): those of the secret
// variables and the passwords inside URLs of testship's variables.
func SecretValues() []string {
	seen := map[string]bool{}
	var out []string
	addVal := func(v string) {
		if len(v) >= 4 && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, name := range SecretNames() {
		val := os.Getenv(name)
		addVal(val)
		addVal(strings.TrimSpace(val))
		// A structured secret (ENV_SET's key=value,key=value) is also
		// redacted value by value.
		for _, item := range strings.Split(val, ",") {
			if _, v, ok := strings.Cut(item, "="); ok {
				addVal(strings.TrimSpace(v))
			}
		}
	}
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		for _, m := range urlCreds.FindAllStringSubmatch(val, -1) {
			addVal(m[2])
		}
		if isHostVar(name) {
			if m := bareCreds.FindStringSubmatch(strings.TrimSpace(val)); m != nil {
				addVal(m[2])
			}
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// RedactText replaces every current secret value (and every password
// inside a URL) occurring in s with <redacted>.
func RedactText(s string) string {
	for _, v := range SecretValues() {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return urlCreds.ReplaceAllString(s, "${1}"+Redacted+"@")
}

var (
	maskMu sync.Mutex
	masked = map[string]bool{}
)

// MaskInActions asks the GitHub Actions runner (GITHUB_ACTIONS=true) to
// mask every current secret value in the job's logs, with one
// `::add-mask::` command per value (per line of a multi-line value),
// once per process.
func MaskInActions(w io.Writer) {
	if !InActions() {
		return
	}
	maskMu.Lock()
	defer maskMu.Unlock()
	for _, v := range SecretValues() {
		for _, line := range strings.Split(v, "\n") {
			line = strings.TrimRight(line, "\r")
			if line == "" || masked[line] {
				continue
			}
			masked[line] = true
			fmt.Fprintf(w, "::add-mask::%s\n", escapeCommand(line))
		}
	}
}

// escapeCommand escapes a workflow command's data as the runner expects.
func escapeCommand(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// Print writes the effective value of every declared variable, secrets
// redacted, and where each value came from.
func Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tSOURCE")
	row := func(name, val, src string) {
		switch {
		case val == "":
			val = "-"
		case IsSecret(name):
			val = Redacted
		default:
			val = redactValue(name, val)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, val, src)
	}
	for _, v := range Vars() {
		if v.Name == EnvImage {
			for _, name := range imageVarNames() {
				row(name, os.Getenv(name), "environment")
			}
			continue
		}
		val, set := os.LookupEnv(v.Name)
		src := "environment"
		if !set {
			val, src = v.Default, "default"
		}
		row(v.Name, val, src)
	}
	tw.Flush()
	if names := SecretNames(); len(names) > 0 {
		fmt.Fprintf(w, "\n%d secret variable(s) set (values never shown): %s\n", len(names), strings.Join(names, ", "))
	}
	for _, u := range Unknown() {
		fmt.Fprintf(w, "note: %s is set but testship's targets do not read it%s\n", u.Name, u.Hint)
	}
}

// UnknownVar is a set TESTSHIP_* variable that no declaration names.
type UnknownVar struct {
	Name string
	Hint string // " (did you mean X?)" or ""
}

// Unknown lists the set TESTSHIP_* variables that are not declared (a
// typo reads as a silently ignored setting), with the closest declared
// name when one is near.
func Unknown() []UnknownVar {
	var out []UnknownVar
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "TESTSHIP_") || strings.HasPrefix(name, imageVarPrefix) {
			continue
		}
		if _, declared := vars[name]; declared {
			continue
		}
		u := UnknownVar{Name: name}
		best := 3 // at most two edits away
		for known := range vars {
			if d := distance(name, known); d < best {
				best, u.Hint = d, " (did you mean "+known+"?)"
			}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// imageVarNames lists the set TESTSHIP_IMAGE_<CHART> variables.
func imageVarNames() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, imageVarPrefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
