package runner

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"
	"github.com/jstemmer/go-junit-report/v2/parser/gotest"
)

// Recorder keeps a run's output (in temporary files, one per pod, since it
// can be large) to turn it into reports when the run ends.
//
// A multi-pod run's reports hold one test suite per pod: in the JUnit
// report a <testsuite> named "PKG#I" for index I, in the `go test -json`
// stream events whose Package is "PKG#I" (go tool test2json -p PKG#I), so
// the same test in two shards or copies stays two results. A single-pod
// run's reports name the package as it is.
type Recorder struct {
	pods map[int]*recording
	err  error
}

type recording struct {
	f *os.File
	w *bufio.Writer
}

// NewRecorder starts recording; pass its PodLine method as
// WaitOptions.OnPodLine (or, for a single-pod run, Line as OnLine).
func NewRecorder() (*Recorder, error) {
	r := &Recorder{pods: map[int]*recording{}}
	if _, err := r.pod(0); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Recorder) pod(index int) (*recording, error) {
	if p, ok := r.pods[index]; ok {
		return p, nil
	}
	f, err := os.CreateTemp("", fmt.Sprintf("testship-run-%d-*.out", index))
	if err != nil {
		return nil, err
	}
	p := &recording{f: f, w: bufio.NewWriterSize(f, 1<<20)}
	r.pods[index] = p
	return p, nil
}

// Line records one output line of a single-pod run (index 0).
func (r *Recorder) Line(line []byte) { r.PodLine(0, line) }

// PodLine records one output line of the pod with index.
func (r *Recorder) PodLine(index int, line []byte) {
	if r.err != nil {
		return
	}
	p, err := r.pod(index)
	if err != nil {
		r.err = err
		return
	}
	if _, r.err = p.w.Write(line); r.err == nil && (len(line) == 0 || line[len(line)-1] != '\n') {
		r.err = p.w.WriteByte('\n')
	}
}

// Close removes the recording.
func (r *Recorder) Close() {
	for _, p := range r.pods {
		p.f.Close()
		os.Remove(p.f.Name())
	}
}

// part is one pod's recorded output, ready for a report.
type part struct {
	pkg string // the package name in the report: PKG, or PKG#I in a multi-pod run
	in  io.Reader
}

// parts returns each pod's recorded output plus the package summary line
// that `go test` would print after the binary's own output, in index order.
func (r *Recorder) parts(pkg string, res *Result) ([]part, error) {
	if r.err != nil {
		return nil, r.err
	}
	indexes := make([]int, 0, len(r.pods))
	for i := range r.pods {
		indexes = append(indexes, i)
	}
	multi := res.Multi || len(res.Pods) > 1
	if multi {
		// every index, also those that wrote nothing
		for _, p := range res.Pods {
			if _, ok := r.pods[p.Index]; !ok {
				if _, err := r.pod(p.Index); err != nil {
					return nil, err
				}
				indexes = append(indexes, p.Index)
			}
		}
	}
	sort.Ints(indexes)
	var out []part
	for _, i := range indexes {
		p := r.pods[i]
		if !multi && i != 0 {
			continue
		}
		if err := p.w.Flush(); err != nil {
			return nil, err
		}
		if _, err := p.f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		name, failed := pkg, res.ExitCode != 0 || res.Reason != ""
		if multi {
			name = fmt.Sprintf("%s#%d", pkg, i)
			failed = true // unless its pod is known to have passed
			for _, pr := range res.Pods {
				if pr.Index == i {
					failed = pr.ExitCode != 0 || pr.Reason != ""
				}
			}
		}
		status := "ok  "
		if failed {
			status = "FAIL"
		}
		tail := fmt.Sprintf("%s\t%s\t%.3fs\n", status, name, res.Duration.Seconds())
		out = append(out, part{pkg: name, in: io.MultiReader(p.f, strings.NewReader(tail))})
	}
	return out, nil
}

// WriteJUnit writes a JUnit XML report of the recorded run to path, using
// go-junit-report's parser of `go test -v` output (subtests, parallel tests,
// skips and failure output included): one test suite, or in a multi-pod
// run one per pod, named PKG#INDEX. pkg names the test package.
func (r *Recorder) WriteJUnit(path, pkg string, res *Result) error {
	parts, err := r.parts(pkg, res)
	if err != nil {
		return fmt.Errorf("runner: JUnit report: %w", err)
	}
	host, _ := os.Hostname()
	var suites junit.Testsuites
	for _, p := range parts {
		report, err := gotest.NewParser(gotest.PackageName(p.pkg), gotest.TimestampFunc(func() time.Time { return time.Now() })).Parse(p.in)
		if err != nil {
			return fmt.Errorf("runner: JUnit report: parse the test output of %s: %w", p.pkg, err)
		}
		for _, s := range junit.CreateFromReport(report, host).Suites {
			s.ID = len(suites.Suites)
			suites.AddSuite(s)
		}
	}
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
// converted by the Go toolchain's own `go tool test2json`: one stream, in
// a multi-pod run the pods' events one pod after the other, each with
// Package PKG#INDEX.
func (r *Recorder) WriteJSON(path, pkg string, res *Result) error {
	parts, err := r.parts(pkg, res)
	if err != nil {
		return fmt.Errorf("runner: test2json events: %w", err)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	for _, p := range parts {
		cmd := exec.Command("go", "tool", "test2json", "-p", p.pkg)
		cmd.Stdin, cmd.Stdout = p.in, out
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("runner: go tool test2json -p %s: %v %s", p.pkg, err, strings.TrimSpace(stderr.String()))
		}
	}
	return nil
}
