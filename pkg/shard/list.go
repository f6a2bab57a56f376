package shard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
	"unicode"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/testlog"
)

// listTimeout bounds the listing: it runs the package's TestMain, if any,
// which should not take long before m.Run lists.
const listTimeout = 2 * time.Minute

// runnable reports whether a line of -test.list is a top-level name `go
// test` runs: tests, fuzz targets (their seed corpus) and examples
// (-test.list lists only those with an output comment, which are the ones
// that run). Benchmarks are listed too but run only with -test.bench:
// they are left out, and so is what a TestMain printed. As for go test,
// the prefix is followed by nothing or by no lower-case letter (Testing
// is no test).
func runnable(line string) bool {
	for _, prefix := range []string{"Test", "Fuzz", "Example"} {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		for i, r := range rest {
			if i == 0 && unicode.IsLower(r) || !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
				return false
			}
		}
		return true
	}
	return false
}

// List runs the compiled test binary with -test.list and returns, sorted,
// the top-level tests that `go test -run pattern` runs (pattern is
// TESTSHIP_RUN's value; "" runs all). The binary must run on this host
// (image.HostTestBinary compiles one). Listing runs the package's
// TestMain up to its m.Run, like any run of the binary.
//
// A pattern that selects none of the binary's tests is a *config.Error
// naming TESTSHIP_RUN and listing the tests there are; a binary without
// tests is an error too.
func List(ctx context.Context, binary, pattern string) ([]string, error) {
	all, err := listAll(ctx, binary)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("the test binary %s has no tests to run (was it built without the build tags its tests need? see TESTSHIP_TEST_TAGS)", binary)
	}
	var out []string
	for _, name := range all {
		if testlog.RunsTop(pattern, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, &config.Error{Name: config.RunPattern, Value: pattern,
			Detail: fmt.Sprintf("it selects none of the package's %d tests", len(all)),
			Want:   "a go test -run pattern that selects some of " + listNames(all, 40)}
	}
	return out, nil
}

// listAll returns the binary's runnable top-level names, sorted.
func listAll(ctx context.Context, binary string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-test.list", ".")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer in %s", listTimeout)
		}
		return nil, fmt.Errorf("listing the tests (%s -test.list .): %w\n%s", binary, err, tail(stderr.String()+stdout.String(), 20))
	}
	var out []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		// A TestMain may print too; keep only names.
		if line = strings.TrimSpace(line); runnable(line) {
			out = append(out, line)
		}
	}
	return unique(out), nil
}

// listNames lists names, at most n of them.
func listNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
