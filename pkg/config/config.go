// Package config reads testship's settings from the environment.
//
// Every setting is an environment variable, declared once in a Var so that
// help text, `mage config` and validation all come from the same place.
// Loaders validate up front and return errors that name the variable, the
// bad value and what would be right.
package config

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
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

// Print writes the effective value of every declared variable, secrets
// redacted, and where each value came from.
func Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tSOURCE")
	for _, v := range Vars() {
		val, set := os.LookupEnv(v.Name)
		src := "environment"
		if !set {
			val, src = v.Default, "default"
		}
		if v.Secret && val != "" {
			val = "<redacted>"
		}
		if val == "" {
			val = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, val, src)
	}
	tw.Flush()
	if n := len(SecretNames()); n > 0 {
		fmt.Fprintf(w, "\n%d secret variable(s) set (values never shown): %s\n", n, strings.Join(SecretNames(), ", "))
	}
}

// Error is a configuration error naming the variable, its value and what
// would be right.
type Error struct {
	Name, Value, Want string
}

func (e *Error) Error() string {
	v := vars[e.Name]
	val := strconv.Quote(e.Value)
	if v.Secret {
		val = "<redacted>"
	}
	return fmt.Sprintf("%s=%s is not valid: want %s", e.Name, val, e.Want)
}

// Get returns the variable's value, or its declared default when unset or
// empty.
func Get(name string) string {
	if val := strings.TrimSpace(os.Getenv(name)); val != "" {
		return val
	}
	return vars[name].Default
}

// Bool parses a boolean variable (true/false/1/0/yes/no, any case).
func Bool(name string) (bool, error) {
	val := Get(name)
	switch strings.ToLower(val) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, &Error{Name: name, Value: val, Want: "true or false"}
}

// Duration parses a Go duration such as 30m or 1h30m.
func Duration(name string) (time.Duration, error) {
	val := Get(name)
	if val == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 {
		return 0, &Error{Name: name, Value: val, Want: "a positive Go duration such as 90s, 30m or 2h"}
	}
	return d, nil
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

// SecretNames lists the names of set variables that are secrets: every
// E2E_TEST_* variable and those listed in TESTSHIP_SECRET_VARS.
func SecretNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, SecretPrefix) && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, name := range strings.Split(Get(SecretVars), ",") {
		name = strings.TrimSpace(name)
		if _, set := os.LookupEnv(name); name != "" && set && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

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
