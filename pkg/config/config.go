// Package config reads testship's settings from the environment.
//
// Every setting is an environment variable, declared once in a Var so that
// help text, `mage config` and validation all come from the same place.
// Load is the one validation pass every target runs before any work: it
// checks every variable of the areas the target uses, on its own and
// against the others, and reports every problem at once (exit status 89),
// each naming the variable, its value (redacted when secret) and what
// would be right. IsSecret, RedactText and Reserved are the rules the rest
// of testship shares for secrets and for what reaches the remote test.
package config

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// Var documents one environment variable.
type Var struct {
	Name    string
	Default string // shown in help; "" means unset
	Help    string
	Secret  bool   // never printed
	Area    string // which part of the pipeline reads it: image, env, run, dev
}

var vars = map[string]Var{}

// Declare registers a variable for help and `mage config`. It returns the
// name so declarations can double as constants.
func Declare(v Var) string {
	if _, dup := vars[v.Name]; dup {
		panic("config: variable declared twice: " + v.Name)
	}
	vars[v.Name] = v
	return v.Name
}

// Vars returns the declared variables of the given areas (all when none are
// given), sorted by name.
func Vars(areas ...string) []Var {
	var out []Var
	for _, v := range vars {
		if len(areas) == 0 || contains(areas, v.Area) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Help writes a table of the variables of the given areas.
func Help(w io.Writer, areas ...string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, v := range Vars(areas...) {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, v.Help)
	}
	tw.Flush()
}

// Get returns the variable's value, or its declared default when unset or
// empty.
func Get(name string) string {
	if val := strings.TrimSpace(os.Getenv(name)); val != "" {
		return val
	}
	return vars[name].Default
}

// SecretPrefix marks variables whose values go to the remote test through a
// Kubernetes Secret (the seed's prefix).
const SecretPrefix = "E2E_TEST_"

// ForwardPrefix marks variables forwarded to the remote test in plain form,
// with the prefix removed: TEST_FOO becomes FOO.
const ForwardPrefix = "TEST_"

// SecretVars names extra variables, comma-separated, that are secret.
var SecretVars = Declare(Var{Name: "TESTSHIP_SECRET_VARS", Area: "run",
	Help: "comma-separated names of extra variables to pass to the remote test as secrets"})
