package shard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
// (see PipelineBinary and CompileHost). Listing runs the package's
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

// HostPlatform is this host's os/arch, the platform List can run.
func HostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// PipelineBinary returns the test binary the image pipeline compiled for
// this host's platform (<state dir>/build/<os>-<arch>/test, as pkg/image
// writes it), or "" when the images are for other platforms only (a Mac
// building linux images, an amd64 host building arm64 ones) or it is not
// there. It is as fresh as the last image:build or image:push: use it
// right after the pipeline compiled, else CompileHost.
func PipelineBinary(cfg config.Image) string {
	for _, pl := range cfg.PlatformList() {
		if pl != HostPlatform() {
			continue
		}
		p := filepath.Join(cfg.StateDir, "build", strings.ReplaceAll(pl, "/", "-"), "test")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// CompileHost compiles the test package for this host, with the image
// pipeline's flags (so with the host's platform among the images' it is a
// build-cache hit), into <state dir>/build/host/test, and returns the
// path. It is what List runs when the images' binaries cannot run here.
func CompileHost(ctx context.Context, cfg config.Image) (string, error) {
	out, err := filepath.Abs(filepath.Join(cfg.StateDir, "build", "host", "test"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	args := []string{"test", "-c"}
	if cfg.TestTags != "" {
		args = append(args, "-tags", cfg.TestTags)
	}
	args = append(args, "-trimpath", "-buildvcs=false", "-o", out, cfg.TestPackage)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("compiling the test package for this host to list its tests (go %s): %w\n%s", strings.Join(args, " "), err, tail(string(b), 20))
	}
	if _, err := os.Stat(out); err != nil {
		return "", fmt.Errorf("go %s wrote no binary: does %s have tests?", strings.Join(args, " "), cfg.TestPackage)
	}
	return out, nil
}
