package runner

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"
	"github.com/jstemmer/go-junit-report/v2/parser/gotest"
)

// Recorder keeps a run's output (in a temporary file, since it can be
// large) to turn it into reports when the run ends.
type Recorder struct {
	f   *os.File
	w   *bufio.Writer
	err error
}

// NewRecorder starts recording; pass its Line method as WaitOptions.OnLine.
func NewRecorder() (*Recorder, error) {
	f, err := os.CreateTemp("", "testship-run-*.out")
	if err != nil {
		return nil, err
	}
	return &Recorder{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// Line records one output line.
func (r *Recorder) Line(line []byte) {
	if r.err != nil {
		return
	}
	if _, r.err = r.w.Write(line); r.err == nil && (len(line) == 0 || line[len(line)-1] != '\n') {
		r.err = r.w.WriteByte('\n')
	}
}

// Close removes the recording.
func (r *Recorder) Close() {
	r.f.Close()
	os.Remove(r.f.Name())
}

// output returns the recorded output plus the package summary line that
// `go test` would print after the binary's own output.
func (r *Recorder) output(pkg string, res *Result) (io.Reader, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.w.Flush(); err != nil {
		return nil, err
	}
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	status := "ok  "
	if res.ExitCode != 0 || res.Reason != "" {
		status = "FAIL"
	}
	tail := fmt.Sprintf("%s\t%s\t%.3fs\n", status, pkg, res.Duration.Seconds())
	return io.MultiReader(r.f, strings.NewReader(tail)), nil
}

// WriteJUnit writes a JUnit XML report of the recorded run to path, using
// go-junit-report's parser of `go test -v` output (subtests, parallel tests,
// skips and failure output included). pkg names the test package.
func (r *Recorder) WriteJUnit(path, pkg string, res *Result) error {
	in, err := r.output(pkg, res)
	if err != nil {
		return fmt.Errorf("runner: JUnit report: %w", err)
	}
	report, err := gotest.NewParser(gotest.PackageName(pkg), gotest.TimestampFunc(func() time.Time { return time.Now() })).Parse(in)
	if err != nil {
		return fmt.Errorf("runner: JUnit report: parse the test output: %w", err)
	}
	host, _ := os.Hostname()
	suites := junit.CreateFromReport(report, host)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := suites.WriteXML(&buf); err != nil {
		return fmt.Errorf("runner: JUnit report: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("runner: JUnit report: %w", err)
	}
	return nil
}

// WriteJSON writes the recorded run as `go test -json` events to path,
// converted by the Go toolchain's own `go tool test2json`.
func (r *Recorder) WriteJSON(path, pkg string, res *Result) error {
	in, err := r.output(pkg, res)
	if err != nil {
		return fmt.Errorf("runner: test2json events: %w", err)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command("go", "tool", "test2json", "-p", pkg)
	cmd.Stdin, cmd.Stdout = in, out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("runner: go tool test2json: %v %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
