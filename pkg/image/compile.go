package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/testship/testship/pkg/config"
)

// CompileError is a failed `go test -c` or `go build`, carrying the
// compiler's output.
type CompileError struct {
	Cmd    string
	Output string
	Err    error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("%s failed: %v\n%s", e.Cmd, e.Err, strings.TrimRight(e.Output, "\n"))
}

// compile builds a static binary for goos/goarch into out with the normal
// Go build cache, so an unchanged package costs a cache lookup. test selects
// `go test -c` (the package's tests) over `go build` (a main package);
// tags are build tags for both.
func compile(ctx context.Context, pkg, out, goos, goarch, tags string, test bool, extra ...string) error {
	args, env := goCommand(pkg, out, goos, goarch, tags, test, extra...)
	return runGo(ctx, pkg, out, args, env)
}

// compileChanged compiles like compile unless the binary's stamp shows that
// nothing the compile reads has changed since it wrote the binary (see
// uptodate.go); ran says whether go ran. stateDir is left out of the
// fingerprint.
func compileChanged(ctx context.Context, stateDir, pkg, out, goos, goarch, tags string, test bool, extra ...string) (ran bool, err error) {
	args, env := goCommand(pkg, out, goos, goarch, tags, test, extra...)
	in, _ := compileInputs(args, env, stateDir) // no fingerprint: go decides
	if upToDate(in, out) {
		return false, nil
	}
	if err := os.Remove(out + stampSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := runGo(ctx, pkg, out, args, env); err != nil {
		return true, err
	}
	writeStamp(in, out)
	return true, nil
}

// goCommand is the go command line and the variables it runs with.
// -trimpath and -buildvcs=false keep the binary, and so the image tag,
// independent of the checkout's path and commit. extra are more build
// flags (e.g. -ldflags).
func goCommand(pkg, out, goos, goarch, tags string, test bool, extra ...string) (args, env []string) {
	args = []string{"build"}
	if test {
		args = []string{"test", "-c"}
	}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, extra...)
	args = append(args, "-trimpath", "-buildvcs=false", "-o", out, pkg)
	return args, []string{"CGO_ENABLED=0", "GOOS=" + goos, "GOARCH=" + goarch}
}

func runGo(ctx context.Context, pkg, out string, args, env []string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return &CompileError{Cmd: "go " + strings.Join(args, " "), Output: buf.String(), Err: err}
	}
	// `go test -c` writes nothing for a package without tests.
	if _, err := os.Stat(out); err != nil {
		return &CompileError{Cmd: "go " + strings.Join(args, " "), Output: buf.String(), Err: fmt.Errorf("no binary written: does %s have tests?", pkg)}
	}
	return nil
}

// BuildDir is where the pipeline compiles a platform's binaries: <state
// dir>/build/<os>-<arch> (the test binary is "test" there, an app's its
// name).
func BuildDir(stateDir, platform string) string {
	return filepath.Join(stateDir, "build", strings.ReplaceAll(platform, "/", "-"))
}

// HostTestBinary returns a test binary of the test package that runs on
// this machine, for listing its tests (shard.List): the pipeline's own
// when this host's platform is among the images' (compiled here unless
// its stamp shows it is up to date), else one compiled for this host
// into <state dir>/build/host/test.
func HostTestBinary(ctx context.Context, cfg config.Image) (string, error) {
	host := runtime.GOOS + "/" + runtime.GOARCH
	out := filepath.Join(cfg.StateDir, "build", "host", "test")
	if slices.Contains(cfg.PlatformList(), host) {
		out = filepath.Join(BuildDir(cfg.StateDir, host), "test")
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	if _, err := compileChanged(ctx, cfg.StateDir, cfg.TestPackage, out, runtime.GOOS, runtime.GOARCH, cfg.TestTags, true); err != nil {
		return "", fmt.Errorf("compiling the test package for this host to list its tests: %w", err)
	}
	return out, nil
}
