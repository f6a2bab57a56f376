package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/testship/testship/pkg/exitcode"
)

// Error is a configuration error naming the variable, its value and what
// would be right. The value is redacted when the variable is secret and
// shortened when long; Detail (which may quote part of the value) is shown
// only when the variable is not secret.
type Error struct {
	Name, Value, Want string
	// Detail says which part of the value is wrong and why, e.g. `rule
	// "create:pods": ...`. Never shown for a secret variable.
	Detail string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Name + "=" + ShowValue(e.Name, e.Value) + " is not valid")
	if e.Detail != "" && !IsSecret(e.Name) {
		b.WriteString(": " + e.Detail)
	}
	b.WriteString("; want " + e.Want)
	// A secret of another variable may still hide in a detail.
	return RedactText(b.String())
}

// ExitStatus is the exit code of a target that stops on a configuration
// error (Mage uses it).
func (e *Error) ExitStatus() int { return exitcode.Infra }

// Errors is every problem the validation pass found, reported at once.
type Errors struct {
	List []*Error
}

func (e *Errors) Error() string {
	var b strings.Builder
	n := len(e.List)
	fmt.Fprintf(&b, "configuration: %d problem%s, nothing was done (`mage config` shows every value, `mage vars` every variable):", n, plural(n))
	for _, p := range e.List {
		b.WriteString("\n  - " + p.Error())
	}
	return b.String()
}

// Unwrap gives errors.As access to each *Error.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, p := range e.List {
		out[i] = p
	}
	return out
}

// ExitStatus is 89: testship could not do its part.
func (e *Errors) ExitStatus() int { return exitcode.Infra }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// maxShown is how much of a long value an error shows.
const maxShown = 80

// ShowValue is how a variable's value may be shown: quoted, "<redacted>"
// when the variable is secret, with credentials inside URLs redacted, and
// shortened when long.
func ShowValue(name, value string) string {
	if IsSecret(name) && value != "" {
		return "<redacted>"
	}
	value = redactValue(name, value)
	if r := []rune(value); len(r) > maxShown {
		return strconv.Quote(string(r[:maxShown-20])) + fmt.Sprintf("… (%d characters)", len(r))
	}
	return strconv.Quote(value)
}

// checker collects problems so that the pass reports all of them.
type checker struct {
	problems []*Error
}

// add records err's *Error (or every one of an *Errors); another error
// is recorded under name.
func (c *checker) add(name string, err error) {
	if err == nil {
		return
	}
	var many *Errors
	var one *Error
	switch {
	case errors.As(err, &many):
		c.problems = append(c.problems, many.List...)
	case errors.As(err, &one):
		c.problems = append(c.problems, one)
	default:
		c.problems = append(c.problems, &Error{Name: name, Value: Get(name), Want: "a valid value", Detail: err.Error()})
	}
}

func (c *checker) bad(name, value, detail, want string) {
	c.problems = append(c.problems, &Error{Name: name, Value: value, Detail: detail, Want: want})
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &Errors{List: c.problems}
}

func (c *checker) bool(name string) bool {
	b, err := Bool(name)
	c.add(name, err)
	return b
}

// duration parses name; unset (no default) is 0, else it must lie in
// [min, max].
func (c *checker) duration(name string, min, max time.Duration) time.Duration {
	d, err := Duration(name)
	if err != nil || Get(name) != "" && (d < min || d > max) {
		c.bad(name, Get(name), "", fmt.Sprintf("a Go duration from %s to %s, such as %s", short(min), short(max), short(clamp(30*time.Minute, min, max))))
		return 0
	}
	return d
}

func clamp(d, min, max time.Duration) time.Duration {
	return time.Duration(math.Max(float64(min), math.Min(float64(d), float64(max))))
}

// short prints a duration without zero parts: 30m, 720h, 1s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Bool parses a boolean variable (true/false/1/0/yes/no/on/off, any case).
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

// Duration parses a Go duration such as 30m or 1h30m; unset is 0.
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

// Int parses a whole number in [min, max]; unset is 0.
func Int(name string, min, max int64) (int64, error) {
	val := Get(name)
	if val == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < min || n > max {
		return 0, &Error{Name: name, Value: val, Want: fmt.Sprintf("a whole number from %d to %d", min, max)}
	}
	return n, nil
}

func quote(s string) string { return strconv.Quote(s) }
