package config

import (
	"regexp"
	"sort"
	"strings"
)

// AllowVars lets the remote test get Go runtime variables that are
// otherwise reserved.
var AllowVars = Declare(Var{Name: "TESTSHIP_ALLOW_VARS", Area: "run",
	Help: "comma-separated Go runtime variables the remote test may get from TEST_* or secrets (GODEBUG, GOMAXPROCS, GOGC, GOMEMLIMIT, GOTRACEBACK); reserved otherwise"})

// reservedNames are what the remote test's pod needs as the image and
// Kubernetes set them; reservedPrefixes cover Kubernetes' service links
// and testship's own variables.
var (
	reservedNames    = map[string]bool{"PATH": true, "HOME": true, "HOSTNAME": true, "PWD": true, "USER": true, "SHELL": true, "TMPDIR": true}
	reservedPrefixes = []string{"KUBERNETES_", "TESTSHIP_"}
	// goRuntimeVars change how the test binary runs; the user may ask for
	// them through TESTSHIP_ALLOW_VARS.
	goRuntimeVars = map[string]bool{"GODEBUG": true, "GOMAXPROCS": true, "GOGC": true, "GOMEMLIMIT": true, "GOTRACEBACK": true}
)

// Reserved reports whether name, as the remote test's pod would get it,
// is reserved: PATH, HOME, HOSTNAME, PWD, USER, SHELL, TMPDIR,
// KUBERNETES_*, TESTSHIP_*, and the Go runtime's GODEBUG, GOMAXPROCS,
// GOGC, GOMEMLIMIT and GOTRACEBACK unless TESTSHIP_ALLOW_VARS names them.
func Reserved(name string) bool {
	if reservedNames[name] {
		return true
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	if goRuntimeVars[name] {
		for _, a := range strings.Split(Get(AllowVars), ",") {
			if strings.TrimSpace(a) == name {
				return false
			}
		}
		return true
	}
	return false
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidEnvName reports whether name can be an environment variable of a
// container and a shell: [A-Za-z_][A-Za-z0-9_]*.
func ValidEnvName(name string) bool { return envName.MatchString(name) }

// checkForwarded checks what reaches the remote test: TEST_FOO as FOO,
// secrets (E2E_TEST_*, TESTSHIP_SECRET_VARS) under their own names. Each
// must be a valid name and not reserved.
func checkForwarded(c *checker, environ []string) {
	const want = "a variable name of letters, digits and '_' that does not start with a digit"
	reservedWant := "another name: PATH, HOME, HOSTNAME, PWD, USER, SHELL, TMPDIR, KUBERNETES_*, TESTSHIP_* and the Go runtime's variables (unless in TESTSHIP_ALLOW_VARS) are reserved for the remote test's pod"
	values := map[string]string{}
	var names []string
	for _, kv := range environ {
		if name, val, ok := strings.Cut(kv, "="); ok && name != "" {
			names = append(names, name)
			values[name] = val
		}
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case strings.HasPrefix(name, SecretPrefix):
			// reaches the pod under its own name, never reserved; the
			// names of TESTSHIP_SECRET_VARS are checked below
			if !ValidEnvName(name) {
				c.bad(name, values[name], "", want)
			}
		case IsSecret(name):
			// named in TESTSHIP_SECRET_VARS: checked with its entries below
		case strings.HasPrefix(name, ForwardPrefix) && len(name) > len(ForwardPrefix):
			pod := strings.TrimPrefix(name, ForwardPrefix)
			if !ValidEnvName(pod) {
				c.bad(name, values[name], "it would reach the remote test's pod as "+pod+", which is not a valid environment variable name", want)
			} else if Reserved(pod) {
				c.bad(name, values[name], "it would reach the remote test's pod as "+pod+", which is reserved", reservedWant)
			}
		}
	}
	for _, s := range strings.Split(Get(SecretVars), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !ValidEnvName(s) {
			c.bad(SecretVars, Get(SecretVars), "entry "+quote(s)+" is not a valid environment variable name", "comma-separated variable names such as DB_PASSWORD,API_TOKEN")
		} else if Reserved(s) {
			c.bad(SecretVars, Get(SecretVars), "entry "+quote(s)+" is reserved in the remote test's pod", reservedWant)
		}
	}
	for _, a := range strings.Split(Get(AllowVars), ",") {
		if a = strings.TrimSpace(a); a != "" && !goRuntimeVars[a] {
			c.bad(AllowVars, Get(AllowVars), "entry "+quote(a)+" is not one of the Go runtime's variables", "some of GODEBUG, GOMAXPROCS, GOGC, GOMEMLIMIT, GOTRACEBACK")
		}
	}
}
